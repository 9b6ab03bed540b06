"""
The ikehub daemon under test, run by twistd in the hub's namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .netns import HarnessError, netnsExec, runCommand

#: The work tree, so twistd finds C{ikehub} and C{twisted/plugins/ikehub_dropin.py} even when
#: the package is not installed.
REPO_ROOT = Path(__file__).resolve().parents[2]

#: twistd itself.  ("python -m twisted" is the newer "twist" runner, which has no -n, --pidfile
#: or --logfile; twistd's module has no __main__ guard, hence -c.)
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def boundUdpPorts(ns: str) -> set[int]:
    """The UDP ports something listens on inside namespace C{ns}."""
    result = runCommand(netnsExec(ns, "ss", "-Hlun"), check=False)
    ports = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[3].rpartition(":")[2].isdigit():
            ports.add(int(fields[3].rpartition(":")[2]))
    return ports


class HubProcess:
    """
    C{twistd -n --pidfile= ikehub --config <workdir>/ikehub.toml} inside namespace C{ns},
    with this interpreter and the work tree first on C{PYTHONPATH}; a context
    manager that waits until the hub has bound its UDP C{ports} and stops it on exit.

    Files under C{workdir}: C{ikehub.toml} (C{configText}), C{hub.log} (twistd's log) and
    C{hub.out} (stdout and stderr, where a traceback before logging starts ends up).
    """

    def __init__(
        self,
        ns: str,
        workdir: Path,
        configText: str,
        *,
        ports: Sequence[int] = (500, 4500),
        startTimeout: float = 10.0,
    ) -> None:
        self.ns = ns
        self.workdir = Path(workdir).absolute()
        self.configPath = self.workdir / "ikehub.toml"
        self.logPath = self.workdir / "hub.log"
        self.outputPath = self.workdir / "hub.out"
        self.ports = tuple(ports)
        self.pid: int | None = None
        self._configText = configText
        self._startTimeout = startTimeout
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HubProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *excInfo: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start twistd and wait until every port in C{ports} is bound."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.configPath.write_text(self._configText)
        self.logPath.unlink(missing_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        # "ip netns exec" replaces itself with the interpreter, so this PID is twistd's.
        argv = netnsExec(
            self.ns,
            sys.executable,
            "-c",
            TWISTD,
            "-n",
            "--pidfile=",
            f"--logfile={self.logPath}",
            "ikehub",
            "--config",
            str(self.configPath),
        )
        with open(self.outputPath, "wb") as output:
            self._process = subprocess.Popen(
                argv,
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self._process.pid
        deadline = time.monotonic() + self._startTimeout
        while not set(self.ports) <= boundUdpPorts(self.ns):
            if self._process.poll() is not None:
                raise HarnessError(
                    f"ikehub exited with {self._process.returncode} before "
                    f"binding {self.ports}:\n{self.output()}\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"ikehub did not bind UDP {self.ports} within "
                    f"{self._startTimeout} s:\n{self.output()}\n{self.log()}"
                )
            time.sleep(0.05)

    def stop(self) -> int | None:
        """SIGTERM the hub (by PID), SIGKILL it after 10 s; returns its exit status."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        return process.returncode

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """twistd's log so far."""
        try:
            return self.logPath.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output(self) -> str:
        """What the process wrote to stdout and stderr."""
        try:
            return self.outputPath.read_text(errors="replace")
        except FileNotFoundError:
            return ""
