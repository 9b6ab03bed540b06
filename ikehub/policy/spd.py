"""
The Security Policy Database (RFC 4301 section 4.4.1).

An ordered list of entries, each a set of selectors (local network, remote network, next-layer
protocol, local and remote port ranges) and an action: PROTECT, BYPASS or DISCARD.  The first
entry whose selectors all match a packet decides its fate; when none does, the packet is
discarded, as RFC 4301 requires of a default.

The datapath consults the SPD for packets read from the TUN device that no CHILD SA covers, so a
packet's I{source} is the local address and its I{destination} the remote one.  Only the header
fields the selectors need are read, with C{struct}, and every decision is built in advance, so
a lookup allocates nothing but the integers it compares.

Ports are selectors of TCP, UDP and SCTP only.  A non-initial fragment carries no ports (RFC 4301
calls them OPAQUE): entries that name ports do not match it, entries with any port do.  A packet
too short for the fields it claims is discarded, with a reason saying which header was cut.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SPDConfigError(Exception):
    """
    An SPD entry is invalid; the message names the key and the bad value and says what to write.
    """


class SPDAction(enum.Enum):
    PROTECT = "protect"
    BYPASS = "bypass"
    DISCARD = "discard"


#: Next-layer protocol names accepted in configuration (IANA "Assigned Internet Protocol
#: Numbers"); a number 0-255 is accepted too, 0 meaning any as in IKEv2 traffic selectors.
PROTOCOL_NAMES: dict[str, int | None] = {
    "any": None,
    "icmp": 1,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "sctp": 132,
}
_PROTOCOL_NAME_OF = {6: "TCP", 17: "UDP", 132: "SCTP"}

#: The protocols whose first four bytes are the source and destination ports.
PORT_PROTOCOLS = frozenset(_PROTOCOL_NAME_OF)

_CONFIG_KEYS = ("name", "local", "remote", "protocol", "local_port", "remote_port", "action")
_ALL_PORTS = (0, 65535)


@dataclass(frozen=True, slots=True)
class SPDEntry:
    """
    One SPD entry.

    @ivar local: the network a packet's source address must lie in.
    @ivar remote: the network its destination must lie in; of the same family as C{local}.
    @ivar protocol: the next-layer protocol number, or L{None} for any.
    @ivar localPorts: inclusive (first, last) source ports, or L{None} for any; only with TCP,
        UDP or SCTP.
    @ivar remotePorts: the same for destination ports.
    @raise SPDConfigError: on construction, for selectors that cannot match as written.
    """

    local: Network
    remote: Network
    action: SPDAction
    protocol: int | None = None
    localPorts: tuple[int, int] | None = None
    remotePorts: tuple[int, int] | None = None
    name: str = field(default="")

    def __post_init__(self) -> None:
        where = self.name or "SPD entry"
        if not isinstance(self.local, (ipaddress.IPv4Network, ipaddress.IPv6Network)) or \
                not isinstance(self.remote, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            raise SPDConfigError(f"{where}: local and remote must be ip_network objects")
        if self.local.version != self.remote.version:
            raise SPDConfigError(
                f"{where}: local {self.local} is IPv{self.local.version} but remote "
                f"{self.remote} is IPv{self.remote.version}; an entry covers one family, so "
                "write one entry per family"
            )
        if not isinstance(self.action, SPDAction):
            raise SPDConfigError(f"{where}: action {self.action!r} is not an SPDAction")
        if self.protocol is not None and (
            isinstance(self.protocol, bool) or not isinstance(self.protocol, int)
            or not 0 <= self.protocol <= 255
        ):
            raise SPDConfigError(f"{where}: protocol {self.protocol!r} is not 0-255 or None")
        if self.protocol == 0:
            object.__setattr__(self, "protocol", None)
        for attribute in ("localPorts", "remotePorts"):
            ports = getattr(self, attribute)
            if ports is None:
                continue
            if (
                not isinstance(ports, tuple) or len(ports) != 2
                or not all(isinstance(p, int) and not isinstance(p, bool) for p in ports)
                or not 0 <= ports[0] <= ports[1] <= 65535
            ):
                raise SPDConfigError(
                    f"{where}: {attribute} {ports!r} is not a (first, last) range within 0-65535"
                )
            if ports == _ALL_PORTS:
                object.__setattr__(self, attribute, None)
            elif self.protocol not in PORT_PROTOCOLS:
                raise SPDConfigError(
                    f"{where}: ports are selectors of TCP, UDP and SCTP only; set protocol to "
                    "one of them or leave the ports as any"
                )

    @classmethod
    def fromConfig(cls, table: Mapping[str, Any], where: str = "spd entry") -> SPDEntry:
        """
        Build an entry from configuration such as C{{"local": "203.0.113.0/24", "remote":
        "0.0.0.0/0", "protocol": "any", "action": "bypass"}}.

        Keys: C{local}, C{remote} and C{action} (C{protect}, C{bypass} or C{discard}) are
        required; C{protocol} (a name such as C{tcp}, a number, or C{any}), C{local_port} and
        C{remote_port} (C{any}, a port, or a range C{"1024-65535"}) default to any; C{name}
        labels the entry in decisions.

        @param where: how messages name this entry, e.g. C{"spd[2]"}.
        @raise SPDConfigError: naming the key, the bad value and what would be valid.
        """
        if not isinstance(table, Mapping):
            raise SPDConfigError(f"{where}: an SPD entry is a table of selectors and an action, "
                                 f"not {type(table).__name__}")
        unknown = [key for key in table if key not in _CONFIG_KEYS]
        if unknown:
            raise SPDConfigError(
                f"{where}: unknown key {unknown[0]!r}; an SPD entry has {', '.join(_CONFIG_KEYS)}"
            )
        name = table.get("name", "")
        if not isinstance(name, str):
            raise SPDConfigError(f"{where}.name: {name!r} is not a string")
        local = _network(table, "local", where)
        remote = _network(table, "remote", where)
        if local.version != remote.version:
            raise SPDConfigError(
                f"{where}: local {local} is IPv{local.version} but remote {remote} is "
                f"IPv{remote.version}; an entry covers one family, so write one entry per family"
            )
        protocol = _protocol(table.get("protocol", "any"), where)
        localPorts = _ports(table.get("local_port", "any"), f"{where}.local_port")
        remotePorts = _ports(table.get("remote_port", "any"), f"{where}.remote_port")
        if (localPorts or remotePorts) and protocol not in PORT_PROTOCOLS:
            key = "local_port" if localPorts else "remote_port"
            raise SPDConfigError(
                f"{where}.{key}: ports select TCP, UDP and SCTP only, but protocol is "
                f"{table.get('protocol', 'any')!r}; set protocol to tcp, udp or sctp"
            )
        action = table.get("action")
        if action is None:
            raise SPDConfigError(f"{where}.action: missing; write protect, bypass or discard")
        try:
            action = SPDAction(action.lower() if isinstance(action, str) else action)
        except ValueError:
            raise SPDConfigError(
                f"{where}.action: {action!r} is not an action; write protect, bypass or discard"
            ) from None
        return cls(local, remote, action, protocol, localPorts, remotePorts, name)

    def describe(self) -> str:
        """The entry in one line, for decision reasons and logs."""
        text = f"{self.local} -> {self.remote}"
        if self.protocol is not None:
            text += f" proto {self.protocol}"
        if self.localPorts:
            text += f" sport {self.localPorts[0]}-{self.localPorts[1]}"
        if self.remotePorts:
            text += f" dport {self.remotePorts[0]}-{self.remotePorts[1]}"
        text += f": {self.action.value}"
        return f"{self.name!r} ({text})" if self.name else text


def _network(table: Mapping[str, Any], key: str, where: str) -> Network:
    if key not in table:
        raise SPDConfigError(f"{where}.{key}: missing; give a network such as 192.0.2.0/24 "
                             "(0.0.0.0/0 or ::/0 for any)")
    text = table[key]
    if not isinstance(text, str):
        raise SPDConfigError(f"{where}.{key}: {text!r} is not a network such as 192.0.2.0/24")
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as e:
        hint = ""
        try:
            hint = f" (did you mean {ipaddress.ip_network(text.strip(), strict=False)}?)"
        except ValueError:
            pass
        raise SPDConfigError(
            f"{where}.{key}: {text!r} is not a network such as 192.0.2.0/24: {e}{hint}"
        ) from None


def _protocol(value: Any, where: str) -> int | None:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PROTOCOL_NAMES:
            return PROTOCOL_NAMES[text]
        if text.isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        return value or None
    raise SPDConfigError(
        f"{where}.protocol: {value!r} is not a protocol; write any, "
        f"{', '.join(name for name in PROTOCOL_NAMES if name != 'any')} or a number 0-255"
    )


def _ports(value: Any, where: str) -> tuple[int, int] | None:
    first = last = None
    if isinstance(value, int) and not isinstance(value, bool):
        first = last = value
    elif isinstance(value, str):
        text = value.strip().lower()
        if text == "any":
            return None
        lo, dash, hi = text.partition("-")
        if lo.strip().isdigit() and (not dash or hi.strip().isdigit()):
            first = int(lo)
            last = int(hi) if dash else first
    if first is None or last is None or not 0 <= first <= last <= 65535:
        raise SPDConfigError(
            f"{where}: {value!r} is not a port; write any, a port 0-65535 or a range "
            "such as \"1024-65535\""
        )
    return None if (first, last) == _ALL_PORTS else (first, last)


@dataclass(frozen=True, slots=True)
class SPDDecision:
    """
    What to do with a packet and why.

    @ivar entry: the entry that matched, or L{None} for the default or a malformed packet.
    @ivar reason: a sentence for counters and logs.
    """

    action: SPDAction
    entry: SPDEntry | None
    reason: str


def _discard(reason: str) -> SPDDecision:
    return SPDDecision(SPDAction.DISCARD, None, reason)


NO_MATCH = _discard("no SPD entry matches; default DISCARD")
NOT_IP = _discard("not an IPv4 or IPv6 packet")
TRUNCATED_IPV4 = _discard("truncated IPv4 header")
BAD_IPV4_HEADER_LENGTH = _discard("IPv4 header length below 20 bytes")
TRUNCATED_IPV4_PACKET = _discard("truncated IPv4 packet: total length exceeds the bytes read")
TRUNCATED_IPV6 = _discard("truncated IPv6 header")
TRUNCATED_IPV6_PACKET = _discard("truncated IPv6 packet: payload length exceeds the bytes read")
TRUNCATED_EXTENSION = _discard("truncated IPv6 extension header")
TOO_MANY_EXTENSIONS = _discard("too many IPv6 extension headers")
TRUNCATED_PORTS = {
    protocol: _discard(f"truncated {name} header") for protocol, name in _PROTOCOL_NAME_OF.items()
}

#: IPv6 extension headers walked to find the next-layer protocol: Hop-by-Hop Options, Routing,
#: Destination Options (length in 8-octet units after the first 8), and AH (4-octet units after
#: the first 8, RFC 4302).  ESP ends the walk: what follows it is encrypted.
_EXT_8 = frozenset((0, 43, 60))
_FRAGMENT = 44
_AH = 51
_MAX_EXTENSIONS = 16

_V4_ADDRESSES = struct.Struct("!II")
_V6_ADDRESSES = struct.Struct("!QQQQ")
_U16 = struct.Struct("!H")
_PORTS = struct.Struct("!HH")


def _compile(entry: SPDEntry) -> tuple:
    lp = entry.localPorts or _ALL_PORTS
    rp = entry.remotePorts or _ALL_PORTS
    return (
        int(entry.local.network_address),
        int(entry.local.broadcast_address),
        int(entry.remote.network_address),
        int(entry.remote.broadcast_address),
        -1 if entry.protocol is None else entry.protocol,
        entry.localPorts is not None or entry.remotePorts is not None,
        lp[0],
        lp[1],
        rp[0],
        rp[1],
        SPDDecision(entry.action, entry, f"matched SPD entry {entry.describe()}"),
    )


class SPD:
    """
    The ordered SPD; L{decide} returns the first matching entry's decision.
    """

    def __init__(self, entries: Iterable[SPDEntry]) -> None:
        self.entries = tuple(entries)
        compiled = [(entry.local.version, _compile(entry)) for entry in self.entries]
        self._v4 = tuple(rule for version, rule in compiled if version == 4)
        self._v6 = tuple(rule for version, rule in compiled if version == 6)

    @classmethod
    def fromConfig(cls, tables: Iterable[Mapping[str, Any]], where: str = "spd") -> SPD:
        """
        Build the SPD from configuration entries in order; messages name an entry as C{spd[i]}.

        @raise SPDConfigError: for the first invalid entry.
        """
        if isinstance(tables, (str, bytes, Mapping)):
            raise SPDConfigError(f"{where}: give a list of entries, not {type(tables).__name__}")
        return cls(
            SPDEntry.fromConfig(table, f"{where}[{index}]") for index, table in enumerate(tables)
        )

    def decide(self, packet: bytes) -> SPDDecision:
        """
        The decision for an IPv4 or IPv6 packet (no link header) leaving through the hub.
        Never raises: malformed packets are discarded with a reason.
        """
        length = len(packet)
        if not length:
            return NOT_IP
        version = packet[0] >> 4
        sport = dport = -1
        if version == 4:
            if length < 20:
                return TRUNCATED_IPV4
            headerLength = (packet[0] & 15) << 2
            if headerLength < 20:
                return BAD_IPV4_HEADER_LENGTH
            end = (packet[2] << 8) | packet[3]
            if end > length or headerLength > end:
                return TRUNCATED_IPV4_PACKET
            protocol = packet[9]
            source, destination = _V4_ADDRESSES.unpack_from(packet, 12)
            if protocol in PORT_PROTOCOLS and not ((packet[6] & 0x1F) | packet[7]):
                if end - headerLength < 4:
                    return TRUNCATED_PORTS[protocol]
                sport, dport = _PORTS.unpack_from(packet, headerLength)
            rules = self._v4
        elif version == 6:
            if length < 40:
                return TRUNCATED_IPV6
            end = 40 + _U16.unpack_from(packet, 4)[0]
            if end > length:
                return TRUNCATED_IPV6_PACKET
            sh, sl, dh, dl = _V6_ADDRESSES.unpack_from(packet, 8)
            source = (sh << 64) | sl
            destination = (dh << 64) | dl
            protocol = packet[6]
            offset = 40
            opaque = False
            for _ in range(_MAX_EXTENSIONS):
                if protocol in _EXT_8 or protocol == _AH:
                    if offset + 2 > end:
                        return TRUNCATED_EXTENSION
                    size = packet[offset + 1]
                    size = (size + 1) << 3 if protocol != _AH else (size + 2) << 2
                    protocol = packet[offset]
                    offset += size
                elif protocol == _FRAGMENT:
                    if offset + 8 > end:
                        return TRUNCATED_EXTENSION
                    protocol = packet[offset]
                    if _U16.unpack_from(packet, offset + 2)[0] & 0xFFF8:
                        opaque = True
                        break
                    offset += 8
                else:
                    break
            else:
                return TOO_MANY_EXTENSIONS
            if offset > end:
                return TRUNCATED_EXTENSION
            if protocol in PORT_PROTOCOLS and not opaque:
                if end - offset < 4:
                    return TRUNCATED_PORTS[protocol]
                sport, dport = _PORTS.unpack_from(packet, offset)
            rules = self._v6
        else:
            return NOT_IP
        for lLo, lHi, rLo, rHi, proto, hasPorts, spLo, spHi, dpLo, dpHi, decision in rules:
            if (
                lLo <= source <= lHi
                and rLo <= destination <= rHi
                and (proto < 0 or proto == protocol)
                and (
                    not hasPorts
                    or (spLo <= sport <= spHi and dpLo <= dport <= dpHi)
                )
            ):
                return decision
        return NO_MATCH
