"""
strongSwan 5.9.8 configured to behave, on the wire, like the operating systems' own IKEv2
clients: Windows 10/11 ("Agile VPN"), iOS/macOS and Android 11+.  One place for every
platform's proposals, identities, authentication and quirks, so that the real-client tests
(tests/test_realclient_profiles.py) and docs/clients.md describe the same thing, and a later
assertion (fragments, rekeying) is added once for every platform.

What a profile reproduces, and what it cannot:

  - Windows: IKE AES-256 with SHA-1 or SHA-256 and MODP-1024, ESP AES-256/SHA-1; IDi is the
    client's IP address and no IDr is sent; the user is named only in the EAP-Identity round
    (EAP-MSCHAPv2); the hub's certificate is checked against the CA the user installed.  It
    announces IKE fragmentation with 626-byte fragments, and trusts many roots, so its
    CERTREQ, and hence its first IKE_AUTH request, is larger than one such fragment.  It does
    not announce RFC 7427 signature hashes, so the hub signs with RSA and SHA-1 (method 1).
    strongSwan cannot reproduce Windows' EKU check (serverAuth and IKE intermediate) nor its
    vendor IDs; the test certificate carries both EKUs anyway.
  - iOS/macOS: IKE AES-256/SHA-256 with MODP-2048 or ECP-256, ESP AES-256/SHA-256 without
    PFS; IDi is the configured "Local ID", IDr the "Remote ID"; no CERTREQ is sent, so the hub
    must send its certificate unasked; EAP-MSCHAPv2 with the user name as EAP identity.
  - Android 11+: IKE AES-256/SHA-256 with MODP-2048, or AES-256-GCM with X25519, ESP
    AES-256-GCM; EAP-MSCHAPv2 or a pre-shared key.

Every profile asks for the whole IPv4 and IPv6 space (TSr 0.0.0.0/0 and ::/0), as the
platforms' full-tunnel defaults do, and lets the hub narrow that to the networks behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from tests.realclient import StrongSwanPki, waitFor

LAN = "203.0.113.0/24"
PASSWORD = "alice-profile-password-1"
PSK = "android-profile-psk-0123456789abcdef"

#: Windows' IKE fragment size (bytes, whole IP datagram), and how many trusted roots the
#: emulated Windows announces in its CERTREQ (20 bytes each): enough that its first IKE_AUTH
#: request does not fit one 626-byte fragment, as on a real Windows machine.
WINDOWS_FRAGMENT_SIZE = 626
WINDOWS_TRUSTED_ROOTS = 24

DOC = Path(__file__).resolve().parent.parent / "docs" / "clients.md"


@dataclass(frozen=True)
class ClientProfile:
    """
    One platform's native client, as strongSwan settings.

    @ivar name: the test id, e.g. C{"windows-sha1"}.
    @ivar platform: the operating system, as docs/clients.md names it.
    @ivar ike: the IKE proposal the platform offers (strongSwan syntax).
    @ivar esp: its ESP proposal; without a KE group, CHILD SA rekeys carry no KE (no PFS).
    @ivar auth: C{"eap-mschapv2"} or C{"psk"}.
    @ivar localId: IDi; C{None} sends the client's IP address (strongSwan's default), as
        Windows does.
    @ivar eapId: the EAP identity the user types (answered in the EAP-Identity round).
    @ivar remoteId: the identity the client expects of the hub; C{"%any"} sends no IDr.
    @ivar sendCertreq: whether the client sends CERTREQ payloads.
    @ivar fragmentSize: C{charon.fragment_size}; with it the profile announces IKE
        fragmentation (C{fragmentation = yes}), without it strongSwan's default applies.
    @ivar trustedRoots: extra trusted CA certificates, which the CERTREQ names as well.
    @ivar keyType: the hub certificate's key (C{"rsa"} 3072 or C{"ecdsa"} P-256).
    @ivar dhGroup: the DH group the IKE SA must end up with, as swanctl names it.
    @ivar encrAlg: the IKE SA's encryption algorithm, as swanctl names it.
    @ivar childEncr: the CHILD SA's encryption algorithm, as swanctl names it.
    @ivar childInteg: the CHILD SA's integrity algorithm, or C{None} with AEAD.
    @ivar windowsProposals: the hub needs docs/clients.md's Windows proposal lines.
    @ivar signatureHashes: the client announces SIGNATURE_HASH_ALGORITHMS (RFC 7427);
        Windows does not, so the hub must sign with the classic method (1: RSA with SHA-1).
    """

    name: str
    platform: str
    ike: str
    esp: str
    auth: str
    localId: str | None
    eapId: str | None
    remoteId: str
    dhGroup: str
    encrAlg: str
    childEncr: str
    childInteg: str | None
    sendCertreq: bool = True
    fragmentSize: int | None = None
    trustedRoots: int = 0
    keyType: str = "ecdsa"
    windowsProposals: bool = False
    signatureHashes: bool = True

    @property
    def usesEap(self) -> bool:
        return self.auth.startswith("eap-")

    # -- the client -------------------------------------------------------------------------

    def swanctlConf(self) -> str:
        """swanctl.conf for connection C{home}, CHILD SA C{home}."""
        local = [f"auth = {self.auth}"]
        if self.localId is not None:
            local.append(f"id = {self.localId}")
        if self.eapId is not None:
            local.append(f"eap_id = {self.eapId}")
        remote = [
            f"auth = {'pubkey' if self.usesEap else 'psk'}",
            f"id = {self.remoteId}",
        ]
        connection = [
            "remote_addrs = 192.0.2.1",
            "version = 2",
            f"proposals = {self.ike}",
            "vips = 0.0.0.0",
            f"send_certreq = {'yes' if self.sendCertreq else 'no'}",
        ]
        if self.fragmentSize is not None:
            connection.append("fragmentation = yes")

        def block(name: str, lines: list[str], indent: int) -> str:
            pad = " " * indent
            body = "".join(f"{pad}    {line}\n" for line in lines)
            return f"{pad}{name} {{\n{body}{pad}}}\n"

        child = block(
            "home",
            ["remote_ts = 0.0.0.0/0,::/0", f"esp_proposals = {self.esp}"],
            12,
        )
        return (
            "connections {\n    home {\n"
            + "".join(f"        {line}\n" for line in connection)
            + block("local", local, 8)
            + block("remote", remote, 8)
            + f"        children {{\n{child}        }}\n"
            + "    }\n}\n"
        )

    def secrets(self) -> str:
        if self.usesEap:
            return f'eap-user {{\n    id = {self.eapId}\n    secret = "{PASSWORD}"\n}}\n'
        return f'ike-home {{\n    id = {self.localId}\n    secret = "{PSK}"\n}}\n'

    def charonConf(self) -> str:
        """strongswan.conf lines inside C{charon { }}."""
        lines = []
        if self.fragmentSize is not None:
            lines.append(f"fragment_size = {self.fragmentSize}")
        if not self.signatureHashes:
            lines.append("signature_authentication = no")
        return "".join(f"    {line}\n" for line in lines)

    def clientFiles(self, pki: StrongSwanPki) -> dict[str, bytes]:
        """The hub's CA (and, for Windows, many more trusted roots) for the client to load."""
        files = {"x509ca/ca.pem": pki.caCert.read_bytes()}
        if self.trustedRoots:
            for index, cert in enumerate(otherRoots(self.trustedRoots)):
                files[f"x509ca/root{index}.pem"] = cert
        return files

    # -- the hub ----------------------------------------------------------------------------

    def hubPki(self, directory: Path) -> StrongSwanPki:
        """A CA and the hub's certificate as docs/clients.md asks for it (hub.pem, hub.key)."""
        pki = StrongSwanPki(directory, self.keyType)
        pki.issue("hub", "hub.example.com", *HUB_CERTIFICATE_FLAGS)
        return pki

    def hubConfig(self) -> str:
        """
        docs/clients.md's example hub as printed, listening on the test address, with the
        Windows proposal lines where the doc says to put them if this profile needs them.
        """
        proposals = windowsProposalLines() if self.windowsProposals else ""
        config = docBlock("hub-example")
        marker = re.search(r"^# WINDOWS-PROPOSALS:.*\n", config, re.MULTILINE)
        assert marker is not None, "docs/clients.md's example lost its WINDOWS-PROPOSALS line"
        listen = 'listen = ["0.0.0.0"]'
        assert listen in config, "docs/clients.md's example changed its listen line"
        config = config[: marker.start()] + proposals + config[marker.end() :]
        return config.replace(listen, 'listen = ["192.0.2.1"]')


#: pki flags for the hub's certificate: EKU serverAuth and IKE intermediate
#: (1.3.6.1.5.5.8.2.2), which Windows requires and macOS/iOS accept.
HUB_CERTIFICATE_FLAGS = ("--flag", "serverAuth", "--flag", "ikeIntermediate")

USERS = f"""
[[users]]
name = "alice"
password = "{PASSWORD}"

[[users]]
name = "alice@example.com"
password = "{PASSWORD}"
"""


def writeHubFiles(directory: Path) -> None:
    """The files docs/clients.md's example names: the user file and the Android PSK (0600)."""
    for name, content in (("users.toml", USERS), ("android.psk", PSK)):
        path = directory / name
        path.write_text(content)
        path.chmod(0o600)


def windowsProposalLines() -> str:
    """
    The C{ike_proposals} / C{esp_proposals} lines docs/clients.md tells a Windows operator to
    put in [hub]: the TOML block after the marker C{<!-- hub-proposals-windows -->}.
    """
    return docBlock("hub-proposals-windows")


def docBlock(marker: str) -> str:
    """The first fenced code block after C{<!-- marker -->} in docs/clients.md."""
    text = DOC.read_text()
    start = text.index(f"<!-- {marker} -->")
    fence = text.index("```", start)
    body = text.index("\n", fence) + 1
    return text[body : text.index("```", body)]


def otherRoots(count: int) -> list[bytes]:
    """
    C{count} self-signed CA certificates, each with its own key, unrelated to the hub (a
    desktop's root store): strongSwan names every trusted CA's key in its CERTREQ.
    """
    from tests.realclient import pki

    certs = []
    for index in range(count):
        key = pki("--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem")
        certs.append(
            pki(
                "--self",
                "--ca",
                "--type",
                "ecdsa",
                "--dn",
                f"C=CH, O=Some Public Root {index}, CN=Root {index}",
                "--outform",
                "pem",
                stdin=key,
            )
        )
    return certs


WINDOWS = "Windows 10/11"
APPLE = "iOS/macOS"
ANDROID = "Android 11+"

#: Windows' native client, in its two default IKE proposals (the ESP one is the same).
_WINDOWS_SHA1 = ClientProfile(
    name="windows-sha1",
    platform=WINDOWS,
    ike="aes256-sha1-modp1024",
    esp="aes256-sha1",
    auth="eap-mschapv2",
    localId=None,
    eapId="alice@example.com",
    remoteId="%any",
    fragmentSize=WINDOWS_FRAGMENT_SIZE,
    trustedRoots=WINDOWS_TRUSTED_ROOTS,
    keyType="rsa",
    windowsProposals=True,
    signatureHashes=False,
    dhGroup="MODP_1024",
    encrAlg="AES_CBC",
    childEncr="AES_CBC",
    childInteg="HMAC_SHA1_96",
)
#: iOS/macOS with MODP-2048 and an RSA hub certificate; the ECP-256 variant below also takes
#: the default (ECDSA) hub certificate.
_APPLE_MODP2048 = ClientProfile(
    name="apple-modp2048",
    platform=APPLE,
    ike="aes256-sha256-modp2048",
    esp="aes256-sha256",
    auth="eap-mschapv2",
    localId="alice@example.com",
    eapId="alice",
    remoteId="hub.example.com",
    sendCertreq=False,
    keyType="rsa",
    dhGroup="MODP_2048",
    encrAlg="AES_CBC",
    childEncr="AES_CBC",
    childInteg="HMAC_SHA2_256_128",
)
#: Android's native client with EAP-MSCHAPv2; the PSK variant below uses X25519 and AES-GCM.
_ANDROID_EAP = ClientProfile(
    name="android-eap",
    platform=ANDROID,
    ike="aes256-sha256-modp2048",
    esp="aes256gcm16",
    auth="eap-mschapv2",
    localId="alice@example.com",
    eapId="alice@example.com",
    remoteId="hub.example.com",
    dhGroup="MODP_2048",
    encrAlg="AES_CBC",
    childEncr="AES_GCM_16",
    childInteg=None,
)

PROFILES = (
    _WINDOWS_SHA1,
    replace(_WINDOWS_SHA1, name="windows-sha256", ike="aes256-sha256-modp1024"),
    _APPLE_MODP2048,
    replace(
        _APPLE_MODP2048,
        name="apple-ecp256",
        ike="aes256-sha256-ecp256",
        keyType=ClientProfile.keyType,
        dhGroup="ECP_256",
    ),
    _ANDROID_EAP,
    replace(
        _ANDROID_EAP,
        name="android-psk",
        ike="aes256gcm16-prfsha256-x25519",
        auth="psk",
        localId="android.example.com",
        eapId=None,
        dhGroup="CURVE_25519",
        encrAlg="AES_GCM_16",
    ),
)


# -- what the client's log says ---------------------------------------------------------------
#
# charon logs every message it builds or parses as "generating|parsed <EXCHANGE> <request|
# response> <msgid> [ <payloads> ]" and every datagram as "sending|received packet: from A[p]
# to B[q] (N bytes)"; with RFC 7383 fragmentation it logs "splitting IKE message (N bytes)
# into M fragments" when sending and "received fragment #i of M" when receiving.

_MESSAGE = re.compile(
    r"(?P<verb>generating|parsed) (?P<exchange>[A-Z_]+) (?P<kind>request|response) "
    r"(?P<msgid>\d+) \[ (?P<payloads>[^\]]*)\]"
)
_SPLIT = re.compile(r"splitting IKE message \((\d+) bytes\) into (\d+) fragments")
_PACKET = re.compile(r"sending packet: from \S+ to \S+ \((?P<size>\d+) bytes\)")


def messages(log: str, verb: str, exchange: str, kind: str) -> list[list[str]]:
    """The payload lists of every matching message in charon's log, in order."""
    return [
        m.group("payloads").split()
        for m in _MESSAGE.finditer(log)
        if (m.group("verb"), m.group("exchange"), m.group("kind")) == (verb, exchange, kind)
    ]


def fragmentationNegotiated(log: str) -> bool:
    """
    Whether both sides announced IKE fragmentation (RFC 7383 section 2.3): the client's
    IKE_SA_INIT request and the hub's response carry IKEV2_FRAGMENTATION_SUPPORTED.
    """
    sent = messages(log, "generating", "IKE_SA_INIT", "request")
    answered = messages(log, "parsed", "IKE_SA_INIT", "response")
    return bool(sent and answered) and "N(FRAG_SUP)" in sent[-1] and "N(FRAG_SUP)" in answered[-1]


def fragmentsSent(log: str) -> list[tuple[int, int]]:
    """(message size, fragment count) for every message the client split into fragments."""
    return [(int(size), int(count)) for size, count in _SPLIT.findall(log)]


def fragmentsReceived(log: str) -> bool:
    """Whether the client received an IKE message in fragments."""
    return "received fragment #" in log


def packetsSent(log: str) -> list[int]:
    """The size of every datagram charon sent (IKE only; libipsec's ESP is not logged)."""
    return [int(m.group("size")) for m in _PACKET.finditer(log)]


def firstAuthRequestSize(log: str) -> int:
    """
    The size of the datagram that carried the client's first IKE_AUTH request unfragmented:
    the packet logged right after "generating IKE_AUTH request 1".
    """
    start = log.index("generating IKE_AUTH request 1 ")
    match = _PACKET.search(log, start)
    if match is None:
        raise AssertionError("no packet followed the first IKE_AUTH request")
    return int(match.group("size"))


# -- rekeying ---------------------------------------------------------------------------------
#
# strongSwan answers NO_ADDITIONAL_SAS to its CHILD SA or IKE SA rekey with "peer seems to not
# support CHILD_SA rekeying, starting reauthentication": a whole new IKE_SA_INIT and IKE_AUTH,
# a new IKE SA and new CHILD SAs, then it deletes the old IKE SA.  New SPIs alone therefore do
# not prove a rekey; these helpers also demand that the hub answered CREATE_CHILD_SA with an
# SA payload, that no reauthentication started, and that the SA which should have survived
# the rekey (the IKE SA for a CHILD SA rekey, the CHILD SA for an IKE SA rekey) did.

REAUTHENTICATION = "starting reauthentication"


def installedChildSpis(client) -> set[tuple[str, str]]:
    """(inbound SPI, outbound SPI) of every installed CHILD SA."""
    return {
        (child["spi-in"], child["spi-out"])
        for sa in client.listSas()
        for child in sa["child-sas"]
        if child.get("state") == "INSTALLED"
    }


def establishedIkeSpis(client) -> set[tuple[str, str]]:
    """(SPIi, SPIr) of every established IKE SA."""
    return {
        (sa["initiator-spi"], sa["responder-spi"])
        for sa in client.listSas()
        if sa.get("state") == "ESTABLISHED"
    }


def rekeyAnswers(log: str) -> list[list[str]]:
    """The CREATE_CHILD_SA responses the client parsed that agreed to something (carry SA)."""
    return [p for p in messages(log, "parsed", "CREATE_CHILD_SA", "response") if "SA" in p]


def _rekey(client, kind: str, current, timeout: float):
    before, answers = current(client), len(rekeyAnswers(client.log()))
    result = client.swanctl("--rekey", f"--{kind}", "home")
    assert result.returncode == 0, result.stdout + result.stderr

    def replaced():
        now = current(client)
        return now if len(now) == 1 and not now & before else None

    after = waitFor(replaced, timeout)
    log = client.log()
    assert REAUTHENTICATION not in log, f"{kind} rekey fell back to reauthentication:\n{log}"
    assert len(rekeyAnswers(log)) > answers, f"no CREATE_CHILD_SA answer with SA:\n{log}"
    assert after, f"{kind} SA not rekeyed: before {before}, now {current(client)}\n{log}"
    [spis] = after
    return spis


def rekeyChild(client, timeout: float = 10.0) -> tuple[str, str]:
    """
    C{swanctl --rekey --child home}: the hub agrees in CREATE_CHILD_SA, exactly one CHILD SA
    is left, with new SPIs, under the same IKE SA.  Returns the new CHILD SA's SPIs.
    """
    ike = establishedIkeSpis(client)
    spis = _rekey(client, "child", installedChildSpis, timeout)
    assert establishedIkeSpis(client) == ike, "the IKE SA changed: not a CHILD SA rekey"
    return spis


def rekeyIke(client, timeout: float = 10.0) -> tuple[str, str]:
    """
    C{swanctl --rekey --ike home}: the hub agrees in CREATE_CHILD_SA, exactly one IKE SA is
    left, with new SPIs, and it carries the CHILD SA of the old one unchanged (RFC 7296
    section 2.18).  Returns the new IKE SA's SPIs.
    """
    children = installedChildSpis(client)
    spis = _rekey(client, "ike", establishedIkeSpis, timeout)
    assert installedChildSpis(client) == children, "the CHILD SA changed: a reauthentication?"
    return spis
