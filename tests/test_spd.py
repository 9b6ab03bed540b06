"""
Tests for L{ikehub.policy.spd}: first match wins, selectors on addresses, protocol and ports for
IPv4 and IPv6, fragments, malformed packets discarded with a reason, and configuration errors
that name the bad value.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikehub.policy.spd import (
    SPD,
    SPDAction,
    SPDConfigError,
    SPDDecision,
    SPDEntry,
)

TCP, UDP, SCTP, ICMP, ICMPV6 = 6, 17, 132, 1, 58


def ipv4(
    src: str,
    dst: str,
    protocol: int,
    payload: bytes = b"",
    fragment: int = 0,
    moreFragments: bool = False,
    options: bytes = b"",
) -> bytes:
    """An IPv4 packet; the checksum is left zero (the SPD does not read it)."""
    headerLength = 20 + len(options)
    flags = (0x2000 if moreFragments else 0) | fragment
    return (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | headerLength // 4,
            0,
            headerLength + len(payload),
            1,
            flags,
            64,
            protocol,
            0,
            ipaddress.IPv4Address(src).packed,
            ipaddress.IPv4Address(dst).packed,
        )
        + options
        + payload
    )


def ipv6(src: str, dst: str, nextHeader: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(
            "!IHBB16s16s",
            0x60000000,
            len(payload),
            nextHeader,
            64,
            ipaddress.IPv6Address(src).packed,
            ipaddress.IPv6Address(dst).packed,
        )
        + payload
    )


def ports(sport: int, dport: int, rest: bytes = b"\0" * 4) -> bytes:
    return struct.pack("!HH", sport, dport) + rest


def entry(**config) -> SPDEntry:
    return SPDEntry.fromConfig(config)


def test_briefExampleEntryBuildsFromStrings():
    """The configuration form of an entry becomes typed selectors and an action."""
    e = entry(local="203.0.113.0/24", remote="0.0.0.0/0", protocol="any", action="bypass")
    assert e.local == ipaddress.ip_network("203.0.113.0/24")
    assert e.remote == ipaddress.ip_network("0.0.0.0/0")
    assert e.protocol is None
    assert e.localPorts is None and e.remotePorts is None
    assert e.action is SPDAction.BYPASS


def test_firstMatchingEntryWins():
    """Of two overlapping entries, the earlier one decides, whichever order they come in."""
    narrow = entry(local="203.0.113.0/24", remote="192.0.2.0/24", action="bypass")
    wide = entry(local="0.0.0.0/0", remote="0.0.0.0/0", action="protect")
    packet = ipv4("203.0.113.5", "192.0.2.9", UDP, ports(1000, 53))
    assert SPD([narrow, wide]).decide(packet).entry is narrow
    assert SPD([narrow, wide]).decide(packet).action is SPDAction.BYPASS
    assert SPD([wide, narrow]).decide(packet).entry is wide
    assert SPD([wide, narrow]).decide(packet).action is SPDAction.PROTECT


def test_laterEntryDecidesWhenEarlierDoesNotMatch():
    """An entry that does not match is skipped, and the next matching one decides."""
    other = entry(local="198.51.100.0/24", remote="0.0.0.0/0", action="bypass")
    catch = entry(local="0.0.0.0/0", remote="0.0.0.0/0", action="protect")
    decision = SPD([other, catch]).decide(ipv4("203.0.113.5", "192.0.2.9", ICMP, b"\x08" * 8))
    assert decision.entry is catch


def test_noMatchIsDefaultDiscard():
    """A packet no entry matches is discarded by default, with no entry and a reason saying so."""
    spd = SPD([entry(local="198.51.100.0/24", remote="0.0.0.0/0", action="bypass")])
    decision = spd.decide(ipv4("203.0.113.5", "192.0.2.9", UDP, ports(1, 2)))
    assert decision.action is SPDAction.DISCARD
    assert decision.entry is None
    assert "default" in decision.reason.lower()
    assert (
        SPD([]).decide(ipv4("203.0.113.5", "192.0.2.9", UDP, ports(1, 2))).action
        is SPDAction.DISCARD
    )


def test_localIsSourceAndRemoteIsDestination():
    """For packets leaving through the hub the source is local: the reverse direction misses."""
    spd = SPD([entry(local="203.0.113.0/24", remote="192.0.2.0/24", action="bypass")])
    assert spd.decide(ipv4("203.0.113.5", "192.0.2.9", UDP, ports(1, 2))).action is SPDAction.BYPASS
    assert (
        spd.decide(ipv4("192.0.2.9", "203.0.113.5", UDP, ports(1, 2))).action is SPDAction.DISCARD
    )


def test_remoteSelectorChecksTheDestination():
    """A packet from inside the local network to outside the remote one does not match."""
    spd = SPD([entry(local="203.0.113.0/24", remote="192.0.2.0/24", action="bypass")])
    assert spd.decide(ipv4("203.0.113.5", "198.51.100.9", UDP, ports(1, 2))).entry is None
    spd6 = SPD([entry(local="2001:db8:1::/48", remote="2001:db8:2::/48", action="bypass")])
    assert spd6.decide(ipv6("2001:db8:1::5", "2001:db8:3::9", UDP, ports(1, 2))).entry is None
    assert spd6.decide(ipv6("2001:db8:1::5", "2001:db8:2::9", UDP, ports(1, 2))).entry is not None


def test_addressRangeEdgesAreInclusive():
    """The network and broadcast addresses of a selector are inside it; one beyond is not."""
    spd = SPD([entry(local="203.0.113.0/25", remote="0.0.0.0/0", action="bypass")])
    assert spd.decide(ipv4("203.0.113.0", "192.0.2.1", UDP, ports(1, 2))).entry is not None
    assert spd.decide(ipv4("203.0.113.127", "192.0.2.1", UDP, ports(1, 2))).entry is not None
    assert spd.decide(ipv4("203.0.113.128", "192.0.2.1", UDP, ports(1, 2))).entry is None


def test_protocolSelector():
    """A protocol selector matches that protocol only; 'any' matches every protocol."""
    tcpOnly = entry(local="0.0.0.0/0", remote="0.0.0.0/0", protocol="tcp", action="bypass")
    spd = SPD([tcpOnly])
    assert spd.decide(ipv4("203.0.113.5", "192.0.2.9", TCP, ports(1, 80))).entry is tcpOnly
    assert spd.decide(ipv4("203.0.113.5", "192.0.2.9", UDP, ports(1, 80))).entry is None
    assert spd.decide(ipv4("203.0.113.5", "192.0.2.9", ICMP, b"\x08" * 8)).entry is None
    gre = entry(local="0.0.0.0/0", remote="0.0.0.0/0", protocol="47", action="discard")
    assert gre.protocol == 47
    assert SPD([gre]).decide(ipv4("203.0.113.5", "192.0.2.9", 47, b"\0" * 4)).entry is gre


def test_protocolZeroMeansAny():
    """Protocol 0 means any, as in IKEv2 traffic selectors."""
    assert (
        entry(local="0.0.0.0/0", remote="0.0.0.0/0", protocol=0, action="bypass").protocol is None
    )


@pytest.mark.parametrize("protocol, number", [("tcp", TCP), ("udp", UDP), ("sctp", SCTP)])
def test_remotePortSelector(protocol, number):
    """A remote port selector reads the destination port of TCP, UDP and SCTP."""
    web = entry(
        local="0.0.0.0/0", remote="0.0.0.0/0", protocol=protocol, remote_port=443, action="bypass"
    )
    spd = SPD([web])
    assert spd.decide(ipv4("203.0.113.5", "192.0.2.9", number, ports(40000, 443))).entry is web
    assert spd.decide(ipv4("203.0.113.5", "192.0.2.9", number, ports(40000, 444))).entry is None
    assert spd.decide(ipv4("203.0.113.5", "192.0.2.9", number, ports(443, 80))).entry is None


def test_localPortRangeIsInclusive():
    """A port range includes both ends and nothing beyond them."""
    e = entry(
        local="0.0.0.0/0",
        remote="0.0.0.0/0",
        protocol="udp",
        local_port="1024-2047",
        action="bypass",
    )
    assert e.localPorts == (1024, 2047)
    spd = SPD([e])
    for sport, hit in ((1023, False), (1024, True), (2047, True), (2048, False)):
        decision = spd.decide(ipv4("203.0.113.5", "192.0.2.9", UDP, ports(sport, 53)))
        assert (decision.entry is e) is hit, sport


def test_portsAfterIpv4Options():
    """Ports are read after the IPv4 options, where the header length field says they start."""
    e = entry(
        local="0.0.0.0/0", remote="0.0.0.0/0", protocol="udp", remote_port=53, action="bypass"
    )
    packet = ipv4("203.0.113.5", "192.0.2.9", UDP, ports(9999, 53), options=b"\x01" * 8)
    assert SPD([e]).decide(packet).entry is e


def test_nonInitialFragmentHasNoPorts():
    """
    A non-initial fragment carries no ports (OPAQUE): an entry naming ports does not match it,
    an entry with any port does; the first fragment still carries its ports.
    """
    withPorts = entry(
        local="0.0.0.0/0", remote="0.0.0.0/0", protocol="udp", remote_port=53, action="bypass"
    )
    anyPort = entry(local="0.0.0.0/0", remote="0.0.0.0/0", protocol="udp", action="protect")
    spd = SPD([withPorts, anyPort])
    # Fragment data that happens to look like port 53 must not be read as ports.
    later = ipv4("203.0.113.5", "192.0.2.9", UDP, ports(9999, 53), fragment=185)
    assert spd.decide(later).entry is anyPort
    first = ipv4("203.0.113.5", "192.0.2.9", UDP, ports(9999, 53), moreFragments=True)
    assert spd.decide(first).entry is withPorts


def test_ipv6AddressesAndPorts():
    """IPv6 entries match on 128-bit addresses, protocol and ports."""
    e = entry(
        local="2001:db8:1::/48",
        remote="2001:db8:2::/48",
        protocol="tcp",
        remote_port="22",
        action="bypass",
    )
    spd = SPD([e])
    assert spd.decide(ipv6("2001:db8:1::5", "2001:db8:2::9", TCP, ports(50000, 22))).entry is e
    assert spd.decide(ipv6("2001:db8:1::5", "2001:db8:2::9", TCP, ports(50000, 23))).entry is None
    assert spd.decide(ipv6("2001:db8:3::5", "2001:db8:2::9", TCP, ports(50000, 22))).entry is None


def test_familiesDoNotCrossMatch():
    """An IPv4 entry never matches an IPv6 packet, and the other way round."""
    v4 = entry(local="0.0.0.0/0", remote="0.0.0.0/0", action="bypass")
    v6 = entry(local="::/0", remote="::/0", action="protect")
    spd = SPD([v4, v6])
    assert spd.decide(ipv6("2001:db8::1", "2001:db8::2", UDP, ports(1, 2))).entry is v6
    assert spd.decide(ipv4("192.0.2.1", "192.0.2.2", UDP, ports(1, 2))).entry is v4
    assert SPD([v6]).decide(ipv4("192.0.2.1", "192.0.2.2", UDP, ports(1, 2))).entry is None


def test_ipv6ExtensionHeadersAreWalkedToThePorts():
    """
    The next-layer protocol and ports are found after Hop-by-Hop, Destination Options and an
    initial Fragment header.
    """
    e = entry(local="::/0", remote="::/0", protocol="udp", remote_port=53, action="bypass")
    udp = ports(5353, 53)
    hopByHop = bytes([60, 0]) + b"\x01\x04\0\0\0\0"  # next: Destination Options, 8 bytes
    destOpts = bytes([44, 1]) + b"\x01\x0c" + b"\0" * 12  # next: Fragment, 16 bytes
    fragment = struct.pack("!BBHI", UDP, 0, 0x0001, 7)  # offset 0, more fragments
    packet = ipv6("2001:db8::1", "2001:db8::2", 0, hopByHop + destOpts + fragment + udp)
    assert SPD([e]).decide(packet).entry is e


def test_ipv6NonInitialFragmentHasNoPorts():
    """An IPv6 fragment with a non-zero offset carries no ports: only any-port entries match."""
    withPorts = entry(local="::/0", remote="::/0", protocol="udp", remote_port=53, action="bypass")
    anyPort = entry(local="::/0", remote="::/0", protocol="udp", action="protect")
    fragment = struct.pack("!BBHI", UDP, 0, 185 << 3, 7)
    packet = ipv6("2001:db8::1", "2001:db8::2", 44, fragment + ports(5353, 53))
    assert SPD([withPorts, anyPort]).decide(packet).entry is anyPort


def test_ipv6EspEndsTheWalk():
    """Behind ESP everything is encrypted: the protocol is ESP and no ports are read."""
    esp = entry(local="::/0", remote="::/0", protocol="esp", action="bypass")
    packet = ipv6("2001:db8::1", "2001:db8::2", 50, b"\0\0\x01\x00" + b"\0" * 20)
    assert SPD([esp]).decide(packet).entry is esp


def test_icmpv6Protocol():
    """ICMPv6 is selectable by name."""
    e = entry(local="::/0", remote="::/0", protocol="icmpv6", action="bypass")
    packet = ipv6("2001:db8::1", "2001:db8::2", ICMPV6, b"\x80\0\0\0\0\1\0\1")
    assert SPD([e]).decide(packet).entry is e


def test_decisionsArePrebuilt():
    """Deciding allocates no decision per packet: the same entry gives the same object."""
    e = entry(local="0.0.0.0/0", remote="0.0.0.0/0", action="bypass")
    spd = SPD([e])
    first = spd.decide(ipv4("192.0.2.1", "192.0.2.2", UDP, ports(1, 2)))
    second = spd.decide(ipv4("192.0.2.3", "192.0.2.4", TCP, ports(3, 4)))
    assert first is second
    assert isinstance(first, SPDDecision)
    assert "bypass" in first.reason


ACCEPT_ALL = SPD(
    [
        SPDEntry.fromConfig({"local": "0.0.0.0/0", "remote": "0.0.0.0/0", "action": "bypass"}),
        SPDEntry.fromConfig({"local": "::/0", "remote": "::/0", "action": "bypass"}),
    ]
)

_GOOD4 = ipv4("192.0.2.1", "192.0.2.2", TCP, ports(1, 2) + b"\0" * 16)
_GOOD6 = ipv6("2001:db8::1", "2001:db8::2", TCP, ports(1, 2) + b"\0" * 16)


@pytest.mark.parametrize(
    "packet, words",
    [
        (b"", "not an ipv4 or ipv6"),
        (b"\x50" + b"\0" * 39, "not an ipv4 or ipv6"),
        (_GOOD4[:19], "truncated ipv4 header"),
        (b"\x44" + _GOOD4[1:], "header length"),
        (b"\x46" + _GOOD4[1:20], "truncated ipv4 packet"),
        (_GOOD4[:30], "truncated ipv4 packet"),
        (ipv4("192.0.2.1", "192.0.2.2", TCP, b"\0\1"), "truncated tcp header"),
        (ipv4("192.0.2.1", "192.0.2.2", UDP, b""), "truncated udp header"),
        (ipv4("192.0.2.1", "192.0.2.2", SCTP, b"\0\0\0"), "truncated sctp header"),
        (_GOOD6[:39], "truncated ipv6 header"),
        (_GOOD6[:50], "truncated ipv6 packet"),
        (ipv6("2001:db8::1", "2001:db8::2", 0, b"\x11"), "truncated ipv6 extension"),
        (
            ipv6("2001:db8::1", "2001:db8::2", 0, bytes([17, 1]) + b"\0" * 6),
            "truncated ipv6 extension",
        ),
        (
            ipv6("2001:db8::1", "2001:db8::2", 44, bytes([17]) + b"\0" * 3),
            "truncated ipv6 extension",
        ),
        (ipv6("2001:db8::1", "2001:db8::2", UDP, b"\0\1\0"), "truncated udp header"),
        (
            ipv6(
                "2001:db8::1",
                "2001:db8::2",
                60,
                bytes([60, 0])
                + b"\0" * 6
                + bytes([60, 0]) * 0
                + b"".join(bytes([60, 0]) + b"\0" * 6 for _ in range(40)),
            ),
            "too many",
        ),
    ],
)
def test_malformedPacketsAreDiscardedWithAReason(packet, words):
    """
    Even with an SPD that bypasses everything, a packet too short for what its headers claim
    (or not IP at all) is discarded, with a reason naming the header at fault.
    """
    decision = ACCEPT_ALL.decide(packet)
    assert decision.action is SPDAction.DISCARD
    assert decision.entry is None
    assert words in decision.reason.lower()


def test_wellFormedControlsOfTheMalformedCases():
    """The untruncated packets the malformed cases are cut from are accepted."""
    assert ACCEPT_ALL.decide(_GOOD4).action is SPDAction.BYPASS
    assert ACCEPT_ALL.decide(_GOOD6).action is SPDAction.BYPASS


def test_trailingBytesBeyondTotalLengthAreIgnored():
    """Bytes after the IPv4 total length (link padding) do not make a packet malformed."""
    assert ACCEPT_ALL.decide(_GOOD4 + b"\0" * 6).action is SPDAction.BYPASS


@settings(max_examples=500)
@given(st.binary(max_size=200))
def test_randomBytesNeverRaise(data):
    """Any bytes get a decision, never an exception."""
    assert isinstance(ACCEPT_ALL.decide(data), SPDDecision)


@settings(max_examples=500)
@given(
    st.sampled_from([0x45, 0x46, 0x4F, 0x60]),
    st.binary(max_size=120),
    st.sampled_from([0, 6, 17, 43, 44, 50, 51, 60, 132]),
)
def test_randomIpLookalikesNeverRaise(first, rest, nextHeader):
    """Bytes that start like IPv4 or IPv6 headers, with random lengths and chains, never raise."""
    data = bytearray(bytes([first]) + rest)
    if len(data) > 9 and first != 0x60:
        data[9] = nextHeader
    if len(data) > 6 and first == 0x60:
        data[6] = nextHeader
    spd = SPD(
        [
            SPDEntry.fromConfig(
                {
                    "local": "0.0.0.0/0",
                    "remote": "0.0.0.0/0",
                    "protocol": "udp",
                    "remote_port": "53",
                    "action": "bypass",
                }
            ),
            SPDEntry.fromConfig(
                {
                    "local": "::/0",
                    "remote": "::/0",
                    "protocol": "tcp",
                    "local_port": "1-1000",
                    "action": "protect",
                }
            ),
        ]
    )
    assert isinstance(spd.decide(bytes(data)), SPDDecision)


@pytest.mark.parametrize(
    "config, words",
    [
        (
            {"local": "203.0.113.0/33", "remote": "0.0.0.0/0", "action": "bypass"},
            ["local", "203.0.113.0/33"],
        ),
        (
            {"local": "203.0.113.5/24", "remote": "0.0.0.0/0", "action": "bypass"},
            ["local", "203.0.113.5/24", "did you mean 203.0.113.0/24"],
        ),
        (
            {"local": "203.0.113.0/24", "remote": "nowhere", "action": "bypass"},
            ["remote", "nowhere"],
        ),
        (
            {"local": "203.0.113.0/24", "remote": "::/0", "action": "bypass"},
            ["203.0.113.0/24", "::/0", "one family"],
        ),
        (
            {
                "local": "203.0.113.0/24",
                "remote": "0.0.0.0/0",
                "protocol": "tcpp",
                "action": "bypass",
            },
            ["protocol", "tcpp"],
        ),
        (
            {"local": "203.0.113.0/24", "remote": "0.0.0.0/0", "protocol": 256, "action": "bypass"},
            ["protocol", "256"],
        ),
        (
            {
                "local": "203.0.113.0/24",
                "remote": "0.0.0.0/0",
                "protocol": "udp",
                "remote_port": "70000",
                "action": "bypass",
            },
            ["remote_port", "70000"],
        ),
        (
            {
                "local": "203.0.113.0/24",
                "remote": "0.0.0.0/0",
                "protocol": "udp",
                "local_port": "2000-1000",
                "action": "bypass",
            },
            ["local_port", "2000-1000"],
        ),
        (
            {
                "local": "203.0.113.0/24",
                "remote": "0.0.0.0/0",
                "protocol": "icmp",
                "remote_port": "53",
                "action": "bypass",
            },
            ["remote_port", "icmp", "tcp, udp or sctp"],
        ),
        (
            {"local": "203.0.113.0/24", "remote": "0.0.0.0/0", "action": "allow"},
            ["action", "allow", "protect, bypass or discard"],
        ),
        ({"local": "203.0.113.0/24", "remote": "0.0.0.0/0"}, ["action", "missing"]),
        ({"remote": "0.0.0.0/0", "action": "bypass"}, ["local", "missing"]),
        (
            {"local": "203.0.113.0/24", "remote": "0.0.0.0/0", "action": "bypass", "proto": "tcp"},
            ["unknown key", "proto"],
        ),
        ({"local": 42, "remote": "0.0.0.0/0", "action": "bypass"}, ["local", "42"]),
    ],
)
def test_configErrorsNameTheBadValue(config, words):
    """Every invalid entry raises SPDConfigError naming the key and the bad value."""
    with pytest.raises(SPDConfigError) as caught:
        SPDEntry.fromConfig(config, "spd[3]")
    message = str(caught.value)
    assert message.startswith("spd[3]")
    for word in words:
        assert word in message


def test_spdFromConfigNamesTheEntryByIndex():
    """SPD.fromConfig builds entries in order and names a bad one by its index."""
    good = {"local": "203.0.113.0/24", "remote": "0.0.0.0/0", "action": "discard"}
    spd = SPD.fromConfig([good, {**good, "action": "bypass"}])
    assert [e.action for e in spd.entries] == [SPDAction.DISCARD, SPDAction.BYPASS]
    with pytest.raises(SPDConfigError, match=r"^spd\[1\]\.remote: 'x'"):
        SPD.fromConfig([good, {**good, "remote": "x"}])


def test_actionIsCaseInsensitiveAndNameAppearsInReason():
    """'PROTECT' is the protect action, and a named entry is named in the decision's reason."""
    e = entry(name="lan-to-peers", local="203.0.113.0/24", remote="0.0.0.0/0", action="PROTECT")
    assert e.action is SPDAction.PROTECT
    decision = SPD([e]).decide(ipv4("203.0.113.5", "192.0.2.9", UDP, ports(1, 2)))
    assert "lan-to-peers" in decision.reason


def test_directConstructionValidates():
    """Building SPDEntry in code checks the same rules: mixed families and ports without TCP."""
    v4 = ipaddress.ip_network("192.0.2.0/24")
    v6 = ipaddress.ip_network("2001:db8::/32")
    with pytest.raises(SPDConfigError):
        SPDEntry(v4, v6, SPDAction.BYPASS)
    with pytest.raises(SPDConfigError):
        SPDEntry(v4, v4, SPDAction.BYPASS, protocol=None, remotePorts=(53, 53))
    with pytest.raises(SPDConfigError):
        SPDEntry(v4, v4, SPDAction.BYPASS, protocol=UDP, remotePorts=(53, 52))
    full = SPDEntry(v4, v4, SPDAction.BYPASS, protocol=None, remotePorts=(0, 65535))
    assert full.remotePorts is None
