"""
EAP with real strongSwan 5.9.8 clients in network namespaces (RFC 7296 section 2.16): the hub
proves itself with its certificate, the client with a password over EAP-MSCHAPv2 (what Windows,
Apple and Android offer) or EAP-MD5, checked against the hub's user file; the final AUTH
payloads are keyed with the MSK (MSCHAPv2) or SK_pi/SK_pr (MD5, which makes none).
"""

import ipaddress

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import POOL, StrongSwanPki, onlyIkeSa, waitFor

LAN_HOST = "203.0.113.10"
PASSWORD = "alice-eap-password-1"

HUB_CONFIG = """
[hub]
identity = "hub.example.com"
listen = ["192.0.2.1"]
certificate = "hub.pem"
private_key = "hub.key"
users = "users.toml"

[pools.roadwarriors]
addresses = "198.51.100.10-198.51.100.200"
dns = ["192.0.2.53"]

[[peers]]
name = "eap-users"
identity = "*@example.com"
auth = "{method}"
eap_identity = {identityRound}
pool = "roadwarriors"
local_ts = ["203.0.113.0/24"]
"""

USERS = f"""
[[users]]
name = "alice@example.com"
password = "{PASSWORD}"

[[users]]
name = "alice"
password = "{PASSWORD}"
"""


def eapClientConfig(method, eapId=None):
    eapLine = f"            eap_id = {eapId}\n" if eapId else ""
    return f"""
connections {{
    home {{
        remote_addrs = 192.0.2.1
        proposals = aes256-sha256-modp2048
        vips = 0.0.0.0
        local {{
            auth = {method}
            id = alice@example.com
{eapLine}        }}
        remote {{
            auth = pubkey
            id = hub.example.com
        }}
        children {{
            home {{
                remote_ts = 203.0.113.0/24
                esp_proposals = aes256gcm16
            }}
        }}
    }}
}}
"""


def eapSecrets(user, password=PASSWORD):
    return f"""
eap-alice {{
    id = {user}
    secret = "{password}"
}}
"""


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("eap")


def preparedHub(workdir, method, identityRound=False):
    pki = StrongSwanPki(workdir / "hub", "ecdsa")
    pki.issue("hub", "hub.example.com", "--flag", "serverAuth")
    users = workdir / "hub" / "users.toml"
    users.write_text(USERS)
    users.chmod(0o600)
    config = HUB_CONFIG.format(method=method, identityRound=str(identityRound).lower())
    return pki, config


@pytest.mark.parametrize(
    "method, identityRound, eapId",
    [
        ("eap-mschapv2", False, None),
        ("eap-mschapv2", True, "alice"),
        ("eap-md5", False, None),
    ],
)
def test_eapWithServerCertificate(workdir, method, identityRound, eapId):
    """
    The client establishes, gets a virtual IP, pings the LAN through the tunnel, and deletes.
    """
    requireRealClients()
    pki, config = preparedHub(workdir, method, identityRound)
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            eapClientConfig(method, eapId),
            secrets=eapSecrets(eapId or "alice@example.com"),
            files={"x509ca/ca.pem": pki.caCert.read_bytes()},
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log() + hub.log()
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED", sa
        [child] = sa["child-sas"]
        assert child["state"] == "INSTALLED"
        [vip] = sa["local-vips"]
        assert ipaddress.ip_address(vip) in POOL
        log = client.log()
        name = method.removeprefix("eap-").upper()
        assert f"EAP method EAP_{name} succeeded" in log, log
        if method == "eap-mschapv2":
            assert "MSK established" in log, log
        else:
            assert "no MSK established" in log, log
        assert "authentication of 'hub.example.com' with EAP successful" in log, log
        assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=vip), client.log()
        assert client.terminateIke("home").returncode == 0
        assert waitFor(lambda: "deleted by the peer" in hub.log()), hub.log()


def test_wrongPasswordFailsAndLeavesNothing(workdir):
    """EAP-MSCHAPv2 with a wrong password: EAP-Failure and AUTHENTICATION_FAILED, no SA."""
    requireRealClients()
    pki, config = preparedHub(workdir, "eap-mschapv2")
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            eapClientConfig("eap-mschapv2"),
            secrets=eapSecrets("alice@example.com", "not-the-password-1"),
            files={"x509ca/ca.pem": pki.caCert.read_bytes()},
        ) as client,
    ):
        assert client.initiate("home").returncode != 0
        assert client.listSas() == []
        assert waitFor(lambda: "ike_sa_failed" in hub.log() or "failed:" in hub.log())
        assert "matched PAD entry 'eap-users'" in hub.log(), hub.log()
        assert "eap-mschapv2" in hub.log()


TWO_ROUNDS_HUB = """
[hub]
identity = "hub.example.com"
listen = ["192.0.2.1"]
certificate = "hub.pem"
private_key = "hub.key"
ca = "ca.pem"
users = "users.toml"

[pools.roadwarriors]
addresses = "198.51.100.10-198.51.100.200"

[[peers]]
name = "device-then-user"
identity = "*@example.com"
auth = {auth}
pool = "roadwarriors"
local_ts = ["203.0.113.0/24"]
"""

TWO_ROUNDS_CLIENT = """
connections {
    home {
        remote_addrs = 192.0.2.1
        proposals = aes128gcm16-prfsha256-ecp256
        vips = 0.0.0.0
        local-1 {
            auth = pubkey
            certs = client.pem
            id = alice@example.com
        }
        local-2 {
            auth = eap-mschapv2
            id = alice
        }
        remote {
            auth = pubkey
            id = hub.example.com
        }
        children {
            home {
                remote_ts = 203.0.113.0/24
                esp_proposals = aes256gcm16
            }
        }
    }
}
"""


@pytest.mark.parametrize("password, established", [(PASSWORD, True), ("wrong-password-1", False)])
def test_certificateThenEapMschapv2(workdir, password, established):
    """
    RFC 4739: the device's certificate, then the user's EAP-MSCHAPv2 password; the hub
    establishes only when both rounds succeed.
    """
    requireRealClients()
    pki, _ = preparedHub(workdir, "eap-mschapv2")
    cert, key = pki.issue("alice", "alice@example.com", "--flag", "clientAuth")
    config = TWO_ROUNDS_HUB.format(auth='["pubkey", "eap-mschapv2"]')
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            TWO_ROUNDS_CLIENT,
            secrets=eapSecrets("alice", password),
            files={
                "x509ca/ca.pem": pki.caCert.read_bytes(),
                "x509/client.pem": cert.read_bytes(),
                "private/client.key": key.read_bytes(),
            },
        ) as client,
    ):
        result = client.initiate("home")
        log = client.log()
        if not established:
            assert result.returncode != 0
            assert client.listSas() == []
            assert waitFor(lambda: "device-then-user" in hub.log() and "failed" in hub.log())
            return
        assert result.returncode == 0, log + hub.log()
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED", sa
        assert "authentication of 'alice@example.com' (myself) with" in log, log
        assert "EAP method EAP_MSCHAPV2 succeeded, MSK established" in log, log
        [vip] = sa["local-vips"]
        assert net.ping(net.clientNs[0], LAN_HOST, count=2, source=vip), log


def test_secondRoundRequiredButNotOffered(workdir):
    """A PAD entry that wants two rounds refuses a client that offers only its certificate."""
    requireRealClients()
    pki, _ = preparedHub(workdir, "eap-mschapv2")
    cert, key = pki.issue("alice", "alice@example.com", "--flag", "clientAuth")
    config = TWO_ROUNDS_HUB.format(auth='["pubkey", "eap-mschapv2"]')
    oneRound = TWO_ROUNDS_CLIENT.replace(
        "        local-2 {\n            auth = eap-mschapv2\n            id = alice\n        }\n",
        "",
    )
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            oneRound,
            files={
                "x509ca/ca.pem": pki.caCert.read_bytes(),
                "x509/client.pem": cert.read_bytes(),
                "private/client.key": key.read_bytes(),
            },
        ) as client,
    ):
        assert client.initiate("home").returncode != 0
        assert client.listSas() == []
        assert waitFor(lambda: "requires a second round" in hub.log()), hub.log()
