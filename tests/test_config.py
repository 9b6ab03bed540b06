"""
Tests for L{ikehub.config}: every rule of the schema, and the shipped example.
"""

import ipaddress
import os
import re
import textwrap
from unittest import mock

import pytest

from ikehub.config import (
    ConfigError,
    HubConfig,
    PeerConfig,
    PoolConfig,
    defaultConfigPath,
    loadConfig,
)
from ikehub.crypto.proposals import DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS, parseProposal
from ikehub.policy.pool import AddressPool
from ikehub.wire.constants import ProtocolId
from ikehub.wire.identity import Identity

PSK = "correct-horse-battery-staple-42"

MINIMAL = f"""
[hub]
identity = "hub.example.com"

[[peers]]
identity = "alice@example.com"
auth = "psk"
psk = "{PSK}"
"""


def write(tmp_path, text, name="ikehub.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def load(tmp_path, text):
    return loadConfig(write(tmp_path, text))


def problems(tmp_path, text):
    """The ConfigError message for C{text}; fails the test if the file is accepted."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        loadConfig(path)
    message = str(info.value)
    for line in message.splitlines():
        assert line.startswith(f"{path}: "), line
    return message


# -- the shipped example -------------------------------------------------------------------


def test_exampleLoads():
    """etc/ikehub.toml is a valid configuration with the documented content."""
    config = loadConfig(defaultConfigPath())
    assert config.identity == Identity.fromString("hub.example.com")
    assert config.listen == ("0.0.0.0",)
    assert (config.port, config.nattPort) == (500, 4500)
    pool = config.pools["roadwarriors"]
    assert (str(pool.first), str(pool.last)) == ("198.51.100.10", "198.51.100.250")
    assert pool.dns == (ipaddress.ip_address("192.0.2.53"),)
    [peer] = config.peers
    assert peer.identity == Identity.fromString("alice@example.com")
    assert peer.auth == "psk" and len(peer.psk) >= 16
    assert peer.pool == "roadwarriors"
    assert peer.localTs == (ipaddress.ip_network("203.0.113.0/24"),)


def test_exampleUsesOnlyDocumentationAddresses():
    """Every address in the example is from the documentation ranges (or is 0.0.0.0 / ::)."""
    allowed = [
        ipaddress.ip_network(n)
        for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
    ]
    with open(defaultConfigPath()) as f:
        text = f.read()
    candidates = re.findall(r"[0-9A-Fa-f:.]*[.:][0-9A-Fa-f:.]+", text)
    found = []
    for candidate in candidates:
        try:
            address = ipaddress.ip_address(candidate.split("/")[0])
        except ValueError:
            continue
        found.append(address)
        assert address.is_unspecified or any(address in net for net in allowed), candidate
    assert ipaddress.ip_address("198.51.100.10") in found


def test_exampleCommentsEveryKey():
    """Every key line in the example has a comment right above it."""
    with open(defaultConfigPath()) as f:
        lines = f.read().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[a-z_]+ *=", line):
            assert lines[index - 1].startswith("#"), line


def test_exampleTellsToReplaceThePsk():
    """The inline example PSK comes with a comment telling the operator to replace it."""
    with open(defaultConfigPath()) as f:
        text = f.read()
    before = text[: text.index("\npsk =")]
    assert "REPLACE" in before.rsplit("\n\n", 1)[-1].upper()


def test_defaultConfigPathPrefersInstalledCopy(tmp_path):
    """An installed <prefix>/share/ikehub/ikehub.toml wins over the source tree's copy."""
    share = tmp_path / "share" / "ikehub"
    share.mkdir(parents=True)
    (share / "ikehub.toml").write_text(MINIMAL)
    with mock.patch("sys.prefix", str(tmp_path)):
        assert defaultConfigPath() == str(share / "ikehub.toml")
    assert defaultConfigPath().endswith(os.path.join("etc", "ikehub.toml"))


# -- defaults and result objects -----------------------------------------------------------


def test_minimalConfigGetsDefaults(tmp_path):
    """Keys left out take the documented defaults."""
    config = load(tmp_path, MINIMAL)
    assert isinstance(config, HubConfig)
    assert config.listen == ("0.0.0.0",)
    assert (config.port, config.nattPort) == (500, 4500)
    assert config.ikeProposals == tuple(
        parseProposal(p, ProtocolId.IKE) for p in DEFAULT_IKE_PROPOSALS
    )
    assert config.espProposals == tuple(
        parseProposal(p, ProtocolId.ESP) for p in DEFAULT_ESP_PROPOSALS
    )
    assert config.cookieThreshold == 1000
    assert (config.cookieThresholdPerSource, config.blockThreshold) == (10, 100)
    assert config.halfOpenTimeout == 30.0
    assert (config.retransmitTimeout, config.retransmitBase, config.retransmitTries) == (
        2.0,
        1.8,
        5,
    )
    assert config.saveKeys is None
    assert config.mobike is True
    assert dict(config.pools) == {}
    [peer] = config.peers
    assert peer == PeerConfig(
        name="peer0",
        identity=Identity.fromString("alice@example.com"),
        auth="psk",
        psk=PSK.encode(),
        pool=None,
        localTs=(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")),
        remoteTs=("dynamic",),
    )


def test_fullConfig(tmp_path):
    """Every key is read into the result objects."""
    keyDirectory = tmp_path / "keys"
    keyDirectory.mkdir()
    hubPki(tmp_path)
    config = load(
        tmp_path,
        f"""
        [hub]
        identity = "C=CH, O=Example, CN=hub"
        listen = ["192.0.2.1", "2001:db8::1"]
        port = 10500
        natt_port = 14500
        ike_proposals = ["aes256gcm16-prfsha384-x25519"]
        esp_proposals = ["aes256gcm16"]
        cookie_threshold = 0
        cookie_threshold_per_source = 0
        block_threshold = 1
        half_open_timeout = 10
        retransmit_timeout = 0.5
        retransmit_base = 1
        retransmit_tries = 0
        save_keys = "keys/ikev2_decryption_table"
        certificate = "hub.pem"
        private_key = "hub.key"
        ca = ["cas/"]
        users = "users.toml"

        [auth."eap-radius"]
        timeout = 2

        [pools.rw]
        addresses = "198.51.100.0/24"
        dns = ["192.0.2.53", "2001:db8::53"]

        [pools.v6]
        addresses = "2001:db8:1::/112"

        [[peers]]
        name = "roadwarriors"
        identity = "*@example.com"
        auth = "psk"
        psk = "{PSK}"
        pool = "rw"
        local_ts = ["192.0.2.0/24", "2001:db8::/32"]
        remote_ts = ["dynamic", "203.0.113.0/24"]

        [[peers]]
        identity = "bob@example.com"
        auth = "eap-mschapv2"
        eap_identity = true
        remote_addrs = ["192.0.2.0/24"]
        groups = ["staff"]
        """,
    )
    assert config.identity.idType == 9
    assert config.listen == ("192.0.2.1", "2001:db8::1")
    assert (config.port, config.nattPort) == (10500, 14500)
    assert config.ikeProposals == (parseProposal("aes256gcm16-prfsha384-x25519", ProtocolId.IKE),)
    assert config.espProposals == (parseProposal("aes256gcm16", ProtocolId.ESP),)
    assert config.cookieThreshold == 0
    assert (config.cookieThresholdPerSource, config.blockThreshold) == (0, 1)
    assert config.halfOpenTimeout == 10.0 and isinstance(config.halfOpenTimeout, float)
    assert (config.retransmitTimeout, config.retransmitBase, config.retransmitTries) == (
        0.5,
        1.0,
        0,
    )
    assert config.saveKeys == str(keyDirectory / "ikev2_decryption_table")
    assert config.pools["rw"] == PoolConfig(
        "rw",
        "198.51.100.0/24",
        ipaddress.ip_address("198.51.100.1"),
        ipaddress.ip_address("198.51.100.254"),
        (ipaddress.ip_address("192.0.2.53"), ipaddress.ip_address("2001:db8::53")),
    )
    assert config.pools["rw"].size == 254
    assert isinstance(config.pools["v6"].makePool(), AddressPool)
    first, second = config.peers
    assert first.name == "roadwarriors"
    assert Identity.fromString("carol@example.com").matches(first.identity)
    assert first.remoteTs == ("dynamic", ipaddress.ip_network("203.0.113.0/24"))
    assert (second.name, second.auth, second.psk) == ("peer1", "eap-mschapv2", None)
    assert (first.localAuth, second.localAuth) == ("psk", "pubkey")
    assert (first.eapIdentity, second.eapIdentity) == (False, True)
    assert second.remoteAddrs == (ipaddress.ip_network("192.0.2.0/24"),)
    assert second.groups == ("staff",)
    assert config.credentials.certificate.subject.rfc4514_string().startswith("CN=hub.example.com")
    assert len(config.trust.cas) == 1
    assert "carol" in config.users
    assert dict(config.authOptions["eap-radius"]) == {"timeout": 2}


def test_resultObjectsAreImmutable(tmp_path):
    """The configuration cannot be changed after validation, pools included."""
    config = load(tmp_path, MINIMAL + '\n[pools.rw]\naddresses = "192.0.2.0/24"\n')
    with pytest.raises(AttributeError):
        config.port = 1
    with pytest.raises(TypeError):
        config.pools["other"] = config.pools["rw"]


# -- secrets never shown -------------------------------------------------------------------


def test_reprHidesThePsk(tmp_path):
    """repr() and str() of the configuration and of a peer never contain the PSK."""
    config = load(tmp_path, MINIMAL)
    assert PSK not in repr(config)
    assert PSK not in str(config)
    assert PSK not in repr(config.peers[0])
    assert config.peers[0].psk == PSK.encode()


def test_errorsNeverShowThePsk(tmp_path):
    """A rejected PSK is described by its length, never by its content."""
    message = problems(tmp_path, MINIMAL.replace(PSK, "short-secret"))
    assert "short-secret" not in message
    message = problems(tmp_path, MINIMAL.replace(f'"{PSK}"', "123456789012345678"))
    assert "123456789012345678" not in message
    assert "expected a string" in message


# -- the validation list -------------------------------------------------------------------


def test_tomlSyntaxErrorNamesTheLine(tmp_path):
    """A TOML syntax error reports tomllib's message, with the line number."""
    message = problems(tmp_path, '[hub]\nidentity = "hub.example.com"\nport = = 5\n')
    assert "TOML syntax error" in message
    assert "line 3" in message


def test_missingFileIsConfigError(tmp_path):
    """A file that does not exist is a ConfigError naming it."""
    path = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as info:
        loadConfig(path)
    assert str(info.value).startswith(f"{path}: cannot read")


def test_nonUtf8FileIsConfigError(tmp_path):
    """A file that is not UTF-8 is a ConfigError, not a UnicodeDecodeError."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[hub]\nidentity = "h\xe9.example.com"\n')
    with pytest.raises(ConfigError) as info:
        loadConfig(str(path))
    assert "UTF-8" in str(info.value)


def test_exactMessageForShortPsk(tmp_path):
    """The message names the file, the dotted key, the problem and what to do."""
    text = MINIMAL + '\n[[peers]]\nidentity = "b@example.com"\nauth = "psk"\npsk = "123456789"\n'
    text += '\n[[peers]]\nidentity = "c@example.com"\nauth = "psk"\npsk = "abcdefghi"\n'
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        loadConfig(path)
    advice = "use at least 16 random bytes (for example: openssl rand -base64 24)"
    assert info.value.problems == (
        f"{path}: peers[1].psk: the pre-shared key is 9 bytes; {advice}",
        f"{path}: peers[2].psk: the pre-shared key is 9 bytes; {advice}",
    )
    assert str(info.value) == "\n".join(info.value.problems)


@pytest.mark.parametrize(
    "text, key",
    [
        ('[pools.rw]\naddresses = "192.0.2.0/24"\n', "hub"),
        ("[hub]\nport = 500\n", "hub.identity"),
        (MINIMAL + '[[peers]]\nauth = "psk"\npsk = "' + PSK + '"\n', "peers[1].identity"),
        (MINIMAL + '[[peers]]\nidentity = "b@example.com"\n', "peers[1].auth"),
        (MINIMAL + "[pools.rw]\ndns = []\n", "pools.rw.addresses"),
    ],
)
def test_missingRequiredKeys(tmp_path, text, key):
    """A missing required key or table is reported by its dotted name."""
    message = problems(tmp_path, text)
    assert f": {key}: missing" in message


@pytest.mark.parametrize(
    "extra, key, allowed",
    [
        ("colour = 1\n", "colour", "hub, esp, tun, spd, pools, peers"),
        ("[hub]\nnat_port = 4500\n", "hub.nat_port", "natt_port"),
        ('[pools.rw]\naddresses = "192.0.2.0/24"\ngateway = "x"\n', "pools.rw.gateway", "dns"),
        ('[[peers]]\nidentity = "b@example.com"\nauth = "x"\npks = "sec"\n', "peers[1].pks", "psk"),
    ],
)
def test_unknownKeys(tmp_path, extra, key, allowed):
    """An unknown key anywhere is named, with the keys allowed there."""
    if extra.startswith("[hub]"):
        text = MINIMAL.replace("[hub]\n", extra)
    elif extra.startswith("colour"):
        text = extra + MINIMAL
    else:
        text = MINIMAL + extra
    message = problems(tmp_path, text)
    assert f": {key}: unknown key" in message
    assert allowed in message


def test_unknownKeySuggestsTheClosestOne(tmp_path):
    """A misspelt key gets a 'did you mean'."""
    message = problems(tmp_path, MINIMAL.replace("[hub]\n", "[hub]\nnat_port = 4500\n"))
    assert "did you mean natt_port?" in message


def test_unknownPskKeyDoesNotShowItsValue(tmp_path):
    """A misspelt psk key (pks) does not echo the secret."""
    message = problems(tmp_path, MINIMAL.replace("psk = ", "pks = "))
    assert PSK not in message


def hubWith(line):
    return MINIMAL.replace("[hub]\n", "[hub]\n" + line + "\n")


@pytest.mark.parametrize(
    "line, key, fragment",
    [
        ('listen = "0.0.0.0"', "hub.listen", "expected a list of strings"),
        ("listen = [1]", "hub.listen[0]", "expected a string"),
        ("port = true", "hub.port", "expected a whole number"),
        ('port = "500"', "hub.port", "expected a whole number"),
        ("port = 500.0", "hub.port", "expected a whole number"),
        ("natt_port = false", "hub.natt_port", "expected a whole number"),
        ("cookie_threshold = true", "hub.cookie_threshold", "expected a whole number"),
        (
            'cookie_threshold_per_source = "10"',
            "hub.cookie_threshold_per_source",
            "expected a whole number",
        ),
        ("block_threshold = 1.5", "hub.block_threshold", "expected a whole number"),
        ("retransmit_tries = 1.5", "hub.retransmit_tries", "expected a whole number"),
        ("half_open_timeout = true", "hub.half_open_timeout", "expected a number"),
        ('retransmit_timeout = "2"', "hub.retransmit_timeout", "expected a number"),
        ("save_keys = false", "hub.save_keys", "expected a string"),
        ('mobike = "yes"', "hub.mobike", "expected true or false"),
        ("mobike = 1", "hub.mobike", "expected true or false"),
        ('ike_proposals = "aes256gcm16-prfsha384-x25519"', "hub.ike_proposals", "expected a list"),
    ],
)
def test_wrongTypesInHub(tmp_path, line, key, fragment):
    """Wrong TOML types are reported; booleans are not accepted as integers."""
    message = problems(tmp_path, hubWith(line))
    assert f": {key}: {fragment}" in message


def test_identityMustBeAString(tmp_path):
    """An identity that is not a string is reported, not crashed on."""
    message = problems(tmp_path, MINIMAL.replace('"hub.example.com"', "5"))
    assert ": hub.identity: expected a string in quotes, got the integer 5" in message


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        ('[pools.rw]\naddresses = ["192.0.2.0/24"]\n', "pools.rw.addresses", "expected a string"),
        (
            '[pools.rw]\naddresses = "192.0.2.0/24"\ndns = "192.0.2.53"\n',
            "pools.rw.dns",
            "expected a list of strings",
        ),
        ('pools = "rw"\n', "pools", "expected a table"),
        ('[pools]\nrw = "192.0.2.0/24"\n', "pools.rw", "expected a table"),
    ],
)
def test_wrongTypesInPools(tmp_path, text, key, fragment):
    """Pools must be tables with the right value types."""
    body = text + MINIMAL if text.startswith("pools =") else MINIMAL + text
    message = problems(tmp_path, body)
    assert f": {key}: {fragment}" in message


@pytest.mark.parametrize(
    "line, key, fragment",
    [
        ('local_ts = "192.0.2.0/24"', "peers[0].local_ts", "expected a list of strings"),
        ('remote_ts = "dynamic"', "peers[0].remote_ts", "expected a list of strings"),
        ("pool = 1", "peers[0].pool", "expected a string"),
        ("name = 7", "peers[0].name", "expected a string"),
        ("auth = true", "peers[0].auth", "expected a string"),
    ],
)
def test_wrongTypesInPeers(tmp_path, line, key, fragment):
    """Peer keys are type-checked."""
    text = MINIMAL + line + "\n"
    if line.startswith("auth"):
        text = MINIMAL.replace('auth = "psk"', line)
    message = problems(tmp_path, text)
    assert f": {key}: {fragment}" in message


def test_peersMustBeAnArrayOfTables(tmp_path):
    """[peers] as a single table (instead of [[peers]]) is reported with the fix."""
    message = problems(
        tmp_path, '[hub]\nidentity = "hub.example.com"\n[peers]\nidentity = "a@example.com"\n'
    )
    assert ": peers: expected [[peers]] tables" in message


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        (hubWith('listen = ["192.0.2"]'), "hub.listen[0]", "not an IPv4 or IPv6 address"),
        (hubWith('listen = ["192.0.2.1", "192.0.2.1"]'), "hub.listen[1]", "listed twice"),
        (hubWith("listen = []"), "hub.listen", "the list is empty"),
        (
            MINIMAL + '[pools.rw]\naddresses = "192.0.2.0/24"\ndns = ["dns.example.com"]\n',
            "pools.rw.dns[0]",
            "not an IPv4 or IPv6 address",
        ),
        (
            MINIMAL + '[pools.rw]\naddresses = "192.0.2.1/24"\n',
            "pools.rw.addresses",
            "did you mean 192.0.2.0/24?",
        ),
        (
            MINIMAL + '[pools.rw]\naddresses = "192.0.2.20-192.0.2.10"\n',
            "pools.rw.addresses",
            "ends before it starts",
        ),
        (MINIMAL + 'local_ts = ["192.0.2.1/24"]\n', "peers[0].local_ts[0]", "192.0.2.0/24?"),
        (MINIMAL + 'local_ts = ["dynamic"]\n', "peers[0].local_ts[0]", "not a network"),
        (MINIMAL + 'remote_ts = ["nowhere"]\n', "peers[0].remote_ts[0]", '"dynamic" or'),
        (MINIMAL + "local_ts = []\n", "peers[0].local_ts", "the list is empty"),
    ],
)
def test_badAddressesAndNetworks(tmp_path, text, key, fragment):
    """Bad IP literals, networks with host bits, reversed ranges and empty lists."""
    message = problems(tmp_path, text)
    assert f": {key}: " in message
    assert fragment in message


@pytest.mark.parametrize(
    "line, key",
    [
        ("port = 0", "hub.port"),
        ("port = 65536", "hub.port"),
        ("natt_port = 70000", "hub.natt_port"),
        ("natt_port = -1", "hub.natt_port"),
    ],
)
def test_portsOutOfRange(tmp_path, line, key):
    """Ports must be 1..65535."""
    message = problems(tmp_path, hubWith(line))
    assert f": {key}: " in message and "1..65535" in message


@pytest.mark.parametrize(
    "lines",
    [
        "block_threshold = 10",
        "block_threshold = 5",
        "cookie_threshold_per_source = 200",
        "cookie_threshold_per_source = 50\nblock_threshold = 50",
    ],
)
def test_blockThresholdMustBeAboveTheCookieThreshold(tmp_path, lines):
    """
    An address is asked for cookies before it is blocked: a block threshold at or below the
    per-source cookie threshold (given or by default) is refused, naming both keys.
    """
    message = problems(tmp_path, hubWith(lines))
    assert ": hub.block_threshold: " in message
    assert "is not above hub.cookie_threshold_per_source" in message
    assert "raise block_threshold or lower cookie_threshold_per_source" in message


def test_portEqualToNattPort(tmp_path):
    """IKE and NAT-T need different ports."""
    message = problems(tmp_path, hubWith("port = 4500"))
    assert ": hub.natt_port: equals hub.port (4500)" in message


@pytest.mark.parametrize(
    "line, key",
    [
        ("cookie_threshold = -1", "hub.cookie_threshold"),
        ("cookie_threshold_per_source = -1", "hub.cookie_threshold_per_source"),
        ("block_threshold = 0", "hub.block_threshold"),
        ("half_open_timeout = 0", "hub.half_open_timeout"),
        ("retransmit_timeout = -2.0", "hub.retransmit_timeout"),
        ("retransmit_base = 0.9", "hub.retransmit_base"),
        ("retransmit_tries = -1", "hub.retransmit_tries"),
        ("half_open_timeout = nan", "hub.half_open_timeout"),
        ("retransmit_timeout = inf", "hub.retransmit_timeout"),
    ],
)
def test_numbersOutOfRange(tmp_path, line, key):
    """Timers and counters have lower bounds; NaN and infinity are refused."""
    assert f": {key}: " in problems(tmp_path, hubWith(line))


@pytest.mark.parametrize(
    "line, key",
    [
        ('ike_proposals = ["aes256gcm16-prfsha384-bogus999"]', "hub.ike_proposals[0]"),
        ('esp_proposals = ["aes256gcm16", "bogus999"]', "hub.esp_proposals[1]"),
    ],
)
def test_unknownAlgorithms(tmp_path, line, key):
    """An unknown algorithm is reported with the proposal parser's message."""
    message = problems(tmp_path, hubWith(line))
    assert f": {key}: " in message
    assert "bogus999" in message


@pytest.mark.parametrize("key", ["ike_proposals", "esp_proposals"])
def test_emptyProposalLists(tmp_path, key):
    """An empty proposal list would accept nothing: refused."""
    message = problems(tmp_path, hubWith(f"{key} = []"))
    assert f": hub.{key}: the list is empty" in message


def test_hubIdentityMustBeValid(tmp_path):
    """A bad hub identity is reported with Identity's message."""
    message = problems(tmp_path, MINIMAL.replace('"hub.example.com"', '"fdqn:hub"'))
    assert ": hub.identity: " in message and "unknown prefix" in message


def test_hubIdentityMustNotBeAWildcard(tmp_path):
    """The hub sends its identity; a pattern makes no sense there."""
    message = problems(tmp_path, MINIMAL.replace('"hub.example.com"', '"*.example.com"'))
    assert ": hub.identity: " in message and "wildcard" in message


def test_saveKeysDirectoryMustExist(tmp_path):
    """save_keys in a missing directory is reported before the daemon starts."""
    message = problems(tmp_path, hubWith('save_keys = "/nonexistent-dir/keys"'))
    assert ": hub.save_keys: " in message


# -- peers: authentication and secrets -----------------------------------------------------


def test_pskAndPskFileBoth(tmp_path, secretFile):
    """Setting both psk and psk_file is ambiguous."""
    message = problems(tmp_path, MINIMAL + f'psk_file = "{secretFile}"\n')
    assert ": peers[0]: set either psk or psk_file, not both" in message


def test_pskNeither(tmp_path):
    """auth = "psk" without a key says how to make one."""
    message = problems(tmp_path, MINIMAL.replace(f'psk = "{PSK}"', ""))
    assert ": peers[0]: " in message and "openssl rand" in message


def test_pskWithAnotherAuthenticator(tmp_path):
    """A psk for a peer that does not use psk is a mistake worth reporting."""
    message = problems(tmp_path, MINIMAL.replace('auth = "psk"', 'auth = "eap-mschapv2"'))
    assert ": peers[0].psk: " in message


@pytest.mark.parametrize("auth", ["PSK", "eap_mschapv2", "", "psk "])
def test_badAuthenticatorNames(tmp_path, auth):
    """Authenticator names are [a-z0-9-]+."""
    message = problems(tmp_path, MINIMAL.replace('auth = "psk"', f'auth = "{auth}"'))
    assert ": peers[0].auth: " in message


def test_otherAuthenticatorsAreLeftToTheService(tmp_path):
    """Any well-formed authenticator name is accepted here; the service checks it exists."""
    config = load(
        tmp_path,
        MINIMAL.replace('auth = "psk"', 'auth = "frobnicate-2"').replace(
            f'psk = "{PSK}"', 'local_auth = "psk"'
        ),
    )
    assert config.peers[0].auth == "frobnicate-2"
    assert config.peers[0].psk is None


@pytest.mark.parametrize(
    "psk, secret",
    [
        (
            "0x" + "00112233445566778899aabbccddeeff",
            bytes.fromhex("00112233445566778899aabbccddeeff"),
        ),
        ("0sAAECAwQFBgcICQoLDA0ODw==", bytes(range(16))),
    ],
)
def test_pskHexAndBase64(tmp_path, psk, secret):
    """strongSwan's 0x (hex) and 0s (base64) notations give binary keys."""
    config = load(tmp_path, MINIMAL.replace(PSK, psk))
    assert config.peers[0].psk == secret


@pytest.mark.parametrize("psk", ["0x00112233445566778899aabbccddeefg", "0s!!!!"])
def test_pskBadEncoding(tmp_path, psk):
    """A 0x or 0s PSK that does not decode is reported."""
    message = problems(tmp_path, MINIMAL.replace(PSK, psk))
    assert ": peers[0].psk: " in message and "not valid" in message


def test_pskShortAfterDecoding(tmp_path):
    """The length rule applies to the decoded key."""
    message = problems(tmp_path, MINIMAL.replace(PSK, "0x00112233445566778899"))
    assert "is 10 bytes" in message


@pytest.fixture
def secretFile(tmp_path):
    path = tmp_path / "alice.psk"
    path.write_text(PSK + "\n")
    path.chmod(0o600)
    return str(path)


def pskFileConfig(path):
    return MINIMAL.replace(f'psk = "{PSK}"', f'psk_file = "{path}"')


def test_pskFile(tmp_path, secretFile):
    """A private psk_file is read, without its trailing newline."""
    assert load(tmp_path, pskFileConfig(secretFile)).peers[0].psk == PSK.encode()


def test_pskFileRelativeToConfigDirectory(tmp_path, secretFile):
    """A relative psk_file is found next to the configuration file."""
    assert load(tmp_path, pskFileConfig("alice.psk")).peers[0].psk == PSK.encode()


def test_pskFileMissing(tmp_path):
    """A psk_file that does not exist is reported with how to create it."""
    message = problems(tmp_path, pskFileConfig("missing.psk"))
    assert ": peers[0].psk_file: " in message and "does not exist" in message
    assert "chmod 600" in message


def test_pskFileTooOpen(tmp_path, secretFile):
    """A psk_file that group or others can read is refused, with the chmod to run."""
    os.chmod(secretFile, 0o644)
    message = problems(tmp_path, pskFileConfig(secretFile))
    assert ": peers[0].psk_file: " in message and "mode 0644" in message
    assert f"chmod 600 {secretFile}" in message


def test_pskFileUnreadable(tmp_path, secretFile):
    """A psk_file that cannot be opened is reported (simulated: tests may run as root)."""
    with mock.patch(
        "ikehub.config.open", side_effect=PermissionError(13, "Permission denied"), create=True
    ):
        validator = __import__("ikehub.config", fromlist=["_Validator"])._Validator("x.toml")
        result = validator.readSecretFile("peers[0].psk_file", secretFile)
    assert result is not None
    expected = (
        f"x.toml: peers[0].psk_file: cannot read {secretFile}: Permission denied; make it "
        "readable by the user ikehub runs as"
    )
    assert validator.problems == [expected]


def test_pskFileIsADirectory(tmp_path):
    """A directory is not a key file."""
    (tmp_path / "keys").mkdir()
    message = problems(tmp_path, pskFileConfig("keys"))
    assert ": peers[0].psk_file: " in message and "directory" in message


def test_pskFileTooShort(tmp_path):
    """The key in a file must be at least 16 bytes too; its content is not shown."""
    path = tmp_path / "short.psk"
    path.write_text("tiny-secret\n")
    path.chmod(0o600)
    message = problems(tmp_path, pskFileConfig(str(path)))
    assert "is 11 bytes" in message and "tiny-secret" not in message


# -- cross references ----------------------------------------------------------------------


def test_unknownPool(tmp_path):
    """A peer's pool must be defined."""
    message = problems(tmp_path, MINIMAL + 'pool = "rw2"\n[pools.rw]\naddresses = "192.0.2.0/24"\n')
    assert ": peers[0].pool: unknown pool 'rw2'" in message and "rw" in message


def test_overlappingPools(tmp_path):
    """Two pools sharing an address are refused."""
    message = problems(
        tmp_path,
        MINIMAL
        + '[pools.a]\naddresses = "198.51.100.0/24"\n'
        + '[pools.b]\naddresses = "198.51.100.200-198.51.100.210"\n',
    )
    assert ": pools.b.addresses: " in message and "overlaps pools.a" in message


def test_duplicatePeerNames(tmp_path):
    """Peer names are unique, including the default peer<N> names."""
    second = f'[[peers]]\nidentity = "b@example.com"\nauth = "psk"\npsk = "{PSK}"\n'
    message = problems(tmp_path, MINIMAL + 'name = "peer1"\n' + second)
    assert ": peers[1].name: 'peer1' is already the name of peers[0]" in message


def test_allProblemsAreReported(tmp_path):
    """Several problems are reported together, one per line: [hub], then pools, then peers."""
    message = problems(tmp_path, hubWith("port = 0\nnatt_port = true") + 'pool = "x"\n')
    lines = message.splitlines()
    assert len(lines) == 3
    assert ": hub.port: " in lines[0]
    assert ": hub.natt_port: " in lines[1]
    assert ": peers[0].pool: " in lines[2]


ODD_VALUES = [
    "true",
    "-1",
    "1e400",
    '""',
    '"x"',
    "[]",
    "[[1], {a = 1}]",
    "{a = 1}",
    "1979-05-27T07:32:00Z",
    "07:32:00",
]


def _withValue(section, key, value):
    lines = MINIMAL.replace(f'psk = "{PSK}"', "").splitlines()
    if section == "hub":
        text = "\n".join(line for line in lines if not line.startswith('identity = "hub'))
        text = text.replace("[hub]", f'[hub]\nidentity = "hub.example.com"\n{key} = {value}')
        if key == "identity":
            text = text.replace('identity = "hub.example.com"\n', "", 1)
        text += f'\npsk = "{PSK}"\n'
    elif section == "pool":
        text = "\n".join(lines) + f'\npsk = "{PSK}"\n[pools.rw]\n'
        text += "" if key == "addresses" else 'addresses = "192.0.2.0/24"\n'
        text += f"{key} = {value}\n"
    else:
        text = "\n".join(line for line in lines if not line.startswith(f"{key} ="))
        text += f"\n{key} = {value}\n"
        if key not in ("psk", "psk_file", "auth"):
            text += f'psk = "{PSK}"\n'
    return text


@pytest.mark.parametrize("value", ODD_VALUES)
@pytest.mark.parametrize(
    "section, key",
    [
        ("hub", key)
        for key in (
            "identity",
            "listen",
            "port",
            "half_open_timeout",
            "save_keys",
            "ike_proposals",
        )
    ]
    + [("pool", key) for key in ("addresses", "dns")]
    + [
        ("peer", key)
        for key in ("name", "identity", "auth", "psk", "psk_file", "pool", "local_ts", "remote_ts")
    ],
)
def test_oddValuesGiveConfigErrorOnly(tmp_path, section, key, value):
    """Any TOML value in any key is either accepted or a ConfigError, never a crash."""
    try:
        load(tmp_path, _withValue(section, key, value))
    except ConfigError as e:
        assert str(e)


# -- [esp], [tun] and [[spd]] ------------------------------------------------------------------


def test_datapathSectionsDefault(tmp_path):
    config = loadConfig(write(tmp_path, MINIMAL))
    assert config.esp.replayWindow == 1024
    assert config.esp.lifetime == 14400.0
    assert config.tun.enabled and config.tun.name == "ikehub0" and config.tun.mtu == 0
    assert config.spd.decide(bytes(20)).action.name == "DISCARD"


def test_datapathSectionsRead(tmp_path):
    text = MINIMAL + textwrap.dedent(
        """
        [esp]
        replay_window = 256
        lifetime = 600
        lifetime_bytes = 1000000

        [tun]
        name = "vpn0"
        mtu = 1400
        address = "198.51.100.1/24"
        routes = ["203.0.113.0/24"]

        [[spd]]
        local = "203.0.113.0/24"
        remote = "0.0.0.0/0"
        action = "bypass"
        """
    )
    config = loadConfig(write(tmp_path, text))
    assert config.esp.replayWindow == 256 and config.esp.lifetimeBytes == 1000000
    assert config.tun.name == "vpn0" and config.tun.mtu == 1400
    assert str(config.tun.address) == "198.51.100.1/24"
    assert [str(r) for r in config.tun.routes] == ["203.0.113.0/24"]


@pytest.mark.parametrize(
    "section, key",
    [
        ("[esp]\nreplay_window = 8\n", "esp.replay_window"),
        ("[esp]\nlifetime = -1\n", "esp.lifetime"),
        ("[esp]\nwindow = 64\n", "esp.window"),
        ('[tun]\nname = "a-name-far-too-long"\n', "tun.name"),
        ("[tun]\nmtu = 100\n", "tun.mtu"),
        ('[tun]\naddress = "300.1.1.1/24"\n', "tun.address"),
        ('[tun]\nroutes = ["203.0.113.1/24"]\n', "tun.routes[0]"),
        ('[[spd]]\nlocal = "x"\nremote = "0.0.0.0/0"\naction = "bypass"\n', "spd"),
        ('[[spd]]\nlocal = "0.0.0.0/0"\nremote = "0.0.0.0/0"\naction = "maybe"\n', "spd"),
    ],
)
def test_datapathSectionErrorsNameTheKey(tmp_path, section, key):
    with pytest.raises(ConfigError) as raised:
        loadConfig(write(tmp_path, MINIMAL + "\n" + section))
    assert f": {key}" in str(raised.value) or f"{key}:" in str(raised.value), str(raised.value)


# -- certificates, CAs, users and how peers authenticate ------------------------------------


def hubPki(directory, keyMode=0o600):
    """A CA in cas/ca.pem, the hub's certificate hub.pem and key hub.key, and a users file."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.pki import dn, issue, writePem

    caKey = ec.generate_private_key(ec.SECP256R1())
    ca = issue(dn("Test CA"), caKey, dn("Test CA"), caKey, ca=True)
    hubKey = ec.generate_private_key(ec.SECP256R1())
    hub = issue(dn("hub.example.com"), hubKey, dn("Test CA"), caKey)
    (directory / "cas").mkdir()
    writePem(directory / "cas" / "ca.pem", ca)
    writePem(directory / "hub.pem", hub)
    writePem(directory / "hub.key", hubKey, mode=keyMode)
    users = directory / "users.toml"
    users.write_text('[[users]]\nname = "carol"\npassword = "carol-password"\n')
    users.chmod(0o600)
    return caKey, ca


EAP_PEER = """
[[peers]]
identity = "bob@example.com"
auth = "eap-mschapv2"
"""


def test_eapPeerNeedsTheHubsCertificate(tmp_path):
    """The hub proves itself with its certificate to EAP peers; without one, say so."""
    message = problems(tmp_path, MINIMAL + EAP_PEER)
    assert ": peers[1]: " in message and "hub.certificate" in message


def test_certificateWithoutKeyAndKeyWithoutCertificate(tmp_path):
    hubPki(tmp_path)
    message = problems(
        tmp_path, MINIMAL.replace('"hub.example.com"', '"hub.example.com"\ncertificate = "hub.pem"')
    )
    assert ": hub.private_key: missing" in message
    message = problems(
        tmp_path, MINIMAL.replace('"hub.example.com"', '"hub.example.com"\nprivate_key = "hub.key"')
    )
    assert ": hub.certificate: missing" in message


def test_keyThatIsNotTheCertificatesKey(tmp_path):
    """A private key for another certificate is found at start, not at the first peer."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.pki import writePem

    hubPki(tmp_path)
    writePem(tmp_path / "other.key", ec.generate_private_key(ec.SECP256R1()), mode=0o600)
    text = MINIMAL.replace(
        '"hub.example.com"', '"hub.example.com"\ncertificate = "hub.pem"\nprivate_key = "other.key"'
    )
    message = problems(tmp_path, text)
    assert ": hub.private_key: is not the key of the certificate" in message


def test_privateKeyReadableByOthersIsRefused(tmp_path):
    hubPki(tmp_path, keyMode=0o644)
    text = MINIMAL.replace(
        '"hub.example.com"', '"hub.example.com"\ncertificate = "hub.pem"\nprivate_key = "hub.key"'
    )
    message = problems(tmp_path, text)
    assert ": hub.private_key: " in message and "hub.key" in message


def test_missingCaDirectoryAndPubkeyPeerWithoutCas(tmp_path):
    message = problems(
        tmp_path, MINIMAL.replace('"hub.example.com"', '"hub.example.com"\nca = "nowhere/"')
    )
    assert ": hub.ca: " in message
    hubPki(tmp_path)
    pubkey = MINIMAL.replace(
        '"hub.example.com"', '"hub.example.com"\ncertificate = "hub.pem"\nprivate_key = "hub.key"'
    )
    pubkey += '\n[[peers]]\nidentity = "gw.example.com"\nauth = "pubkey"\n'
    message = problems(tmp_path, pubkey)
    assert ": peers[1].auth: " in message and "hub.ca" in message


@pytest.mark.parametrize(
    "line, key",
    [
        ('local_auth = "eap"', "local_auth"),
        ("eap_identity = 1", "eap_identity"),
        ('remote_addrs = ["192.0.2.300/32"]', "remote_addrs[0]"),
        ("groups = [1]", "groups[0]"),
    ],
)
def test_badPeerAuthenticationKeys(tmp_path, line, key):
    message = problems(tmp_path, MINIMAL + line + "\n")
    assert f": peers[0].{key}: " in message


def test_localPskNeedsAPskPeer(tmp_path):
    hubPki(tmp_path)
    text = MINIMAL.replace(
        '"hub.example.com"', '"hub.example.com"\ncertificate = "hub.pem"\nprivate_key = "hub.key"'
    )
    message = problems(tmp_path, text + EAP_PEER + 'local_auth = "psk"\n')
    assert ": peers[1].local_auth: " in message


def test_authTablesMustBeTables(tmp_path):
    message = problems(tmp_path, MINIMAL + '\n[auth]\n"eap-radius" = 3\n')
    assert ": auth: " in message


def test_twoAuthenticationRounds(tmp_path):
    """auth = [first, EAP method] asks for RFC 4739's second round."""
    hubPki(tmp_path)
    head = MINIMAL.replace(
        '"hub.example.com"',
        '"hub.example.com"\ncertificate = "hub.pem"\nprivate_key = "hub.key"\nca = "cas"',
    )
    config = load(tmp_path, head + EAP_PEER.replace('"eap-mschapv2"', '["pubkey", "eap-mschapv2"]'))
    assert (config.peers[1].auth, config.peers[1].secondAuth) == ("pubkey", "eap-mschapv2")
    assert config.peers[0].secondAuth is None
    for bad, key in (
        ('["pubkey", "psk"]', "auth[1]"),
        ('["eap-md5", "eap-mschapv2"]', "auth[0]"),
        ('["pubkey"]', "auth"),
        ('["pubkey", 3]', "auth"),
    ):
        message = problems(tmp_path, head + EAP_PEER.replace('"eap-mschapv2"', bad))
        assert f": peers[1].{key}: " in message, message


def test_duplicatesPolicy(tmp_path):
    assert load(tmp_path, MINIMAL).peers[0].duplicates == "replace"
    assert load(tmp_path, MINIMAL + 'duplicates = "never"\n').peers[0].duplicates == "never"
    message = problems(tmp_path, MINIMAL + 'duplicates = "no"\n')
    assert ": peers[0].duplicates: " in message and "several devices" in message


def test_identityRangesAndEapIdentities(tmp_path):
    config = load(
        tmp_path,
        MINIMAL.replace('"alice@example.com"', '"192.0.2.0/24"')
        + 'eap_identities = ["*@corp.example.com", "alice"]\n',
    )
    peer = config.peers[0]
    assert str(peer.identity) == "192.0.2.0/24"
    assert [str(p) for p in peer.eapIdentities] == ["*@corp.example.com", "alice"]
    message = problems(tmp_path, MINIMAL.replace('"alice@example.com"', '"192.0.2.1/24"'))
    assert ": peers[0].identity: " in message
    message = problems(tmp_path, MINIMAL + 'eap_identities = ["%any"]\n')
    assert ": peers[0].eap_identities[0]: " in message


# -- several pools, dual stack, split DNS (configuration payload) -----------------------------

DUAL_POOLS = """
[pools.v4]
addresses = "198.51.100.0/24"
dns = ["192.0.2.53"]

[pools.v6]
addresses = "2001:db8:100::/112"
dns = ["2001:db8:1::53"]
"""


def dualStack(peerLines: str, pools: str = DUAL_POOLS) -> str:
    return MINIMAL + peerLines + "\n" + pools


def test_poolListGivesEveryPool(tmp_path):
    """pool = ["v4", "v6"]: one address per family; pool still names the first."""
    config = load(tmp_path, dualStack('pool = ["v4", "v6"]'))
    [peer] = config.peers
    assert peer.pools == ("v4", "v6")
    assert peer.pool == "v4"
    assert str(config.pools["v6"].first) == "2001:db8:100::1"


def test_singlePoolSpellingStillWorks(tmp_path):
    config = load(tmp_path, dualStack('pool = "v6"'))
    [peer] = config.peers
    assert (peer.pool, peer.pools) == ("v6", ("v6",))


def test_padEntryHoldsEveryLivePool(tmp_path):
    from ikehub.policy.pad import PAD

    config = load(tmp_path, dualStack('pool = ["v4", "v6"]\ndns_domains = ["corp.example.com"]'))
    live = {name: pool.makePool() for name, pool in config.pools.items()}
    [entry] = PAD.fromConfig(config.peers, live).entries
    assert entry.pools == (live["v4"], live["v6"])
    assert entry.pool is live["v4"]
    assert entry.dnsDomains == ("corp.example.com",)


@pytest.mark.parametrize(
    "line, key, fragment",
    [
        ('pool = ["v4", "nope"]', "peers[0].pool[1]", "unknown pool 'nope'"),
        ('pool = ["v4", "v4"]', "peers[0].pool[1]", "pool 'v4' is listed twice"),
        ("pool = []", "peers[0].pool", "the list is empty"),
        ("pool = [1]", "peers[0].pool[0]", "expected a string"),
        ("pool = 1", "peers[0].pool", "expected a string in quotes"),
    ],
)
def test_badPoolLists(tmp_path, line, key, fragment):
    message = problems(tmp_path, dualStack(line))
    assert f": {key}: {fragment}" in message


def test_dnsDomainsAreNormalized(tmp_path):
    config = load(
        tmp_path,
        dualStack('pool = ["v4", "v6"]\ndns_domains = ["Corp.Example.COM.", "lab.example.net"]'),
    )
    assert config.peers[0].dnsDomains == ("corp.example.com", "lab.example.net")


@pytest.mark.parametrize(
    "value, key, fragment",
    [
        ('["."]', "dns_domains[0]", "root domain"),
        ('["*.corp.example.com"]', "dns_domains[0]", "wildcard"),
        ('["bücher.example"]', "dns_domains[0]", "xn--bcher-kva.example"),
        ('["corp..example.com"]', "dns_domains[0]", "empty label"),
        ('["corp_x.example.com"]', "dns_domains[0]", "letters, digits and hyphens"),
        ('["corp.example.com", "CORP.example.com"]', "dns_domains[1]", "listed twice"),
        ('["198.51.100.1"]', "dns_domains[0]", "IP address"),
        ('"corp.example.com"', "dns_domains", "expected a list of strings"),
        ("[]", "dns_domains", "the list is empty"),
    ],
)
def test_badDnsDomainsStopTheStart(tmp_path, value, key, fragment):
    """A bad domain name fails at start, naming the file, the key and what to write."""
    message = problems(tmp_path, dualStack(f'pool = ["v4", "v6"]\ndns_domains = {value}'))
    assert f": peers[0].{key}: " in message
    assert fragment in message


def test_dnsDomainsNeedDnsServers(tmp_path):
    """RFC 8598 sends domains with the servers that resolve them: pools without dns fail."""
    pools = '[pools.v4]\naddresses = "198.51.100.0/24"\n'
    message = problems(
        tmp_path, dualStack('pool = "v4"\ndns_domains = ["corp.example.com"]', pools)
    )
    assert ": peers[0].dns_domains: " in message
    assert "add dns = " in message and "[pools.v4]" in message


def test_dnsDomainsWithoutAPool(tmp_path):
    message = problems(tmp_path, MINIMAL + 'dns_domains = ["corp.example.com"]\n')
    assert ": peers[0].dns_domains: " in message and "give the peer a pool" in message
def test_mobikeCanBeTurnedOff(tmp_path):
    """hub.mobike = false reaches the IKE settings: the hub then does not offer MOBIKE."""
    from ikehub.service import settingsFromConfig

    config = load(tmp_path, hubWith("mobike = false"))
    assert config.mobike is False
    assert settingsFromConfig(config).mobike is False
    assert settingsFromConfig(load(tmp_path, MINIMAL)).mobike is True
# -- IKE fragmentation (RFC 7383) -------------------------------------------------------------


def test_fragmentationDefaultsAndSettings(tmp_path):
    """
    Fragmentation is on with 1280-byte datagrams unless configured, and both keys reach the
    IKE machine's settings.
    """
    from ikehub.service import settingsFromConfig

    config = load(tmp_path, MINIMAL)
    assert (config.fragmentation, config.fragmentSize) == (True, 1280)
    config = load(tmp_path, hubWith("fragmentation = false\nfragment_size = 576"))
    assert (config.fragmentation, config.fragmentSize) == (False, 576)
    settings = settingsFromConfig(config)
    assert (settings.fragmentation, settings.fragmentSize) == (False, 576)


@pytest.mark.parametrize(
    "line, fragment",
    [
        ('fragmentation = "yes"', "expected true or false"),
        ("fragmentation = 1", "expected true or false"),
        ("fragment_size = true", "expected a whole number of bytes"),
        ("fragment_size = 1280.0", "expected a whole number of bytes"),
        ('fragment_size = "1280"', "expected a whole number of bytes"),
        ("fragment_size = 575", "575 is out of range; use 576..65535"),
        ("fragment_size = 0", "0 is out of range; use 576..65535"),
        ("fragment_size = 65536", "65536 is out of range; use 576..65535"),
    ],
)
def test_badFragmentationKeys(tmp_path, line, fragment):
    """Each bad value is named with its key and what to use instead."""
    key = line.split(" =")[0]
    message = problems(tmp_path, hubWith(line))
    assert f": hub.{key}: {fragment}" in message, message


# -- SA lifecycle: dead peer detection, the hub's own rekeys, PFS ------------------------------


def test_lifecycleDefaults(tmp_path):
    config = load(tmp_path, MINIMAL)
    assert (config.dpdDelay, config.ikeRekeyTime, config.esp.requirePfs) == (30.0, 14400.0, False)


def test_lifecycleKeysAreRead(tmp_path):
    text = hubWith("dpd_delay = 10\nike_rekey_time = 0") + "\n[esp]\nrequire_pfs = true\n"
    config = load(tmp_path, text)
    assert (config.dpdDelay, config.ikeRekeyTime, config.esp.requirePfs) == (10.0, 0.0, True)


@pytest.mark.parametrize(
    "text, key, fragment",
    [
        (hubWith("dpd_delay = -1"), "hub.dpd_delay", "-1"),
        (hubWith('dpd_delay = "30s"'), "hub.dpd_delay", "expected a number"),
        (hubWith("ike_rekey_time = true"), "hub.ike_rekey_time", "expected a number"),
        (MINIMAL + '\n[esp]\nrequire_pfs = "yes"\n', "esp.require_pfs", "expected true or false"),
    ],
)
def test_badLifecycleValues(tmp_path, text, key, fragment):
    message = problems(tmp_path, text)
    assert f": {key}: " in message and fragment in message
