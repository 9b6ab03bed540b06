"""
The ESP anti-replay window (RFC 4303 section 3.4.3, Appendix A): sliding, duplicates,
the left edge, jumps, sequence number 0, ESN inference across 2**32 boundaries, and a
property test against a naive model.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikehub.esp.replay import MAX_SEQ_32, MAX_SEQ_64, ReplayWindow

SUBSPACE = 1 << 32


def _filled(top: int, size: int = 1024, esn: bool = False) -> ReplayWindow:
    """A window that has accepted every number from max(1, top - size + 1) to top."""
    window = ReplayWindow(size, esn)
    for seq in range(max(1, top - size + 1), top + 1):
        assert window.accept(seq)
    return window


def test_defaultsAre1024WithoutEsn():
    window = ReplayWindow()
    assert (window.size, window.esn, window.top) == (1024, False, 0)


@pytest.mark.parametrize("size", [0, 1, 31, -5])
def test_sizeBelow32IsRefused(size):
    """RFC 4303 section 3.4.3 requires a window of at least 32."""
    with pytest.raises(ValueError):
        ReplayWindow(size)


def test_size32IsTheSmallestAllowed():
    window = ReplayWindow(32)
    assert window.accept(100)
    assert window.check(69) == 69
    assert window.check(68) is None


@pytest.mark.parametrize("esn", [False, True])
def test_sequenceZeroIsAlwaysDropped(esn):
    """
    No SA ever sends 0 (the counter starts at 1). Later on, with ESN, a low half of 0
    stands for the next multiple of 2**32, never for 0 itself.
    """
    window = ReplayWindow(esn=esn)
    assert window.check(0) is None
    assert not window.accept(0)
    assert window.accept(5)
    assert window.check(0) is None
    assert window.accept(5000)
    assert window.check(0) == (SUBSPACE if esn else None)
    assert not window.accept(0)
    assert window.top == 5000


def test_checkDoesNotChangeState():
    window = ReplayWindow()
    assert window.check(7) == 7
    assert window.check(7) == 7
    assert window.top == 0


def test_acceptSlidesTheWindowAndTopFollows():
    window = ReplayWindow(64)
    for seq in (1, 2, 3):
        assert window.accept(seq)
    assert window.top == 3
    assert window.accept(10)
    assert window.top == 10
    # The gap stays acceptable, the old numbers stay recorded after the shift.
    assert [window.check(seq) for seq in range(1, 11)] == [
        None, None, None, 4, 5, 6, 7, 8, 9, None,
    ]  # fmt: skip


def test_duplicateIsDroppedByCheckAndRefusedByAccept():
    window = ReplayWindow()
    assert window.accept(42)
    assert window.check(42) is None
    assert not window.accept(42)
    assert window.accept(41)
    assert window.check(41) is None
    assert not window.accept(41)


def test_acceptReturnsFalseWhenTheNumberArrivedInTheMeantime():
    """Two copies pass check before either is accepted: only the first may count."""
    window = ReplayWindow()
    assert window.check(9) == 9
    assert window.check(9) == 9
    assert window.accept(9)
    assert not window.accept(9)


def test_acceptReturnsFalseWhenTheWindowMovedPastTheNumberInTheMeantime():
    window = ReplayWindow(64)
    assert window.check(3) == 3
    assert window.accept(3 + 64)
    assert not window.accept(3)
    assert window.top == 67


def test_exactlyAtTheLeftEdgeIsAcceptedOneFurtherIsNot():
    """The window spans top - size + 1 .. top; top - size is too old."""
    window = ReplayWindow(1024)
    assert window.accept(5000)
    leftEdge = 5000 - 1024 + 1
    assert window.check(leftEdge) == leftEdge
    assert window.check(leftEdge - 1) is None
    assert not window.accept(leftEdge - 1)
    assert window.accept(leftEdge)
    assert window.check(leftEdge) is None


def test_tooOldIsDropped():
    window = _filled(3000)
    for seq in (1, 100, 1976):
        assert window.check(seq) is None
        assert not window.accept(seq)


def test_jumpOfExactlyTheWindowSizeClearsEveryOldBit():
    window = _filled(100, size=64)
    assert window.accept(100 + 64)
    assert window.check(100) is None
    assert [window.check(s) for s in range(101, 164)] == list(range(101, 164))


def test_jumpOfOneLessThanTheWindowSizeKeepsOnlyTheOldTop():
    window = _filled(100, size=64)
    assert window.accept(100 + 63)
    assert window.check(100) is None
    assert [window.check(s) for s in range(101, 163)] == list(range(101, 163))


def test_farAheadJumpClearsTheBitmap():
    window = _filled(2000)
    assert window.accept(2000 + 10**6)
    top = window.top
    assert top == 1_002_000
    assert all(window.check(s) == s for s in range(top - 1023, top))
    assert window.check(top) is None


def test_withoutEsnTheLastNumberIsUsableAndNothingWraps():
    window = ReplayWindow()
    assert window.accept(MAX_SEQ_32 - 1)
    assert window.check(MAX_SEQ_32) == MAX_SEQ_32
    assert window.accept(MAX_SEQ_32)
    assert window.check(0) is None
    assert window.check(1) is None
    assert window.top == MAX_SEQ_32


# ESN (RFC 4303 Appendix A2.2).


def test_esnStartsInTheFirstSubspace():
    window = ReplayWindow(esn=True)
    assert window.check(1) == 1
    assert window.check(0) is None
    # Would be -1: nothing before the first subspace.
    assert window.check(MAX_SEQ_32) is None


def test_esnAscendingAcrossTheBoundaryInfersTheNextSubspace():
    window = ReplayWindow(esn=True)
    assert window.accept(SUBSPACE - 2)
    assert window.check(MAX_SEQ_32) == SUBSPACE - 1
    assert window.accept(SUBSPACE - 1)
    assert window.check(0) == SUBSPACE
    assert window.accept(SUBSPACE)
    assert window.check(1) == SUBSPACE + 1
    assert window.accept(SUBSPACE + 1)
    assert window.top == SUBSPACE + 1
    # The previous subspace is still inside the window.
    assert window.check(MAX_SEQ_32) is None
    assert window.check(MAX_SEQ_32 - 2) == SUBSPACE - 3


def test_esnLatePacketsFromThePreviousSubspaceAreInferredThere():
    """Packets reordered across the boundary: the top is past 2**32, the late ones
    are just below it."""
    window = ReplayWindow(esn=True)
    assert window.accept(SUBSPACE + 3)
    assert window.check(MAX_SEQ_32) == SUBSPACE - 1
    assert window.accept(SUBSPACE - 1)
    assert window.check(MAX_SEQ_32 - 1) == SUBSPACE - 2
    assert window.accept(SUBSPACE - 2)
    assert window.check(MAX_SEQ_32) is None
    assert window.check(2) == SUBSPACE + 2
    assert window.top == SUBSPACE + 3


def test_esnWindowStraddlingTheBoundaryUsesTheBottomEdge():
    """Case B of Appendix A2.2: at or above the bottom's low bits means the older
    subspace, below them the newer one."""
    window = ReplayWindow(1024, esn=True)
    assert window.accept(SUBSPACE + 10)
    bottom = SUBSPACE + 10 - 1023
    bottomLow = bottom & MAX_SEQ_32
    assert window.check(bottomLow) == bottom
    assert window.check(bottomLow - 1) == SUBSPACE + bottomLow - 1
    assert window.check(11) == SUBSPACE + 11


def test_esnWindowInsideOneSubspaceInfersTheNextForSmallerNumbers():
    """Case A: numbers below the bottom edge belong to the next subspace, so a stale
    packet is given a number in the future and fails its ICV instead."""
    top = 3 * SUBSPACE + 5000
    window = ReplayWindow(1024, esn=True)
    assert window.accept(top)
    assert window.check(5000 - 1023) == top - 1023
    assert window.check(5000 - 1024) == 4 * SUBSPACE + 5000 - 1024
    assert window.check(MAX_SEQ_32) == 4 * SUBSPACE - 1
    assert window.check(5000) is None


def test_esnJumpAcrossSubspacesSlidesTheWindow():
    window = ReplayWindow(esn=True)
    assert window.accept(5)
    assert window.accept(SUBSPACE * 7 + 5)
    assert window.top == SUBSPACE * 7 + 5
    assert window.check(4) == SUBSPACE * 7 + 4


def test_esnStopsAtTheLastSixtyFourBitNumber():
    window = ReplayWindow(esn=True)
    assert window.accept(MAX_SEQ_64 - 1)
    assert window.check(MAX_SEQ_32) == MAX_SEQ_64
    assert window.accept(MAX_SEQ_64)
    # 2**64 would come next: the SA must have been rekeyed.
    assert window.check(0) is None
    assert not window.accept(MAX_SEQ_64 + 1)


# A naive model: the set of accepted numbers, and "left of top - size" is too old.


class _Model:
    def __init__(self, size: int) -> None:
        self.size = size
        self.seen: set[int] = set()
        self.top = 0

    def acceptable(self, seq: int) -> bool:
        return seq > 0 and seq not in self.seen and seq > self.top - self.size

    def accept(self, seq: int) -> None:
        self.seen.add(seq)
        self.top = max(self.top, seq)


_steps = st.lists(
    st.tuples(
        st.one_of(
            st.integers(-80, 80),
            st.integers(-3000, 3000),
            st.sampled_from([-(2**32), 2**32, 2**31]),
        ),
        st.booleans(),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(
    size=st.sampled_from([32, 33, 64, 100, 1024]),
    start=st.integers(1, 5000),
    steps=_steps,
)
def test_windowAgreesWithNaiveModelWithoutEsn(size, start, steps):
    """
    check returns the number exactly when the model finds it acceptable; accept
    (done only for some, as if the others failed their ICV) agrees too, and so does top.
    """
    window, model = ReplayWindow(size), _Model(size)
    seq = start
    for delta, icvOk in steps:
        seq = min(max(0, model.top + delta), MAX_SEQ_32)
        expected = seq if model.acceptable(seq) else None
        assert window.check(seq) == expected
        if icvOk:
            assert window.accept(seq) == (expected is not None)
            if expected is not None:
                model.accept(seq)
        assert window.top == model.top


@settings(max_examples=300, deadline=None)
@given(
    size=st.sampled_from([32, 64, 1024]),
    base=st.sampled_from([0, SUBSPACE, 5 * SUBSPACE, 2**63]),
    offset=st.integers(-3000, 3000),
    steps=_steps,
)
def test_windowAgreesWithNaiveModelWithEsn(size, base, offset, steps):
    """
    Only the low 32 bits go in; for a number inside the window or less than 2**32
    past its bottom edge the window must recover the full number and then judge it as the model
    does.
    A number left of the window must never come back as itself.
    """
    window, model = ReplayWindow(size, esn=True), _Model(size)
    first = max(1, base + offset)
    assert window.accept(first)
    model.accept(first)
    for delta, icvOk in steps:
        seq = model.top + delta
        if seq < 1 or seq - (model.top - size + 1) >= SUBSPACE:
            # Not a number the window can tell from 32 bits: too far ahead.
            continue
        got = window.check(seq & MAX_SEQ_32)
        if seq > model.top - size:
            expected = seq if model.acceptable(seq) else None
            assert got == expected
        else:
            assert got != seq
            expected = None
        if icvOk and expected is not None:
            assert window.accept(seq)
            model.accept(seq)
        assert window.top == model.top
