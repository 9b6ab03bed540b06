"""
MOBIKE (RFC 4555), as the responder runs it: a road warrior moves its IKE SA and CHILD SAs to a
new address (Wi-Fi to mobile data) with an INFORMATIONAL carrying UPDATE_SA_ADDRESSES instead of
setting everything up again.

The initiator decides the addresses (RFC 4555 section 3.1); the hub only follows. Once MOBIKE is
negotiated the SA moves on UPDATE_SA_ADDRESSES and on nothing else: section 3.8 forbids the
dynamic updates of RFC 7296 section 2.23 for IKE messages to a host that is not behind a NAT. The
hub is that host (it only pretends to be behind one so that peers encapsulate ESP), and without
the rule the path probes strongSwan sends from each of its addresses before it picks one would
drag the tunnel along with them. Such a request is answered where it came from and changes
nothing.

The hub never starts a move itself, so the peer's additional addresses (ADDITIONAL_IP4/6_ADDRESS)
are recorded for the operator, not used.
"""

import socket

from ikehub.ike.nat import natDetectionNotifies
from ikehub.ike.sa import IKESA
from ikehub.wire.constants import NotifyType
from ikehub.wire.payloads import NotifyPayload

#: RFC 4555 section 4.2.5: COOKIE2 carries 8 to 64 octets.
COOKIE2_MIN, COOKIE2_MAX = 8, 64
#: At most this many additional addresses are kept per SA (the first ones); the rest are ignored.
MAX_PEER_ADDRESSES = 16
#: NAT_DETECTION_*: a SHA-1 digest (RFC 7296 section 2.23).
_NAT_HASH_SIZE = 20
#: NO_NATS_ALLOWED: source and destination address and port, IPv4 or IPv6 (section 4.2.7).
_NO_NATS_SIZES = {12: 4, 36: 16}

_UPDATE = NotifyType.UPDATE_SA_ADDRESSES
_COOKIE2 = NotifyType.COOKIE2
_NAT_DETECTION = frozenset(
    {NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP}
)
_NO_NATS = NotifyType.NO_NATS_ALLOWED
_ADDITIONAL = {NotifyType.ADDITIONAL_IP4_ADDRESS: 4, NotifyType.ADDITIONAL_IP6_ADDRESS: 16}
_NO_ADDITIONAL = NotifyType.NO_ADDITIONAL_ADDRESSES
#: The notifies an INFORMATIONAL request may carry for MOBIKE (sections 3.5-3.9).
MOBILITY_NOTIFIES = frozenset(
    {_UPDATE, _COOKIE2, _NO_NATS, _NO_ADDITIONAL, *_NAT_DETECTION, *_ADDITIONAL}
)


class MalformedMobility(Exception):
    """
    A MOBIKE notify of the wrong size, or a contradictory set of them: the request is answered
    with INVALID_SYNTAX and changes nothing.
    """


class MobilityRequest:
    """
    What an INFORMATIONAL request said about addresses, checked whole before anything changes.
    """

    __slots__ = ("update", "cookie2", "natDetection", "noNats", "addresses", "noAdditional")

    def __init__(self) -> None:
        self.update = False
        self.cookie2: bytes | None = None
        self.natDetection = False
        #: NO_NATS_ALLOWED's (source, destination) as the peer saw them, or None.
        self.noNats: tuple | None = None
        #: The ADDITIONAL_IP4/6_ADDRESS addresses in order, or None when none were sent.
        self.addresses: list | None = None
        self.noAdditional = False

    @property
    def changesAddresses(self) -> bool:
        """The request would change the SA's addresses or the peer's list (section 3.9)."""
        return self.update or self.addresses is not None or self.noAdditional


def _address(data: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(data) == 4 else socket.AF_INET6, data)


def parseMobility(payloads) -> MobilityRequest | None:
    """
    The MOBIKE notifies of an INFORMATIONAL request, or None when it has none (a liveness
    check, a Delete): the common case costs one pass and a set lookup per notify.

    @raise MalformedMobility: naming what is wrong.
    """
    request = None
    for payload in payloads:
        if type(payload) is not NotifyPayload or payload.notifyType not in MOBILITY_NOTIFIES:
            continue
        if request is None:
            request = MobilityRequest()
        kind = payload.notifyType
        data = payload.data
        if kind == _UPDATE:
            request.update = True
        elif kind == _COOKIE2:
            if request.cookie2 is not None:
                raise MalformedMobility("two COOKIE2 notifies")
            if not COOKIE2_MIN <= len(data) <= COOKIE2_MAX:
                raise MalformedMobility(
                    f"COOKIE2 of {len(data)} octets (RFC 4555: {COOKIE2_MIN} to {COOKIE2_MAX})"
                )
            request.cookie2 = data
        elif kind in _NAT_DETECTION:
            if len(data) != _NAT_HASH_SIZE:
                raise MalformedMobility(f"NAT detection hash of {len(data)} octets, not 20")
            request.natDetection = True
        elif kind == _NO_NATS:
            size = _NO_NATS_SIZES.get(len(data))
            if size is None:
                raise MalformedMobility(f"NO_NATS_ALLOWED of {len(data)} octets, not 12 or 36")
            ports = data[2 * size :]
            request.noNats = (
                (_address(data[:size]), int.from_bytes(ports[:2], "big")),
                (_address(data[size : 2 * size]), int.from_bytes(ports[2:], "big")),
            )
        elif kind == _NO_ADDITIONAL:
            request.noAdditional = True
        else:
            size = _ADDITIONAL[kind]
            if len(data) != size:
                raise MalformedMobility(
                    f"{NotifyType(kind).name} of {len(data)} octets, not {size}"
                )
            if request.addresses is None:
                request.addresses = []
            request.addresses.append(_address(data))
    if request is not None and request.noAdditional and request.addresses is not None:
        raise MalformedMobility("NO_ADDITIONAL_ADDRESSES together with additional addresses")
    return request


def peerAddressList(notifies) -> tuple[str, ...]:
    """
    The addresses of IKE_AUTH's ADDITIONAL_IP4/6_ADDRESS notifies, in order; one of the wrong
    size is skipped (an IKE SA is not refused over a list the hub does not use).
    """
    addresses = []
    for notify in notifies:
        if len(notify.data) == _ADDITIONAL[notify.notifyType]:
            addresses.append(_address(notify.data))
    return tuple(addresses[:MAX_PEER_ADDRESSES])


def _requester(sa: IKESA) -> tuple[str, int]:
    """Where the request being handled came from, which is where its answer goes."""
    return sa.replyTo[0] if sa.replyTo is not None else sa.peer


def _hostPort(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class MobikeResponder:
    """
    Mixed into L{ikehub.ike.responder.ResponderExchanges}: the INFORMATIONAL requests of a peer
    that negotiated MOBIKE.
    """

    def answerMobility(self, sa: IKESA, request: MobilityRequest, answer: list) -> None:
        """
        Carry out what C{request} asks of C{sa}, adding the notifies the RFC wants in the
        response to C{answer}; the caller sends it.
        """
        if request.changesAddresses and sa.mobike:
            if request.noNats is not None:
                self._refuseNoNats(sa, request, answer)
            else:
                if request.addresses is not None:
                    sa.peerAddresses = tuple(request.addresses[:MAX_PEER_ADDRESSES])
                elif request.noAdditional:
                    sa.peerAddresses = ()
                if request.update:
                    self._updateAddresses(sa, answer)
        elif request.changesAddresses:
            # Without MOBIKE the request is out of place (section 3.2); its status notifies are
            # ignored, as unknown ones are (RFC 7296 section 3.10.1), and rebinding (2.23) has
            # already followed the peer.
            self.counters.increment("mobike_not_negotiated")
        if request.natDetection:
            # Section 3.8: NAT detection asked, NAT detection answered, for the address the
            # answer goes to; the source hash is random as in IKE_SA_INIT, so the peer keeps
            # encapsulating ESP for the hub's userspace datapath.
            answer.extend(natDetectionNotifies(sa.spiI, sa.spiR, None, _requester(sa)))
        if request.cookie2 is not None:
            # Section 3.7: copied as-is, whatever else happened.
            answer.append(self.notify(_COOKIE2, request.cookie2))

    def _updateAddresses(self, sa: IKESA, answer: list) -> None:
        """
        UPDATE_SA_ADDRESSES (section 3.5): the IKE SA and all its CHILD SAs take the request's
        source address, port and path, unless the PAD entry's remote_addrs exclude it.
        """
        if sa.replyTo is None:
            # Sent from where the SA already is (a peer confirming its path after a NAT check).
            self.counters.increment("mobike_update_same_address")
            return
        newPeer, newPath = sa.replyTo
        entry = sa.entry
        refusal = (
            entry.refusal(sa.peerIdentity, newPeer[0])
            if entry is not None and entry.remoteAddrs
            else None
        )
        if refusal is not None:
            self.counters.increment("mobike_unacceptable_address")
            answer.append(self.notify(NotifyType.UNACCEPTABLE_ADDRESSES))
            self.log.warn(
                "IKE SA with {peer} ({identity}) not moved to {new}: {reason}",
                event="ike_sa_move_refused",
                new=_hostPort(newPeer),
                reason=f"PAD entry {entry.name!r}: {refusal}",
                **sa.describe(),
            )
            return
        old = sa.peer
        self.movePeer(sa, newPeer, newPath)
        sa.replyTo = None
        self.counters.increment("mobike_moved")
        self.log.info(
            "IKE SA with {old} ({identity}) moved to {new} (MOBIKE)",
            event="ike_sa_moved",
            old=_hostPort(old),
            new=_hostPort(newPeer),
            children=[child.inboundSpi.hex() for child in sa.children],
            **sa.describe(),
        )

    def _refuseNoNats(self, sa: IKESA, request: MobilityRequest, answer: list) -> None:
        """
        NO_NATS_ALLOWED (section 3.9): the peer wants no NAT between us. The hub always reports
        one (its ESP lives in userspace and needs UDP encapsulation), so the answer is
        UNEXPECTED_NAT_DETECTED and nothing changes; the notify's addresses serve only the log.
        """
        self.counters.increment("mobike_unexpected_nat")
        answer.append(self.notify(NotifyType.UNEXPECTED_NAT_DETECTED))
        (source, destination) = request.noNats
        seen = _requester(sa)
        self.log.info(
            "IKE SA with {peer} ({identity}): address update refused (NO_NATS_ALLOWED from "
            "{claimed} to {destination}, received from {seen}; the hub needs UDP encapsulation)",
            event="ike_sa_move_refused",
            claimed=_hostPort(source),
            destination=_hostPort(destination),
            seen=_hostPort(seen),
            **sa.describe(),
        )
