"""
The Peer Authorization Database refusing real strongSwan 5.9.8 clients in network namespaces:
an identity no entry accepts, a valid identity from an address its entry does not allow (and
ordered matching, where a later entry governs instead), selectors the governing entry does not
allow, and a certificate identity from an address its entry does not allow. Each refusal is
judged from the client's side (the notify it received, the SAs it holds) and from the hub's
log, which carries the PAD's decision record; the hub keeps nothing.
"""

import ipaddress

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import (
    HUB_PSK,
    POOL,
    StrongSwanPki,
    certificateFiles,
    clientConfig,
    clientSecrets,
    hubConfig,
    onlyIkeSa,
    padHubConfig,
    roadWarriorClient,
    roadWarriorHub,
    waitFor,
)

#: Topology's first client namespace has this address.
CLIENT_ADDRESS = "192.0.2.11"

OFFICE_ONLY = f"""
[[peers]]
name = "office"
identity = "alice@example.com"
auth = "psk"
psk = "{HUB_PSK}"
pool = "roadwarriors"
remote_addrs = ["192.0.2.100/32"]
local_ts = ["203.0.113.0/24"]
"""

ANYWHERE = f"""
[[peers]]
name = "anywhere"
identity = "*@example.com"
auth = "psk"
psk = "{HUB_PSK}"
pool = "travellers"
local_ts = ["203.0.113.0/24"]
"""

TRAVELLERS = ipaddress.ip_network("198.51.100.208/28")
TRAVELLERS_POOL = '[pools.travellers]\naddresses = "198.51.100.208-198.51.100.223"\n'


@pytest.fixture
def workdir(tmp_path_factory):
    # Short paths: the vici socket path must fit a unix socket address.
    return tmp_path_factory.mktemp("pad")


def assertRefused(client):
    """The client was refused with AUTHENTICATION_FAILED in IKE_AUTH and holds no SA."""
    assert client.initiate("home").returncode != 0, client.log()
    log = client.log()
    assert "received AUTHENTICATION_FAILED notify error" in log, log
    assert client.listSas() == []


def test_unknownIdentityIsRefusedAndLeavesNothing(workdir):
    """
    mallory@example.org matches none of the entries (*@example.com, static.example.com):
    AUTHENTICATION_FAILED, and the hub's log says why each entry declined. The hub kept no
    lease: the next, valid, client is lent the pool's first address.
    """
    requireRealClients()
    with Topology() as net, HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub:
        with StrongSwan(
            net.clientNs[0],
            workdir / "bad",
            clientConfig(identity="mallory@example.org"),
            secrets=clientSecrets("mallory@example.org"),
            label="bad",
        ) as mallory:
            assertRefused(mallory)
        expected = (
            f"no PAD entry accepts identity mallory@example.org from {CLIENT_ADDRESS} "
            "(entry 'roadwarriors': identity pattern *@example.com does not match; "
            "entry 'static': identity pattern static.example.com does not match)"
        )
        assert waitFor(lambda: f"(mallory@example.org) failed: {expected}" in hub.log()), hub.log()
        assert "established" not in hub.log(), hub.log()
        with StrongSwan(
            net.clientNs[0], workdir / "good", clientConfig(), secrets=clientSecrets(), label="good"
        ) as alice:
            assert alice.initiate("home").returncode == 0, alice.log() + hub.log()
            sa = onlyIkeSa(alice)
            assert sa["state"] == "ESTABLISHED", sa
            assert sa["local-vips"] == ["198.51.100.10"], sa
        # The first entry governs alice: no record of entries passed over is written.
        assert "matched PAD entry" not in hub.log(), hub.log()


def test_validIdentityFromADisallowedAddressIsRefused(workdir):
    """
    alice@example.com is welcome only from 192.0.2.100; from 192.0.2.11 she is refused with
    AUTHENTICATION_FAILED, and the log names the address and the entry's remote_addrs.
    """
    requireRealClients()
    config = padHubConfig(OFFICE_ONLY)
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()
        ) as client,
    ):
        assertRefused(client)
        expected = (
            f"no PAD entry accepts identity alice@example.com from {CLIENT_ADDRESS} "
            f"(entry 'office': peer address {CLIENT_ADDRESS} is outside remote_addrs "
            "(192.0.2.100/32))"
        )
        assert waitFor(lambda: expected in hub.log()), hub.log()
        assert "established" not in hub.log(), hub.log()


def test_aLaterEntryGovernsWhenAnEarlierOneRefusesTheAddress(workdir):
    """
    Ordered matching: the 'office' entry would take alice@example.com but not from this address,
    so the next entry whose pattern matches, 'anywhere', governs, and its pool lends the address.
    The hub's log records the entry passed over and why.
    """
    requireRealClients()
    config = padHubConfig(OFFICE_ONLY + ANYWHERE, pools=TRAVELLERS_POOL)
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log() + hub.log()
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED", sa
        [vip] = sa["local-vips"]
        assert ipaddress.ip_address(vip) in TRAVELLERS, vip
        assert vip == "198.51.100.208", vip
        [child] = sa["child-sas"]
        assert child["state"] == "INSTALLED", child
        expected = (
            f"identity alice@example.com from {CLIENT_ADDRESS} matched PAD entry 'anywhere', "
            f"after passing over: entry 'office': peer address {CLIENT_ADDRESS} is outside "
            "remote_addrs (192.0.2.100/32)"
        )
        assert waitFor(lambda: expected in hub.log()), hub.log()


def test_selectorsTheEntryDoesNotAllowAreRefused(workdir):
    """
    alice@example.com asks for 192.0.2.0/24 behind the hub; her entry allows only
    203.0.113.0/24. The IKE SA is established, the CHILD SA refused with TS_UNACCEPTABLE
    (strongSwan keeps the IKE SA without a CHILD SA), and the hub's log names the entry and what
    it allows. The client's delete then leaves nothing on the hub.
    """
    requireRealClients()
    config = padHubConfig(ANYWHERE.replace("travellers", "roadwarriors"))
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            clientConfig(remoteTs="192.0.2.0/24"),
            secrets=clientSecrets(),
        ) as client,
    ):
        assert client.initiate("home").returncode != 0, client.log()
        log = client.log()
        assert "received TS_UNACCEPTABLE notify, no CHILD_SA built" in log, log
        assert "failed to establish CHILD_SA, keeping IKE_SA" in log, log
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED", sa
        assert sa.get("child-sas", []) == [], sa
        [vip] = sa["local-vips"]
        assert ipaddress.ip_address(vip) in POOL
        expected = (
            "refused: TS_UNACCEPTABLE: PAD entry 'anywhere' does not allow 192.0.2.0/24 as the "
            "hub's side (allowed: 203.0.113.0/24)"
        )
        assert waitFor(lambda: expected in hub.log()), hub.log()
        assert waitFor(lambda: "established" in hub.log()), hub.log()
        assert client.terminateIke("home").returncode == 0, client.log()
        assert client.listSas() == []
        assert waitFor(lambda: "(alice@example.com) deleted: deleted by the peer" in hub.log()), (
            hub.log()
        )


def test_certificateIdentityFromADisallowedAddressIsRefused(workdir):
    """
    A valid certificate for alice@example.com from a trusted CA does not help from an address
    the entry's remote_addrs exclude: AUTHENTICATION_FAILED, no SA, and the log says why.
    """
    requireRealClients()
    pki = StrongSwanPki(workdir / "hub", "ecdsa")
    pki.issue("hub", "hub.example.com", "--flag", "serverAuth")
    cert, key = pki.issue("alice", "alice@example.com", "--flag", "clientAuth")
    config = roadWarriorHub(
        'name = "office-certs"\nidentity = "*@example.com"\nauth = "pubkey"\n'
        'remote_addrs = ["192.0.2.100/32"]',
        hub='certificate = "hub.pem"\nprivate_key = "hub.key"\nca = "ca.pem"',
    )
    clientConf = roadWarriorClient(
        {"local": "auth = pubkey\ncerts = client.pem\nid = alice@example.com"},
        proposals="aes256gcm16-prfsha256-ecp256",
    )
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0], workdir / "c1", clientConf, files=certificateFiles(pki, cert, key)
        ) as client,
    ):
        assertRefused(client)
        expected = (
            f"no PAD entry accepts identity alice@example.com from {CLIENT_ADDRESS} "
            f"(entry 'office-certs': peer address {CLIENT_ADDRESS} is outside remote_addrs "
            "(192.0.2.100/32))"
        )
        assert waitFor(lambda: expected in hub.log()), hub.log()
        assert "established" not in hub.log(), hub.log()
