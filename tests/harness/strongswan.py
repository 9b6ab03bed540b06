"""
A private strongSwan 5.9.8 (Debian's charon) instance inside a test namespace.

Facts this module relies on, all established on these machines (see TESTING.md):

  - The kernel has no ESP, so charon must use C{kernel-libipsec} (userspace ESP behind a TUN
    device C{ipsec0}); it is listed before C{kernel-netlink} because the first kernel backend
    wins.  libipsec always claims NAT, so its CHILD SAs are ESP-in-UDP on port 4500.
  - Routes into the tunnel need nothing by hand: kernel-netlink adds the rule
    C{from all lookup 220} and, per CHILD SA, C{<remote-ts> dev ipsec0 table 220 src <addr>}.
    A client's virtual IP goes on C{ipsec0} and is the C{src}; a responder uses its own address
    inside its C{local_ts} as C{src}, so it must have one (the LAN address in L{Topology}),
    otherwise installing the route and thus the CHILD SA fails (TS_UNACCEPTABLE to the peer).
    Decrypted packets come out of C{ipsec0}; a responder forwards them if IP forwarding is on.
  - libipsec refuses a CHILD SA whose remote traffic selector covers the peer's own IKE address
    ("conflicts with IKE traffic"; C{kernel-libipsec.allow_peer_ts} would change that), so
    clients should take a virtual IP.
  - charon's pid file C{/var/run/charon.pid} is compiled in, so each instance runs in its own
    mount namespace with a private C{/run} (C{unshare -m} and a bind mount of C{<workdir>/run}),
    and its vici socket lives in the workdir.  The bind mount dies with the mount namespace,
    i.e. with charon: nothing to unmount.
  - Debian builds neither the C{md4} plugin (EAP-MSCHAPv2 gets MD4 and DES from the openssl
    plugin, which loads OpenSSL's legacy provider) nor C{save-keys}.  With C{saveKeys=True} the
    keys are therefore read back from charon's level-4 log (L{parseKeyLog}): L{StrongSwan.keys}
    returns them, and L{StrongSwan.stop} also writes them to C{keysPath} as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .netns import HarnessError, runCommand

CHARON = "/usr/lib/ipsec/charon"
SWANCTL = shutil.which("swanctl") or "/usr/sbin/swanctl"
PLUGIN_DIR = Path("/usr/lib/ipsec/plugins")

#: Every plugin a PSK, X.509 or EAP (MD5, MSCHAPv2, TLS) client or responder needs, in load
#: order.  Each exists in Debian's 5.9.8 packages.  C{resolve} writes the DNS servers a peer
#: pushes to a private file in the instance's workdir (never the host's /etc/resolv.conf), which
#: is how tests see them.
PLUGINS = (
    "random nonce openssl x509 pem pkcs1 pkcs8 pkcs12 pubkey revocation constraints drbg "
    "kernel-libipsec kernel-netlink socket-default vici updown resolve "
    "eap-identity eap-md5 eap-mschapv2 eap-tls "
    "hmac sha1 sha2 md5 aes gcm ccm ctr cmac xcbc chapoly curve25519 gmp kdf"
).split()

#: charon's log levels per subsystem unless the caller asks otherwise (0 audit .. 4 private).
DEFAULT_LOG_LEVELS: Mapping[str, int] = {
    "default": 1,
    "ike": 2,
    "cfg": 2,
    "net": 1,
    "knl": 1,
    "chd": 1,
    "enc": 1,
    "esp": 1,
}

#: Level 4 makes charon log the DH secret, SKEYSEED, SK_*, KEYMAT and the AUTH inputs; only for
#: throw-away test runs.  (enc = 4 and lib = 4 add nothing here but megabytes.)
KEY_LOG_LEVELS: Mapping[str, int] = {"ike": 4, "chd": 4}

_UNIX_PATH_MAX = 107


class StrongSwan:
    """
    One charon daemon with its own strongswan.conf, swanctl.conf, vici socket, C{/run} and log,
    running in network namespace C{ns}; a context manager that stops it on exit.

    Layout under C{workdir}: C{strongswan.conf}, C{swanctl/} (the swanctl directory, with
    C{swanctl.conf} and the usual C{x509}, C{x509ca}, C{private}, ... subdirectories; C{files}
    are written there before loading), C{run/} (charon's C{/run}), C{charon.vici},
    C{charon.log}, C{charon.out} (charon's stdout and stderr) and, with C{saveKeys},
    C{keys.json}.

    @param secrets: swanctl.conf C{secrets} entries, either the body of that section or the
        whole C{secrets { ... }} block.
    @param extraCharonConf: strongswan.conf text placed inside C{charon { }} after the
        harness's own settings, which it can override.
    @param saveKeys: log at L{KEY_LOG_LEVELS} so that L{keys} can report every IKE and CHILD
        SA key, and write them to C{keysPath} when stopping (the stand-in for the save-keys
        plugin Debian does not ship).
    @param logLevels: filelog levels per subsystem, merged over L{DEFAULT_LOG_LEVELS} (and
        L{KEY_LOG_LEVELS} with C{saveKeys}).
    @param files: file name (relative to the swanctl directory, e.g. C{"x509ca/ca.pem"}) to
        content, for certificates and keys.
    """

    def __init__(
        self,
        ns: str,
        workdir: Path,
        swanctlConf: str,
        *,
        secrets: str = "",
        port: int = 500,
        portNatt: int = 4500,
        extraCharonConf: str = "",
        saveKeys: bool = False,
        label: str = "client1",
        logLevels: Mapping[str, int] | None = None,
        files: Mapping[str, str | bytes] | None = None,
    ) -> None:
        self.ns = ns
        self.label = label
        self.workdir = Path(workdir).absolute()
        self.swanctlDir = self.workdir / "swanctl"
        self.confPath = self.workdir / "strongswan.conf"
        self.swanctlConfPath = self.swanctlDir / "swanctl.conf"
        self.logPath = self.workdir / "charon.log"
        self.outputPath = self.workdir / "charon.out"
        self.runDir = self.workdir / "run"
        self.viciPath = self.workdir / "charon.vici"
        #: Where the resolve plugin writes DNS servers the peer pushed ("nameserver X" lines).
        self.resolvPath = self.workdir / "resolv.conf"
        self.uri = f"unix://{self.viciPath}"
        self.saveKeys = saveKeys
        self.keysPath = self.workdir / "keys.json" if saveKeys else None
        self.port = port
        self.portNatt = portNatt
        self.pid: int | None = None
        self._swanctlConf = swanctlConf
        self._secrets = secrets
        self._extraCharonConf = extraCharonConf
        self._files = dict(files or {})
        levels = dict(DEFAULT_LOG_LEVELS)
        if saveKeys:
            levels.update(KEY_LOG_LEVELS)
        levels.update(logLevels or {})
        self._logLevels = levels
        self._process: subprocess.Popen[bytes] | None = None
        if len(str(self.viciPath)) > _UNIX_PATH_MAX:
            raise HarnessError(
                f"vici socket path {self.viciPath} is too long for a unix socket;"
                f" use a shorter workdir"
            )

    # -- files -------------------------------------------------------------------------------

    def _strongswanConf(self) -> str:
        levels = "\n".join(
            f"                {name} = {level}" for name, level in self._logLevels.items()
        )
        return f"""\
# Written by tests/harness/strongswan.py for instance {self.label!r}.
charon {{
    load_modular = no
    load = {" ".join(PLUGINS)}
    port = {self.port}
    port_nat_t = {self.portNatt}
    filelog {{
        harness {{
            path = {self.logPath}
            time_format = %H:%M:%S
            time_add_ms = yes
            ike_name = yes
            append = no
            flush_line = yes
{levels}
        }}
    }}
    plugins {{
        vici {{
            socket = {self.uri}
        }}
        openssl {{
            load_legacy = yes
        }}
        resolve {{
            file = {self.resolvPath}
        }}
    }}
{self._extraCharonConf}
}}
"""

    def _swanctlConfText(self) -> str:
        secrets = self._secrets.strip()
        if secrets and not re.match(r"secrets\s*\{", secrets):
            secrets = f"secrets {{\n{secrets}\n}}"
        return f"{self._swanctlConf.rstrip()}\n\n{secrets}\n"

    def _writeFiles(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.runDir.mkdir(exist_ok=True)
        for sub in (
            "x509",
            "x509ca",
            "x509ocsp",
            "x509aa",
            "x509ac",
            "x509crl",
            "pubkey",
            "private",
            "rsa",
            "ecdsa",
            "bliss",
            "pkcs8",
            "pkcs12",
            "conf.d",
        ):
            (self.swanctlDir / sub).mkdir(parents=True, exist_ok=True)
        self.confPath.write_text(self._strongswanConf())
        self.swanctlConfPath.write_text(self._swanctlConfText())
        for name, content in self._files.items():
            path = self.swanctlDir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content)
            else:
                path.write_bytes(content)
        for stale in (self.viciPath, self.logPath):
            stale.unlink(missing_ok=True)

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "STRONGSWAN_CONF": str(self.confPath),
            "SWANCTL_DIR": str(self.swanctlDir),
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> StrongSwan:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *excInfo: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> None:
        """Start charon, wait until its vici socket answers, and load the swanctl config."""
        self._writeFiles()
        # "ip netns exec", unshare (without --fork) and "exec" all replace themselves, so the
        # PID Popen sees is charon's own.
        script = 'mount --bind "$1" /run && exec "$2"'
        argv = [
            "ip",
            "netns",
            "exec",
            self.ns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            str(self.runDir),
            CHARON,
        ]
        with open(self.outputPath, "wb") as output:
            self._process = subprocess.Popen(
                argv,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = self._process.pid
        self._waitForVici(timeout)
        result = self.swanctl("--load-all", "--noprompt", "--file", str(self.swanctlConfPath))
        if result.returncode != 0:
            raise HarnessError(
                f"[{self.label}] swanctl --load-all failed:\n{result.stdout}{result.stderr}"
            )

    def _waitForVici(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self._process is None or self._process.poll() is not None:
                raise HarnessError(
                    f"[{self.label}] charon exited early:\n{self.output()}\n{self.log()}"
                )
            if self.viciPath.exists():
                result = self.swanctl("--stats", timeout=2)
                if result.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"[{self.label}] charon's vici socket did not answer within"
                    f" {timeout} s:\n{self.log()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """
        SIGTERM charon (by PID), SIGKILL it if it has not exited after 5 s; with C{saveKeys},
        then write C{keysPath}.
        """
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self.keysPath is not None:
            self.writeKeys()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- control -----------------------------------------------------------------------------

    def swanctl(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run C{swanctl ARGS --uri <this instance>}; never raises on a non-zero exit."""
        return runCommand(
            [SWANCTL, *args, "--uri", self.uri], timeout=timeout, check=False, env=self._env()
        )

    def initiate(
        self, child: str, ike: str | None = None, timeout: float = 15
    ) -> subprocess.CompletedProcess[str]:
        """
        Initiate CHILD SA config C{child} (of IKE config C{ike}) and wait for the outcome; the
        caller asserts on C{returncode} (0 when the CHILD SA is up) and the output.
        """
        args = ["--initiate", "--child", child, "--timeout", str(int(timeout))]
        if ike is not None:
            args += ["--ike", ike]
        return self.swanctl(*args, timeout=timeout + 5)

    def terminateIke(self, name: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """Delete IKE SA(s) of config C{name} (with their CHILD SAs) and wait for the peer."""
        return self.swanctl(
            "--terminate", "--ike", name, "--timeout", str(int(timeout)), timeout=timeout + 5
        )

    def listSas(self) -> list[dict[str, Any]]:
        """
        The IKE SAs as swanctl reports them, parsed by L{parseListSas}.

        @raise HarnessError: swanctl failed.
        """
        result = self.swanctl("--list-sas", "--noblock", "--raw")
        if result.returncode != 0:
            raise HarnessError(f"[{self.label}] swanctl --list-sas failed: {result.stderr}")
        return parseListSas(result.stdout)

    def keys(self) -> list[dict[str, Any]]:
        """
        Every IKE and CHILD SA key charon has logged so far (L{parseKeyLog}); empty unless
        C{saveKeys} or C{logLevels} put C{ike} and C{chd} at 4.
        """
        return parseKeyLog(self.log())

    def writeKeys(self) -> Path:
        """Write L{keys} as JSON (bytes as hex) to C{keysPath}, or C{workdir/keys.json}."""
        path = self.keysPath or self.workdir / "keys.json"
        records = [{key: _hexed(value) for key, value in record.items()} for record in self.keys()]
        path.write_text(json.dumps(records, indent=2) + "\n")
        return path

    def log(self) -> str:
        """charon's file log so far."""
        try:
            return self.logPath.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output(self) -> str:
        """What charon wrote to stdout and stderr (startup failures land here)."""
        try:
            return self.outputPath.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _hexed(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_hexed(item) for item in value]
    if isinstance(value, dict):
        return {key: _hexed(item) for key, item in value.items()}
    return value


# -- swanctl --raw output ------------------------------------------------------------------------

#: Fields of C{--list-sas} that are counts or times; everything else stays a string (an SPI such
#: as C{12345678} is hex and must not turn into a number).
NUMERIC_FIELDS = frozenset(
    {
        "uniqueid",
        "version",
        "local-port",
        "remote-port",
        "encr-keysize",
        "integ-keysize",
        "established",
        "rekey-time",
        "reauth-time",
        "reqid",
        "bytes-in",
        "packets-in",
        "bytes-out",
        "packets-out",
        "use-in",
        "use-out",
        "life-time",
        "install-time",
    }
)

_TOKEN = re.compile(r"[^\s={}\[\]]+")
# A value ends where the next key ("lower-case=" or "name {") or the section's "}" begins.
# vici keys are lower case, so an identity such as "C=CH, O=Example, CN=moon" stays one value.
_VALUE_END = re.compile(r"(?= [a-z0-9_-]+=| [^\s={}\[\]]+ \{)|\}")


class ViciDumpError(HarnessError):
    """C{swanctl --raw} printed something this parser does not understand."""


def _parseSection(text: str, i: int) -> tuple[dict[str, Any], int]:
    section: dict[str, Any] = {}
    while i < len(text):
        char = text[i]
        if char == "}":
            return section, i + 1
        if char == " ":
            i += 1
            continue
        match = _TOKEN.match(text, i)
        if match is None:
            raise ViciDumpError(f"unexpected {text[i : i + 20]!r} at column {i}")
        key, i = match.group(), match.end()
        if text.startswith(" {", i):
            section[key], i = _parseSection(text, i + 2)
        elif text.startswith("=[", i):
            end = text.find("]", i)
            if end < 0:
                raise ViciDumpError(f"list {key!r} is not closed")
            section[key] = text[i + 2 : end].split()
            i = end + 1
        elif text.startswith("=", i):
            end = _VALUE_END.search(text, i + 1)
            if end is None:
                raise ViciDumpError(f"value of {key!r} runs off the end")
            value = text[i + 1 : end.start()]
            section[key] = int(value) if key in NUMERIC_FIELDS and value.isdigit() else value
            i = end.start()
        else:
            raise ViciDumpError(f"key {key!r} is followed by {text[i : i + 10]!r}")
    raise ViciDumpError("section is not closed")


def parseViciDump(text: str) -> list[tuple[str, dict[str, Any]]]:
    """
    Parse the one-line-per-message output of C{swanctl --raw} into (label, body) pairs, e.g.
    C{("list-sa event", {"home": {...}})}.

    The format is vici's own dump: C{label {key=value list=[a b] name {...}}}; values are
    printed unquoted (binary ones as C{0x...} hex), so a value containing a space followed by a
    lower-case C{word=} cannot be told from the next key.  vici keys are lower case and
    identities print their attribute names in upper case, so this does not happen in practice.
    """
    messages = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        label, brace, rest = line.partition(" {")
        if not brace:
            raise ViciDumpError(f"not a vici dump line: {line[:60]!r}")
        body, end = _parseSection(rest, 0)
        if rest[end:].strip():
            raise ViciDumpError(f"trailing text after message: {rest[end:][:40]!r}")
        messages.append((label, body))
    return messages


def parseListSas(text: str) -> list[dict[str, Any]]:
    """
    The IKE SAs in the output of C{swanctl --list-sas --raw}.

    Each is vici's C{list-sa} dictionary with vici's key names (so C{swanctl}'s documentation
    applies) plus C{"name"} (the connection name); C{"child-sas"} becomes a list.  Keys of
    interest: C{state} (e.g. C{"ESTABLISHED"}), C{local-host}, C{local-port}, C{local-id},
    C{remote-host}, C{remote-port}, C{remote-id}, C{initiator-spi}, C{responder-spi},
    C{encr-alg}, C{encr-keysize}, C{integ-alg}, C{prf-alg}, C{dh-group}, C{nat-remote},
    C{local-vips} / C{remote-vips} (lists).  Each CHILD SA: C{name}, C{state}
    (C{"INSTALLED"}), C{mode}, C{protocol}, C{encap}, C{spi-in}, C{spi-out}, C{encr-alg},
    C{integ-alg}, C{bytes-in}, C{packets-in}, C{bytes-out}, C{packets-out} (ints),
    C{local-ts} and C{remote-ts} (lists).  Counts and times (L{NUMERIC_FIELDS}) are ints; a
    field strongSwan omits (e.g. C{integ-alg} with AES-GCM) is absent.
    """
    sas = []
    for label, body in parseViciDump(text):
        if label != "list-sa event":
            continue
        for name, ike in body.items():
            ike = dict(ike, name=name)
            ike["child-sas"] = list(ike.get("child-sas", {}).values())
            sas.append(ike)
    return sas


# -- charon's level-4 log: the keys ---------------------------------------------------------------

_LOG_LINE = re.compile(
    r"^\S+ (?P<thread>\d+)\[(?P<group>[A-Z]+)\] (?:<(?P<sa>[^>]*)> )?"
    r"(?P<message>.*)$"
)
_BLOB_HEADER = re.compile(r"^(?P<label>.+?) => (?P<size>\d+) bytes @ \S+$")
_HEX_ROW = re.compile(r"^\s*\d+: (?P<hex>.{1,48})")
_ESP_SPI = re.compile(r"^\s*SPI 0x(?P<spi>[0-9a-f]{8}), src ")

#: charon's label of each logged IKE SA secret and the record key it is filed under.
IKE_KEY_LABELS = {
    "shared Diffie Hellman secret": "sharedSecret",
    "SKEYSEED": "skeyseed",
    "Sk_d secret": "skD",
    "Sk_ai secret": "skAi",
    "Sk_ar secret": "skAr",
    "Sk_ei secret": "skEi",
    "Sk_er secret": "skEr",
    "Sk_pi secret": "skPi",
    "Sk_pr secret": "skPr",
}
#: The same for CHILD SA keys; "initiator" keys protect traffic from the IKE initiator.
CHILD_KEY_LABELS = {
    "encryption initiator key": "encrI",
    "integrity initiator key": "integI",
    "encryption responder key": "encrR",
    "integrity responder key": "integR",
}


def logBlobs(text: str) -> list[tuple[str, str | None, str, bytes]]:
    """
    Every C{LABEL => N bytes @ ADDRESS} hex dump in a charon log, as (subsystem, IKE SA tag
    such as C{"home|1"} or None, label, data), in the order the dumps end.

    Dumps of different threads interleave; rows are joined per thread.
    """
    blobs = []
    open_: dict[str, tuple[str, str | None, str, int, bytearray]] = {}
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match is None:
            continue
        thread, message = match.group("thread"), match.group("message")
        row = _HEX_ROW.match(message)
        if row is not None and thread in open_:
            group, sa, label, size, data = open_[thread]
            try:
                data += bytes.fromhex(row.group("hex"))
            except ValueError:
                del open_[thread]
                continue
            if len(data) >= size:
                del open_[thread]
                blobs.append((group, sa, label, bytes(data[:size])))
            continue
        open_.pop(thread, None)
        header = _BLOB_HEADER.match(message)
        if header is not None:
            size = int(header.group("size"))
            entry = (match.group("group"), match.group("sa"), header.group("label"))
            if size == 0:
                blobs.append((*entry, b""))
            else:
                open_[thread] = (*entry, size, bytearray())
    return blobs


def parseKeyLog(text: str) -> list[dict[str, Any]]:
    """
    The secrets charon logged at level 4 (C{ike = 4}, C{chd = 4}), one record per IKE SA key
    derivation, in log order::

        {"ike": "home|1", "sharedSecret": b"...", "skeyseed": b"...", "skD": ..., "skAi": ...,
         "skAr": ..., "skEi": ..., "skEr": ..., "skPi": ..., "skPr": ...,
         "children": [{"encrI": b"...", "integI": b"...", "encrR": ..., "integR": ...,
                       "spiIn": "f28644fc", "spiOut": "74446e64"}]}

    Integrity keys are absent with AEAD transforms.  C{spiIn}/C{spiOut} are the CHILD SA's
    inbound and outbound SPIs as seen by the charon that wrote the log (needs C{chd >= 2}).
    C{ike} is the log's C{<name|uniqueid>} tag (the harness enables C{ike_name}).
    """
    records: list[dict[str, Any]] = []
    current: dict[str | None, dict[str, Any]] = {}
    pendingSpi: dict[str, tuple[str | None, str]] = {}

    def uniqueId(sa: str | None) -> str | None:
        # A responder's IKE SA has no config name until IKE_AUTH: "<1>" becomes "<rw|1>".
        return None if sa is None else sa.rpartition("|")[2]

    def record(sa: str | None, key: str) -> dict[str, Any]:
        uid = uniqueId(sa)
        if uid not in current or key in current[uid]:
            current[uid] = {"ike": sa, "children": []}
            records.append(current[uid])
        if sa is not None and "|" in sa:
            current[uid]["ike"] = sa
        return current[uid]

    def child(sa: str | None, key: str) -> dict[str, Any]:
        ike = current.get(uniqueId(sa)) or record(sa, "")
        if sa is not None and "|" in sa:
            ike["ike"] = sa
        children = ike["children"]
        if not children or key in children[-1]:
            children.append({})
        return children[-1]

    for _group, sa, label, data in logBlobs(text):
        if label in IKE_KEY_LABELS:
            key = IKE_KEY_LABELS[label]
            record(sa, key)[key] = data
        elif label in CHILD_KEY_LABELS:
            key = CHILD_KEY_LABELS[label]
            child(sa, key)[key] = data
    # SPIs are plain lines ("adding inbound ESP SA" then "  SPI 0x..., src ...").
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match is None or match.group("group") != "CHD":
            continue
        thread, sa, message = match.group("thread"), match.group("sa"), match.group("message")
        if message in ("adding inbound ESP SA", "adding outbound ESP SA"):
            pendingSpi[thread] = (sa, "spiIn" if "inbound" in message else "spiOut")
            continue
        spi = _ESP_SPI.match(message)
        if spi is not None and thread in pendingSpi:
            sa, key = pendingSpi.pop(thread)
            for ike in reversed(records):
                if uniqueId(ike["ike"]) == uniqueId(sa) and ike["children"]:
                    target = next((c for c in ike["children"] if key not in c), None)
                    if target is not None:
                        target[key] = spi.group("spi")
                    break
    return records
