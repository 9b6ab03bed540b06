"""
Start-up failures of the hub process are one clear line, not a traceback: a TUN device name that
is taken, in a network namespace of the test's own.
"""

import pytest

from tests.harness import HarnessError, HubProcess, Topology, requireRealClients
from tests.realclient import hubConfig, waitFor


def test_tunNameInUseIsAClearError(tmp_path_factory):
    requireRealClients()
    workdir = tmp_path_factory.mktemp("st")
    # "lo" always exists, so an exclusive TUN open of that name fails with EBUSY.
    config = hubConfig() + '\n[tun]\nname = "lo"\n'
    with Topology(clients=1, lan=False) as net:
        with pytest.raises(HarnessError) as raised:
            with HubProcess(net.hubNs, workdir / "hub", config, startTimeout=10):
                pass
    message = str(raised.value)
    assert "[tun]" in message and "lo" in message, message
    assert "exists" in message or "in use" in message, message
    assert "Traceback" not in message, message


def test_hubRunsWithoutTun(tmp_path_factory):
    """
    [tun] enabled = false: the hub still starts (traffic between peers only).
    """
    requireRealClients()
    workdir = tmp_path_factory.mktemp("st")
    config = hubConfig() + "\n[tun]\nenabled = false\n"
    with (
        Topology(clients=1, lan=False) as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
    ):
        assert hub.running
        # The line comes right after the ports are bound, which is what the harness waits for.
        assert waitFor(lambda: "packets via none" in hub.log()), hub.log()
