"""
MOBIKE (RFC 4555) with a real strongSwan 5.9.8 client (kernel-libipsec, kernel-netlink) in
network namespaces: the client's address changes under a running ping, strongSwan notices it
through netlink and sends UPDATE_SA_ADDRESSES, and the tunnel carries on from the new address
with the same IKE SA and CHILD SA.
"""

import re
import signal
import subprocess
import time

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.harness.netns import netnsExec
from tests.realclient import LAN_HOST, clientConfig, clientSecrets, hubConfig, onlyIkeSa, waitFor

#: The client's second address on its segment, where it moves.
MOVED = "192.0.2.111"
#: ping's interval in seconds.
INTERVAL = 0.2
#: The most echo requests a move may cost (a bounded loss: about a second at INTERVAL).
MAX_LOST = 5

_REPLY = re.compile(r"icmp_seq=(\d+)")


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("mo")


class ContinuousPing:
    """
    C{ping -i INTERVAL} from the client's virtual IP to the LAN host, in the background; ended
    by its PID. C{replies()} are the sequence numbers answered so far.
    """

    def __init__(self, ns: str, source: str, destination: str, path) -> None:
        self.path = path
        self._out = open(path, "w")
        self.process = subprocess.Popen(
            netnsExec(ns, "ping", "-n", "-i", str(INTERVAL), "-W", "1", "-I", source, destination),
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def replies(self) -> list[int]:
        return [int(m.group(1)) for m in _REPLY.finditer(self.path.read_text())]

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._out.close()
        return self.path.read_text()


def moveClient(net, ns: str, old: str, new: str) -> None:
    """
    Give the client's eth0 a second address and take the first away, as a laptop changing
    networks does; promote_secondaries keeps the new address (and its route) when the first,
    primary one goes.
    """
    net.run(ns, "sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1", check=True)
    net.run(ns, "ip", "addr", "add", f"{new}/24", "dev", "eth0", check=True)
    net.run(ns, "ip", "addr", "del", f"{old}/24", "dev", "eth0", check=True)


def informationalRequests(log: str) -> list[str]:
    """The payload lists of the INFORMATIONAL requests charon generated, as it logs them."""
    return re.findall(r"generating INFORMATIONAL request \d+ \[ ([^\]]*)\]", log)


def test_clientMovesAddressAndTheTunnelFollows(workdir):
    """
    A client with a virtual IP pings the LAN continuously; its address changes from
    192.0.2.11 to 192.0.2.111. The hub logs the move, the client's IKE SA shows the new local
    address with the same SPIs and the same CHILD SA, replies keep coming after the move with
    a small, bounded loss, and the tunnel deletes cleanly.
    """
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            clientConfig(),
            secrets=clientSecrets(),
            logLevels={"knl": 2, "net": 2},
        ) as client,
    ):
        ns = net.clientNs[0]
        old = net.clientAddresses[0]
        assert client.initiate("home").returncode == 0, client.log()
        assert waitFor(lambda: "established" in hub.log()), hub.log()
        before = onlyIkeSa(client)
        [childBefore] = before["child-sas"]
        [vip] = before["local-vips"]
        assert before["local-host"] == old
        assert "MOBIKE" in client.log() and "peer supports MOBIKE" in client.log(), client.log()

        ping = ContinuousPing(ns, vip, LAN_HOST, workdir / "ping.txt")
        try:
            assert waitFor(lambda: len(ping.replies()) >= 5, timeout=10), ping.path.read_text()
            lastBeforeMove = max(ping.replies())
            movedAt = time.monotonic()
            moveClient(net, ns, old, MOVED)

            assert waitFor(lambda: f"to {MOVED}:" in hub.log(), timeout=15), (
                hub.log() + client.log()
            )
            followedIn = time.monotonic() - movedAt
            assert waitFor(lambda: onlyIkeSa(client)["local-host"] == MOVED, timeout=10)
            # Replies after the move: enough of them to show the tunnel carries on.
            assert waitFor(
                lambda: len([s for s in ping.replies() if s > lastBeforeMove]) >= 15, timeout=15
            ), ping.path.read_text() + client.log()
        finally:
            output = ping.stop()

        replies = sorted(set(ping.replies()))
        sent = max(replies)
        lost = [s for s in range(1, sent + 1) if s not in replies]
        print(
            f"MOBIKE move: hub followed in {followedIn:.2f} s; echo requests 1..{sent}, "
            f"lost {len(lost)} {lost}; last reply before the move {lastBeforeMove}"
        )
        print("client INFORMATIONAL requests:", informationalRequests(client.log()))
        assert len(lost) <= MAX_LOST, output

        after = onlyIkeSa(client)
        assert after["state"] == "ESTABLISHED"
        assert after["local-host"] == MOVED
        assert after["remote-host"] == "192.0.2.1"
        assert (after["initiator-spi"], after["responder-spi"]) == (
            before["initiator-spi"],
            before["responder-spi"],
        )
        # libipsec cannot change the addresses of an installed ESP SA, so strongSwan rekeys the
        # CHILD SA after the move (CREATE_CHILD_SA with REKEY_SA); the predecessor lingers on
        # its side, DELETED, for charon's delete_rekeyed_delay.
        [childAfter] = [c for c in after["child-sas"] if c["state"] == "INSTALLED"]
        assert childAfter["name"] == childBefore["name"]
        assert childAfter["reqid"] == childBefore["reqid"]
        assert childAfter["packets-in"] > 0
        rekeyed = re.search(r"rekeyed by the peer: now ([0-9a-f]{8})/([0-9a-f]{8})", hub.log())
        assert rekeyed is not None, hub.log()
        assert (childAfter["spi-out"], childAfter["spi-in"]) == rekeyed.groups()

        hubLog = hub.log()
        assert f"moved to {MOVED}:" in hubLog, hubLog
        assert f"{old}:" in hubLog.split(f"moved to {MOVED}:")[0].splitlines()[-1]
        assert "alice@example.com" in hubLog.split(f"moved to {MOVED}:")[0].splitlines()[-1]
        # strongSwan checked the COOKIE2 the hub echoed (a mismatch closes its IKE SA).
        assert "COOKIE2 mismatch" not in client.log()

        assert client.terminateIke("home").returncode == 0, client.log()
        assert client.listSas() == []
        assert waitFor(lambda: "deleted by the peer" in hub.log()), hub.log()


def test_withMobikeOffTheClientReauthenticatesFromItsNewAddress(workdir):
    """
    [hub] mobike = false: the hub does not answer the client's MOBIKE_SUPPORTED, so strongSwan
    cannot move its IKE SA and sets up a new one from the new address; the hub logs no move.
    """
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig(hubExtra="mobike = false")) as hub,
        StrongSwan(
            net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()
        ) as client,
    ):
        ns = net.clientNs[0]
        assert client.initiate("home").returncode == 0, client.log()
        before = onlyIkeSa(client)
        assert "peer supports MOBIKE" not in client.log()
        moveClient(net, ns, net.clientAddresses[0], MOVED)
        assert waitFor(
            lambda: [sa["local-host"] for sa in client.listSas() if sa["state"] == "ESTABLISHED"]
            == [MOVED],
            timeout=20,
        ), client.log()
        after = onlyIkeSa(client)
        assert after["initiator-spi"] != before["initiator-spi"]
        [vip] = after["local-vips"]
        assert net.ping(ns, LAN_HOST, count=3, source=vip), client.log()
        assert "(MOBIKE)" not in hub.log()
        established = f"IKE SA with {MOVED}:4500 (alice@example.com) established"
        assert waitFor(lambda: established in hub.log()), hub.log()


def test_staticClientsSelectorFollowsItsNewAddress(workdir):
    """
    A client without a virtual IP uses its IKE address as its own traffic selector ("dynamic").
    After its move, strongSwan rekeys the CHILD SA for its new address, and the hub, whose IKE SA
    already moved, narrows the new CHILD SA to that address.
    """
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            clientConfig(identity="static.example.com", vips=False),
            secrets=clientSecrets("static.example.com"),
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        moveClient(net, net.clientNs[0], net.clientAddresses[0], MOVED)
        assert waitFor(lambda: "rekeyed by the peer: now" in hub.log(), timeout=15), hub.log()

        def installed():
            return [c for c in onlyIkeSa(client)["child-sas"] if c["state"] == "INSTALLED"]

        assert waitFor(lambda: [c["local-ts"] for c in installed()] == [[f"{MOVED}/32"]])
        assert onlyIkeSa(client)["local-host"] == MOVED
        assert "(static.example.com) moved to 192.0.2.111:4500" in hub.log()
