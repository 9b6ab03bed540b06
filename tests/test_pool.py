"""
Tests for L{ikehub.policy.pool}: virtual IP address pools.
"""

import tracemalloc
from ipaddress import ip_address

import pytest
from zope.interface.verify import verifyObject

from ikehub.interfaces import IAddressPool
from ikehub.policy.pool import AddressPool


def pool(text="198.51.100.10-198.51.100.14", **kwargs):
    return AddressPool.fromString("test", text, **kwargs)


# -- construction --------------------------------------------------------------------------


def test_rangeIsInclusive():
    """C{FIRST-LAST} holds both ends."""
    p = pool("198.51.100.10-198.51.100.200")
    assert (p.first, p.last, p.size) == (
        ip_address("198.51.100.10"),
        ip_address("198.51.100.200"),
        191,
    )


def test_ipv4CidrLeavesOutNetworkAndBroadcast():
    """A /24 lends .1 to .254: 254 addresses."""
    p = pool("198.51.100.0/24")
    assert (str(p.first), str(p.last), p.size) == ("198.51.100.1", "198.51.100.254", 254)


@pytest.mark.parametrize(
    "text, first, last",
    [
        ("203.0.113.8/31", "203.0.113.8", "203.0.113.9"),
        ("203.0.113.8/32", "203.0.113.8", "203.0.113.8"),
        ("203.0.113.8/30", "203.0.113.9", "203.0.113.10"),
    ],
)
def test_ipv4SmallNetworks(text, first, last):
    """/31 and /32 have no network or broadcast address to leave out (RFC 3021)."""
    p = pool(text)
    assert (str(p.first), str(p.last)) == (first, last)


def test_ipv6CidrLeavesOutSubnetRouterAnycast():
    """An IPv6 prefix lends everything but its all-zero (Subnet-Router anycast) address."""
    p = pool("2001:db8::/120")
    assert (str(p.first), str(p.last), p.size) == ("2001:db8::1", "2001:db8::ff", 255)


def test_singleAddressIsAPoolOfOne():
    """A bare address is a pool of one address."""
    assert pool("192.0.2.7").size == 1


def test_dnsServersAreAddresses():
    """DNS servers given as strings become address objects."""
    p = pool(dns=["192.0.2.53", "2001:db8::53"])
    assert p.dns == (ip_address("192.0.2.53"), ip_address("2001:db8::53"))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("198.51.100.20-198.51.100.10", "ends before it starts"),
        ("198.51.100.10-2001:db8::1", "same IP version"),
        ("198.51.100.1/24", "did you mean 198.51.100.0/24"),
        ("198.51.100.0/33", "not a network"),
        ("nonsense", "neither a range nor a network"),
        ("198.51.100.10-", "range end"),
    ],
)
def test_badTextRaisesValueError(text, fragment):
    """Malformed pools raise ValueError with a message that says why."""
    with pytest.raises(ValueError) as info:
        pool(text)
    assert fragment in str(info.value)


def test_badDnsRaisesValueError():
    """A DNS server that is not an address is a ValueError."""
    with pytest.raises(ValueError):
        pool(dns=["dns.example.com"])


def test_providesIAddressPool():
    """AddressPool implements the interface the IKE layer uses."""
    assert verifyObject(IAddressPool, pool())


def test_largePoolAllocatesNothingUpFront():
    """A pool is integers, not a list of free addresses: a /16 or a /96 costs almost nothing."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        pools = [pool("198.18.0.0/16"), pool("2001:db8::/96")]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert pools[0].size == 2**16 - 2
    assert grown < 64 * 1024


def test_acquireInHugePoolIsImmediate():
    """Acquiring from a 2**64-address pool does not walk the pool."""
    p = pool("2001:db8::/64")
    assert p.acquire("alice") == ip_address("2001:db8::1")
    assert p.acquire("bob") == ip_address("2001:db8::2")


# -- lending -------------------------------------------------------------------------------


def test_acquireHandsOutInOrderUntilExhausted():
    """Addresses come out first to last; then None."""
    p = pool()
    got = [p.acquire(f"user{i}") for i in range(5)]
    assert got == [ip_address(f"198.51.100.{n}") for n in range(10, 15)]
    assert p.acquire("user5") is None
    assert p.inUse == 5


def test_releasedAddressIsLentAgain():
    """Once every address was used, a released one is lent again."""
    p = pool()
    for i in range(5):
        p.acquire(f"user{i}")
    assert p.release(ip_address("198.51.100.12"))
    assert p.acquire("newcomer") == ip_address("198.51.100.12")


def test_neverUsedAddressesComeBeforeReleasedOnes():
    """A released address stays free for its owner while unused addresses remain."""
    p = pool()
    alice = p.acquire("alice")
    p.release(alice)
    assert p.acquire("bob") != alice


def test_returningIdentityGetsItsPreviousAddress():
    """An identity that comes back gets the address it had, if nobody else holds it."""
    p = pool()
    alice = p.acquire("alice")
    p.acquire("bob")
    p.release(alice)
    p.acquire("carol")
    assert p.acquire("alice") == alice


def test_returningIdentityGetsAnotherAddressIfItsOldOneIsTaken():
    """If the previous address went to someone else, the identity gets a different one."""
    p = pool("192.0.2.1-192.0.2.2")
    alice = p.acquire("alice")
    p.release(alice)
    p.acquire("bob")  # 192.0.2.2, never used
    assert p.acquire("carol") == alice  # the only free one
    assert p.acquire("alice") is None


def test_releasedAddressesAreReusedOldestFirst():
    """The address released longest ago is lent first."""
    p = pool("192.0.2.1-192.0.2.3")
    a, _, c = (p.acquire(name) for name in "abc")
    p.release(c)
    p.release(a)
    assert p.acquire("x") == c
    assert p.acquire("y") == a


def test_rememberedIdentitiesAreBounded():
    """Only the most recent C{rememberLimit} identities keep a claim on their old address."""
    p = AddressPool.fromString("test", "192.0.2.1-192.0.2.10")
    p = AddressPool("test", p.first, p.last, rememberLimit=2)
    alice = p.acquire("alice")
    p.release(alice)
    p.release(p.acquire("bob"))
    p.release(p.acquire("carol"))  # alice is forgotten now
    assert p.acquire("alice") != alice


def test_doubleReleaseDoesNotLendTwice():
    """Releasing twice is refused, so one address never goes to two peers."""
    p = pool("192.0.2.1-192.0.2.1")
    address = p.acquire("alice")
    assert p.release(address)
    assert not p.release(address)
    assert p.acquire("bob") == address
    assert p.acquire("carol") is None


def test_releaseOfForeignAddressIsRefused():
    """An address outside the pool, or not lent, is refused without harm."""
    p = pool()
    assert not p.release(ip_address("203.0.113.1"))
    assert not p.release(ip_address("198.51.100.10"))
    assert not p.release(ip_address("2001:db8::1"))
    assert p.inUse == 0


def test_containsAndIsInUse():
    """contains() is about the range, isInUse() about lending."""
    p = pool()
    assert p.contains(ip_address("198.51.100.10"))
    assert p.contains("198.51.100.14")
    assert not p.contains(ip_address("198.51.100.15"))
    assert not p.contains(ip_address("2001:db8::1"))
    assert not p.contains("not an address")
    address = p.acquire("alice")
    assert p.isInUse(address)
    p.release(address)
    assert not p.isInUse(address)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("192.0.2.1-192.0.2.10", "192.0.2.10-192.0.2.20", True),
        ("192.0.2.1-192.0.2.10", "192.0.2.11-192.0.2.20", False),
        ("192.0.2.0/24", "192.0.2.100-192.0.2.101", True),
        ("192.0.2.0/24", "2001:db8::/120", False),
    ],
)
def test_overlaps(a, b, expected):
    """overlaps() is true when two pools share an address, in either order."""
    assert pool(a).overlaps(pool(b)) is expected
    assert pool(b).overlaps(pool(a)) is expected
