"""
IKE fragmentation (RFC 7383): putting a peer's SKF fragments back together, sans-IO.

A message too large for the path arrives as several IKE messages with the same message ID,
each carrying one Encrypted Fragment (SKF) payload: its number, the total, and a separately
encrypted piece of the payload chain. Each fragment is verified with the IKE SA's inbound keys
before anything of it is kept (RFC 7383 section 2.6), so a forged or corrupted fragment costs
one failed decryption and no memory, and cannot disturb a reassembly in progress. Only when
every fragment is in is the chain handed back, to be decoded and processed like an SK message.

Limits, all per message:

  - at most C{maxFragments} fragments (64 by default). It must be more than 16: Windows sends
    its IKE_AUTH request with a certificate chain in 626-byte datagrams, and with an RSA-4096
    chain or EAP that takes more than 16 of them. 64 fragments at the smallest fragment the
    configuration allows (576-byte datagrams, about 480 bytes of payload each) still carry
    about 30 KB, three times strongSwan's own limit on a reassembled message (10000 bytes);
  - at most C{maxBytes} of reassembled payload chain (65535 by default: what a single UDP
    datagram could have carried unfragmented, so fragmentation never admits a larger message
    than plain IKE could);
  - one reassembly per IKE SA and direction (the peer's request, the response to ours): both
    windows are one message wide, so a verified fragment of another message ID replaces it;
  - C{timeout} seconds from the first verified fragment to the last. One timer serves all
    reassemblies (they are kept oldest first), not one per SA.

And all reassemblies together hold at most C{maxTotalBytes} (16 MiB by default), their verified
pieces and the datagram of each fragment 1 they keep counted alike: anyone who completes an
IKE_SA_INIT holds keys for a half-open SA, and a thousand of them (the default cookie threshold)
must not each fill 64 KB. Nor may a few addresses take all of it, so that a legitimate client's
fragmented IKE_AUTH (Windows, a large certificate chain) finds none left: each source address
holds at most C{maxSourceBytes} (2 MiB, dozens of large IKE_AUTH requests at once from one NAT).
A verified fragment beyond either budget is dropped; its sender retransmits, by which time the
budget may be free again.
"""

from typing import Callable, NamedTuple

from ikehub.crypto.errors import CryptoError


class Reassembled(NamedTuple):
    """A message whose fragments are all in."""

    #: The type of the first inner payload (from fragment 1's SKF header).
    firstPayload: int
    #: The payload chain, fragment by fragment, to be decoded.
    chain: bytes
    #: How many fragments it came in.
    fragments: int
    #: Fragments that failed verification while it was being reassembled.
    rejected: int
    #: Fragment 1's datagram, which the responder fingerprints to recognise retransmissions.
    first: bytes


class _Reassembly:
    """One message being reassembled: the verified pieces by fragment number."""

    __slots__ = (
        "sa",
        "isResponse",
        "messageId",
        "total",
        "parts",
        "size",
        "firstPayload",
        "first",
        "startedAt",
        "rejected",
        "refused",
        "source",
    )

    def __init__(self, sa, isResponse: bool, messageId: int, total: int, now: float) -> None:
        self.sa = sa
        self.isResponse = isResponse
        self.messageId = messageId
        self.total = total
        self.parts: dict[int, bytes] = {}
        self.size = 0
        self.firstPayload = 0
        self.first = b""
        self.startedAt = now
        self.rejected = 0
        #: The message outgrew maxBytes: its pieces are freed and further fragments of it
        #: are dropped unread until it expires or the peer starts over with a larger total.
        self.refused = False
        #: The peer's address when it started: its bytes count toward that source's budget.
        self.source = sa.peer[0]


class FragmentReassembler:
    """
    The reassemblies of one endpoint's IKE SAs (each SA's own are in its C{reassembly} slot).

    @param drop: C{drop(reason, peer)}, the endpoint's counted and rate-limited drop.
    """

    def __init__(
        self,
        clock,
        counters,
        drop: Callable[[str, tuple[str, int]], None],
        maxFragments: int = 64,
        maxBytes: int = 65535,
        timeout: float = 20.0,
        maxTotalBytes: int = 16 * 1024 * 1024,
        maxSourceBytes: int = 2 * 1024 * 1024,
    ) -> None:
        self.clock = clock
        self.counters = counters
        self._drop = drop
        self.maxFragments = maxFragments
        self.maxBytes = maxBytes
        self.timeout = timeout
        self.maxTotalBytes = maxTotalBytes
        self.maxSourceBytes = maxSourceBytes
        #: Bytes held by all reassemblies: verified pieces and fragment 1 datagrams.
        self.bytesHeld = 0
        #: The same by source address (the peer's when each reassembly started); an address
        #: leaves the map when it holds nothing.
        self.bytesBySource: dict[str, int] = {}
        #: Every live reassembly, oldest first (insertion order is age).
        self._live: dict[_Reassembly, None] = {}
        self._timer = None

    def __len__(self) -> int:
        return len(self._live)

    def receive(self, sa, isResponse: bool, data: bytes, header, skf, peer) -> Reassembled | None:
        """
        Take one SKF fragment for C{sa} (whose IKE SA negotiated fragmentation and whose
        message ID the caller has checked against the window).

        @param data: the fragment's datagram, which its ICV or AEAD tag covers.
        @param skf: its L{ikehub.wire.payloads.SKFPayload}.
        @return: the whole message once its last fragment is in, else None (the fragment is
            kept, or dropped and counted).
        """
        total = skf.totalFragments
        if total > self.maxFragments:
            return self._drop("fragment_too_many", peer)
        messageId = header.messageId
        book = sa.reassembly
        current = book.get(isResponse) if book is not None else None
        if current is not None and current.messageId != messageId:
            same = None
        else:
            same = current
        if same is not None:
            # RFC 7383 section 2.6: a smaller total belongs to an older fragmentation of
            # the message (the sender shrank its fragments since), so it is dropped.
            if total < same.total:
                return self._drop("fragment_stale_total", peer)
            if total == same.total:
                if same.refused:
                    return self._drop("fragment_oversized", peer)
                if skf.fragmentNumber in same.parts:
                    return self._drop("fragment_duplicate", peer)
        try:
            piece = sa.skIn.open(data, skf.encrypted)
        except CryptoError:
            if same is not None:
                same.rejected += 1
            return self._drop("fragment_integrity", peer)
        if same is None or total > same.total:
            # A larger total means the sender fragmented the message anew (smaller pieces):
            # what we have no longer fits, so we start over, as section 2.6 says.
            rejected = 0
            if current is not None:
                self.counters.increment("fragment_reassembly_restarted")
                rejected = current.rejected if same is not None else 0
                self._discard(current)
            same = self._start(sa, isResponse, messageId, total)
            same.rejected = rejected
        if same.size + len(piece) > self.maxBytes:
            self._release(same)
            same.parts = {}
            same.refused = True
            return self._drop("fragment_oversized", peer)
        number = skf.fragmentNumber
        # Fragment 1's whole datagram is kept as well (see Reassembled.first): it counts.
        held = len(piece) + len(data) if number == 1 else len(piece)
        source = same.source
        fromSource = self.bytesBySource.get(source, 0)
        if self.bytesHeld + held > self.maxTotalBytes or fromSource + held > self.maxSourceBytes:
            if not same.parts:
                self._discard(same)
            return self._drop(
                "fragment_memory"
                if self.bytesHeld + held > self.maxTotalBytes
                else "fragment_source_memory",
                peer,
            )
        same.parts[number] = piece
        same.size += len(piece)
        self.bytesHeld += held
        self.bytesBySource[source] = fromSource + held
        if number == 1:
            same.firstPayload = skf.firstPayload
            same.first = data
        self.counters.increment("fragments_received")
        if len(same.parts) < total:
            return None
        first = same.first
        self._discard(same)
        parts = same.parts
        self.counters.increment("fragmented_messages_received")
        return Reassembled(
            same.firstPayload,
            b"".join(parts[n] for n in range(1, total + 1)),
            total,
            same.rejected,
            first,
        )

    def forget(self, sa) -> None:
        """Free every reassembly of C{sa} (it is going away)."""
        book = sa.reassembly
        if book is not None:
            for reassembly in list(book.values()):
                self._discard(reassembly)
        sa.reassembly = None

    def forgetRequest(self, sa) -> None:
        """Free C{sa}'s reassembly of a request of the peer's, if any (its window moved on)."""
        self._forgetOne(sa, False)

    def forgetResponse(self, sa) -> None:
        """Free C{sa}'s reassembly of a response to our request, if any (that request is over)."""
        self._forgetOne(sa, True)

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # -- bookkeeping -----------------------------------------------------------------------

    def _start(self, sa, isResponse: bool, messageId: int, total: int) -> _Reassembly:
        reassembly = _Reassembly(sa, isResponse, messageId, total, self.clock.seconds())
        if sa.reassembly is None:
            sa.reassembly = {}
        sa.reassembly[isResponse] = reassembly
        self._live[reassembly] = None
        if self._timer is None:
            self._timer = self.clock.callLater(self.timeout, self._expire)
        return reassembly

    def _forgetOne(self, sa, isResponse: bool) -> None:
        book = sa.reassembly
        if book is not None:
            reassembly = book.get(isResponse)
            if reassembly is not None:
                self._discard(reassembly)

    def _discard(self, reassembly: _Reassembly) -> None:
        if reassembly in self._live:
            del self._live[reassembly]
            self._release(reassembly)
        book = reassembly.sa.reassembly
        if book is not None and book.get(reassembly.isResponse) is reassembly:
            del book[reassembly.isResponse]
            if not book:
                reassembly.sa.reassembly = None
        if not self._live:
            self.stop()

    def _release(self, reassembly: _Reassembly) -> None:
        """Give back what C{reassembly} holds, to the total and to its source's budget."""
        held = reassembly.size + len(reassembly.first)
        reassembly.size = 0
        reassembly.first = b""
        if not held:
            return
        self.bytesHeld -= held
        source = reassembly.source
        left = self.bytesBySource.get(source, 0) - held
        if left > 0:
            self.bytesBySource[source] = left
        else:
            self.bytesBySource.pop(source, None)

    def _expire(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        deadline = now - self.timeout
        for reassembly in list(self._live):
            if reassembly.startedAt > deadline:
                break
            self.counters.increment("fragment_reassembly_expired")
            self._discard(reassembly)
        if self._live:
            oldest = next(iter(self._live))
            self._timer = self.clock.callLater(
                max(0.0, oldest.startedAt + self.timeout - now), self._expire
            )
