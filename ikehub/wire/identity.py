"""
IKE identities (RFC 7296 section 3.5) written the way strongSwan writes them.

Operators copy identities between ikehub's configuration, strongSwan's C{swanctl.conf} and log
lines, so C{Identity.fromString} follows strongSwan's C{identification_create_from_string}: the
same string means the same ID type and the same bytes on the wire. That matters most for
distinguished names, where the AUTH payload covers the DER encoding byte for byte: strongSwan
encodes the RDNs in the order written (outermost first) and picks PrintableString when the value
allows it, UTF8String otherwise, IA5String for e-mail attributes.

Where this module differs from strongSwan it refuses instead of guessing: an unknown C{word:}
prefix, a DN with an unknown attribute, or C{%any} raise C{ValueError} (strongSwan silently turns
those into a key id or "any"), and C{keyid:} takes hex.

C{str(identity)} always parses back to an equal identity; when the natural form would not (an FQDN
that looks like an IP address, a DN whose string types or characters the text syntax cannot say),
it falls back to a prefixed form and finally to hex.
"""

from __future__ import annotations

import ipaddress
import re
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.name import _ASN1Type

from ikehub.wire._frozen import fastInit
from ikehub.wire.constants import IDType

__all__ = ["Identity"]

_PRINTABLE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")

_PS = _ASN1Type.PrintableString
_IA5 = _ASN1Type.IA5String

#: strongSwan's attribute names (case-insensitive) -> (dotted OID, preferred string type).
_DN_ATTRIBUTES: dict[str, tuple[str, _ASN1Type]] = {
    "uid": ("0.9.2342.19200300.100.1.1", _PS),
    "dc": ("0.9.2342.19200300.100.1.25", _PS),
    "cn": ("2.5.4.3", _PS),
    "s": ("2.5.4.4", _PS),
    "sn": ("2.5.4.5", _PS),
    "serialnumber": ("2.5.4.5", _PS),
    "c": ("2.5.4.6", _PS),
    "l": ("2.5.4.7", _PS),
    "st": ("2.5.4.8", _PS),
    "o": ("2.5.4.10", _PS),
    "ou": ("2.5.4.11", _PS),
    "t": ("2.5.4.12", _PS),
    "d": ("2.5.4.13", _PS),
    "n": ("2.5.4.41", _PS),
    "g": ("2.5.4.42", _PS),
    "i": ("2.5.4.43", _PS),
    "id": ("2.5.4.45", _PS),
    "dnqualifier": ("2.5.4.46", _PS),
    "en": ("2.16.840.1.113730.3.1.3", _PS),
    "employeenumber": ("2.16.840.1.113730.3.1.3", _PS),
    "e": ("1.2.840.113549.1.9.1", _IA5),
    "email": ("1.2.840.113549.1.9.1", _IA5),
    "emailaddress": ("1.2.840.113549.1.9.1", _IA5),
    "un": ("1.2.840.113549.1.9.2", _IA5),
    "unstructuredname": ("1.2.840.113549.1.9.2", _IA5),
    "ua": ("1.2.840.113549.1.9.8", _PS),
    "unstructuredaddress": ("1.2.840.113549.1.9.8", _PS),
}

#: The name C{__str__} writes for each OID (strongSwan's spelling).
_DN_NAMES: dict[str, str] = {
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
    "2.5.4.3": "CN",
    "2.5.4.4": "S",
    "2.5.4.5": "SN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.12": "T",
    "2.5.4.13": "D",
    "2.5.4.41": "N",
    "2.5.4.42": "G",
    "2.5.4.43": "I",
    "2.5.4.45": "ID",
    "2.5.4.46": "dnQualifier",
    "2.16.840.1.113730.3.1.3": "EN",
    "1.2.840.113549.1.9.1": "E",
    "1.2.840.113549.1.9.2": "UN",
    "1.2.840.113549.1.9.8": "UA",
}

_EMAIL_OID = "1.2.840.113549.1.9.1"

_DOTTED_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")

_PREFIXES: dict[str, IDType] = {
    "fqdn:": IDType.ID_FQDN,
    "dns:": IDType.ID_FQDN,
    "email:": IDType.ID_RFC822_ADDR,
    "rfc822:": IDType.ID_RFC822_ADDR,
    "userfqdn:": IDType.ID_RFC822_ADDR,
    "ipv4:": IDType.ID_IPV4_ADDR,
    "ipv6:": IDType.ID_IPV6_ADDR,
    "keyid:": IDType.ID_KEY_ID,
    "asn1dn:": IDType.ID_DER_ASN1_DN,
    "dn:": IDType.ID_DER_ASN1_DN,
    "asn1gn:": IDType.ID_DER_ASN1_GN,
}

_NUMERIC_PREFIX = re.compile(r"\{(0[xX][0-9A-Fa-f]{1,2}|[0-9]{1,3})\}:")
_WORD_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]*:")
#: Texts that Identity.fromString reads back as the same FQDN / e-mail identity without any
#: doubt (no '@', '=', ':' or whitespace tricks, not an IPv4 literal): rendered without a check.
_PLAIN_FQDN = re.compile(rb"(?=.*[A-Za-z_-])[A-Za-z0-9_-][A-Za-z0-9._-]*")
_PLAIN_EMAIL = re.compile(rb"[A-Za-z0-9._+-]+@[A-Za-z0-9._-]+")

_ADDRESS_LENGTHS = {IDType.ID_IPV4_ADDR: 4, IDType.ID_IPV6_ADDR: 16}

# DER tags of the string types C{__str__} can render as text.
_TEXT_TAGS = {12: "utf-8", 19: "utf-8", 22: "utf-8"}


@fastInit
@dataclass(frozen=True, slots=True)
class Identity:
    """
    The ID type and the identification data of an IDi or IDr payload.

    Equality is byte equality: two identities are equal when the peer would send the same payload.
    Use L{matches} for the looser comparisons a policy needs (case, wildcards, DN string types).
    """

    idType: int
    data: bytes

    def __post_init__(self) -> None:
        if isinstance(self.data, (bytearray, memoryview)):
            object.__setattr__(self, "data", bytes(self.data))
        if not isinstance(self.data, bytes):
            raise TypeError("Identity data must be bytes")
        if isinstance(self.idType, bool) or not isinstance(self.idType, int):
            raise TypeError("Identity idType must be an int")
        if not 0 <= self.idType <= 255:
            raise ValueError(f"ID type {self.idType} does not fit the one-byte ID Type field")
        if not self.data:
            raise ValueError("identification data must not be empty")
        expected = _ADDRESS_LENGTHS.get(self.idType)
        if expected is not None and len(self.data) != expected:
            raise ValueError(
                f"an {_typeName(self.idType)} identity carries {expected} bytes, not "
                f"{len(self.data)}"
            )

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def fromString(cls, text: str) -> Identity:
        """
        Parse strongSwan's identity syntax.

        @raise ValueError: with a message saying what is wrong and what was expected.
        """
        if not isinstance(text, str):
            # ValueError, not TypeError: a TOML value of the wrong type is bad input too.
            raise ValueError(  # noqa: TRY004
                f"an identity must be a string, not {type(text).__name__}"
            )
        if not text:
            raise ValueError("the identity is empty")
        lowered = text.lower()
        for prefix, idType in _PREFIXES.items():
            if lowered.startswith(prefix):
                return cls._fromPrefixed(idType, text[len(prefix) :], prefix)
        numeric = _NUMERIC_PREFIX.match(text)
        if numeric:
            number = numeric.group(1)
            idType = int(number, 16) if number[:2].lower() == "0x" else int(number)
            return cls._fromPrefixed(idType, text[numeric.end() :], numeric.group(0))
        if "=" in text:
            return cls(IDType.ID_DER_ASN1_DN, _encodeDn(text))
        if text != text.strip():
            raise ValueError(
                f"identity {text!r} has leading or trailing whitespace; remove it (or use a "
                "prefix such as fqdn: if it really belongs to the identity)"
            )
        if text.startswith("@"):
            rest = text[1:]
            if rest.startswith("#"):
                return cls(IDType.ID_KEY_ID, _fromHex(rest[1:], text))
            if rest.startswith("@"):
                return cls(IDType.ID_RFC822_ADDR, _nonEmpty(rest[1:], text).encode("utf-8"))
            return cls(IDType.ID_FQDN, _nonEmpty(rest, text).encode("utf-8"))
        if "@" in text:
            return cls(IDType.ID_RFC822_ADDR, text.encode("utf-8"))
        if text in ("%any", "%any6"):
            raise ValueError(
                f"{text} is not supported; name the identity, or use a '*' wildcard pattern such "
                "as *.example.com or *@example.com"
            )
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            address = None
        if address is not None:
            idType = IDType.ID_IPV4_ADDR if address.version == 4 else IDType.ID_IPV6_ADDR
            return cls(idType, address.packed)
        if ":" in text:
            word = _WORD_PREFIX.match(text)
            what = f"unknown prefix {word.group(0)!r}" if word else "not an IPv6 address"
            raise ValueError(
                f"identity {text!r}: {what}; known prefixes are "
                + ", ".join(_PREFIXES)
                + " (use fqdn: for a name that contains ':')"
            )
        return cls(IDType.ID_FQDN, text.encode("utf-8"))

    @classmethod
    def _fromPrefixed(cls, idType: int, rest: str, prefix: str) -> Identity:
        if rest.startswith("#"):
            data = _fromHex(rest[1:], prefix + rest)
        elif idType in (IDType.ID_IPV4_ADDR, IDType.ID_IPV6_ADDR):
            version = 4 if idType == IDType.ID_IPV4_ADDR else 6
            try:
                address = ipaddress.ip_address(rest)
            except ValueError:
                raise ValueError(f"{prefix}{rest!r}: not an IPv{version} address") from None
            if address.version != version:
                raise ValueError(f"{prefix}{rest!r}: not an IPv{version} address")
            data = address.packed
        elif idType == IDType.ID_KEY_ID:
            data = _fromHex(rest, prefix + rest)
        elif idType == IDType.ID_DER_ASN1_DN:
            data = _encodeDn(_nonEmpty(rest, prefix))
        else:
            data = _nonEmpty(rest, prefix).encode("utf-8")
        return cls(_asIdType(idType), data)

    @classmethod
    def fromPayload(cls, idType: int, data: bytes) -> Identity:
        """
        Wrap the fields of a received ID payload.

        @raise ValueError: for empty data, an ID type beyond one byte, or an IP address
            identity of the wrong length.
        """
        if isinstance(idType, int) and not isinstance(idType, bool):
            idType = _asIdType(idType)
        return cls(idType, bytes(data))

    @classmethod
    def fromPayloadBody(cls, body: bytes) -> Identity:
        """
        Parse an ID payload body (ID Type, three reserved octets, data), the inverse of
        L{toPayloadBody}.

        @raise ValueError: when the body is too short or its data is invalid.
        """
        body = bytes(body)
        if len(body) < 5:
            raise ValueError(f"an ID payload body needs at least 5 bytes, got {len(body)}")
        return cls.fromPayload(body[0], body[4:])

    def toPayloadBody(self) -> bytes:
        """
        The ID payload body: ID Type, three reserved octets, identification data.

        These are the bytes the AUTH payload's signed octets cover (RFC 7296 section 2.15).
        """
        return bytes((self.idType, 0, 0, 0)) + self.data

    # -- rendering -------------------------------------------------------------------------

    def __str__(self) -> str:
        # The common cases first: __str__ runs for every log line and lease of an IKE SA.
        if self.idType == IDType.ID_FQDN and _PLAIN_FQDN.fullmatch(self.data):
            return self.data.decode("ascii")
        if self.idType == IDType.ID_RFC822_ADDR and _PLAIN_EMAIL.fullmatch(self.data):
            return self.data.decode("ascii")
        for candidate in self._renderings():
            try:
                if Identity.fromString(candidate) == self:
                    return candidate
            except ValueError:
                continue
        return self._hexRendering()

    def _renderings(self) -> list[str]:
        idType, data = self.idType, self.data
        if idType in (IDType.ID_IPV4_ADDR, IDType.ID_IPV6_ADDR):
            return [str(ipaddress.ip_address(data))]
        if idType == IDType.ID_KEY_ID:
            return []
        if idType == IDType.ID_DER_ASN1_DN:
            text = _renderDn(data)
            return [text] if text is not None else []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return []
        if idType == IDType.ID_FQDN:
            return [text, "fqdn:" + text]
        if idType == IDType.ID_RFC822_ADDR:
            return [text, "email:" + text]
        return []

    def _hexRendering(self) -> str:
        hexData = self.data.hex()
        if self.idType == IDType.ID_KEY_ID:
            return "@#" + hexData
        for prefix, idType in _PREFIXES.items():
            if idType == self.idType:
                return f"{prefix}#{hexData}"
        return f"{{{int(self.idType)}}}:#{hexData}"

    # -- comparison ------------------------------------------------------------------------

    def matches(self, pattern: Identity | str) -> bool:
        """
        Whether this (received) identity is accepted by C{pattern} (from the configuration).

        FQDNs compare case-insensitively, e-mail addresses case-insensitively in the domain
        part; C{*} in either matches any run of characters, even none (C{*.example.com},
        C{*@example.com}). A DN matches when its DER is identical, or when it has the same
        attributes in the same order with the same values regardless of the ASN.1 string type
        (a certificate's UTF8String CN=moon is the PrintableString CN=moon configured as
        text), ignoring case where strongSwan does (PrintableString values, e-mail
        attributes); a pattern value of exactly C{*} matches any value of that attribute.
        Other types compare bytes.

        @raise ValueError: if C{pattern} is a string that is not a valid identity.
        """
        if isinstance(pattern, str):
            pattern = Identity.fromString(pattern)
        if pattern.idType != self.idType:
            return False
        if pattern.data == self.data:
            return True
        if self.idType == IDType.ID_FQDN:
            return _globMatch(pattern.data, self.data, ignoreCase=True)
        if self.idType == IDType.ID_RFC822_ADDR:
            return _matchEmail(pattern.data, self.data)
        if self.idType == IDType.ID_DER_ASN1_DN:
            return _matchDn(pattern.data, self.data)
        return False

    @property
    def hasWildcards(self) -> bool:
        """Whether this identity only makes sense as a pattern for L{matches}."""
        if self.idType in (IDType.ID_FQDN, IDType.ID_RFC822_ADDR):
            return b"*" in self.data
        if self.idType == IDType.ID_DER_ASN1_DN:
            rdns = _parseDn(self.data)
            return bool(rdns) and any(v == b"*" for rdn in rdns for _, _, v in rdn)
        return False


# -- helpers -------------------------------------------------------------------------------


def _asIdType(value: int) -> int:
    try:
        return IDType(value)
    except ValueError:
        return value


def _typeName(idType: int) -> str:
    try:
        return IDType(idType).name
    except ValueError:
        return f"ID type {idType}"


def _nonEmpty(value: str, whole: str) -> str:
    if not value:
        raise ValueError(f"identity {whole!r} has nothing after the prefix")
    return value


def _fromHex(digits: str, whole: str) -> bytes:
    digits = digits.replace(":", "")
    if len(digits) % 2:
        digits = "0" + digits  # strongSwan reads "@#abc" as 0a bc
    try:
        data = bytes.fromhex(digits)
    except ValueError:
        raise ValueError(f"identity {whole!r}: {digits!r} is not a string of hex digits") from None
    if not data:
        raise ValueError(f"identity {whole!r} has no hex digits")
    return data


# -- distinguished names -------------------------------------------------------------------


def _encodeDn(text: str) -> bytes:
    """
    DER-encode a DN written as strongSwan writes it: C{C=CH, O=strongSwan, CN=moon}, or
    C{/C=CH/O=strongSwan/CN=moon}; RDNs go into the SEQUENCE in the order written.
    """
    stripped = text.lstrip(" ")
    separator = "/" if stripped.startswith("/") else ","
    parts = stripped.split(separator)
    if separator == "/":
        parts = parts[1:]
    if parts and not parts[-1].strip():
        parts = parts[:-1]
    if not parts:
        raise ValueError(f"distinguished name {text!r} has no attributes")
    rdns = []
    for part in parts:
        key, equals, value = part.partition("=")
        key = key.strip(" ")
        if not equals or not key:
            raise ValueError(
                f"distinguished name {text!r}: {part.strip()!r} is not of the form NAME=value "
                f"(values cannot contain {separator!r})"
            )
        value = value.lstrip(" =").rstrip(" ")
        known = _DN_ATTRIBUTES.get(key.lower())
        if known is not None:
            dotted, stringType = known
        elif _DOTTED_OID.fullmatch(key):
            dotted, stringType = key, _PS
        else:
            raise ValueError(
                f"distinguished name {text!r}: unknown attribute {key!r}; use one of "
                + ", ".join(sorted(set(_DN_NAMES.values()), key=str.lower))
                + " or a dotted OID"
            )
        if stringType == _PS and not set(value) <= _PRINTABLE:
            stringType = _ASN1Type.UTF8String
        try:
            with warnings.catch_warnings():
                # strongSwan sends what was written, even a three-letter C; so do we.
                warnings.simplefilter("ignore", UserWarning)
                attribute = x509.NameAttribute(
                    x509.ObjectIdentifier(dotted), value, stringType, _validate=False
                )
        except ValueError as e:
            raise ValueError(f"distinguished name {text!r}: {key}={value!r}: {e}") from None
        rdns.append(x509.RelativeDistinguishedName([attribute]))
    return x509.Name(rdns).public_bytes()


def _readTlv(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """One DER element at C{offset}: (tag, contents, offset after it). ValueError if malformed."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    end = offset + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[offset:end], end


def _decodeOid(contents: bytes) -> str:
    if not contents or contents[-1] & 0x80:
        raise ValueError("bad OID")
    arcs: list[int] = []
    value = 0
    for byte in contents:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])


def _parseDn(der: bytes) -> list[list[tuple[str, int, bytes]]] | None:
    """
    The RDNs of a DER Name as lists of (dotted OID, string tag, value bytes); None if the bytes
    are not a Name. Reads only what rendering and matching need.
    """
    try:
        tag, body, end = _readTlv(der, 0)
        if tag != 0x30 or end != len(der):
            return None
        rdns = []
        offset = 0
        while offset < len(body):
            tag, rdnBody, offset = _readTlv(body, offset)
            if tag != 0x31:
                return None
            attributes = []
            inner = 0
            while inner < len(rdnBody):
                tag, pair, inner = _readTlv(rdnBody, inner)
                if tag != 0x30:
                    return None
                oidTag, oid, at = _readTlv(pair, 0)
                valueTag, value, at = _readTlv(pair, at)
                if oidTag != 0x06 or at != len(pair):
                    return None
                attributes.append((_decodeOid(oid), valueTag, value))
            if not attributes:
                return None
            rdns.append(attributes)
        return rdns
    except ValueError:
        return None


def _renderDn(der: bytes) -> str | None:
    """strongSwan's C{C=CH, O=strongSwan, CN=moon} for a DER Name, or None if it cannot."""
    rdns = _parseDn(der)
    if not rdns:
        return None
    parts = []
    for rdn in rdns:
        if len(rdn) != 1:
            return None
        dotted, tag, value = rdn[0]
        encoding = _TEXT_TAGS.get(tag)
        if encoding is None:
            return None
        try:
            text = value.decode(encoding)
        except UnicodeDecodeError:
            return None
        parts.append(f"{_DN_NAMES.get(dotted, dotted)}={text}")
    return ", ".join(parts)


def _matchDn(pattern: bytes, candidate: bytes) -> bool:
    patternRdns = _parseDn(pattern)
    candidateRdns = _parseDn(candidate)
    if not patternRdns or not candidateRdns or len(patternRdns) != len(candidateRdns):
        return False
    for patternRdn, candidateRdn in zip(patternRdns, candidateRdns):
        if len(patternRdn) != len(candidateRdn):
            return False
        for (pOid, pTag, pValue), (cOid, cTag, cValue) in zip(patternRdn, candidateRdn):
            if pOid != cOid:
                return False
            if pValue == b"*" or pValue == cValue:
                continue
            caseless = cTag == pTag and (cTag == 19 or (cTag == 22 and cOid == _EMAIL_OID))
            if not (caseless and pValue.lower() == cValue.lower()):
                return False
    return True


# -- wildcards -----------------------------------------------------------------------------


def _globMatch(pattern: bytes, value: bytes, ignoreCase: bool) -> bool:
    """
    Shell-style matching where C{*} stands for any run of bytes, even none.

    Iterative with a single backtrack point, so a received identity costs time proportional
    to its length times the pattern's, never exponential.
    """
    if ignoreCase:
        pattern, value = pattern.lower(), value.lower()
    p = v = 0
    starAt = -1
    resumeAt = 0
    while v < len(value):
        if p < len(pattern) and pattern[p] == 0x2A:
            starAt, resumeAt = p, v
            p += 1
        elif p < len(pattern) and pattern[p] == value[v]:
            p += 1
            v += 1
        elif starAt >= 0:
            resumeAt += 1
            p, v = starAt + 1, resumeAt
        else:
            return False
    while p < len(pattern) and pattern[p] == 0x2A:
        p += 1
    return p == len(pattern)


def _matchEmail(pattern: bytes, value: bytes) -> bool:
    if b"@" not in pattern:
        return _globMatch(pattern, value, ignoreCase=False)
    if b"@" not in value:
        return False
    patternLocal, _, patternDomain = pattern.rpartition(b"@")
    local, _, domain = value.rpartition(b"@")
    return _globMatch(patternLocal, local, ignoreCase=False) and _globMatch(
        patternDomain, domain, ignoreCase=True
    )
