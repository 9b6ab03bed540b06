"""
A private FreeRADIUS 3.2 (Debian's C{freeradius}) for tests: its own radiusd.conf,
clients.conf, users file, eap/mschap/files modules and one virtual server on 127.0.0.1 at a
chosen port, its own log and run directory, started as a child process (optionally inside a
network namespace, on that namespace's loopback) and stopped by its PID whatever happens.

The user C{alice} (password L{PASSWORD}) gets Framed-IP-Address L{FRAMED_IP} and Class
L{CLASS}. The server's default EAP method is MSCHAPv2; it allows MD5 when the peer Naks for it.
FreeRADIUS requires a correct Message-Authenticator from the hub.

Used by tests/test_radius_freeradius.py (on the host's loopback) and
tests/test_realclient_radius.py (inside the hub's namespace).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SECRET = "ikehub-test-radius-secret-0123"
USER = "alice"
PASSWORD = "correct horse battery"
FRAMED_IP = "198.51.100.77"
CLASS = "vpn-staff"
FREERADIUS = "/usr/sbin/freeradius"

RADIUSD_CONF = """\
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {root}
sbindir = ${{exec_prefix}}/sbin
logdir = {root}/log
raddbdir = {root}/raddb
radacctdir = ${{logdir}}/radacct
name = freeradius
confdir = ${{raddbdir}}
modconfdir = ${{confdir}}/mods-config
run_dir = {root}/run
db_dir = ${{raddbdir}}
libdir = /usr/lib/freeradius
pidfile = ${{run_dir}}/freeradius.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {{
	destination = files
	file = ${{logdir}}/radius.log
	auth = yes
}}
security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}}
thread pool {{
	start_servers = 1
	max_servers = 2
	min_spare_servers = 1
	max_spare_servers = 2
	max_requests_per_server = 0
}}
modules {{
	$INCLUDE mods-enabled/
}}
instantiate {{
}}
policy {{
}}
$INCLUDE clients.conf
$INCLUDE sites-enabled/
"""

CLIENTS_CONF = """\
client ikehub {{
	ipaddr = 127.0.0.1
	secret = "{secret}"
	require_message_authenticator = yes
	nas_type = other
}}
"""

# The server starts with MSCHAPv2 and allows MD5 when the peer Naks for it.
EAP_MODULE = """\
eap {
	default_eap_type = mschapv2
	timer_expire = 60
	ignore_unknown_eap_types = no
	cisco_accounting_username_bug = no
	max_sessions = 1024
	md5 {
	}
	mschapv2 {
		send_error = no
	}
}
"""

MSCHAP_MODULE = """\
mschap {
	use_mppe = yes
	require_encryption = no
	require_strong = no
}
"""

FILES_MODULE = """\
files {
	filename = ${confdir}/users
}
"""

USERS = f"""\
{USER}	Cleartext-Password := "{PASSWORD}"
	Framed-IP-Address = {FRAMED_IP},
	Class = "{CLASS}"
"""

SITE = """\
server ikehub {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {port}
	}}
	authorize {{
		files
		eap {{
			ok = return
		}}
	}}
	authenticate {{
		Auth-Type MS-CHAP {{
			mschap
		}}
		eap
	}}
	post-auth {{
		Post-Auth-Type REJECT {{
			eap
		}}
	}}
}}
"""


@dataclass
class FreeRADIUS:
    port: int
    secret: str
    root: Path
    pid: int | None = None

    def log(self) -> str:
        try:
            return (self.root / "log" / "debug.txt").read_text(errors="replace")
        except FileNotFoundError:
            return ""


def writeConfig(root: Path, port: int, secret: str) -> Path:
    """A private FreeRADIUS configuration under C{root}; returns its raddb directory."""
    raddb = root / "raddb"
    for sub in ("raddb/mods-enabled", "raddb/sites-enabled", "log", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy("/etc/freeradius/3.0/dictionary", raddb / "dictionary")
    files = {
        "radiusd.conf": RADIUSD_CONF.format(root=root),
        "clients.conf": CLIENTS_CONF.format(secret=secret),
        "mods-enabled/eap": EAP_MODULE,
        "mods-enabled/mschap": MSCHAP_MODULE,
        "mods-enabled/files": FILES_MODULE,
        "users": USERS,
        "sites-enabled/ikehub": SITE.format(port=port),
    }
    for name, text in files.items():
        path = raddb / name
        path.write_text(text)
        path.chmod(0o640)
    return raddb


def freeUdpPort() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requireFreeRADIUS() -> None:
    if not os.path.exists(FREERADIUS) or not os.path.exists("/etc/freeradius/3.0/dictionary"):
        pytest.skip("FreeRADIUS is not installed (apt-get install freeradius freeradius-utils)")


@contextlib.contextmanager
def runningFreeRADIUS(
    root: Path, port: int, secret: str = SECRET, ns: str | None = None, timeout: float = 30
) -> Iterator[FreeRADIUS]:
    """
    C{freeradius -X} with the configuration L{writeConfig} puts under C{root}, listening on
    127.0.0.1:C{port} (inside network namespace C{ns} when given: "ip netns exec" replaces
    itself, so the PID is FreeRADIUS's own); waits until it is ready, and on exit SIGTERMs it
    by its PID (SIGKILL after 10 s).
    """
    requireFreeRADIUS()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    raddb = writeConfig(root, port, secret)
    argv = [FREERADIUS, "-X", "-d", str(raddb)]
    if ns is not None:
        argv = ["ip", "netns", "exec", ns, *argv]
    server = FreeRADIUS(port, secret, root)
    with open(root / "log" / "debug.txt", "wb") as debug:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=debug,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server.pid = process.pid
    try:
        deadline = time.monotonic() + timeout
        while "Ready to process requests" not in server.log():
            if process.poll() is not None:
                pytest.fail(f"FreeRADIUS exited with {process.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"FreeRADIUS did not become ready:\n{server.log()}")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
