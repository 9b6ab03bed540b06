"""
Real-client test harness: network namespaces, strongSwan peers and the ikehub daemon.

Typical use::

    def test_pskClient(tmp_path):
        requireRealClients()
        with Topology() as net, HubProcess(net.hubNs, tmp_path / "hub", config) as hub, \\
                StrongSwan(net.clientNs[0], tmp_path / "c1", SWANCTL, secrets=PSK) as client:
            assert client.initiate("home").returncode == 0
            assert net.ping(net.clientNs[0], net.lanHost, source=vip)

Everything made is removed on exit, also when the test fails; see TESTING.md for why the
pieces look the way they do.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .hub import HubProcess
from .netns import HarnessError, Topology
from .strongswan import CHARON, PLUGIN_DIR, PLUGINS, StrongSwan, parseKeyLog, parseListSas

__all__ = [
    "HarnessError",
    "HubProcess",
    "StrongSwan",
    "Topology",
    "missingRequirements",
    "parseKeyLog",
    "parseListSas",
    "requireRealClients",
]

SKIP_VARIABLE = "IKEHUB_SKIP_REALCLIENT"


def missingRequirements() -> list[str]:
    """What this machine lacks for real-client tests (empty when they can run)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces and charon need it)")
    if not os.access(CHARON, os.X_OK):
        missing.append(
            f"{CHARON} (apt-get install strongswan-charon libcharon-extra-plugins "
            f"libstrongswan-extra-plugins libcharon-extauth-plugins)"
        )
    for tool, package in (
        ("swanctl", "strongswan-swanctl"),
        ("ip", "iproute2"),
        ("ping", "iputils-ping"),
        ("unshare", "util-linux"),
    ):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            missing.append(f"{tool} (apt-get install {package})")
    plugins = [name for name in PLUGINS if not (PLUGIN_DIR / f"libstrongswan-{name}.so").exists()]
    if plugins and os.access(CHARON, os.X_OK):
        missing.append(
            f"strongSwan plugins {' '.join(plugins)} (apt-get install "
            f"libcharon-extra-plugins libstrongswan-extra-plugins "
            f"libcharon-extauth-plugins)"
        )
    if not Path("/dev/net/tun").exists():
        missing.append("/dev/net/tun")
    return missing


def requireRealClients() -> None:
    """
    Call first in a real-client test.  Fails the test, naming what is missing, when the machine
    cannot run real clients, so a broken CI machine is noticed; with the environment variable
    C{IKEHUB_SKIP_REALCLIENT=1} it skips instead.
    """
    missing = missingRequirements()
    if not missing:
        return
    message = "real-client test needs: " + "; ".join(missing)
    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(message)
    pytest.fail(f"{message} (set {SKIP_VARIABLE}=1 to skip these tests instead)", pytrace=False)
