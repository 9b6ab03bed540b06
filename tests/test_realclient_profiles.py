"""
The platforms' native IKEv2 clients, as strongSwan 5.9.8 in network namespaces configured to
behave like each (tests/clientprofiles.py): Windows 10/11, iOS/macOS and Android 11+ against
the hub configured as docs/clients.md says.  Each profile establishes, gets a virtual IP and
DNS, pings the LAN through the tunnel and deletes cleanly; separately, each survives a CHILD
SA rekey and an IKE SA rekey (expected to fail until CREATE_CHILD_SA rekeying lands).

The rekey and fragment checks are also run against strongSwan as the responder, which rekeys
and fragments, so that they are known to pass once the hub does too.  And two Windows
specifics: the default proposals refuse it, and a user returning from another address (a new
IDi) gets the same virtual IP.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import re
import tomllib

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from ikehub.crypto.proposals import DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS, parseProposal
from ikehub.wire.constants import ProtocolId
from tests.clientprofiles import (
    LAN,
    PROFILES,
    WINDOWS_FRAGMENT_SIZE,
    firstAuthRequestSize,
    fragmentationNegotiated,
    fragmentsReceived,
    fragmentsSent,
    messages,
    packetsSent,
    rekeyChild,
    rekeyIke,
    windowsProposalLines,
    writeHubFiles,
)
from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import LAN_HOST, POOL, onlyIkeSa, waitFor

BY_NAME = {profile.name: profile for profile in PROFILES}
IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")
IPV4_UDP_HEADERS = 20 + 8


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("prof")


@contextlib.contextmanager
def connected(profile, workdir):
    """The topology, the hub and the profile's client, with the tunnel up."""
    with started(profile, workdir) as (net, hub, client):
        result = client.initiate("home")
        assert result.returncode == 0, result.stdout + client.log() + hub.log()
        yield net, hub, client


@contextlib.contextmanager
def started(profile, workdir):
    """The topology, the hub and the profile's client, before the client initiates."""
    requireRealClients()
    pki = profile.hubPki(workdir / "hub")
    writeHubFiles(workdir / "hub")
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", profile.hubConfig()) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            profile.swanctlConf(),
            secrets=profile.secrets(),
            extraCharonConf=profile.charonConf(),
            files=profile.clientFiles(pki),
        ) as client,
    ):
        yield net, hub, client


def assertTunnel(profile, net, client) -> str:
    """The SA the profile negotiated; returns the virtual IP after pinging the LAN from it."""
    sa = onlyIkeSa(client)
    assert sa["state"] == "ESTABLISHED", sa
    assert sa["remote-id"] == "hub.example.com"
    assert sa["encr-alg"] == profile.encrAlg
    assert sa["dh-group"] == profile.dhGroup
    [child] = sa["child-sas"]
    assert child["state"] == "INSTALLED", child
    assert child["encr-alg"] == profile.childEncr
    assert child.get("integ-alg") == profile.childInteg
    assert "dh-group" not in child, "the first CHILD SA takes its keys from the IKE SA"
    # The client asked for 0.0.0.0/0 and ::/0; the hub narrowed that to its local_ts.
    assert child["remote-ts"] == [LAN], child
    [vip] = sa["local-vips"]
    assert ipaddress.ip_address(vip) in POOL
    assert child["local-ts"] == [f"{vip}/32"]
    assert "nameserver 192.0.2.53" in client.resolvPath.read_text()
    assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=vip), client.log()
    return vip


def assertAuthentication(profile, net, hub, client) -> None:
    """How each side proved itself, and which PAD entry admitted the client."""
    log = client.log()
    [request] = messages(log, "generating", "IKE_AUTH", "request")[:1]
    if profile.usesEap:
        assert "EAP method EAP_MSCHAPV2 succeeded, MSK established" in log, log
        assert "authentication of 'hub.example.com' with EAP successful" in log, log
        # The hub signed with its certificate, which the client checked against the CA:
        # RFC 7427 with SHA-256 where the client announced hashes, else the classic method.
        [init] = messages(log, "generating", "IKE_SA_INIT", "request")[:1]
        assert ("N(HASH_ALG)" in init) == profile.signatureHashes, init
        scheme = {
            ("rsa", True): "RSA_EMSA_PKCS1_SHA2_256",
            ("ecdsa", True): "ECDSA_WITH_SHA256_DER",
            ("rsa", False): "RSA signature",
        }[profile.keyType, profile.signatureHashes]
        assert f"authentication of 'hub.example.com' with {scheme} successful" in log, log
        assert 'received end entity cert "C=CH, O=ikehub test, CN=hub.example.com"' in log
    else:
        assert "authentication of 'hub.example.com' with pre-shared key successful" in log, log
    if profile.remoteId == "%any":
        assert "IDr" not in request, request
    else:
        assert "IDr" in request, request
    assert ("CERTREQ" in request) == profile.sendCertreq, request
    if profile.usesEap:
        # The user is named in the EAP-Identity round, whatever IDi said.
        asked = rf"server requested EAP_IDENTITY \(id 0x..\), sending '{profile.eapId}'"
        assert re.search(asked, log), log
    # IDi decides the PAD entry: Windows' IP address can match only "windows" (0.0.0.0/0).
    identity = profile.localId or net.clientAddresses[0]
    assert waitFor(lambda: f"({identity}) established" in hub.log()), hub.log()


def assertFragmentation(profile, client) -> None:
    """
    Windows announces IKE fragmentation with 626-byte fragments.  Where the hub announced it
    too, the client's first IKE_AUTH request (larger than a fragment, because of Windows'
    long CERTREQ) must have gone out in fragments no larger than 626 bytes; where the hub did
    not, the request went out whole, and the hub understood it (the tunnel is up).
    """
    log = client.log()
    [sentInit] = messages(log, "generating", "IKE_SA_INIT", "request")[:1]
    assert "N(FRAG_SUP)" in sentInit, sentInit
    if fragmentationNegotiated(log):
        split = fragmentsSent(log)
        assert split, "fragmentation negotiated, yet the IKE_AUTH request went out whole"
        assert all(count >= 2 for _, count in split)
        # charon logs UDP payload sizes; the fragment size bounds the whole IPv4 datagram.
        assert max(packetsSent(log)) + IPV4_UDP_HEADERS <= WINDOWS_FRAGMENT_SIZE, log
    else:
        assert fragmentsSent(log) == [] and not fragmentsReceived(log)
        assert firstAuthRequestSize(log) + IPV4_UDP_HEADERS > WINDOWS_FRAGMENT_SIZE


def assertHubCertificate(path) -> None:
    """
    The hub's certificate as docs/clients.md asks for it: SAN dNSName = the server name the
    user types, EKU serverAuth and IKE intermediate (Windows refuses it otherwise; strongSwan
    does not check, so this is checked here).
    """
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hub.example.com"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, IKE_INTERMEDIATE}


def assertCleanDelete(hub, client) -> None:
    assert client.terminateIke("home").returncode == 0, client.log()
    assert client.listSas() == []
    assert waitFor(lambda: "deleted by the peer" in hub.log()), hub.log()


@pytest.mark.parametrize("name", list(BY_NAME))
def test_profileEstablishesPassesTrafficAndDeletes(workdir, name):
    """
    The platform's client establishes with the algorithms it offers, authenticates the way it
    does, is admitted by the PAD entry docs/clients.md gives it, gets a virtual IP and DNS,
    reaches the LAN through the narrowed tunnel, and deletes, leaving nothing on the hub.
    """
    profile = BY_NAME[name]
    with connected(profile, workdir) as (net, hub, client):
        assertTunnel(profile, net, client)
        assertAuthentication(profile, net, hub, client)
        assertHubCertificate(workdir / "hub" / "hub.pem")
        if profile.fragmentSize is not None:
            assertFragmentation(profile, client)
        assertCleanDelete(hub, client)


@pytest.mark.parametrize("name", list(BY_NAME))
def test_profileSurvivesRekeys(workdir, name):
    """
    The client rekeys its CHILD SA (without a KE payload where its ESP proposal has no DH
    group: no PFS, as iOS/macOS and Windows do), then its IKE SA; traffic flows after each,
    and the delete is still clean.
    """
    profile = BY_NAME[name]
    with connected(profile, workdir) as (net, hub, client):
        vip = assertTunnel(profile, net, client)
        rekeyChild(client)
        [rekey] = messages(client.log(), "generating", "CREATE_CHILD_SA", "request")[:1]
        assert "N(REKEY_SA)" in rekey, rekey
        assert "KE" not in rekey, f"ESP {profile.esp} has no DH group, so no PFS: {rekey}"
        assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=vip), client.log()
        rekeyIke(client)
        # The CHILD SA the rekey replaced is listed as DELETED for a few seconds more.
        [child] = [c for c in onlyIkeSa(client)["child-sas"] if c["state"] == "INSTALLED"]
        assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=vip), client.log()
        assertCleanDelete(hub, client)


def test_docWindowsProposalsKeepTheDefaultsFirst():
    """
    docs/clients.md's Windows lines are the built-in defaults, unchanged and first, followed by
    the one extra proposal each for IKE and ESP, so switching Windows on weakens nothing that
    other clients negotiate; and ikehub's configuration accepts them.
    """
    table = tomllib.loads(windowsProposalLines())
    assert set(table) == {"ike_proposals", "esp_proposals"}
    assert tuple(table["ike_proposals"][:-1]) == DEFAULT_IKE_PROPOSALS
    assert tuple(table["esp_proposals"][:-1]) == DEFAULT_ESP_PROPOSALS
    assert table["ike_proposals"][-1] == "aes256-sha256-sha1-modp1024"
    assert table["esp_proposals"][-1] == "aes256-sha1"
    for text in table["ike_proposals"]:
        parseProposal(text, ProtocolId.IKE)
    for text in table["esp_proposals"]:
        parseProposal(text, ProtocolId.ESP)


#: strongSwan as the hub for the Android PSK profile: what an IKE peer that rekeys looks like.
STRONGSWAN_RESPONDER = f"""
connections {{
    rw {{
        local_addrs = 192.0.2.1
        pools = rwpool
        proposals = {BY_NAME["android-psk"].ike}
        local {{
            auth = psk
            id = hub.example.com
        }}
        remote {{
            auth = psk
            id = android.example.com
        }}
        children {{
            lan {{
                local_ts = {LAN}
                esp_proposals = {BY_NAME["android-psk"].esp}
            }}
        }}
    }}
}}
pools {{
    rwpool {{
        addrs = 198.51.100.0/24
        dns = 192.0.2.53
    }}
}}
"""


def test_rekeyChecksPassAgainstAPeerThatRekeys(workdir):
    """
    The rekey step above is not doomed by its own making: with strongSwan as the responder,
    the same client, commands and checks (CREATE_CHILD_SA answered with SA, no fallback to
    reauthentication, the other SA unchanged, traffic after each) all pass.
    """
    requireRealClients()
    profile = BY_NAME["android-psk"]
    secrets = profile.secrets().replace(
        "id = android.example.com", "id-1 = android.example.com\n    id-2 = hub.example.com"
    )
    with (
        Topology() as net,
        StrongSwan(net.hubNs, workdir / "hub", STRONGSWAN_RESPONDER, secrets=secrets, label="hub"),
        StrongSwan(
            net.clientNs[0], workdir / "c1", profile.swanctlConf(), secrets=profile.secrets()
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        [vip] = onlyIkeSa(client)["local-vips"]
        assert net.ping(net.clientNs[0], LAN_HOST, count=2, source=vip), client.log()
        rekeyChild(client)
        assert net.ping(net.clientNs[0], LAN_HOST, count=2, source=vip), client.log()
        rekeyIke(client)
        assert net.ping(net.clientNs[0], LAN_HOST, count=2, source=vip), client.log()


#: strongSwan as the hub for the Windows profile, with IKE fragmentation on (its default):
#: what a peer that negotiates fragmentation looks like.
STRONGSWAN_FRAGMENTING_RESPONDER = f"""
connections {{
    rw {{
        local_addrs = 192.0.2.1
        pools = rwpool
        proposals = {BY_NAME["windows-sha1"].ike}
        fragmentation = yes
        local {{
            auth = pubkey
            certs = hub.pem
            id = hub.example.com
        }}
        remote {{
            auth = eap-mschapv2
            eap_id = %any
        }}
        children {{
            lan {{
                local_ts = {LAN}
                esp_proposals = {BY_NAME["windows-sha1"].esp}
            }}
        }}
    }}
}}
pools {{
    rwpool {{
        addrs = 198.51.100.0/24
    }}
}}
"""


def test_fragmentChecksPassAgainstAPeerThatFragments(workdir):
    """
    The Windows fragment check's other branch, which the hub takes once it negotiates RFC 7383:
    against strongSwan as the responder, fragmentation is negotiated and the same check finds
    the first IKE_AUTH request split into fragments of at most 626 bytes.
    """
    requireRealClients()
    profile = BY_NAME["windows-sha1"]
    pki = profile.hubPki(workdir / "hub")
    with (
        Topology() as net,
        StrongSwan(
            net.hubNs,
            workdir / "hub",
            STRONGSWAN_FRAGMENTING_RESPONDER,
            secrets=profile.secrets(),
            files={
                "x509/hub.pem": (workdir / "hub" / "hub.pem").read_bytes(),
                "private/hub.key": (workdir / "hub" / "hub.key").read_bytes(),
            },
            label="hub",
        ),
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            profile.swanctlConf(),
            secrets=profile.secrets(),
            extraCharonConf=profile.charonConf(),
            files=profile.clientFiles(pki),
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        log = client.log()
        assert fragmentationNegotiated(log), log
        assertFragmentation(profile, client)
        assert fragmentsReceived(log), "the responder's certificate came in fragments too"
        [vip] = onlyIkeSa(client)["local-vips"]
        assert net.ping(net.clientNs[0], LAN_HOST, count=2, source=vip), log


def test_windowsIsRefusedWithoutTheDocsProposalLines(workdir):
    """
    The hub's defaults leave MODP-1024 out: without docs/clients.md's Windows lines, the
    Windows profile gets NO_PROPOSAL_CHOSEN in IKE_SA_INIT and the hub keeps nothing.
    """
    profile = dataclasses.replace(BY_NAME["windows-sha256"], windowsProposals=False)
    with started(profile, workdir) as (net, hub, client):
        assert client.initiate("home", timeout=5).returncode != 0
        assert "received NO_PROPOSAL_CHOSEN notify error" in client.log(), client.log()
        assert client.listSas() == []
        assert "established" not in hub.log()


def test_windowsUserGetsTheirAddressBackFromAnotherNetwork(workdir):
    """
    Windows' IDi is its IP address, which changes with the network; the pool lease follows
    the EAP identity, so the same user coming back from another address gets the same
    virtual IP.
    """
    requireRealClients()
    profile = BY_NAME["windows-sha256"]
    pki = profile.hubPki(workdir / "hub")
    writeHubFiles(workdir / "hub")
    with (
        Topology(clients=2) as net,
        HubProcess(net.hubNs, workdir / "hub", profile.hubConfig()) as hub,
    ):
        vips = []
        for index in range(2):
            with StrongSwan(
                net.clientNs[index],
                workdir / f"c{index}",
                profile.swanctlConf(),
                secrets=profile.secrets(),
                extraCharonConf=profile.charonConf(),
                files=profile.clientFiles(pki),
                label=f"client{index}",
            ) as client:
                assert client.initiate("home").returncode == 0, client.log() + hub.log()
                [vip] = onlyIkeSa(client)["local-vips"]
                vips.append(vip)
                assertCleanDelete(hub, client)
                identity = net.clientAddresses[index]
                assert waitFor(lambda: f"({identity}) established" in hub.log()), hub.log()
        assert vips[0] == vips[1], vips
