"""
Certificates with real strongSwan 5.9.8 clients in network namespaces: RSA-3072 and ECDSA P-256
both ways (RFC 7427 signatures), made with strongSwan's own pki tool; the PAD refusing an
untrusted CA. Judged from the client's side, with a ping through the tunnel.
"""

import ipaddress

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import (
    POOL,
    StrongSwanPki,
    certificateFiles,
    onlyIkeSa,
    roadWarriorClient,
    roadWarriorHub,
    waitFor,
)

LAN_HOST = "203.0.113.10"

HUB_CONFIG = roadWarriorHub(
    'name = "certificates"\nidentity = "*@example.com"\nauth = "pubkey"',
    hub='certificate = "hub.pem"\nprivate_key = "hub.key"\nca = "ca.pem"',
)
CLIENT_CONFIG = roadWarriorClient(
    {"local": "auth = pubkey\ncerts = client.pem\nid = alice@example.com"},
    proposals="aes256gcm16-prfsha256-ecp256",
)


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("crt")


@pytest.mark.parametrize(
    "keyType, scheme",
    [("rsa", "RSA_EMSA_PKCS1_SHA2_256"), ("ecdsa", "ECDSA_WITH_SHA256_DER")],
)
def test_certificatesBothWaysWithTrafficAndDelete(workdir, keyType, scheme):
    """
    The client proves alice@example.com with its certificate, the hub proves hub.example.com
    with its own (which the client checks against the CA); both sign with RFC 7427; a ping
    crosses the tunnel; the client's delete leaves nothing on the hub.
    """
    requireRealClients()
    pki = StrongSwanPki(workdir / "hub", keyType)
    pki.issue("hub", "hub.example.com", "--flag", "serverAuth")
    cert, key = pki.issue("alice", "alice@example.com", "--flag", "clientAuth")
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", HUB_CONFIG) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            CLIENT_CONFIG,
            files=certificateFiles(pki, cert, key),
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log() + hub.log()
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED", sa
        assert sa["remote-id"] == "hub.example.com"
        [child] = sa["child-sas"]
        assert child["state"] == "INSTALLED"
        [vip] = sa["local-vips"]
        assert ipaddress.ip_address(vip) in POOL
        log = client.log()
        # Both signatures are RFC 7427 (method 14) with SHA-256, which the hub chose from the
        # hashes the client announced; the client verified the hub's against the CA.
        assert f"authentication of 'hub.example.com' with {scheme} successful" in log, log
        assert f"(myself) with {scheme} successful" in log, log
        assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=vip), client.log()
        assert client.terminateIke("home").returncode == 0
        assert waitFor(lambda: "deleted by the peer" in hub.log()), hub.log()


def test_untrustedCaIsRefusedAndLeavesNothing(workdir):
    """
    A client certificate from a CA the hub does not trust: AUTHENTICATION_FAILED, and the
    hub's log carries the PAD's record of why.
    """
    requireRealClients()
    pki = StrongSwanPki(workdir / "hub", "ecdsa")
    pki.issue("hub", "hub.example.com")
    rogue = StrongSwanPki(workdir / "rogue", "ecdsa")
    cert, key = rogue.issue("alice", "alice@example.com")
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", HUB_CONFIG) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            CLIENT_CONFIG,
            files=certificateFiles(pki, cert, key),
        ) as client,
    ):
        assert client.initiate("home").returncode != 0
        assert "AUTHENTICATION_FAILED" in client.log(), client.log()
        assert client.listSas() == []
        assert waitFor(lambda: "untrusted CA" in hub.log()), hub.log()
        assert "matched PAD entry 'certificates'" in hub.log()
