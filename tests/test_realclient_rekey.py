"""
Rekeying and dead peer detection with a real strongSwan 5.9.8 client, under a continuous ping:

1. The client rekeys with short lifetimes: CHILD SAs with PFS every few seconds, the IKE SA
   twice, and DPD; not one echo is lost, and a clean delete leaves nothing.
2. The client stays silent and the hub does it all: CHILD SA rekeys from the datapath's soft
   lifetime, an IKE SA rekey, and DPD; then the client vanishes and the hub cleans up, its
   lease included.
"""

import os
import re
import signal
import subprocess

import pytest

from tests.clientprofiles import rekeyChild
from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.harness.netns import netnsExec
from tests.realclient import LAN_HOST, clientConfig, clientSecrets, hubConfig, onlyIkeSa, waitFor



@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("rekey")


class ContinuousPing:
    """
    C{ping -i 0.2} from a namespace for C{seconds}: how many echoes went out and came back.
    """

    def __init__(self, ns: str, dest: str, seconds: float, size: int = 56) -> None:
        self.count = int(seconds / 0.2)
        argv = ["ping", "-n", "-q", "-i", "0.2", "-W", "2", "-s", str(size)]
        self.process = subprocess.Popen(
            netnsExec(ns, *argv, "-c", str(self.count), dest),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def result(self) -> tuple[int, int, str]:
        output, _ = self.process.communicate(timeout=self.count * 0.2 + 30)
        match = re.search(r"(\d+) packets transmitted, (\d+) received", output)
        if match is None:
            return 0, 0, output
        return int(match.group(1)), int(match.group(2)), output

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def rekeyingClient(childRekey: str, ikeRekey: str, dpd: str, esp: str, childLife="0s") -> str:
    """A PSK client with the given rekey times, DPD delay, ESP proposal and CHILD SA lifetime."""
    return clientConfig(
        espProposals=esp,
        ikeExtra=f"rekey_time = {ikeRekey}\ndpd_delay = {dpd}",
        childExtra=f"rekey_time = {childRekey}\nlife_time = {childLife}\nrand_time = 0s\n"
        "dpd_action = clear",
    )


def childSpis(client) -> list[str]:
    """
    The inbound SPIs of the client's installed CHILD SAs (strongSwan lists a rekeyed one as
    DELETED for a few seconds more, to catch packets in flight).
    """
    return [
        child["spi-in"]
        for child in onlyIkeSa(client)["child-sas"]
        if child["state"] == "INSTALLED"
    ]


def test_clientRekeysEverythingWhilePingsFlow(workdir):
    requireRealClients()
    hub = hubConfig(hubExtra="dpd_delay = 0\nike_rekey_time = 0")
    with Topology(clients=1) as net, HubProcess(net.hubNs, workdir / "hub", hub) as hubProcess:
        client = StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            rekeyingClient("5s", "12s", "2s", "aes256gcm16-modp2048", childLife="9s"),
            secrets=clientSecrets(),
        )
        with client:
            assert client.initiate("home").returncode == 0, client.log() + hubProcess.log()
            firstSpis = childSpis(client)
            firstIke = onlyIkeSa(client)["initiator-spi"]
            ping = ContinuousPing(net.clientNs[0], LAN_HOST, 22)
            try:
                sent, received, output = ping.result()
            finally:
                ping.stop()
            log = hubProcess.log()
            assert sent >= 100 and received == sent, output + log
            childRekeys = log.count("rekeyed by the peer: now")
            assert childRekeys >= 3, log
            assert "(PFS group 14)" in log, log
            assert log.count("IKE SA with 192.0.2.11:4500 (alice@example.com) rekeyed") >= 1, log
            # One IKE SA with one CHILD SA, both new: nothing old was left behind.
            sa = onlyIkeSa(client)
            assert sa["initiator-spi"] != firstIke
            assert len(childSpis(client)) == 1 and childSpis(client) != firstSpis
            # The tunnel is quiet now: the client checks the hub is alive, and it is.
            assert waitFor(
                lambda: re.search(r"generating INFORMATIONAL request \d+ \[ \]", client.log())
                and re.search(r"parsed INFORMATIONAL response \d+ \[ \]", client.log()),
                timeout=10,
            ), client.log()
            assert onlyIkeSa(client)["state"] == "ESTABLISHED"
            assert client.terminateIke("home").returncode == 0
            assert client.listSas() == []
            assert waitFor(lambda: "deleted: deleted by the peer" in hubProcess.log())
            assert "Traceback" not in hubProcess.log()


def test_hubRekeysAndChecksASilentClientThenCleansUpAfterIt(workdir):
    requireRealClients()
    hub = (
        hubConfig(
            hubExtra="dpd_delay = 3\nike_rekey_time = 16\nretransmit_timeout = 0.5\n"
            "retransmit_tries = 2"
        ).replace("198.51.100.10-198.51.100.200", "198.51.100.10-198.51.100.10")
        + "\n[esp]\nlifetime = 10\n"
    )
    silent = rekeyingClient("0s", "0s", "0s", "aes256gcm16")
    with Topology(clients=1) as net, HubProcess(net.hubNs, workdir / "hub", hub) as hubProcess:
        client = StrongSwan(net.clientNs[0], workdir / "c1", silent, secrets=clientSecrets())
        with client:
            assert client.initiate("home").returncode == 0, client.log() + hubProcess.log()
            firstIke = onlyIkeSa(client)["responder-spi"]
            ping = ContinuousPing(net.clientNs[0], LAN_HOST, 20)
            try:
                sent, received, output = ping.result()
            finally:
                ping.stop()
            log = hubProcess.log()
            assert sent >= 95 and received == sent, output + log
            assert log.count("rekeyed by the hub: now") >= 2, log
            assert "IKE SA with 192.0.2.11:4500 (alice@example.com) rekeyed by the hub" in log
            assert onlyIkeSa(client)["responder-spi"] != firstIke
            # Quiet now: the hub checks the client is alive, and it is.
            assert waitFor(
                lambda: re.search(r"parsed INFORMATIONAL request \d+ \[ \]", client.log()),
                timeout=10,
            ), client.log()
            assert onlyIkeSa(client)["state"] == "ESTABLISHED"
            os.kill(client.pid, signal.SIGKILL)  # the client vanishes
            waitFor(lambda: not client.running)
            client.stop()
        assert waitFor(
            lambda: "deleted: peer did not answer our requests" in hubProcess.log(), timeout=15
        ), hubProcess.log()
        # Its address is free again: the pool's only address goes to the next client.
        other = StrongSwan(
            net.clientNs[0],
            workdir / "c2",
            rekeyingClient("0s", "0s", "0s", "aes256gcm16").replace("alice@", "bob@"),
            secrets=clientSecrets("bob@example.com"),
        )
        with other:
            assert other.initiate("home").returncode == 0, other.log() + hubProcess.log()
            assert onlyIkeSa(other)["local-vips"] == ["198.51.100.10"]
        assert "Traceback" not in hubProcess.log()


def test_clientReauthenticatesMakeBeforeBreak(workdir):
    """
    Reauthentication (RFC 7296 section 2.8.3): strongSwan builds a new IKE SA for the same
    identity, then deletes the old one; the hub hands the identity, and its address, to the new
    SA, under "keep" too (same address: the same device), and the ping goes on.
    """
    requireRealClients()
    hub = hubConfig(hubExtra="dpd_delay = 0\nike_rekey_time = 0").replace(
        'pool = "roadwarriors"\n', 'pool = "roadwarriors"\nduplicates = "keep"\n', 1
    )
    client = clientConfig(ikeExtra="reauth_time = 6s\nover_time = 4s")
    with Topology(clients=1) as net, HubProcess(net.hubNs, workdir / "hub", hub) as hubProcess:
        device = StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            client,
            secrets=clientSecrets(),
            extraCharonConf="    make_before_break = yes\n",
        )
        with device:
            assert device.initiate("home").returncode == 0, device.log() + hubProcess.log()
            first = onlyIkeSa(device)
            ping = ContinuousPing(net.clientNs[0], LAN_HOST, 10)
            try:
                sent, received, output = ping.result()
            finally:
                ping.stop()
            log = hubProcess.log()
            assert log.count("(alice@example.com) established") >= 2, log
            again = onlyIkeSa(device)
            assert again["initiator-spi"] != first["initiator-spi"]
            assert again["local-vips"] == first["local-vips"]
            assert "AUTHENTICATION_FAILED" not in device.log()
            # Make-before-break from both sides: at most a packet in flight at the switch.
            assert sent >= 45 and received >= sent - 1, output + log
            assert "Traceback" not in log


def test_hubRekeysOnItsByteLifetime(workdir):
    """
    The datapath's byte lifetime: at 90 % of [esp] lifetime_bytes the hub rekeys the CHILD SA
    itself, long before the hard limit would cut the tunnel, and the ping goes on.
    """
    requireRealClients()
    hub = hubConfig(hubExtra="dpd_delay = 0\nike_rekey_time = 0") + (
        "\n[esp]\nlifetime = 0\nlifetime_bytes = 50000\n"
    )
    silent = rekeyingClient("0s", "0s", "0s", "aes256gcm16")
    with Topology(clients=1) as net, HubProcess(net.hubNs, workdir / "hub", hub) as hubProcess:
        client = StrongSwan(net.clientNs[0], workdir / "c1", silent, secrets=clientSecrets())
        with client:
            assert client.initiate("home").returncode == 0, client.log() + hubProcess.log()
            ping = ContinuousPing(net.clientNs[0], LAN_HOST, 10, size=1000)
            try:
                sent, received, output = ping.result()
            finally:
                ping.stop()
            log = hubProcess.log()
            # About 10 kB a second both ways: the 45 kB soft limit comes every 4-5 seconds.
            assert "reached its soft lifetime (bytes); rekeying it" in log, log
            assert log.count("rekeyed by the hub: now") >= 1, log
            assert "reached its hard lifetime" not in log, log
            assert sent >= 45 and received == sent, output + log
            assert "Traceback" not in log


def test_invalidKePayloadInACreateChildSa(workdir):
    """
    The client rekeys with PFS, sending its KE in MODP-2048, while it also offers ECP-256, which
    the hub prefers: INVALID_KE_PAYLOAD names ECP-256 (RFC 7296 section 1.3), the client tries
    again in it, and the CHILD SA is rekeyed with PFS in group 19.
    """
    requireRealClients()
    hub = hubConfig(hubExtra="dpd_delay = 0\nike_rekey_time = 0")
    client = rekeyingClient("0s", "0s", "0s", "aes256gcm16-modp2048-ecp256")
    with Topology(clients=1) as net, HubProcess(net.hubNs, workdir / "hub", hub) as hubProcess:
        device = StrongSwan(net.clientNs[0], workdir / "c1", client, secrets=clientSecrets())
        with device:
            assert device.initiate("home").returncode == 0, device.log() + hubProcess.log()
            rekeyChild(device)
            log = hubProcess.log()
            assert "answered INVALID_KE_PAYLOAD" in log, log
            assert "N(INVAL_KE)" in device.log(), device.log()
            assert "rekeyed by the peer" in log and "(PFS group 19)" in log, log
            [child] = [c for c in onlyIkeSa(device)["child-sas"] if c["state"] == "INSTALLED"]
            assert child["dh-group"] == "ECP_256"
            assert net.ping(net.clientNs[0], LAN_HOST, count=3), device.log()
