"""
Certificates with real strongSwan 5.9.8 clients in network namespaces: RSA-3072 and ECDSA P-256
both ways (RFC 7427 signatures), made with strongSwan's own pki tool; the PAD refusing an
untrusted CA; a client certificate issued through intermediate CAs, which the client sends and
the hub must use (it trusts only the root). Judged from the client's side, with a ping through
the tunnel.
"""

import ipaddress
import re

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import (
    LAN_HOST,
    POOL,
    StrongSwanPki,
    certificateFiles,
    onlyIkeSa,
    roadWarriorClient,
    roadWarriorHub,
    waitFor,
)


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


@pytest.mark.parametrize("clientHasIntermediates", [True, False])
def test_intermediatesComeFromTheClientsCertPayloads(workdir, clientHasIntermediates):
    """
    The client's certificate is issued through two intermediate CAs; the hub trusts only the
    root. strongSwan sends each intermediate it finds on the way up (in x509/ here; x509ca/
    works as well, and it needs no root to do so) as a CERT payload after its own: the hub
    builds the path through them and the SA carries a ping. A client that lacks them sends
    its certificate alone, and the hub, which never looks for intermediates elsewhere,
    refuses it as from an untrusted CA.
    """
    requireRealClients()
    clientPki = StrongSwanPki(workdir / "clientpki", "ecdsa", caName="ikehub test client root")
    issuer = None
    files = {}
    for i in (1, 2):
        name = f"intermediate{i}"
        issuer = clientPki.issue(name, f"{name}.example.com", "--ca", issuer=issuer)
        if clientHasIntermediates:
            files[f"x509/{name}.pem"] = issuer[0].read_bytes()
    cert, key = clientPki.issue("alice", "alice@example.com", issuer=issuer)
    hubPki = StrongSwanPki(workdir / "hub", "ecdsa", caName="ikehub test hub CA")
    hubPki.issue("hub", "hub.example.com")
    (workdir / "hub" / "clients-root.pem").write_bytes(clientPki.caCert.read_bytes())
    files.update(
        {
            "x509ca/hub-ca.pem": hubPki.caCert.read_bytes(),
            "x509/client.pem": cert.read_bytes(),
            "private/client.key": key.read_bytes(),
        }
    )
    config = roadWarriorHub(
        'name = "certificates"\nidentity = "*@example.com"\nauth = "pubkey"',
        hub='certificate = "hub.pem"\nprivate_key = "hub.key"\nca = "clients-root.pem"',
    )
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(net.clientNs[0], workdir / "c1", CLIENT_CONFIG, files=files) as client,
    ):
        result = client.initiate("home")
        log = client.log()
        sentIssuers = re.findall(r'sending issuer cert "[^"]*CN=(\S+)"', log)
        if not clientHasIntermediates:
            assert result.returncode != 0 and sentIssuers == [], log
            assert "sending end entity cert" in log, log
            assert waitFor(lambda: "certificate refused: untrusted CA" in hub.log()), hub.log()
            assert client.listSas() == []
            return
        assert result.returncode == 0, log + hub.log()
        assert sentIssuers == ["intermediate2.example.com", "intermediate1.example.com"], log
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED", sa
        [vip] = sa["local-vips"]
        assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=vip), client.log()
        assert "(alice@example.com) established" in hub.log(), hub.log()
