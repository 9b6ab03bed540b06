"""
Identity patterns a PAD entry can hold beyond strongSwan's identity syntax (which
L{ikehub.wire.identity.Identity} parses, wildcards included): a range of IP addresses, for
devices that identify by address (ID_IPV4_ADDR / ID_IPV6_ADDR in IDi).
"""

from __future__ import annotations

import ipaddress

from ikehub.wire.constants import IDType
from ikehub.wire.identity import Identity

__all__ = ["AddressRangePattern", "identityAdmits", "parseIdentityPattern"]


class AddressRangePattern:
    """
    Admits an IP-address identity inside C{first}..C{last} (a network like 192.0.2.0/24 or
    a range like 192.0.2.10-192.0.2.20), compared as integers.
    """

    __slots__ = ("first", "last", "text", "_idType")

    def __init__(self, first, last, text: str) -> None:
        if first.version != last.version or int(first) > int(last):
            raise ValueError(f"{text!r}: the range's ends are of different families or reversed")
        self.first, self.last, self.text = first, last, text
        self._idType = IDType.ID_IPV4_ADDR if first.version == 4 else IDType.ID_IPV6_ADDR

    def admits(self, identity: Identity) -> bool:
        if identity.idType != self._idType:
            return False
        value = int.from_bytes(identity.data, "big")
        return int(self.first) <= value <= int(self.last)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"AddressRangePattern({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AddressRangePattern) and (self.first, self.last) == (
            other.first,
            other.last,
        )

    def __hash__(self) -> int:
        return hash((self.first, self.last))


def parseIdentityPattern(text: str) -> Identity | AddressRangePattern:
    """
    strongSwan's identity syntax, or an address network (C{192.0.2.0/24}) or range
    (C{192.0.2.10-192.0.2.20}) of identities.

    @raise ValueError: saying what is wrong.
    """
    if isinstance(text, str) and "/" in text and "=" not in text and "@" not in text:
        try:
            network = ipaddress.ip_network(text.strip(), strict=True)
        except ValueError as e:
            raise ValueError(f"{text!r} is not an address network like 192.0.2.0/24: {e}") from None
        return AddressRangePattern(network[0], network[-1], text.strip())
    if isinstance(text, str) and text.count("-") == 1 and "=" not in text and "@" not in text:
        left, right = (part.strip() for part in text.split("-"))
        try:
            first, last = ipaddress.ip_address(left), ipaddress.ip_address(right)
        except ValueError:
            return Identity.fromString(text)  # an FQDN with a hyphen, most likely
        return AddressRangePattern(first, last, text.strip())
    return Identity.fromString(text)


def identityAdmits(pattern, identity: Identity) -> bool:
    """Whether a configured C{pattern} (Identity or AddressRangePattern) admits C{identity}."""
    if type(pattern) is AddressRangePattern:
        return pattern.admits(identity)
    return identity.matches(pattern)
