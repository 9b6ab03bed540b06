"""
Outbound routing: selectors are split into exactly the CIDR blocks C{ipaddress} would make, and
lookups find the newest SA by longest prefix as SAs come and go.
"""

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from ikehub.esp.routes import RouteTable, cidrBlocks


def reference(version: int, first: int, last: int) -> list[tuple[int, int]]:
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return [
        (network.prefixlen, int(network.network_address))
        for network in ipaddress.summarize_address_range(make(first), make(last))
    ]


@st.composite
def ranges(draw, version: int):
    top = (1 << (32 if version == 4 else 128)) - 1
    first = draw(st.integers(0, top))
    # Mostly short ranges, near block edges, as selectors are; sometimes anything.
    span = draw(st.one_of(st.integers(0, 600), st.integers(0, top - first)))
    return first, min(top, first + span)


@given(ranges(4))
def test_ipv4BlocksAreIpaddresssBlocks(r):
    assert list(cidrBlocks(32, *r)) == reference(4, *r)


@given(ranges(6))
def test_ipv6BlocksAreIpaddresssBlocks(r):
    assert list(cidrBlocks(128, *r)) == reference(6, *r)


def test_edgeRanges():
    """
    Single addresses, the whole space, and ranges that start at zero or end at the top.
    """
    for version, bits in ((4, 32), (6, 128)):
        top = (1 << bits) - 1
        for r in ((0, 0), (top, top), (0, top), (0, 5), (top - 5, top), (1, top - 1)):
            assert list(cidrBlocks(bits, *r)) == reference(version, *r), (version, r)


def v4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def rangeOf(network: str):
    net = ipaddress.ip_network(network)
    return (net.version, int(net.network_address), int(net.broadcast_address))


def test_longestPrefixAndNewestWin():
    table = RouteTable()
    table.add([rangeOf("10.0.0.0/8")], "wide")
    table.add([rangeOf("10.1.2.3/32")], "host")
    table.add([(4, v4("10.9.0.1"), v4("10.9.0.6"))], "odd range")
    assert table.lookup(4, v4("10.1.2.3")) == "host"
    assert table.lookup(4, v4("10.1.2.4")) == "wide"
    assert all(table.lookup(4, v4(f"10.9.0.{i}")) == "odd range" for i in range(1, 7))
    assert table.lookup(4, v4("10.9.0.7")) == "wide"
    assert table.lookup(4, v4("11.0.0.1")) is None
    table.add([rangeOf("10.1.2.3/32")], "rekeyed")
    assert table.lookup(4, v4("10.1.2.3")) == "rekeyed"
    table.remove([rangeOf("10.1.2.3/32")], "rekeyed")
    assert table.lookup(4, v4("10.1.2.3")) == "host"


def test_prefixLengthsFollowAddsAndRemoves():
    """
    A prefix length whose last network goes is no longer looked at, and one that gains a
    network again is.
    """
    table = RouteTable()
    table.add([rangeOf("10.0.0.0/8")], "wide")
    table.add([rangeOf("10.1.2.3/32")], "host")
    table.remove([rangeOf("10.1.2.3/32")], "host")
    assert [length for length, _, _ in table._lengths[4]] == [8]
    assert table.lookup(4, v4("10.1.2.3")) == "wide"
    table.add([rangeOf("10.1.2.3/32")], "again")
    assert [length for length, _, _ in table._lengths[4]] == [32, 8]
    assert table.lookup(4, v4("10.1.2.3")) == "again"
    table.remove([rangeOf("10.0.0.0/8")], "wide")
    assert table.lookup(4, v4("10.1.2.4")) is None
    table.remove([rangeOf("10.0.0.0/8")], "not there")  # removing twice is harmless


def test_ipv6Routes():
    table = RouteTable()
    net = ipaddress.ip_network("2001:db8::/64")
    table.add([rangeOf("2001:db8::/64")], "six")
    assert table.lookup(6, int(net.network_address) + 5) == "six"
    assert table.lookup(4, int(net.network_address) & 0xFFFFFFFF) is None
