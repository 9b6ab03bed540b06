"""
Shared pieces of the real-client tests: an ikehub configuration and strongSwan client
configurations that match it, in the documentation address ranges the topology uses.
"""

import ipaddress
import time

HUB_PSK = "real-client-test-psk-0123456789"
POOL = ipaddress.ip_network("198.51.100.0/24")

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
) -> str:
    lines = [
        "connections {",
        "    home {",
        "        remote_addrs = 192.0.2.1",
        f"        proposals = {proposals}",
    ]
    if vips:
        lines.append("        vips = 0.0.0.0")
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

    @param keyType: "rsa" (3072 bits) or "ecdsa" (P-256), for every key.
    """

    def __init__(self, directory, keyType: str = "rsa") -> None:
        from pathlib import Path

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keyType = keyType
        self.size = "3072" if keyType == "rsa" else "256"
        self.caKey = self.key("ca")
        self.caCert = self.directory / "ca.pem"
        self.caCert.write_bytes(
            pki("--self", "--ca", "--in", str(self.caKey), "--type", keyType,
                "--dn", "C=CH, O=ikehub test, CN=ikehub test CA", "--outform", "pem")
        )

    def key(self, name: str):
        path = self.directory / f"{name}.key"
        path.write_bytes(pki("--gen", "--type", self.keyType, "--size", self.size,
                             "--outform", "pem"))
        path.chmod(0o600)
        return path

    def issue(self, name: str, san: str, *flags: str):
        """A certificate for C{san} (also its CN); returns (certificate path, key path)."""
        key = self.key(name)
        public = pki("--pub", "--in", str(key), "--type", self.keyType)
        cert = self.directory / f"{name}.pem"
        cert.write_bytes(
            pki("--issue", "--cacert", str(self.caCert), "--cakey", str(self.caKey),
                "--type", "pub", "--dn", f"C=CH, O=ikehub test, CN={san}", "--san", san,
                *flags, "--outform", "pem", stdin=public)
        )
        return cert, key
