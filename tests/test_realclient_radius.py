"""
EAP pass-through to RADIUS (RFC 3579) with real strongSwan 5.9.8 clients and a real FreeRADIUS
3.2: the client runs EAP-MSCHAPv2 with FreeRADIUS through the hub's eap-radius plugin, the hub
signs with its certificate and keys the final AUTH with the MSK from MS-MPPE-Recv/Send-Key,
lends the Framed-IP-Address FreeRADIUS assigns, and checks the PAD's C{groups} against the
RADIUS Class.

FreeRADIUS runs inside the hub's network namespace on its loopback (the topology brings C{lo}
up there), so the hub reaches it at 127.0.0.1 and nothing leaves the test's namespaces.

The EAP identity: the peer entries set C{eap_identity = true}, so the hub first asks the client
for its EAP identity and relays the answer (C{eap_id = alice}) as the first EAP-Response, which
is the user name FreeRADIUS knows; without the identity round the hub would relay the IKE
identity (alice@example.com), which the FreeRADIUS users file does not list.

Also here: the unit tests for building eap-radius without a reactor (C{ikehub check}), which
must bind no socket and import no reactor.
"""

import ipaddress
import subprocess
import sys
import textwrap

import pytest
from twisted.internet import task

from ikehub.auth.plugin import PluginContext
from ikehub.auth.radius import LazyUDPSockets, RADIUSServer, listen
from ikehub.plugins.eap_radius import eapRadius
from tests.freeradius import CLASS, FRAMED_IP, PASSWORD, SECRET, USER, runningFreeRADIUS
from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import (
    LAN_HOST,
    StrongSwanPki,
    certificateFiles,
    onlyIkeSa,
    roadWarriorClient,
    roadWarriorHub,
    waitFor,
)

RADIUS_PORT = 18120

RADIUS_TABLES = """
[tun]
routes = ["198.51.100.0/24"]

[auth."eap-radius"]
servers = [{{ address = "127.0.0.1", port = {port}, secret = "{secret}" }}]
timeout = 1
retries = 1
"""
CLIENT_CONFIG = roadWarriorClient(
    {"local": "auth = eap-mschapv2\nid = alice@example.com\neap_id = alice"}
)


def hubConfig(groups=None):
    groupsLine = f"groups = {groups!r}".replace("'", '"') if groups is not None else ""
    return roadWarriorHub(
        'name = "radius-users"\nidentity = "*@example.com"\nauth = "eap-radius"\n'
        f"eap_identity = true\n{groupsLine}",
        hub='certificate = "hub.pem"\nprivate_key = "hub.key"',
        tables=RADIUS_TABLES.format(port=RADIUS_PORT, secret=SECRET),
        pool=False,
    )


def secrets(password=PASSWORD):
    return f"""
eap-alice {{
    id = {USER}
    secret = "{password}"
}}
"""


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("radius")


def scenario(workdir, net, groups=None, password=PASSWORD):
    """The hub's PKI, FreeRADIUS in the hub namespace, the hub, and the client (unstarted)."""
    pki = StrongSwanPki(workdir / "hub", "ecdsa")
    pki.issue("hub", "hub.example.com", "--flag", "serverAuth")
    radius = runningFreeRADIUS(workdir / "freeradius", RADIUS_PORT, SECRET, ns=net.hubNs)
    hub = HubProcess(net.hubNs, workdir / "hub", hubConfig(groups))
    client = StrongSwan(
        net.clientNs[0],
        workdir / "c1",
        CLIENT_CONFIG,
        secrets=secrets(password),
        files=certificateFiles(pki),
    )
    return radius, hub, client


@pytest.mark.parametrize("groups", [None, ["vpn-staff"], ["vpn-admins", "vpn-staff"]])
def test_radiusMschapv2(workdir, groups):
    """
    EAP-MSCHAPv2 through FreeRADIUS: ESTABLISHED, the virtual IP is FreeRADIUS's
    Framed-IP-Address, the LAN answers pings through the tunnel, and the client deletes
    cleanly. A groups requirement that includes the user's Class (vpn-staff) admits it.
    """
    requireRealClients()
    with Topology() as net:
        radiusCm, hubCm, clientCm = scenario(workdir, net, groups)
        with radiusCm as radius, hubCm as hub, clientCm as client:
            result = client.initiate("home")
            assert result.returncode == 0, result.stdout + client.log() + hub.log()
            sa = onlyIkeSa(client)
            assert sa["state"] == "ESTABLISHED", sa
            [child] = sa["child-sas"]
            assert child["state"] == "INSTALLED", child
            assert sa["local-vips"] == [FRAMED_IP], sa
            log = client.log()
            assert "EAP method EAP_MSCHAPV2 succeeded, MSK established" in log, log
            assert "authentication of 'hub.example.com' with EAP successful" in log, log
            assert "Access-Accept" in radius.log() or "Sent Access-Accept" in radius.log()
            assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=FRAMED_IP), (
                client.log() + hub.log()
            )
            assert ipaddress.ip_address(FRAMED_IP) in ipaddress.ip_network("198.51.100.0/24")
            assert client.terminateIke("home").returncode == 0
            assert waitFor(lambda: "deleted by the peer" in hub.log()), hub.log()
            assert client.listSas() == []


def test_radiusWrongPasswordFails(workdir):
    """A wrong password: FreeRADIUS rejects, the hub refuses, the client has no SA."""
    requireRealClients()
    with Topology() as net:
        radiusCm, hubCm, clientCm = scenario(workdir, net, password="not the password 1")
        with radiusCm as radius, hubCm as hub, clientCm as client:
            assert client.initiate("home").returncode != 0, client.log()
            assert client.listSas() == []
            assert waitFor(lambda: "failed:" in hub.log()), hub.log()
            log = hub.log()
            assert "matched PAD entry 'radius-users'" in log, log
            assert "eap-radius" in log, log
            assert "established" not in log.replace("not established", ""), log
            assert "Access-Reject" in radius.log(), radius.log()


def test_radiusGroupsRefuse(workdir):
    """
    A peer entry requiring a group the user is not in (its Class is vpn-staff): FreeRADIUS
    accepts the password, but the hub refuses with AUTHENTICATION_FAILED and logs the groups.
    """
    requireRealClients()
    with Topology() as net:
        radiusCm, hubCm, clientCm = scenario(workdir, net, groups=["vpn-admins"])
        with radiusCm as radius, hubCm as hub, clientCm as client:
            assert client.initiate("home").returncode != 0, client.log()
            assert client.listSas() == []
            assert "AUTHENTICATION_FAILED" in client.log() or "AUTH_FAILED" in client.log()
            assert waitFor(lambda: "failed:" in hub.log()), hub.log()
            log = hub.log()
            assert f"the peer is in none of the groups vpn-admins (it is in: {CLASS})" in log, log
            assert "Access-Accept" in radius.log(), radius.log()


# -- building without a reactor (ikehub check) ---------------------------------------------------


class RecordingUDPReactor(task.Clock):
    """A clock whose listenUDP records its calls and hands out ports that can stop."""

    def __init__(self):
        super().__init__()
        self.listened = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.listened.append((port, interface))
        protocol.transport = self

        class Port:
            listening = True

            def stopListening(self):
                self.listening = False

        self.port = Port()
        return self.port

    def write(self, data, address):
        self.written = (data, address)


def test_buildWithoutReactorBindsNothing():
    """
    Built as C{ikehub check} builds it (no reactor), eap-radius binds no socket and imports no
    reactor; C{ikehub check} on such a configuration succeeds.
    """
    code = textwrap.dedent(
        """
        import socket, sys
        bound = []
        original = socket.socket.bind
        def bind(self, address):
            bound.append(address)
            return original(self, address)
        socket.socket.bind = bind
        from ikehub.auth.plugin import PluginContext
        from ikehub.plugins.eap_radius import eapRadius
        method = eapRadius.build(PluginContext("eap-radius", options={"servers": [
            {"address": "127.0.0.1", "port": 18120, "secret": "0123456789abcdef"},
            {"address": "2001:db8::1", "secret": "0123456789abcdef"}]}))
        assert method.sockets is not None and not method.sockets.opened
        assert method.newSession("alice", False) is not None
        method.close()
        assert not bound, bound
        assert "twisted.internet.reactor" not in sys.modules
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


def test_ikehubCheckWithEapRadius(tmp_path):
    """C{ikehub check} accepts a configuration using eap-radius and exits 0 promptly."""
    pki = StrongSwanPki(tmp_path, "ecdsa")
    pki.issue("hub", "hub.example.com")
    config = tmp_path / "ikehub.toml"
    config.write_text(
        hubConfig(["vpn-staff"]).replace('listen = ["192.0.2.1"]', 'listen = ["127.0.0.1"]')
    )
    result = subprocess.run(
        [sys.executable, "-m", "ikehub.cli", "check", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lazySocketsOpenOnFirstRequest():
    """
    The lazy sockets bind on the first Access-Request (one per address family), carry the
    request, and are stopped by close(); after close they never bind again.
    """
    reactor = RecordingUDPReactor()
    servers = [RADIUSServer("127.0.0.1", 1812, b"0123456789abcdef")]
    client, sockets = listen(reactor, reactor, servers, timeout=1, retries=0, lazy=True)
    assert isinstance(sockets, LazyUDPSockets)
    assert reactor.listened == []
    d = client.request([(1, b"alice")])
    assert reactor.listened == [(0, "")]
    assert reactor.written[1] == ("127.0.0.1", 1812)
    reactor.advance(1)
    assert d.called
    ports = sockets.close()
    assert ports == [reactor.port]
    sockets.send(b"x", ("127.0.0.1", 1812))
    assert reactor.listened == [(0, "")]


def test_pluginWithReactorStillBindsAtBuild():
    """With a reactor (the hub under twistd) the sockets are bound at once, as before."""
    reactor = RecordingUDPReactor()
    context = PluginContext(
        "eap-radius",
        options={"servers": [{"address": "127.0.0.1", "secret": "0123456789abcdef"}]},
        clock=reactor,
        reactor=reactor,
    )
    method = eapRadius.build(context)
    assert reactor.listened == [(0, "")]
    method.close()
    assert not reactor.port.listening
