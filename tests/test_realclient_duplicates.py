"""
Duplicate identities with real strongSwan 5.9.8 clients (the PAD's duplicates policy) and
INITIAL_CONTACT after a client crash: two devices with one identity, and a device that comes
back without having said goodbye.
"""

import ipaddress
import os
import signal

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import POOL, clientConfig, clientSecrets, hubConfig, onlyIkeSa, waitFor


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("dup")


def withPolicy(policy):
    return hubConfig().replace(
        'pool = "roadwarriors"\n', f'pool = "roadwarriors"\nduplicates = "{policy}"\n', 1
    )


def twoDevices(net, workdir):
    return (
        StrongSwan(net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()),
        StrongSwan(
            net.clientNs[1],
            workdir / "c2",
            clientConfig(),
            secrets=clientSecrets(),
            label="client2",
        ),
    )


def vipOf(client):
    [vip] = onlyIkeSa(client)["local-vips"]
    return ipaddress.ip_address(vip)


def test_replaceMovesTheIdentityToTheNewDevice(workdir):
    requireRealClients()
    with (
        Topology(clients=2) as net,
        HubProcess(net.hubNs, workdir / "hub", withPolicy("replace")) as hub,
    ):
        first, second = twoDevices(net, workdir)
        with first, second:
            assert first.initiate("home").returncode == 0, first.log()
            assert second.initiate("home").returncode == 0, second.log() + hub.log()
            assert onlyIkeSa(second)["state"] == "ESTABLISHED"
            # The hub told the first device its IKE SA is gone.
            assert waitFor(lambda: first.listSas() == []), first.listSas()
            assert "replaced by a new IKE SA from 192.0.2.12" in hub.log(), hub.log()


def test_neverLetsTwoDevicesShareAnIdentity(workdir):
    requireRealClients()
    with Topology(clients=2) as net, HubProcess(net.hubNs, workdir / "hub", withPolicy("never")):
        first, second = twoDevices(net, workdir)
        with first, second:
            assert first.initiate("home").returncode == 0, first.log()
            assert second.initiate("home").returncode == 0, second.log()
            assert vipOf(first) != vipOf(second)
            assert vipOf(first) in POOL and vipOf(second) in POOL
            assert onlyIkeSa(first)["state"] == "ESTABLISHED"


def test_keepRefusesASecondDeviceButACrashedOneComesBack(workdir):
    """
    "keep": while alice's IKE SA lives, another one is refused... unless it carries
    INITIAL_CONTACT, which strongSwan sends when it holds no SA with the hub: a client that
    crashed and restarts gets in at once, with its old address.
    """
    requireRealClients()
    with (
        Topology(clients=1) as net,
        HubProcess(net.hubNs, workdir / "hub", withPolicy("keep")) as hub,
    ):
        device = StrongSwan(
            net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()
        )
        with device:
            assert device.initiate("home").returncode == 0, device.log()
            before = vipOf(device)
            os.kill(device.pid, signal.SIGKILL)  # a crash: no Delete reaches the hub
            waitFor(lambda: not device.running)
            device.stop()
        again = StrongSwan(
            net.clientNs[0], workdir / "c1b", clientConfig(), secrets=clientSecrets()
        )
        with again:
            assert again.initiate("home").returncode == 0, again.log() + hub.log()
            assert "N(INIT_CONTACT)" in again.log()
            assert vipOf(again) == before
            assert "replaced by a new IKE SA" in hub.log(), hub.log()
