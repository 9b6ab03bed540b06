"""
The configuration payload in memory (RFC 7296 section 3.15, RFC 8598): IPv6 and dual-stack
pools, split DNS, split include (INTERNAL_IP4/IP6_SUBNET) and pool exhaustion, between our
initiator and the hub on a task.Clock, plus CP requests built by hand.
"""

import ipaddress

from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from ikehub.esp.datapath import ESPDatapath
from ikehub.ike.configpayload import (
    addressAttribute,
    grantedAddresses,
    normalizeDnsDomain,
    readAddress,
    subnetAttribute,
)
from ikehub.ike.sa import IKESA, IKEState
from ikehub.net.memorysink import MemoryPacketInterface
from ikehub.policy.pad import PAD, PADEntry
from ikehub.policy.pool import AddressPool
from ikehub.policy.spd import SPD
from ikehub.wire.constants import CfgType, ConfigAttributeType
from ikehub.wire.identity import Identity
from ikehub.wire.payloads import ConfigAttribute, CPPayload

from tests.ikepump import CLIENT, HUB, PSK, Pair, clientSpec
from tests.test_esp_datapath import Wire, ipv4

A = ConfigAttributeType
V4 = ipaddress.ip_network("0.0.0.0/0")
V6 = ipaddress.ip_network("::/0")
LAN4 = ipaddress.ip_network("203.0.113.0/24")
LAN6 = ipaddress.ip_network("2001:db8:2::/64")
DUAL = (A.INTERNAL_IP4_ADDRESS, A.INTERNAL_IP6_ADDRESS, A.INTERNAL_IP4_DNS, A.INTERNAL_IP6_DNS)


def v4Pool(text="198.51.100.10-198.51.100.20", name="v4", dns=("192.0.2.53",)):
    return AddressPool.fromString(name, text, dns)


def v6Pool(text="2001:db8:100::/120", name="v6", dns=("2001:db8:1::53",)):
    return AddressPool.fromString(name, text, dns)


def entry(pools=(), localTs=(LAN4, LAN6), dnsDomains=(), identity="*@example.com"):
    return PADEntry(
        name="roadwarriors",
        identity=Identity.fromString(identity),
        auth="psk",
        psk=PSK,
        pool=None,
        pools=tuple(pools),
        localTs=localTs,
        remoteTs=("dynamic",),
        duplicates="never",
        dnsDomains=tuple(dnsDomains),
    )


def pairWith(*pools, **fields):
    pad = PAD([entry(pools, **fields)])
    pair = Pair(pad=pad, pool=pools[0] if pools else None)
    events = []
    pair.hub.log = Logger(observer=events.append)
    pair.events = events
    return pair


def spec(*attributes, identity="alice@example.com", localTs=(V4, V6), remoteTs=(LAN4, LAN6)):
    return clientSpec(
        identity=Identity.fromString(identity),
        configAttributes=attributes,
        localTs=localTs,
        remoteTs=remoteTs,
    )


def connect(pair, *attributes, **kwargs):
    [sa], failures = pair.connect(spec(*attributes, **kwargs))
    assert failures == [], failures
    return sa


def replied(sa, attrType):
    """The values of the CFG_REPLY attributes of type C{attrType} the client received."""
    return [a.value for a in sa.configReply if a.attrType == attrType]


def hubSaOf(pair, sa):
    return pair.hub.sas[sa.spiR]


def eventsNamed(pair, name):
    return [e for e in pair.events if e.get("event") == name]


class DualStackTests(SynchronousTestCase):
    def test_oneAddressOfEachFamilyFromTwoPools(self):
        four, six = v4Pool(), v6Pool()
        pair = pairWith(four, six)
        sa = connect(pair, *DUAL)
        vips = [address for _, address in sa.virtualIps]
        self.assertEqual(vips, [four.first, six.first])
        self.assertEqual((four.inUse, six.inUse), (1, 1))
        # INTERNAL_IP6_ADDRESS carries the address and a prefix length (RFC 7296 3.15.1).
        self.assertEqual(replied(sa, A.INTERNAL_IP6_ADDRESS), [six.first.packed + b"\x80"])
        self.assertEqual(
            replied(sa, A.INTERNAL_IP4_DNS), [ipaddress.ip_address("192.0.2.53").packed]
        )
        self.assertEqual(
            replied(sa, A.INTERNAL_IP6_DNS), [ipaddress.ip_address("2001:db8:1::53").packed]
        )

    def test_dynamicBecomesEachVirtualIp(self):
        four, six = v4Pool(), v6Pool()
        pair = pairWith(four, six)
        sa = connect(pair, *DUAL)
        [child] = hubSaOf(pair, sa).children
        self.assertEqual(
            [str(ts) for ts in child.remoteTs], [f"{four.first}/32", f"{six.first}/128"]
        )
        self.assertEqual([str(ts) for ts in child.localTs], [str(LAN4), str(LAN6)])

    def test_deletingTheSaReleasesEveryPoolsLease(self):
        four, six = v4Pool(), v6Pool()
        pair = pairWith(four, six)
        sa = connect(pair, *DUAL)
        before = [a for _, a in sa.virtualIps]
        pair.client.deleteIkeSa(sa)
        pair.net.pump()
        self.assertEqual(pair.hub.sas, {})
        self.assertEqual((four.inUse, six.inUse), (0, 0))
        # The leases stick: alice gets both addresses back.
        again = connect(pair, *DUAL)
        self.assertEqual([a for _, a in again.virtualIps], before)

    def test_ipv6OnlyPool(self):
        six = v6Pool()
        pair = pairWith(six)
        sa = connect(pair, A.INTERNAL_IP6_ADDRESS, localTs=(V6,), remoteTs=(LAN6,))
        self.assertEqual([a for _, a in sa.virtualIps], [six.first])
        [child] = hubSaOf(pair, sa).children
        self.assertEqual([str(ts) for ts in child.remoteTs], [f"{six.first}/128"])

    def test_familyWithoutPoolIsIgnoredTheOtherStillWorks(self):
        """RFC 7296 3.15.4: a type the responder does not support is ignored."""
        four = v4Pool()
        pair = pairWith(four)
        sa = connect(pair, *DUAL)
        self.assertEqual([a for _, a in sa.virtualIps], [four.first])
        self.assertEqual(replied(sa, A.INTERNAL_IP6_ADDRESS), [])
        self.assertEqual(len(hubSaOf(pair, sa).children), 1)
        self.assertEqual(pair.hub.counters["cp_family_without_pool"], 1)
        self.assertEqual(pair.hub.counters["sent_internal_address_failure"], 0)

    def test_onlyAFamilyWithoutPoolIsInternalAddressFailure(self):
        """
        Nothing asked for can be given: INTERNAL_ADDRESS_FAILURE; the IKE SA stands without a
        CHILD SA (RFC 7296 3.15.4), and no lease is held.
        """
        four = v4Pool()
        pair = pairWith(four)
        sa = connect(pair, A.INTERNAL_IP6_ADDRESS)
        self.assertEqual(sa.virtualIps, [])
        self.assertEqual(sa.children, [])
        hubSa = hubSaOf(pair, sa)
        self.assertIs(hubSa.state, IKEState.ESTABLISHED)
        self.assertEqual((hubSa.children, hubSa.virtualIps), ([], []))
        self.assertEqual(four.inUse, 0)
        self.assertEqual(len(pair.hubSad), 0)
        self.assertEqual(pair.hub.counters["sent_internal_address_failure"], 1)
        [failed] = eventsNamed(pair, "child_sa_failed")
        self.assertIn("INTERNAL_ADDRESS_FAILURE", failed["reason"])
        self.assertIn("v4 (IPv4)", failed["reason"])

    def test_entryWithoutPoolsIgnoresAddressRequests(self):
        """A hub that lends nothing to this peer ignores the request rather than failing it."""
        pair = pairWith()
        sa = connect(pair, *DUAL)
        self.assertEqual(sa.virtualIps, [])
        self.assertEqual(pair.hub.counters["sent_internal_address_failure"], 0)

    def test_nextPoolOfAFamilyWhenTheFirstIsFull(self):
        small = v4Pool("198.51.100.10", name="small")
        spare = v4Pool("198.51.100.100-198.51.100.101", name="spare")
        pair = pairWith(small, spare)
        first = connect(pair, A.INTERNAL_IP4_ADDRESS)
        second = connect(pair, A.INTERNAL_IP4_ADDRESS, identity="bob@example.com")
        self.assertEqual(first.virtualIps[0][1], small.first)
        self.assertEqual(second.virtualIps[0][1], spare.first)
        self.assertEqual(pair.hub.counters["pool_exhausted"], 0)

    def test_manyRequestsForOneFamilyGetOneAddress(self):
        four = v4Pool()
        pair = pairWith(four)
        sa = connect(pair, *([A.INTERNAL_IP4_ADDRESS] * 200))
        self.assertEqual(len(sa.virtualIps), 1)
        self.assertEqual(four.inUse, 1)


class ExhaustionTests(SynchronousTestCase):
    def test_exhaustedIpv6PoolWithNothingElseIsInternalAddressFailure(self):
        six = v6Pool("2001:db8:100::7")
        pair = pairWith(six)
        first = connect(pair, A.INTERNAL_IP6_ADDRESS)
        second = connect(pair, A.INTERNAL_IP6_ADDRESS, identity="bob@example.com")
        self.assertEqual(first.virtualIps[0][1], six.first)
        self.assertEqual((second.virtualIps, second.children), ([], []))
        self.assertEqual(len(first.children), 1)
        self.assertEqual(six.inUse, 1)
        self.assertEqual(pair.hub.counters["pool_exhausted"], 1)
        self.assertEqual(pair.hub.counters["sent_internal_address_failure"], 1)
        [exhausted] = eventsNamed(pair, "pool_exhausted")
        self.assertEqual((exhausted["pool"], exhausted["family"]), ("v6", 6))
        self.assertEqual(exhausted["identity"], "bob@example.com")

    def test_exhaustedIpv6PoolStillGivesTheIpv4Address(self):
        """Some addresses given, some not: the reply carries the given ones only."""
        four, six = v4Pool(), v6Pool("2001:db8:100::7")
        pair = pairWith(four, six)
        connect(pair, *DUAL)
        second = connect(pair, *DUAL, identity="bob@example.com")
        self.assertEqual([a.version for _, a in second.virtualIps], [4])
        self.assertEqual(len(second.children), 1)
        self.assertEqual(pair.hub.counters["pool_exhausted"], 1)
        self.assertEqual(pair.hub.counters["sent_internal_address_failure"], 0)

    def test_addressComesFreeWhenItsHolderLeaves(self):
        four = v4Pool("198.51.100.10")
        pair = pairWith(four)
        first = connect(pair, A.INTERNAL_IP4_ADDRESS)
        refused = connect(pair, A.INTERNAL_IP4_ADDRESS, identity="bob@example.com")
        self.assertEqual(refused.virtualIps, [])
        pair.client.deleteIkeSa(refused)
        pair.client.deleteIkeSa(first)
        pair.net.pump()
        self.assertEqual(pair.hub.sas, {})
        again = connect(pair, A.INTERNAL_IP4_ADDRESS, identity="bob@example.com")
        self.assertEqual(again.virtualIps[0][1], four.first)
        self.assertEqual(len(again.children), 1)


class SplitDnsTests(SynchronousTestCase):
    DOMAINS = ("corp.example.com", "lab.example.net")

    def domainsGot(self, *attributes, pools=None):
        pair = pairWith(*(pools or (v4Pool(),)), dnsDomains=self.DOMAINS)
        sa = connect(pair, *attributes)
        return [v.decode("ascii") for v in replied(sa, A.INTERNAL_DNS_DOMAIN)], sa

    def test_domainsGoToAnInitiatorThatAsks(self):
        domains, sa = self.domainsGot(
            A.INTERNAL_IP4_ADDRESS, A.INTERNAL_IP4_DNS, A.INTERNAL_DNS_DOMAIN
        )
        self.assertEqual(domains, list(self.DOMAINS))
        # RFC 8598 3.2: never without the DNS servers that resolve them.
        self.assertEqual(len(replied(sa, A.INTERNAL_IP4_DNS)), 1)

    def test_noDomainsUnlessAsked(self):
        domains, _ = self.domainsGot(A.INTERNAL_IP4_ADDRESS, A.INTERNAL_IP4_DNS)
        self.assertEqual(domains, [])

    def test_theInitiatorsOwnDomainIsOnlyAHint(self):
        """A non-empty request names a domain the client wants; the hub sends its own list."""
        pair = pairWith(v4Pool(), dnsDomains=self.DOMAINS)
        cp = CPPayload(
            CfgType.CFG_REQUEST,
            (
                ConfigAttribute(A.INTERNAL_IP4_ADDRESS, b""),
                ConfigAttribute(A.INTERNAL_DNS_DOMAIN, b"evil.example.org"),
            ),
        )
        reply = configReply(pair, cp)
        self.assertEqual(
            [a.value for a in reply.attributes if a.attrType == A.INTERNAL_DNS_DOMAIN],
            [d.encode() for d in self.DOMAINS],
        )

    def test_noDomainsWithoutDnsServers(self):
        """Only the IPv6 pool lent, and it has no DNS servers: no domains either."""
        domains, sa = self.domainsGot(
            A.INTERNAL_IP6_ADDRESS, A.INTERNAL_DNS_DOMAIN, pools=(v4Pool(), v6Pool(dns=()))
        )
        self.assertEqual(len(sa.virtualIps), 1)
        self.assertEqual(domains, [])

    def test_ipv6DnsServersAlsoCarryTheDomains(self):
        domains, sa = self.domainsGot(
            A.INTERNAL_IP6_ADDRESS, A.INTERNAL_IP6_DNS, A.INTERNAL_DNS_DOMAIN, pools=(v6Pool(),)
        )
        self.assertEqual(domains, list(self.DOMAINS))
        self.assertEqual(len(replied(sa, A.INTERNAL_IP6_DNS)), 1)


class SplitIncludeTests(SynchronousTestCase):
    def test_subnetsOfEachFamilyWhenAsked(self):
        pair = pairWith(v4Pool(), v6Pool())
        sa = connect(pair, *DUAL, A.INTERNAL_IP4_SUBNET, A.INTERNAL_IP6_SUBNET)
        self.assertEqual(
            replied(sa, A.INTERNAL_IP4_SUBNET),
            [LAN4.network_address.packed + ipaddress.ip_address("255.255.255.0").packed],
        )
        self.assertEqual(
            replied(sa, A.INTERNAL_IP6_SUBNET), [LAN6.network_address.packed + bytes([64])]
        )

    def test_onlyTheFamilyAskedFor(self):
        pair = pairWith(v4Pool())
        sa = connect(pair, A.INTERNAL_IP4_ADDRESS, A.INTERNAL_IP4_SUBNET)
        self.assertEqual(len(replied(sa, A.INTERNAL_IP4_SUBNET)), 1)
        self.assertEqual(replied(sa, A.INTERNAL_IP6_SUBNET), [])

    def test_noSubnetsUnlessAsked(self):
        pair = pairWith(v4Pool())
        sa = connect(pair, A.INTERNAL_IP4_ADDRESS)
        self.assertEqual(replied(sa, A.INTERNAL_IP4_SUBNET), [])

    def test_staticPeerWithoutPoolGetsSubnets(self):
        pair = pairWith(localTs=(LAN4,))
        sa = connect(pair, A.INTERNAL_IP4_SUBNET, localTs=(V4,), remoteTs=(LAN4,))
        self.assertEqual(len(replied(sa, A.INTERNAL_IP4_SUBNET)), 1)
        self.assertEqual(sa.virtualIps, [])

    def test_tsrIsNarrowedToLocalTs(self):
        """The main split-include mechanism: the client proposes everything, gets the LAN."""
        pair = pairWith(v4Pool(), localTs=(LAN4,))
        sa = connect(pair, A.INTERNAL_IP4_ADDRESS, localTs=(V4,), remoteTs=(V4,))
        [child] = sa.children
        self.assertEqual([str(ts) for ts in child.remoteTs], [str(LAN4)])


def configReply(pair, cp, assigned=None, peerEntry=None):
    """The hub's answer to a hand-built CFG_REQUEST from alice."""
    sa = IKESA(False, b"i" * 8, b"r" * 8, (CLIENT, 500), 500, 0.0)
    sa.peerIdentity = Identity.fromString("alice@example.com")
    reply = pair.hub._configReply(sa, peerEntry or pair.hub.pad.entries[0], cp, assigned)
    pair.lastSa = sa
    return reply


class HandBuiltRequestTests(SynchronousTestCase):
    def request(self, *attributes):
        return CPPayload(CfgType.CFG_REQUEST, tuple(ConfigAttribute(t, v) for t, v in attributes))

    def test_requestedAddressValueIsOnlyAHint(self):
        """A value in the request (garbage here) does not choose the address."""
        four = v4Pool()
        pair = pairWith(four)
        reply = configReply(pair, self.request((A.INTERNAL_IP4_ADDRESS, b"\x01\x02\x03")))
        self.assertEqual(reply.attributes[0], addressAttribute(four.first))

    def test_assignedAddressAndAPoolForTheOtherFamily(self):
        """RADIUS's Framed-IP-Address for IPv4, the IPv6 pool for IPv6."""
        four, six = v4Pool(), v6Pool()
        pair = pairWith(four, six)
        reply = configReply(
            pair,
            self.request((A.INTERNAL_IP4_ADDRESS, b""), (A.INTERNAL_IP6_ADDRESS, b"")),
            assigned="198.51.100.77",
        )
        addresses = [readAddress(a) for a in reply.attributes if readAddress(a)]
        self.assertEqual(addresses, [ipaddress.ip_address("198.51.100.77"), six.first])
        self.assertEqual((four.inUse, six.inUse), (0, 1))
        self.assertEqual(pair.lastSa.virtualIps[0], (None, addresses[0]))

    def test_unknownAttributesAreIgnored(self):
        pair = pairWith(v4Pool())
        reply = configReply(pair, self.request((0x7FFF, b"x" * 500), (A.APPLICATION_VERSION, b"")))
        self.assertEqual(reply.attributes, ())


class InitiatorReadsReplyTests(SynchronousTestCase):
    """
    Our initiator takes from a CFG_REPLY only what it asked for (RFC 7296 section 3.15.1: the
    responder may send up to the number of addresses requested), and nothing from a CP payload
    of another type.
    """

    def connectWithReply(self, reply, *attributes):
        pair = pairWith(v4Pool(), v6Pool())
        pair.hub._configReply = lambda *args, **kwargs: reply
        return connect(pair, *attributes)

    def test_extraAddressesAreNotTaken(self):
        mine, extra = ipaddress.ip_address("198.51.100.50"), ipaddress.ip_address("198.51.100.51")
        six = ipaddress.ip_address("2001:db8:100::50")
        reply = CPPayload(
            CfgType.CFG_REPLY,
            (addressAttribute(mine), addressAttribute(extra), addressAttribute(six)),
        )
        sa = self.connectWithReply(reply, A.INTERNAL_IP4_ADDRESS, A.INTERNAL_IP4_DNS)
        self.assertEqual([a for _, a in sa.virtualIps], [mine])

    def test_noAddressesFromACfgSet(self):
        reply = CPPayload(
            CfgType.CFG_SET, (addressAttribute(ipaddress.ip_address("198.51.100.50")),)
        )
        sa = self.connectWithReply(reply, A.INTERNAL_IP4_ADDRESS)
        self.assertEqual((sa.virtualIps, sa.configReply), ([], ()))

    def test_grantedAddressesCountsPerType(self):
        four = [addressAttribute(ipaddress.ip_address(f"198.51.100.{i}")) for i in (1, 2, 3)]
        request = CPPayload(
            CfgType.CFG_REQUEST,
            (ConfigAttribute(A.INTERNAL_IP4_ADDRESS, b""),) * 2
            + (ConfigAttribute(A.INTERNAL_IP4_DNS, b""),),
        )
        reply = CPPayload(CfgType.CFG_REPLY, (ConfigAttribute(A.INTERNAL_IP4_ADDRESS, b"x"), *four))
        self.assertEqual(
            grantedAddresses(request, reply),
            [ipaddress.ip_address("198.51.100.1"), ipaddress.ip_address("198.51.100.2")],
        )


class AttributeCodecTests(SynchronousTestCase):
    def test_readAddressRefusesWrongLengths(self):
        self.assertIsNone(readAddress(ConfigAttribute(A.INTERNAL_IP4_ADDRESS, b"\x01" * 5)))
        self.assertIsNone(readAddress(ConfigAttribute(A.INTERNAL_IP6_ADDRESS, b"\x20" * 16)))
        self.assertIsNone(
            readAddress(ConfigAttribute(A.INTERNAL_IP6_ADDRESS, b"\x20" * 16 + b"\x81"))
        )
        self.assertIsNone(readAddress(ConfigAttribute(A.INTERNAL_IP4_DNS, b"\x01" * 4)))
        six = ipaddress.ip_address("2001:db8::5")
        self.assertEqual(readAddress(addressAttribute(six)), six)

    def test_readAddressTakesAnyPrefixLength(self):
        """strongSwan sends INTERNAL_IP6_ADDRESS with prefix length 64, the hub 128."""
        six = ipaddress.ip_address("2001:db8::5")
        for prefix in (64, 128, 0):
            attribute = ConfigAttribute(A.INTERNAL_IP6_ADDRESS, six.packed + bytes((prefix,)))
            self.assertEqual(readAddress(attribute), six, prefix)
        self.assertEqual(addressAttribute(six).value[16], 128)

    def test_subnetAttributes(self):
        self.assertEqual(
            subnetAttribute(ipaddress.ip_network("10.1.0.0/16")).value,
            bytes([10, 1, 0, 0, 255, 255, 0, 0]),
        )
        self.assertEqual(len(subnetAttribute(LAN6).value), 17)

    def test_domainNames(self):
        self.assertEqual(normalizeDnsDomain(" Corp.Example.COM. "), "corp.example.com")
        self.assertEqual(normalizeDnsDomain("xn--bcher-kva.example"), "xn--bcher-kva.example")
        for bad, why in (
            (".", "root"),
            ("", "root"),
            ("*.corp.example.com", "wildcard"),
            ("bücher.example", "xn--bcher-kva"),
            ("corp..example", "empty label"),
            ("-corp.example", "letters, digits and hyphens"),
            ("corp_x.example", "letters, digits and hyphens"),
            ("a" * 64 + ".example", "63"),
            (("abc." * 64) + "com", "at most 253"),
            ("192.0.2.1", "IP address"),
        ):
            with self.assertRaises(ValueError, msg=bad) as caught:
                normalizeDnsDomain(bad)
            self.assertIn(why, str(caught.exception), bad)


class Ipv6DatapathTests(SynchronousTestCase):
    """The ESP datapath carries IPv6 inner packets to and from a dual-stack client."""

    def setUp(self):
        self.four, self.six = v4Pool(), v6Pool()
        self.pair = pairWith(self.four, self.six)
        self.wire = Wire()
        self.hubTun = MemoryPacketInterface("hub0")
        self.clientTun = MemoryPacketInterface("client0")
        pair = self.pair
        self.hubPath = ESPDatapath(
            pair.hubSad, self.hubTun, SPD([]), pair.clock, self.wire.sender(HUB)
        )
        self.clientPath = ESPDatapath(
            pair.clientSad, self.clientTun, SPD([]), pair.clock, self.wire.sender(CLIENT)
        )
        self.hubTun.startReading()
        self.clientTun.startReading()
        self.sa = connect(pair, *DUAL)
        self.vip6 = str(self.sa.virtualIps[1][1])
        self.datapaths = {HUB: self.hubPath, CLIENT: self.clientPath}

    def test_ipv6BothWays(self):
        lanHost = "2001:db8:2::10"
        packet = ipv6(self.vip6, lanHost)
        self.clientTun.inject(packet)
        self.wire.deliver(self.datapaths)
        self.assertEqual(self.hubTun.written, [packet])
        reply = ipv6(lanHost, self.vip6)
        self.hubTun.inject(reply)
        self.wire.deliver(self.datapaths)
        self.assertEqual(self.clientTun.written, [reply])

    def test_ipv6FromAnotherAddressIsDropped(self):
        """The inner source must be the client's own virtual IPv6 address."""
        self.clientTun.inject(ipv6("2001:db8:100::99", "2001:db8:2::10"))
        self.wire.deliver(self.datapaths)
        self.assertEqual(self.hubTun.written, [])

    def test_ipv4StillWorks(self):
        vip4 = str(self.sa.virtualIps[0][1])
        packet = ipv4(vip4, "203.0.113.10")
        self.clientTun.inject(packet)
        self.wire.deliver(self.datapaths)
        self.assertEqual(self.hubTun.written, [packet])


def ipv6(source: str, destination: str, payload: bytes = b"y" * 24) -> bytes:
    """A minimal IPv6 packet (UDP next header; the datapath reads addresses only)."""
    return (
        bytes([0x60, 0, 0, 0])
        + len(payload).to_bytes(2, "big")
        + bytes([17, 64])
        + ipaddress.ip_address(source).packed
        + ipaddress.ip_address(destination).packed
        + payload
    )


def test_padEntryProvidesItsInterface():
    from zope.interface.verify import verifyObject

    from ikehub.interfaces import IPADEntry

    four, six, other = v4Pool(), v6Pool(), v4Pool("198.51.100.100", name="other")
    made = entry((four, six, other))
    assert verifyObject(IPADEntry, made)
    assert made.pool is four
    assert made.poolsByFamily == {4: (four, other), 6: (six,)}
    assert entry().poolsByFamily == {}
