"""
Tests for L{ikehub.wire.identity}.

Vectors marked "strongSwan" come from strongSwan's own test suite
(src/libstrongswan/tests/suites/test_identification.c), so they pin that ikehub reads an identity
string the way a strongSwan peer does and therefore expects the same ID payload bytes.
"""

import ipaddress
import warnings

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from hypothesis import given
from hypothesis import strategies as st

from ikehub.wire.constants import IDType
from ikehub.wire.identity import Identity

# -- parsing: strongSwan's vectors ----------------------------------------------------------

STRONGSWAN_FROM_STRING = [
    ("192.168.1.1", IDType.ID_IPV4_ADDR, bytes.fromhex("c0a80101")),
    ("fec0::1", IDType.ID_IPV6_ADDR, bytes.fromhex("fec00000000000000000000000000001")),
    ("fec0::", IDType.ID_IPV6_ADDR, bytes.fromhex("fec00000000000000000000000000000")),
    ("192.168.", IDType.ID_FQDN, b"192.168."),
    ("alice", IDType.ID_FQDN, b"alice"),
    ("any", IDType.ID_FQDN, b"any"),
    ("alice@strongswan.org", IDType.ID_RFC822_ADDR, b"alice@strongswan.org"),
    ("alice@strongswan", IDType.ID_RFC822_ADDR, b"alice@strongswan"),
    ("@strongswan.org", IDType.ID_FQDN, b"strongswan.org"),
    ("@#deadbeef", IDType.ID_KEY_ID, bytes.fromhex("deadbeef")),
    ("@#deadbee", IDType.ID_KEY_ID, bytes.fromhex("0deadbee")),
    ("C=CH", IDType.ID_DER_ASN1_DN, bytes.fromhex("300d310b3009060355040613024348")),
    ("C=CH,", IDType.ID_DER_ASN1_DN, bytes.fromhex("300d310b3009060355040613024348")),
    ("C=CH, ", IDType.ID_DER_ASN1_DN, bytes.fromhex("300d310b3009060355040613024348")),
    ("C=", IDType.ID_DER_ASN1_DN, bytes.fromhex("300b3109300706035504061300")),
    ("IPv4:#c0a80101", IDType.ID_IPV4_ADDR, bytes.fromhex("c0a80101")),
    ("email:tester", IDType.ID_RFC822_ADDR, b"tester"),
    ("{1}:#c0a80101", IDType.ID_IPV4_ADDR, bytes.fromhex("c0a80101")),
    ("{0x02}:tester", IDType.ID_FQDN, b"tester"),
    ("{99}:somedata", 99, b"somedata"),
]


@pytest.mark.parametrize("text, idType, data", STRONGSWAN_FROM_STRING)
def test_fromStringMatchesStrongSwan(text, idType, data):
    """Each string gives the ID type and bytes strongSwan's test suite expects."""
    identity = Identity.fromString(text)
    assert identity.idType == idType
    assert identity.data == data


def test_dnDerIsInWrittenOrderWithPrintableStrings():
    """
    C{C=CH, O=strongSwan, CN=moon} is a SEQUENCE of three single-attribute SETs in the order
    written (C first), each value a PrintableString, as strongSwan's atodn() builds it. The
    expected bytes are written out by hand from X.690 and the attribute OIDs.
    """
    country = b"\x31\x0b\x30\x09\x06\x03\x55\x04\x06\x13\x02CH"
    organization = b"\x31\x13\x30\x11\x06\x03\x55\x04\x0a\x13\x0astrongSwan"
    commonName = b"\x31\x0d\x30\x0b\x06\x03\x55\x04\x03\x13\x04moon"
    body = country + organization + commonName
    expected = b"\x30" + bytes([len(body)]) + body
    assert Identity.fromString("C=CH, O=strongSwan, CN=moon").data == expected


def test_dnIsNotInRfc4514Order():
    """
    An RFC 4514 string lists the RDNs last-first; strongSwan's syntax lists them first-first,
    so the same text in the two conventions gives reversed SEQUENCEs.
    """
    ours = Identity.fromString("CN=moon, O=strongSwan, C=CH").data
    rfc4514 = x509.Name.from_rfc4514_string("CN=moon,O=strongSwan,C=CH")
    assert next(iter(rfc4514)).oid == x509.NameOID.COUNTRY_NAME
    # Ours starts with the CN SET (OID 2.5.4.3) right after the outer header.
    assert ours[2:11] == b"\x31\x0d\x30\x0b\x06\x03\x55\x04\x03"


def test_dnStringTypesFollowStrongSwanFixture():
    """
    strongSwan's equality fuzzing skips offsets 11, 30 and 60 of
    C{C=CH, E=moon@strongswan.org, CN=moon} because they are the ASN.1 string types:
    PrintableString for C and CN, IA5String for the e-mail attribute.
    """
    data = Identity.fromString("C=CH, E=moon@strongswan.org, CN=moon").data
    assert (data[11], data[30], data[60]) == (0x13, 0x16, 0x13)


def test_dnNonPrintableValueIsUtf8String():
    """A value PrintableString cannot carry ('@', non-ASCII) is a UTF8String (tag 12)."""
    data = Identity.fromString("CN=alice@example.com").data
    # SEQUENCE, SET, SEQUENCE headers (6 bytes), the OID (5 bytes), then the value's tag.
    assert data[11] == 0x0C
    assert Identity.fromString("CN=Zoë").data[11] == 0x0C
    assert Identity.fromString("CN=moon").data[11] == 0x13


@pytest.mark.parametrize(
    "text",
    [
        "C=CH, E=moon@strongswan.org, CN=moon",
        "C==CH , E==moon@strongswan.org , CN==moon",
        "  C=CH, E=moon@strongswan.org, CN=moon  ",
        "/C=CH/E=moon@strongswan.org/CN=moon",
        " / C=CH / E=moon@strongswan.org / CN=moon",
        "c=CH, email=moon@strongswan.org, cn=moon",
        "C=CH, emailAddress=moon@strongswan.org, CN=moon",
    ],
)
def test_dnSpellingsStrongSwanTreatsAsEqual(text):
    """Spacing, '/' separators and attribute-name case do not change the DER (strongSwan)."""
    reference = Identity.fromString("C=CH, E=moon@strongswan.org, CN=moon")
    assert Identity.fromString(text) == reference


@pytest.mark.parametrize(
    "text",
    [
        "C=CH/E=moon@strongswan.org/CN=moon",
        "C=CH E=moon@strongswan.org CN=moon",
        "C=CN, E=moon@strongswan.org, CN=moon",
        "E=moon@strongswan.org, C=CH, CN=moon",
    ],
)
def test_dnSpellingsStrongSwanTreatsAsDifferent(text):
    """A different separator, value or order is a different DN (strongSwan)."""
    reference = Identity.fromString("C=CH, E=moon@strongswan.org, CN=moon")
    assert Identity.fromString(text) != reference
    assert not reference.matches(text)


# -- parsing: prefixes and errors ----------------------------------------------------------


@pytest.mark.parametrize(
    "text, idType, data",
    [
        ("fqdn:192.0.2.1", IDType.ID_FQDN, b"192.0.2.1"),
        ("FQDN:host", IDType.ID_FQDN, b"host"),
        ("dns:host", IDType.ID_FQDN, b"host"),
        ("rfc822:bob", IDType.ID_RFC822_ADDR, b"bob"),
        ("@@bob@example.com", IDType.ID_RFC822_ADDR, b"bob@example.com"),
        ("ipv4:192.0.2.1", IDType.ID_IPV4_ADDR, bytes([192, 0, 2, 1])),
        ("ipv6:2001:db8::1", IDType.ID_IPV6_ADDR, ipaddress.ip_address("2001:db8::1").packed),
        ("keyid:0a0b0c", IDType.ID_KEY_ID, b"\x0a\x0b\x0c"),
        ("keyid:#0a0b0c", IDType.ID_KEY_ID, b"\x0a\x0b\x0c"),
        ("dn:C=CH", IDType.ID_DER_ASN1_DN, bytes.fromhex("300d310b3009060355040613024348")),
        ("asn1dn:C=CH", IDType.ID_DER_ASN1_DN, bytes.fromhex("300d310b3009060355040613024348")),
        (
            "asn1dn:#300d310b3009060355040613024348",
            IDType.ID_DER_ASN1_DN,
            bytes.fromhex("300d310b3009060355040613024348"),
        ),
        ("CN=alice@example.com", IDType.ID_DER_ASN1_DN, None),
    ],
)
def test_explicitPrefixesOverrideTheGuess(text, idType, data):
    """A prefix forces the type, whatever the rest looks like."""
    identity = Identity.fromString(text)
    assert identity.idType == idType
    if data is not None:
        assert identity.data == data


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("@", "nothing after"),
        ("@#xyz", "hex"),
        ("ipv4:2001:db8::1", "IPv4"),
        ("ipv6:192.0.2.1", "IPv6"),
        ("ipv4:nonsense", "IPv4"),
        ("fdqn:host.example.com", "unknown prefix 'fdqn:'"),
        ("foo=bar", "unknown attribute 'foo'"),
        ("C=CH, O", "NAME=value"),
        ("%any", "not supported"),
        (" alice@example.com", "whitespace"),
        ("keyid:", "no hex digits"),
    ],
)
def test_badStringsRaiseValueErrorWithMessage(text, fragment):
    """Bad input raises ValueError whose message says what is wrong."""
    with pytest.raises(ValueError) as info:
        Identity.fromString(text)
    assert fragment in str(info.value)


def test_nonStringRaisesValueError():
    """A non-string (say, a TOML integer) is a ValueError, not a TypeError."""
    with pytest.raises(ValueError):
        Identity.fromString(42)


# -- rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, rendered",
    [
        ("cn=strongswan.org, o=strongSwan, c=CH", "CN=strongswan.org, O=strongSwan, C=CH"),
        ("C=CH,O=strongSwan,CN=strongswan.org", "C=CH, O=strongSwan, CN=strongswan.org"),
        ("/C=CH/O=strongSwan/CN=strongswan.org", "C=CH, O=strongSwan, CN=strongswan.org"),
        ("C=CH, email=moon@strongswan.org, CN=moon", "C=CH, E=moon@strongswan.org, CN=moon"),
        ("moon@strongswan.org", "moon@strongswan.org"),
        ("MOON@STRONGSWAN.ORG", "MOON@STRONGSWAN.ORG"),
        ("192.168.1.1", "192.168.1.1"),
        ("fec0:0:0::1", "fec0::1"),
        ("@moon.strongswan.org", "moon.strongswan.org"),
        ("@#deadbeef", "@#deadbeef"),
    ],
)
def test_strMatchesStrongSwanPrinting(text, rendered):
    """C{str} prints what strongSwan prints for the same identity (strongSwan's printf tests)."""
    assert str(Identity.fromString(text)) == rendered


def test_strOfUnknownDnAttributeUsesDottedOid():
    """
    An attribute without a short name (telexNumber, 2.5.4.21) renders as its dotted OID and
    parses back to the same DER. The bytes are written out by hand.
    """
    der = b"\x30\x0e\x31\x0c\x30\x0a\x06\x03\x55\x04\x15\x13\x03123"
    identity = Identity.fromPayload(IDType.ID_DER_ASN1_DN, der)
    assert str(identity) == "2.5.4.21=123"
    assert Identity.fromString(str(identity)) == identity


def test_strOfMultiValuedRdnIsHex():
    """
    strongSwan's vector for C=CH plus telexNumber=123 in one multi-valued RDN: the text syntax
    has no way to say "same RDN", so it renders as asn1dn:#hex and parses back unchanged.
    """
    der = bytes.fromhex("301931173009060355040613024348300a06035504151303313233")
    identity = Identity.fromPayload(IDType.ID_DER_ASN1_DN, der)
    assert str(identity) == "asn1dn:#" + der.hex()
    assert Identity.fromString(str(identity)) == identity


def test_strOfMalformedDnIsHex():
    """
    strongSwan's malformed DN (a NULL where the second OID belongs) cannot be written as text,
    so it renders as asn1dn:#hex, which still parses back to the same bytes.
    """
    der = bytes.fromhex("3020311e30090603550406130243483011050355040a130a7374726f6e675377616e")
    identity = Identity.fromPayload(IDType.ID_DER_ASN1_DN, der)
    assert str(identity) == "asn1dn:#" + der.hex()
    assert Identity.fromString(str(identity)) == identity


def test_strOfFqdnThatLooksLikeAnAddressIsPrefixed():
    """An FQDN whose text is an IP literal needs fqdn: to survive a round trip."""
    identity = Identity.fromPayload(IDType.ID_FQDN, b"192.0.2.1")
    assert str(identity) == "fqdn:192.0.2.1"


def test_strOfUnknownTypeUsesNumericPrefix():
    """An ID type without a name renders strongSwan's {N}: form."""
    assert str(Identity.fromPayload(99, b"\x01\x02")) == "{99}:#0102"


# -- payload -------------------------------------------------------------------------------


def test_toPayloadBodyIsTypeReservedData():
    """RFC 7296 3.5: ID Type (1 octet), RESERVED (3 octets), Identification Data."""
    identity = Identity.fromString("alice@example.com")
    assert identity.toPayloadBody() == b"\x03\x00\x00\x00alice@example.com"
    assert Identity.fromPayloadBody(identity.toPayloadBody()) == identity


def test_fromPayloadWrapsTheFields():
    """fromPayload keeps the bytes and names a known type."""
    identity = Identity.fromPayload(2, memoryview(b"hub.example.com"))
    assert identity == Identity.fromString("hub.example.com")
    assert identity.idType is IDType.ID_FQDN
    assert type(identity.data) is bytes


@pytest.mark.parametrize(
    "idType, data",
    [(1, b"\x01\x02\x03"), (5, b"\x00" * 4), (2, b""), (256, b"x"), (-1, b"x")],
)
def test_fromPayloadRejectsMalformedIdentities(idType, data):
    """Wrong-length addresses, empty data and out-of-range types are ValueErrors."""
    with pytest.raises(ValueError):
        Identity.fromPayload(idType, data)


def test_fromPayloadBodyRejectsShortBody():
    """A body without data is a ValueError."""
    with pytest.raises(ValueError):
        Identity.fromPayloadBody(b"\x02\x00\x00\x00")


# -- matching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identity, pattern, expected",
    [
        # strongSwan's test_matches_string
        ("moon@strongswan.org", "moon@strongswan.org", True),
        ("moon@strongswan.org", "*@strongswan.org", True),
        ("moon@strongswan.org", "*strongswan.org", False),  # an FQDN pattern
        ("moon@strongswan.org", "*.org", False),
        ("vpn.strongswan.org", "vpn.strongswan.org", True),
        ("vpn.strongswan.org", "*.strongswan.org", True),
        ("vpn.strongswan.org", "*strongswan.org", True),
        ("vpn.strongswan.org", "*.org", True),
        ("vpn.strongswan.org", "*", True),
        # case rules
        ("vpn.strongswan.org", "VPN.StrongSwan.ORG", True),
        ("vpn.strongswan.org", "*.STRONGSWAN.org", True),
        ("alice@Example.COM", "alice@example.com", True),
        ("alice@example.com", "*@EXAMPLE.com", True),
        ("Alice@example.com", "alice@example.com", False),
        ("alice@example.com", "bob@example.com", False),
        ("alice@example.org", "*@example.com", False),
        ("example.com", "*.example.com", False),
        # other types compare bytes
        ("192.0.2.1", "192.0.2.1", True),
        ("192.0.2.1", "192.0.2.2", False),
        ("@#0a0b", "@#0a0b", True),
        ("@#0a0b", "@#0a0c", False),
        ("192.0.2.1", "fqdn:192.0.2.1", False),
    ],
)
def test_matches(identity, pattern, expected):
    """matches() applies wildcards and case rules per type."""
    assert Identity.fromString(identity).matches(pattern) is expected
    assert Identity.fromString(identity).matches(Identity.fromString(pattern)) is expected


@pytest.mark.parametrize(
    "pattern, expected",
    [
        # strongSwan's test_matches and test_equals for DNs
        ("C=CH, E=moon@strongswan.org, CN=moon", True),
        ("C=ch, E=moon@STRONGSWAN.ORG, CN=Moon", True),
        ("C=CH, E=*, CN=moon", True),
        ("C=CH, E=*, CN=*", True),
        ("C=*, E=*, CN=*", True),
        ("C=CH, E=*@strongswan.org, CN=moon", False),
        ("C=*, E=*, CN=*, O=BADInc", False),
        ("C=*, E=*", False),
        ("C=*, E=a@b.c, CN=*", False),
    ],
)
def test_matchesDn(pattern, expected):
    """DN patterns compare attribute by attribute; '*' stands for any one value."""
    identity = Identity.fromString("C=CH, E=moon@strongswan.org, CN=moon")
    assert identity.matches(pattern) is expected


def test_matchesDnIgnoresStringType():
    """
    A certificate subject with UTF8String values (what OpenSSL and cryptography write) matches
    the same DN configured as text, which strongSwan encodes as PrintableString.
    """
    utf8 = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "CH", _ASN1Type.PrintableString)]
            ),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(x509.NameOID.COMMON_NAME, "moon", _ASN1Type.UTF8String)]
            ),
        ]
    ).public_bytes()
    received = Identity.fromPayload(IDType.ID_DER_ASN1_DN, utf8)
    assert received != Identity.fromString("C=CH, CN=moon")
    assert received.matches("C=CH, CN=moon")
    assert not received.matches("C=CH, CN=sun")


def test_matchesRejectsBadPatternString():
    """A pattern string that is not an identity raises ValueError."""
    with pytest.raises(ValueError):
        Identity.fromString("alice@example.com").matches("fdqn:x")


def test_wildcardMatchingOfHostileInputIsFast():
    """A long received identity against a many-star pattern finishes (no exponential regex)."""
    identity = Identity.fromPayload(IDType.ID_FQDN, b"a" * 20000 + b"b")
    assert not identity.matches("*a*a*a*a*a*a*a*a*c")


def test_hasWildcards():
    """hasWildcards tells patterns from exact identities."""
    assert Identity.fromString("*@example.com").hasWildcards
    assert Identity.fromString("*.example.com").hasWildcards
    assert Identity.fromString("C=CH, CN=*").hasWildcards
    assert not Identity.fromString("hub.example.com").hasWildcards
    assert not Identity.fromString("C=CH, CN=moon").hasWildcards


# -- round trip ----------------------------------------------------------------------------

_dnAttributeNames = st.sampled_from(
    ["C", "ST", "L", "O", "OU", "CN", "E", "SN", "S", "G", "T", "DC", "UID", "serialNumber"]
)
_dnValues = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=",\x00"),
    min_size=1,
    max_size=20,
)


@st.composite
def _dnStrings(draw):
    parts = draw(st.lists(st.tuples(_dnAttributeNames, _dnValues), min_size=1, max_size=5))
    return ", ".join(f"{name}={value}" for name, value in parts)


_oids = st.sampled_from(
    [
        x509.NameOID.COUNTRY_NAME,
        x509.NameOID.COMMON_NAME,
        x509.NameOID.ORGANIZATION_NAME,
        x509.NameOID.EMAIL_ADDRESS,
        x509.ObjectIdentifier("2.5.4.21"),
    ]
)
_types = st.sampled_from(
    [_ASN1Type.UTF8String, _ASN1Type.PrintableString, _ASN1Type.IA5String, _ASN1Type.BMPString]
)


@st.composite
def _derNames(draw):
    rdns = []
    for _ in range(draw(st.integers(1, 4))):
        oids = draw(st.lists(_oids, min_size=1, max_size=2, unique=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a country name of odd length
            attributes = [
                x509.NameAttribute(
                    oid,
                    draw(st.text(alphabet="abcXYZ 019=,@*é", min_size=2, max_size=2)),
                    draw(_types),
                    _validate=False,
                )
                for oid in oids
            ]
        rdns.append(x509.RelativeDistinguishedName(attributes))
    return Identity.fromPayload(IDType.ID_DER_ASN1_DN, x509.Name(rdns).public_bytes())


def _fromPayloadOrNone(idType, data):
    try:
        return Identity.fromPayload(idType, data)
    except ValueError:
        return None


_identities = st.one_of(
    st.binary(min_size=4, max_size=4).map(lambda b: Identity.fromPayload(1, b)),
    st.binary(min_size=16, max_size=16).map(lambda b: Identity.fromPayload(5, b)),
    st.builds(
        Identity.fromPayload,
        st.sampled_from([2, 3, 9, 10, 11, 0, 200]),
        st.binary(min_size=1, max_size=40),
    ),
    st.builds(
        Identity.fromPayload,
        st.sampled_from([2, 3]),
        st.text(min_size=1, max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
    ),
    _dnStrings().map(Identity.fromString),
    _derNames(),
)


@given(_identities)
def test_strRoundTrips(identity):
    """For every kind of identity, fromString(str(x)) == x."""
    assert Identity.fromString(str(identity)) == identity


@given(st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){1,3}", fullmatch=True))
def test_strOfOrdinaryFqdnIsItself(name):
    """Host names render as plain text, without a prefix."""
    assert str(Identity.fromString(name)) == name


@given(_dnStrings())
def test_strOfTextDnIsReadable(text):
    """A DN written in strongSwan's syntax renders as text again, never hex."""
    assert not str(Identity.fromString(text)).startswith("asn1dn:#")


@given(st.text(max_size=60))
def test_fromStringRaisesOnlyValueError(text):
    """Whatever the text, fromString returns an Identity or raises ValueError."""
    try:
        identity = Identity.fromString(text)
    except ValueError:
        return
    assert Identity.fromString(str(identity)) == identity


@given(st.integers(0, 255), st.binary(max_size=60))
def test_fromPayloadRaisesOnlyValueError(idType, data):
    """Whatever a peer sends, fromPayload returns an Identity or raises ValueError."""
    try:
        identity = Identity.fromPayload(idType, data)
    except ValueError:
        return
    assert Identity.fromString(str(identity)) == identity
    assert identity.matches(identity)
