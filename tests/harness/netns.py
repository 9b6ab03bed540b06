"""
Throw-away network namespaces in which real IKE clients meet the hub.

The kernel here has no ESP, so every peer does ESP in userspace and needs its own routing
table to steer traffic into its TUN device; namespaces give each peer one without touching the
host.  The layout, all documentation addresses::

    client1 192.0.2.11 --veth--+
    client2 192.0.2.12 --veth--+-- br0 192.0.2.1 [hub] lan0 203.0.113.1 --veth-- lan 203.0.113.10
                                   2001:db8:1::1/64                           (default via hub)

Clients have no route beyond 192.0.2.0/24, so anything they reach elsewhere went through a tunnel.

Names carry the test process's pid and a sequence number (C{ikh<pid>x<n>-hub}) so that parallel
runs never collide, and a later run can recognise and remove what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import signal
import subprocess
import warnings
from collections.abc import Sequence

PREFIX = "ikh"
_STALE = re.compile(rf"^{PREFIX}(\d+)x\d+-")
_sequence = itertools.count()

DEFAULT_TIMEOUT = 10.0


class HarnessError(Exception):
    """
    Setting up or driving the test environment failed; the message carries the command's output.
    """


def runCommand(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """
    Run C{argv} to completion within C{timeout} seconds, capturing text output.

    With C{check}, a non-zero exit becomes a L{HarnessError} that quotes stderr, because a
    bare CalledProcessError hides the one line that explains a failed C{ip} command.
    """
    try:
        result = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"{' '.join(argv)!r} did not finish within {timeout} s") from e
    if check and result.returncode != 0:
        raise HarnessError(
            f"{' '.join(argv)!r} exited {result.returncode}: "
            f"{(result.stderr or result.stdout).strip()}"
        )
    return result


def netnsExec(ns: str, *argv: str) -> list[str]:
    """The argv that runs C{argv} inside namespace C{ns}."""
    return ["ip", "netns", "exec", ns, *argv]


def _pidAlive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespacePids(ns: str) -> list[int]:
    """PIDs of the processes still inside C{ns}."""
    result = runCommand(["ip", "netns", "pids", ns], check=False)
    return [int(word) for word in result.stdout.split() if word.isdigit()]


def deleteNamespace(ns: str) -> None:
    """
    Remove namespace C{ns}, first killing (by PID) anything left inside it.

    Only namespaces this harness created are passed here, so whatever runs inside them was
    started by a test.  A process left inside would keep the namespace and its veths alive after
    the name is gone.
    """
    for pid in namespacePids(ns):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    result = runCommand(["ip", "netns", "del", ns], check=False)
    if result.returncode != 0 and ns in listNamespaces():
        warnings.warn(
            f"could not delete network namespace {ns}: {result.stderr.strip()}", stacklevel=2
        )


def listNamespaces() -> list[str]:
    result = runCommand(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


def sweepStale() -> list[str]:
    """
    Delete namespaces left behind by harness runs whose process no longer exists.

    A test killed by SIGKILL never reaches its C{finally}; this is how its namespaces still go.
    """
    swept = []
    for ns in listNamespaces():
        match = _STALE.match(ns)
        if match and not _pidAlive(int(match.group(1))):
            deleteNamespace(ns)
            swept.append(ns)
    return swept


class Topology:
    """
    A hub namespace, C{clients} client namespaces on one bridged segment, and optionally a LAN
    namespace behind the hub; a context manager that deletes everything it made on exit, also
    when setting up failed half-way.

    @ivar hubNs: the hub's namespace (bridge C{br0} = 192.0.2.1, C{lan0} = 203.0.113.1, IPv4
        and IPv6 forwarding on).
    @ivar clientNs: the clients' namespaces; client I{i} has C{eth0} = C{clientAddresses[i]}.
    @ivar lanNs: the LAN namespace (C{eth0} = 203.0.113.10, default route via the hub) or None.
    """

    hubAddress = "192.0.2.1"
    hubAddress6 = "2001:db8:1::1"
    hubLanAddress = "203.0.113.1"
    lanHost = "203.0.113.10"
    clientSegment = "192.0.2.0/24"
    lanSegment = "203.0.113.0/24"

    def __init__(self, clients: int = 1, lan: bool = True) -> None:
        if not 1 <= clients <= 200:
            raise ValueError(f"clients must be 1..200, not {clients}")
        tag = f"{PREFIX}{os.getpid()}x{next(_sequence)}"
        self.hubNs = f"{tag}-hub"
        self.clientNs = [f"{tag}-c{i}" for i in range(1, clients + 1)]
        self.lanNs: str | None = f"{tag}-lan" if lan else None
        self.clientAddresses = [f"192.0.2.{10 + i}" for i in range(1, clients + 1)]
        self.clientAddresses6 = [f"2001:db8:1::{10 + i}" for i in range(1, clients + 1)]
        self._created: list[str] = []

    def __enter__(self) -> Topology:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *excInfo: object) -> None:
        self.close()

    def _ip(self, ns: str, *args: str) -> None:
        runCommand(["ip", "-n", ns, *args])

    def _addNamespace(self, ns: str) -> None:
        runCommand(["ip", "netns", "add", ns])
        self._created.append(ns)
        self._ip(ns, "link", "set", "lo", "up")

    def _build(self) -> None:
        sweepStale()
        hub = self.hubNs
        self._addNamespace(hub)
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"):
            runCommand(netnsExec(hub, "sysctl", "-qw", key))
        self._ip(
            hub, "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0"
        )
        self._ip(hub, "addr", "add", f"{self.hubAddress}/24", "dev", "br0")
        self._ip(hub, "addr", "add", f"{self.hubAddress6}/64", "dev", "br0", "nodad")
        self._ip(hub, "link", "set", "br0", "up")
        for i, (ns, address, address6) in enumerate(
            zip(self.clientNs, self.clientAddresses, self.clientAddresses6, strict=True), start=1
        ):
            self._addNamespace(ns)
            # Creating the pair directly inside the namespaces keeps host-wide names untouched.
            self._ip(
                hub, "link", "add", f"c{i}", "type", "veth", "peer", "name", "eth0", "netns", ns
            )
            self._ip(hub, "link", "set", f"c{i}", "master", "br0", "up")
            self._ip(ns, "addr", "add", f"{address}/24", "dev", "eth0")
            self._ip(ns, "addr", "add", f"{address6}/64", "dev", "eth0", "nodad")
            self._ip(ns, "link", "set", "eth0", "up")
        if self.lanNs is not None:
            lan = self.lanNs
            self._addNamespace(lan)
            self._ip(
                hub, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", lan
            )
            self._ip(hub, "addr", "add", f"{self.hubLanAddress}/24", "dev", "lan0")
            self._ip(hub, "link", "set", "lan0", "up")
            self._ip(lan, "addr", "add", f"{self.lanHost}/24", "dev", "eth0")
            self._ip(lan, "link", "set", "eth0", "up")
            self._ip(lan, "route", "add", "default", "via", self.hubLanAddress)

    def close(self) -> None:
        """Delete every namespace this topology created (and with them their veths and bridge)."""
        while self._created:
            deleteNamespace(self._created.pop())

    def run(
        self, ns: str, *argv: str, timeout: float = DEFAULT_TIMEOUT, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run C{argv} inside namespace C{ns}; the caller judges the result unless C{check}."""
        return runCommand(netnsExec(ns, *argv), timeout=timeout, check=check)

    def ping(
        self,
        ns: str,
        dest: str,
        count: int = 3,
        source: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> bool:
        """
        Whether C{count} echo replies from C{dest} reach namespace C{ns} within C{timeout}
        seconds; a lost request is resent until then (ping's C{-w}), so the first packet of a
        fresh tunnel may be dropped.  C{source} picks the sender address (e.g. a virtual IP).
        """
        argv = [
            "ping",
            "-n",
            "-q",
            "-c",
            str(count),
            "-i",
            "0.2",
            "-W",
            "1",
            "-w",
            str(max(1, int(timeout) - 1)),
        ]
        if source is not None:
            argv += ["-I", source]
        try:
            return self.run(ns, *argv, dest, timeout=timeout).returncode == 0
        except HarnessError:
            return False


_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


@contextlib.contextmanager
def insideNamespace(ns: str):
    """
    Run the block with this thread (and the processes it starts) in network namespace C{ns}:
    sockets the test opens there live in that namespace.
    """
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(original)
