"""
Shared pieces of the real-client tests: an ikehub configuration and strongSwan client
configurations that match it, in the documentation address ranges the topology uses.
"""

import ipaddress
import time

HUB_PSK = "real-client-test-psk-0123456789"
POOL = ipaddress.ip_network("198.51.100.0/24")
#: The host behind the hub that tunnels are pinged through to (the topology's LAN namespace).
LAN_HOST = "203.0.113.10"

HUB_CONFIG = """
[hub]
identity = "hub.example.com"
listen = ["192.0.2.1"]
port = {port}
natt_port = {nattPort}
{hubExtra}

[pools.roadwarriors]
addresses = "198.51.100.10-198.51.100.200"
dns = ["192.0.2.53"]

[[peers]]
name = "roadwarriors"
identity = "*@example.com"
auth = "psk"
psk = "{psk}"
pool = "roadwarriors"
local_ts = ["203.0.113.0/24", "198.51.100.0/24"]

[[peers]]
name = "static"
identity = "static.example.com"
auth = "psk"
psk = "{psk}"
local_ts = ["203.0.113.0/24"]
"""


def hubConfig(port=500, nattPort=4500, psk=HUB_PSK, hubExtra="") -> str:
    return HUB_CONFIG.format(port=port, nattPort=nattPort, psk=psk, hubExtra=hubExtra)


def clientConfig(
    identity="alice@example.com",
    proposals="aes256-sha256-modp2048",
    espProposals="aes256gcm16",
    vips=True,
    remotePort=None,
    remoteTs="203.0.113.0/24",
    localTs=None,
    ikeExtra="",
    childExtra="",
) -> str:
    """
    A swanctl connection "home" to the hub with a PSK. C{vips}: True for an IPv4 virtual IP,
    or the swanctl value itself (e.g. "0.0.0.0, ::"); C{ikeExtra} and C{childExtra}: more
    lines for the connection and its CHILD SA (lifetimes, DPD...).
    """
    lines = [
        "connections {",
        "    home {",
        "        remote_addrs = 192.0.2.1",
        f"        proposals = {proposals}",
    ]
    if vips:
        lines.append(f"        vips = {'0.0.0.0' if vips is True else vips}")
    lines += [f"        {line.strip()}" for line in ikeExtra.strip().splitlines()]
    if remotePort is not None:
        lines.append(f"        remote_port = {remotePort}")
    lines += [
        "        local {",
        "            auth = psk",
        f"            id = {identity}",
        "        }",
        "        remote {",
        "            auth = psk",
        "            id = hub.example.com",
        "        }",
        "        children {",
        "            home {",
        f"                remote_ts = {remoteTs}",
        f"                esp_proposals = {espProposals}",
    ]
    if localTs is not None:
        lines.append(f"                local_ts = {localTs}")
    lines += [f"                {line.strip()}" for line in childExtra.strip().splitlines()]
    lines += [
        "            }",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def clientSecrets(identity="alice@example.com", psk=HUB_PSK) -> str:
    return f"""
ike-home {{
    id = {identity}
    secret = "{psk}"
}}
"""


def onlyIkeSa(client) -> dict:
    sas = client.listSas()
    assert len(sas) == 1, sas
    return sas[0]


def waitFor(predicate, timeout=10.0, interval=0.1):
    """
    Poll C{predicate} until it returns something true or C{timeout} passes; returns its last value.
    """
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


def hubCounters(hub) -> dict[str, int]:
    """
    The counters a L{HubProcess} logged when it stopped (its "IKE counters at stop" line; call
    after C{hub.stop()}); a counter never incremented is absent.
    """
    import re

    match = re.search(r"IKE counters at stop: (.*)", hub.log())
    assert match, hub.log()
    return {k: int(v) for k, v in (item.split("=") for item in match.group(1).split())}


def pki(*args: str, stdin: bytes | None = None) -> bytes:
    """Run strongSwan's pki (the tool a strongSwan administrator makes certificates with)."""
    import subprocess

    return subprocess.run(
        ["pki", *args], input=stdin, capture_output=True, check=True, timeout=120
    ).stdout


class StrongSwanPki:
    """
    A CA, the hub's certificate (SAN hub.example.com) and client certificates, made with
    strongSwan's pki in C{directory}: PEM files, keys mode 0600.

    @param keyType: "rsa" (3072 bits unless C{size}) or "ecdsa" (P-256), for every key.
    @param caName: the CA's common name; two CAs of one test should not share it.
    """

    def __init__(
        self,
        directory,
        keyType: str = "rsa",
        size: int | None = None,
        caName: str = "ikehub test CA",
    ) -> None:
        from pathlib import Path

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keyType = keyType
        self.size = str(size) if size is not None else "3072" if keyType == "rsa" else "256"
        #: Names whose key L{generateKeys} already made.
        self._pregenerated: set[str] = set()
        self.caKey = self.key("ca")
        self.caCert = self.directory / "ca.pem"
        self.caCert.write_bytes(
            pki(
                "--self",
                "--ca",
                "--in",
                str(self.caKey),
                "--type",
                keyType,
                "--dn",
                f"C=CH, O=ikehub test, CN={caName}",
                "--outform",
                "pem",
            )
        )

    def key(self, name: str):
        path = self.directory / f"{name}.key"
        if name in self._pregenerated:
            self._pregenerated.discard(name)
            return path
        path.write_bytes(
            pki("--gen", "--type", self.keyType, "--size", self.size, "--outform", "pem")
        )
        path.chmod(0o600)
        return path

    def generateKeys(self, *names: str) -> None:
        """
        Make the keys of the certificates C{names} (for later L{issue} calls) all at once, in
        parallel: an RSA-4096 key takes pki a second or more, and a long chain needs several.
        """
        import subprocess

        command = ["pki", "--gen", "--type", self.keyType, "--size", self.size, "--outform", "pem"]
        running = []
        try:
            for name in names:
                path = self.directory / f"{name}.key"
                path.touch(mode=0o600)
                with path.open("wb") as out:
                    process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL)
                running.append((name, process))
            for name, process in running:
                if process.wait(timeout=120) != 0:
                    raise subprocess.CalledProcessError(process.returncode, command)
                self._pregenerated.add(name)
        finally:
            for _, process in running:
                if process.poll() is None:
                    process.kill()
                    process.wait()

    def issue(self, name: str, san: str, *flags: str, issuer=None):
        """
        A certificate for C{san} (also its CN); returns (certificate path, key path).

        @param issuer: (certificate path, key path) of an intermediate CA made with
            C{issue(..., "--ca")}; the root CA by default.
        """
        caCert, caKey = issuer if issuer is not None else (self.caCert, self.caKey)
        key = self.key(name)
        public = pki("--pub", "--in", str(key), "--type", self.keyType)
        cert = self.directory / f"{name}.pem"
        cert.write_bytes(
            pki(
                "--issue",
                "--cacert",
                str(caCert),
                "--cakey",
                str(caKey),
                "--type",
                "pub",
                "--dn",
                f"C=CH, O=ikehub test, CN={san}",
                "--san",
                san,
                *flags,
                "--outform",
                "pem",
                stdin=public,
            )
        )
        return cert, key


def roadWarriorHub(peer: str, hub: str = "", tables: str = "", pool: bool = True) -> str:
    """
    An ikehub configuration at 192.0.2.1 for certificate and EAP scenarios: C{hub} adds lines
    to [hub] (certificate, ca, users...), C{peer} is the body of the one [[peers]] entry (its
    pool and local_ts are added), C{tables} follows ([auth."NAME"], [tun]...).
    """
    poolTable = (
        '[pools.roadwarriors]\naddresses = "198.51.100.10-198.51.100.200"\ndns = ["192.0.2.53"]\n'
        if pool
        else ""
    )
    poolLine = 'pool = "roadwarriors"\n' if pool else ""
    return (
        f'[hub]\nidentity = "hub.example.com"\nlisten = ["192.0.2.1"]\n{hub.strip()}\n\n'
        f"{poolTable}\n[[peers]]\n{peer.strip()}\n{poolLine}"
        f'local_ts = ["203.0.113.0/24"]\n\n{tables.strip()}\n'
    )


def roadWarriorClient(
    locals_: dict[str, str],
    remote: str = "auth = pubkey\nid = hub.example.com",
    proposals: str = "aes256-sha256-modp2048",
) -> str:
    """
    A swanctl connection "home" to the hub asking for a virtual IP and 203.0.113.0/24:
    C{locals_} maps section names (local, local-1, ...) to their bodies.
    """

    def section(name: str, body: str) -> str:
        lines = "".join(f"            {line.strip()}\n" for line in body.strip().splitlines())
        return f"        {name} {{\n{lines}        }}\n"

    sections = "".join(section(name, body) for name, body in locals_.items())
    return (
        "connections {\n    home {\n        remote_addrs = 192.0.2.1\n"
        f"        proposals = {proposals}\n        vips = 0.0.0.0\n"
        f"{sections}{section('remote', remote)}"
        "        children {\n            home {\n                remote_ts = 203.0.113.0/24\n"
        "                esp_proposals = aes256gcm16\n            }\n        }\n    }\n}\n"
    )


def certificateFiles(pki, cert=None, key=None) -> dict:
    """swanctl files: the hub's CA to check the hub with, and the client's certificate/key."""
    files = {"x509ca/ca.pem": pki.caCert.read_bytes()}
    if cert is not None:
        files["x509/client.pem"] = cert.read_bytes()
        files["private/client.key"] = key.read_bytes()
    return files


def padHubConfig(peers: str, pools: str = "") -> str:
    """
    An ikehub configuration at 192.0.2.1 (ports 500/4500) whose PAD is C{peers}, the
    C{[[peers]]} tables in order, with the pool "roadwarriors" (198.51.100.10-200, DNS
    192.0.2.53) and any further C{[pools.NAME]} tables in C{pools}.
    """
    return (
        '[hub]\nidentity = "hub.example.com"\nlisten = ["192.0.2.1"]\n\n'
        '[pools.roadwarriors]\naddresses = "198.51.100.10-198.51.100.200"\n'
        f'dns = ["192.0.2.53"]\n\n{pools.strip()}\n\n{peers.strip()}\n'
    )
