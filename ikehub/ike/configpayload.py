"""
The values inside configuration attributes (RFC 7296 section 3.15.1, RFC 8598 section 4).

The CP payload itself is a codec in C{ikehub.wire.payloads}; this module knows what the bytes of
the attributes the hub answers mean: a virtual address, a protected subnet, a split-DNS domain.
The config validates domain names here too, so that a name the hub would send is a name it
accepted at start.
"""

import ipaddress
import re

from ikehub.wire.constants import CfgType, ConfigAttributeType
from ikehub.wire.payloads import ConfigAttribute

__all__ = [
    "addressAttribute",
    "domainAttribute",
    "grantedAddresses",
    "normalizeDnsDomain",
    "readAddress",
    "subnetAttribute",
]

_IP4_ADDRESS = ConfigAttributeType.INTERNAL_IP4_ADDRESS
_IP6_ADDRESS = ConfigAttributeType.INTERNAL_IP6_ADDRESS
#: A label of an A-label domain name (RFC 5890, RFC 1123): letters, digits and inner hyphens.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: The longest domain name in presentation form without the final dot (RFC 1035 section 2.3.4).
MAX_DOMAIN_LENGTH = 253


def addressAttribute(address) -> ConfigAttribute:
    """
    INTERNAL_IP4_ADDRESS, or INTERNAL_IP6_ADDRESS with prefix length 128. RFC 7296 leaves the
    prefix length to the responder (section 3.15.3's example, like strongSwan, says 64); 128
    claims no on-link neighbours, since the address alone is the client's and the pool it came
    from need not be a /64.
    """
    if address.version == 4:
        return ConfigAttribute(_IP4_ADDRESS, address.packed)
    return ConfigAttribute(_IP6_ADDRESS, address.packed + b"\x80")


def readAddress(attribute: ConfigAttribute):
    """
    The address in an INTERNAL_IP4_ADDRESS or INTERNAL_IP6_ADDRESS attribute of a CFG_REPLY, or
    None when the attribute is another one or malformed (an IPv6 address is 16 bytes and a
    prefix length of at most 128; any such prefix length is accepted, strongSwan sends 64).
    """
    value = attribute.value
    if attribute.attrType == _IP4_ADDRESS and len(value) == 4:
        return ipaddress.IPv4Address(value)
    if attribute.attrType == _IP6_ADDRESS and len(value) == 17 and value[16] <= 128:
        return ipaddress.IPv6Address(value[:16])
    return None


def grantedAddresses(request, reply) -> list:
    """
    The addresses a responder's CP payload C{reply} gives for our CFG_REQUEST C{request}: of
    each address type at most as many as the request asked for (RFC 7296 section 3.15.1: the
    responder may send only up to the number requested), none of a type it did not ask for,
    none of the wrong length (L{readAddress}), and none at all unless C{reply} is a CFG_REPLY.
    """
    if reply.cfgType != CfgType.CFG_REPLY:
        return []
    asked: dict[int, int] = {}
    for attribute in request.attributes:
        if attribute.attrType == _IP4_ADDRESS or attribute.attrType == _IP6_ADDRESS:
            asked[attribute.attrType] = asked.get(attribute.attrType, 0) + 1
    granted = []
    for attribute in reply.attributes:
        left = asked.get(attribute.attrType)
        if left:
            address = readAddress(attribute)
            if address is not None:
                asked[attribute.attrType] = left - 1
                granted.append(address)
    return granted


def subnetAttribute(network) -> ConfigAttribute:
    """
    INTERNAL_IP4_SUBNET (address and netmask) or INTERNAL_IP6_SUBNET (address and prefix
    length): a network the hub protects, which Windows and macOS route into the tunnel.
    """
    if network.version == 4:
        return ConfigAttribute(
            ConfigAttributeType.INTERNAL_IP4_SUBNET,
            network.network_address.packed + network.netmask.packed,
        )
    return ConfigAttribute(
        ConfigAttributeType.INTERNAL_IP6_SUBNET,
        network.network_address.packed + bytes((network.prefixlen,)),
    )


def domainAttribute(domain: str) -> ConfigAttribute:
    """INTERNAL_DNS_DOMAIN (RFC 8598): a domain from L{normalizeDnsDomain}, as ASCII octets."""
    return ConfigAttribute(ConfigAttributeType.INTERNAL_DNS_DOMAIN, domain.encode("ascii"))


def normalizeDnsDomain(text: str) -> str:
    """
    A split-DNS domain as RFC 8598 section 4 sends it: a fully qualified name in presentation
    form, in A-labels, here lowercase and without the final dot.

    @raise ValueError: saying what is wrong and what to write instead.
    """
    name = text.strip()
    if name.endswith(".") and name != ".":
        name = name[:-1]
    if not name or name == ".":
        raise ValueError(
            "the root domain would send every name to the hub's DNS servers, which is not "
            "split DNS; give a domain like corp.example.com"
        )
    if "*" in name:
        raise ValueError(
            f"{text!r} has a wildcard; a domain already covers its subdomains, so write "
            f"{name.lstrip('*.') or 'corp.example.com'!r}"
        )
    if not name.isascii():
        try:
            hint = f" ({name.encode('idna').decode('ascii').lower()!r})"
        except UnicodeError:
            hint = ""
        raise ValueError(f"{text!r} is not ASCII; RFC 8598 sends the A-label form (xn--...){hint}")
    name = name.lower()
    if len(name) > MAX_DOMAIN_LENGTH:
        raise ValueError(
            f"{text!r} is {len(name)} characters long; a domain name has at most "
            f"{MAX_DOMAIN_LENGTH}"
        )
    for label in name.split("."):
        if not label:
            raise ValueError(f"{text!r} has an empty label (two dots in a row, or a leading dot)")
        if len(label) > 63:
            raise ValueError(f"{text!r}: the label {label[:20]!r}... is longer than 63 characters")
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"{text!r}: the label {label!r} may hold only letters, digits and hyphens, "
                "not at its start or end"
            )
    if name.rsplit(".", 1)[-1].isdigit():
        raise ValueError(f"{text!r} looks like an IP address, not a domain name")
    return name
