"""
The ESP anti-replay window (RFC 4303 section 3.4.3 and Appendix A), with Extended
Sequence Numbers.

The receiver asks the window twice per packet: L{ReplayWindow.check} before the ICV is
verified, to drop replays and stale packets without paying for the cryptography, and
L{ReplayWindow.accept} after it, because only an authentic packet may move the window
(an attacker who could slide it with forged packets could make every real packet look
stale). With ESN only the low 32 bits travel in the packet; C{check} reconstructs the
high 32 from the window's position (Appendix A2.2), and the caller authenticates with
the full number, so a wrong guess fails the ICV rather than corrupting the window.

The bitmap is one Python int: bit C{i} stands for sequence number C{top - i}. Sliding is
a shift and a mask, which stays cheap at the large window sizes a hub needs for peers
whose packets are reordered by multi-queue NICs.
"""

from __future__ import annotations

#: Largest sequence number with and without ESN; a sender must rekey before cycling
#: (RFC 4303 section 3.3.3), so nothing beyond these is ever valid.
MAX_SEQ_32 = 0xFFFFFFFF
MAX_SEQ_64 = 0xFFFFFFFFFFFFFFFF

#: RFC 4303 section 3.4.3: a window of at least 32 MUST be supported.
MIN_WINDOW_SIZE = 32


class ReplayWindow:
    """
    Which of the last C{size} sequence numbers up to L{top} have been received.

    A number is acceptable when it is above L{top} (the window slides), or within the
    window and not yet received. Zero is never acceptable: the first packet of an SA
    carries 1 (RFC 4303 section 3.3.3).
    """

    __slots__ = ("_bitmap", "_esn", "_mask", "_maxSeq", "_size", "_top")

    def __init__(self, size: int = 1024, esn: bool = False) -> None:
        """
        @param size: how many sequence numbers the window spans, at least
            L{MIN_WINDOW_SIZE}; it must stay below 2**32 for ESN inference to make sense.
        @param esn: whether the SA negotiated Extended Sequence Numbers (RFC 7296 ESN
            transform), so only the low 32 bits are on the wire.
        @raise ValueError: C{size} out of range.
        """
        if not MIN_WINDOW_SIZE <= size < 2**31:
            raise ValueError(
                f"replay window size {size} must be between {MIN_WINDOW_SIZE} "
                f"and 2**31 - 1"
            )
        self._size = size
        self._mask = (1 << size) - 1
        self._esn = esn
        self._maxSeq = MAX_SEQ_64 if esn else MAX_SEQ_32
        self._top = 0
        self._bitmap = 0

    @property
    def top(self) -> int:
        """The highest sequence number accepted so far, 0 before the first."""
        return self._top

    @property
    def size(self) -> int:
        return self._size

    @property
    def esn(self) -> bool:
        return self._esn

    def check(self, seqLow: int) -> int | None:
        """
        The full sequence number a packet carrying C{seqLow} would have, or C{None} if
        the packet must be dropped without verifying it: zero, already received, left
        of the window, or (ESN) past the last number an SA may use.

        Changes nothing; call L{accept} once the ICV has verified.

        With ESN the high 32 bits are inferred per RFC 4303 Appendix A2.2: the result is
        the one number at or above the window's bottom edge (C{top - size + 1}) whose
        low 32 bits are C{seqLow}. That covers both of the appendix's cases at once:
        when the window straddles a 2**32 boundary, a low value at or above the bottom's
        low bits belongs to the older subspace and a smaller one to the newer.

        @param seqLow: the 32-bit Sequence Number field of the packet.
        """
        top = self._top
        if self._esn:
            bottom = top - self._size + 1
            seq = bottom + ((seqLow - bottom) & MAX_SEQ_32)
            if seq <= 0 or seq > MAX_SEQ_64:
                return None
        else:
            seq = seqLow
            if seq == 0:
                return None
        if seq > top:
            return seq
        offset = top - seq
        if offset >= self._size or (self._bitmap >> offset) & 1:
            return None
        return seq

    def accept(self, seq: int) -> bool:
        """
        Mark C{seq} received, sliding the window if it is above L{top}.

        @param seq: a full sequence number from L{check} whose packet has passed its
            ICV.
        @return: C{False}, changing nothing, if C{seq} is no longer acceptable: another
            packet with it, or enough newer ones to push it out of the window, were
            accepted since it was checked.
        """
        top = self._top
        if seq > top:
            if seq > self._maxSeq:
                return False
            shift = seq - top
            if shift >= self._size:
                self._bitmap = 1
            else:
                self._bitmap = ((self._bitmap << shift) | 1) & self._mask
            self._top = seq
            return True
        offset = top - seq
        if seq <= 0 or offset >= self._size:
            return False
        bit = 1 << offset
        if self._bitmap & bit:
            return False
        self._bitmap |= bit
        return True

    def __repr__(self) -> str:
        return f"<ReplayWindow size={self._size} esn={self._esn} top={self._top}>"
