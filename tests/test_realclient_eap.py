"""
EAP with real strongSwan 5.9.8 clients in network namespaces (RFC 7296 section 2.16): the hub
proves itself with its certificate, the client with a password over EAP-MSCHAPv2 (what Windows,
Apple and Android offer) or EAP-MD5, checked against the hub's user file; the final AUTH
payloads are keyed with the MSK (MSCHAPv2) or SK_pi/SK_pr (MD5, which makes none).
"""

import ipaddress

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import (
    LAN_HOST,
    POOL,
    StrongSwanPki,
    certificateFiles,
    onlyIkeSa,
    roadWarriorClient,
    roadWarriorHub,
    waitFor,
)

PASSWORD = "alice-eap-password-1"

EAP_HUB = 'certificate = "hub.pem"\nprivate_key = "hub.key"\nusers = "users.toml"'


USERS = f"""
[[users]]
name = "alice@example.com"
password = "{PASSWORD}"

[[users]]
name = "alice"
password = "{PASSWORD}"
"""


def eapClientConfig(method, eapId=None):
    local = f"auth = {method}\nid = alice@example.com"
    if eapId:
        local += f"\neap_id = {eapId}"
    return roadWarriorClient({"local": local})


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
    config = roadWarriorHub(
        f'name = "eap-users"\nidentity = "*@example.com"\nauth = "{method}"\n'
        f"eap_identity = {str(identityRound).lower()}",
        hub=EAP_HUB,
    )
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
            files=certificateFiles(pki),
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
            files=certificateFiles(pki),
        ) as client,
    ):
        assert client.initiate("home").returncode != 0
        assert client.listSas() == []
        assert waitFor(lambda: "ike_sa_failed" in hub.log() or "failed:" in hub.log())
        assert "matched PAD entry 'eap-users'" in hub.log(), hub.log()
        assert "eap-mschapv2" in hub.log()


TWO_ROUNDS_HUB = roadWarriorHub(
    'name = "device-then-user"\nidentity = "*@example.com"\nauth = ["pubkey", "eap-mschapv2"]',
    hub=EAP_HUB + '\nca = "ca.pem"',
)
ONE_ROUND_CLIENT = roadWarriorClient(
    {"local-1": "auth = pubkey\ncerts = client.pem\nid = alice@example.com"},
    proposals="aes128gcm16-prfsha256-ecp256",
)
TWO_ROUNDS_CLIENT = roadWarriorClient(
    {
        "local-1": "auth = pubkey\ncerts = client.pem\nid = alice@example.com",
        "local-2": "auth = eap-mschapv2\nid = alice",
    },
    proposals="aes128gcm16-prfsha256-ecp256",
)


@pytest.mark.parametrize("password, established", [(PASSWORD, True), ("wrong-password-1", False)])
def test_certificateThenEapMschapv2(workdir, password, established):
    """
    RFC 4739: the device's certificate, then the user's EAP-MSCHAPv2 password; the hub
    establishes only when both rounds succeed.
    """
    requireRealClients()
    pki, _ = preparedHub(workdir, "eap-mschapv2")
    cert, key = pki.issue("alice", "alice@example.com", "--flag", "clientAuth")
    config = TWO_ROUNDS_HUB
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            TWO_ROUNDS_CLIENT,
            secrets=eapSecrets("alice", password),
            files=certificateFiles(pki, cert, key),
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
    config = TWO_ROUNDS_HUB
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            ONE_ROUND_CLIENT,
            files=certificateFiles(pki, cert, key),
        ) as client,
    ):
        assert client.initiate("home").returncode != 0
        assert client.listSas() == []
        assert waitFor(lambda: "requires a second round" in hub.log()), hub.log()


def test_eapIdentityOutsideTheEntrysPatternsIsRefused(workdir):
    """
    The password is right, but the PAD entry admits other EAP identities: the client hears
    EAP-Failure (not the method's Success) and AUTHENTICATION_FAILED; the record says why.
    """
    requireRealClients()
    pki, config = preparedHub(workdir, "eap-mschapv2", identityRound=True)
    config = config.replace("eap_identity = true", 'eap_identity = true\neap_identities = ["bob"]')
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            eapClientConfig("eap-mschapv2", "alice"),
            secrets=eapSecrets("alice"),
            files=certificateFiles(pki),
        ) as client,
    ):
        assert client.initiate("home").returncode != 0
        assert client.listSas() == []
        assert "EAP_FAILURE" in client.log() or "EAP/FAIL" in client.log(), client.log()
        assert waitFor(lambda: "is not among eap_identities (bob)" in hub.log()), hub.log()
