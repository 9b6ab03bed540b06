"""
Real strongSwan 5.9.8 clients against the hub with pre-shared keys, in network namespaces.

Everything is judged from the client's side (`swanctl --list-sas`): an IKE SA ESTABLISHED, a
CHILD SA INSTALLED, a virtual IP from the hub's pool and the DNS server the pool hands out.
"""

import ipaddress
from pathlib import Path

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import (
    POOL,
    clientConfig,
    clientSecrets,
    hubConfig,
    onlyIkeSa,
    waitFor,
)


@pytest.fixture
def workdir(tmp_path_factory):
    # Short paths: the vici socket path must fit a unix socket address.
    return tmp_path_factory.mktemp("rc")


def assertTunnel(client, encr=None):
    sa = onlyIkeSa(client)
    assert sa["state"] == "ESTABLISHED", sa
    [child] = sa["child-sas"]
    assert child["state"] == "INSTALLED", child
    assert child["mode"] == "TUNNEL"
    assert child["encap"] == "yes", "the hub reports NAT so ESP is UDP-encapsulated"
    assert child["remote-ts"] == ["203.0.113.0/24"]
    [vip] = sa["local-vips"]
    assert ipaddress.ip_address(vip) in POOL
    assert child["local-ts"] == [f"{vip}/32"]
    if encr is not None:
        assert sa["encr-alg"] == encr
    return sa, child, vip


@pytest.mark.parametrize(
    "proposals, encr, dh",
    [
        ("aes256-sha256-modp2048", "AES_CBC", "MODP_2048"),
        ("aes128gcm16-prfsha256-ecp256", "AES_GCM_16", "ECP_256"),
        ("chacha20poly1305-prfsha256-x25519", "CHACHA20_POLY1305", "CURVE_25519"),
    ],
)
def test_pskEstablishesWithVirtualIpAndDns(workdir, proposals, encr, dh):
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            clientConfig(proposals=proposals),
            secrets=clientSecrets(),
        ) as client,
    ):
        result = client.initiate("home")
        assert result.returncode == 0, client.log()
        sa, child, vip = assertTunnel(client, encr)
        assert sa["dh-group"] == dh
        assert sa["remote-id"] == "hub.example.com"
        assert "nameserver 192.0.2.53" in client.resolvPath.read_text()
        assert waitFor(lambda: "established" in hub.log())
        assert "alice@example.com" in hub.log()


def test_invalidKeRetryWithTheHubsPreferredGroup(workdir):
    """
    The client's first KE guess (ECP-256) is a group the hub ranks below X25519; the hub answers
    INVALID_KE_PAYLOAD and the client retries with X25519.
    """
    requireRealClients()
    proposals = "aes256gcm16-prfsha384-ecp256-x25519"
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()),
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            clientConfig(proposals=proposals),
            secrets=clientSecrets(),
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        sa, _, _ = assertTunnel(client)
        assert sa["dh-group"] == "CURVE_25519"
        assert "requested CURVE_25519" in client.log()


def test_twoClientsGetDifferentAddresses(workdir):
    requireRealClients()
    with Topology(clients=2) as net, HubProcess(net.hubNs, workdir / "hub", hubConfig()):
        with (
            StrongSwan(
                net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets(), label="c1"
            ) as alice,
            StrongSwan(
                net.clientNs[1],
                workdir / "c2",
                clientConfig(identity="bob@example.com"),
                secrets=clientSecrets("bob@example.com"),
                label="c2",
            ) as bob,
        ):
            assert alice.initiate("home").returncode == 0, alice.log()
            assert bob.initiate("home").returncode == 0, bob.log()
            _, _, vipA = assertTunnel(alice)
            _, _, vipB = assertTunnel(bob)
            assert vipA != vipB


def test_staticClientWithoutVirtualIp(workdir):
    """
    A client that asks for no address gets its own IKE address as its traffic selector.
    """
    requireRealClients()
    config = clientConfig(identity="static.example.com", vips=False)
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()),
        StrongSwan(
            net.clientNs[0], workdir / "c1", config, secrets=clientSecrets("static.example.com")
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        sa = onlyIkeSa(client)
        [child] = sa["child-sas"]
        assert child["state"] == "INSTALLED"
        assert child["local-ts"] == [f"{net.clientAddresses[0]}/32"]


def test_wrongPskFailsAndLeavesNothingBehind(workdir):
    """
    A wrong key is refused with AUTHENTICATION_FAILED; the hub keeps no SA and no lease, so the
    next (correct) client is lent the pool's first address.
    """
    requireRealClients()
    with Topology() as net, HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub:
        with StrongSwan(
            net.clientNs[0],
            workdir / "bad",
            clientConfig(),
            secrets=clientSecrets(psk="this-is-not-the-right-key"),
            label="bad",
        ) as bad:
            assert bad.initiate("home").returncode != 0
            assert "received AUTHENTICATION_FAILED notify error" in bad.log()
            assert bad.listSas() == []
        assert waitFor(lambda: "AUTH payload did not verify" in hub.log())
        with StrongSwan(
            net.clientNs[0], workdir / "good", clientConfig(), secrets=clientSecrets(), label="good"
        ) as good:
            assert good.initiate("home").returncode == 0, good.log()
            _, _, vip = assertTunnel(good)
            assert vip == "198.51.100.10"


def test_clientDeletesTheIkeSa(workdir):
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        StrongSwan(
            net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        result = client.terminateIke("home")
        assert result.returncode == 0, client.log()
        assert client.listSas() == []
        assert waitFor(lambda: "deleted by the peer" in hub.log()), hub.log()


def test_hubDeletesEverySaOnShutdown(workdir):
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        StrongSwan(
            net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        assertTunnel(client)
        hub.stop()
        assert waitFor(lambda: client.listSas() == []), client.listSas()
        assert "received DELETE for IKE_SA" in client.log()
        assert "deleted by the hub" in hub.log()


def test_hubOnNonStandardPorts(workdir):
    """
    With the hub on 10500/14500 and the client on ports other than 500/4500, the client keeps
    talking to 10500 and sends marker-framed IKE there; the hub answers on that port.
    """
    requireRealClients()
    config = hubConfig(port=10500, nattPort=14500)
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config, ports=(10500, 14500)),
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            clientConfig(remotePort=10500),
            secrets=clientSecrets(),
            port=11500,
            portNatt=14501,
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        sa, _, _ = assertTunnel(client)
        assert int(sa["remote-port"]) == 10500


def test_keysMatchWhatTheClientDerived(workdir):
    """
    The hub's save_keys table (Wireshark format) holds the same SK_e/SK_a keys strongSwan logged
    for the same exchange: an end-to-end check of SKEYSEED and prf+ against a real peer.
    """
    requireRealClients()
    keyTable = workdir / "hub-keys.txt"
    config = hubConfig(hubExtra=f'save_keys = "{keyTable}"')
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config),
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            clientConfig(proposals="aes256-sha256-modp2048"),
            secrets=clientSecrets(),
            saveKeys=True,
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        [logged] = client.keys()
        [line] = keyTable.read_text().splitlines()
        fields = line.split(",")
        assert fields[2:4] == ["0x" + logged["skEi"].hex(), "0x" + logged["skEr"].hex()]
        assert fields[5:7] == ["0x" + logged["skAi"].hex(), "0x" + logged["skAr"].hex()]
        assert fields[4] == '"AES-CBC-256 [RFC3602]"'
        assert oct(keyTable.stat().st_mode & 0o777) == "0o600"


def readmeClientConfig() -> str:
    """
    The swanctl.conf snippet the README gives for the shipped example configuration.
    """
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = text.index("```\nconnections {") + len("```\n")
    return text[start : text.index("```", start)]


def test_readmeClientConnectsToTheShippedConfiguration(workdir):
    """
    The README's first command runs the hub on etc/ikehub.toml; the README's swanctl.conf
    snippet, as printed, connects to it.
    """
    requireRealClients()
    shipped = (Path(__file__).resolve().parent.parent / "etc" / "ikehub.toml").read_text()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", shipped),
        StrongSwan(net.clientNs[0], workdir / "c1", readmeClientConfig()) as client,
    ):
        assert client.initiate("hub").returncode == 0, client.log()
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED"
        [child] = sa["child-sas"]
        assert child["state"] == "INSTALLED"
        assert child["remote-ts"] == ["203.0.113.0/24"]
        assert sa["local-vips"] == ["198.51.100.10"]
