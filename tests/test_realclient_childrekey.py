"""
CHILD SA rekeying with a real strongSwan 5.9.8 client: its CHILD SA's rekey_time comes around
under a running ping, it rekeys with CREATE_CHILD_SA (REKEY_SA), the hub answers, the client
deletes the old CHILD SA, and the IKE SA stays the same throughout.
"""

import re

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import clientConfig, clientSecrets, hubConfig, onlyIkeSa, waitFor
from tests.test_realclient_mobike import LAN_HOST, MAX_LOST, ContinuousPing


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("rk")


def rekeyingClientConfig(rekeyTime: str, espProposals: str = "aes256gcm16") -> str:
    config = clientConfig(espProposals=espProposals)
    line = f"                esp_proposals = {espProposals}\n"
    extra = "".join(
        f"                {key} = {value}\n"
        for key, value in (("rekey_time", rekeyTime), ("life_time", "60s"), ("rand_time", "0s"))
    )
    return config.replace(line, line + extra)


@pytest.mark.parametrize(
    "clientEsp, hubEsp, pfs",
    [
        ("aes256gcm16", "", None),
        ("aes256gcm16-x25519", 'esp_proposals = ["aes256gcm16-x25519"]', "CURVE_25519"),
    ],
)
def test_clientRekeysItsChildSaAndTheTunnelCarriesOn(workdir, clientEsp, hubEsp, pfs):
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig(hubExtra=hubEsp)) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            rekeyingClientConfig("3s", clientEsp),
            secrets=clientSecrets(),
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        before = onlyIkeSa(client)
        [childBefore] = before["child-sas"]
        [vip] = before["local-vips"]
        ping = ContinuousPing(net.clientNs[0], vip, LAN_HOST, workdir / "ping.txt")
        try:
            assert waitFor(lambda: "rekeyed by the peer: now" in hub.log(), timeout=15), (
                hub.log() + client.log()
            )
            rekeyedAt = max(ping.replies() or [0])
            assert waitFor(
                lambda: len([s for s in ping.replies() if s > rekeyedAt]) >= 10, timeout=10
            ), ping.path.read_text()
        finally:
            output = ping.stop()
        replies = set(ping.replies())
        lost = [s for s in range(1, max(replies) + 1) if s not in replies]
        print(f"CHILD SA rekey ({clientEsp}): lost {len(lost)} of {max(replies)} {lost}")
        assert len(lost) <= MAX_LOST, output

        after = onlyIkeSa(client)
        assert (after["initiator-spi"], after["responder-spi"]) == (
            before["initiator-spi"],
            before["responder-spi"],
        )
        installed = [c for c in after["child-sas"] if c["state"] == "INSTALLED"]
        assert len(installed) == 1, after["child-sas"]
        [child] = installed
        assert child["spi-in"] != childBefore["spi-in"]
        if pfs is not None:
            assert child["dh-group"] == pfs
        [line] = [
            entry for entry in hub.log().splitlines() if "rekeyed by the peer: now" in entry
        ][-1:]
        new = re.search(r"rekeyed by the peer: now ([0-9a-f]{8})/([0-9a-f]{8})", line).groups()
        assert (child["spi-out"], child["spi-in"]) == new
        # The client deleted each old CHILD SA; the hub's log has their counters.
        old = childBefore["spi-out"]
        assert waitFor(lambda: f"CHILD SA {old}/" in hub.log()), hub.log()
        assert "peer seems to not support CHILD_SA rekeying" not in client.log()
