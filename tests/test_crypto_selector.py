"""
L{ProposalSelector}: the responder's remembered proposal choices give exactly what
L{selectIkeProposal} and L{selectChildProposal} give, for the SPI of each new offer, and never
hold more than their bound.
"""

from pathlib import Path

import pytest

from ikehub.crypto import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    parseProposal,
    selectChildProposal,
    selectIkeProposal,
)
from ikehub.crypto import proposals as proposalsModule
from ikehub.crypto.proposals import ProposalSelector
from ikehub.wire import Message, Proposal, SAPayload
from ikehub.wire.constants import ProtocolId

IKE = ProtocolId.IKE
ESP = ProtocolId.ESP
STRONGSWAN_INIT = Path(__file__).parent / "data" / "strongswan_ike_sa_init_request.bin"

OURS_IKE = tuple(parseProposal(t, IKE) for t in DEFAULT_IKE_PROPOSALS)
OURS_ESP = tuple(parseProposal(t, ESP) for t in DEFAULT_ESP_PROPOSALS)


def offer(text: str, protocolId: int, number: int, spi: bytes = b"") -> Proposal:
    return parseProposal(text, protocolId).toWire(number, spi)


def strongswanOffer() -> tuple[Proposal, ...]:
    if not STRONGSWAN_INIT.exists():
        pytest.skip("tests/data/strongswan_ike_sa_init_request.bin is absent")
    return Message.fromBytes(STRONGSWAN_INIT.read_bytes()).get(SAPayload).proposals


def countingChoices(monkeypatch, name: str) -> list:
    """Count the real selections made through the module-level chooser C{name}."""
    calls = []
    real = getattr(proposalsModule, name)

    def counted(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(proposalsModule, name, counted)
    return calls


def test_ikeChoiceEqualsSelectIkeProposal():
    """On a real strongSwan offer the selector answers what selectIkeProposal answers."""
    theirs = strongswanOffer()
    selector = ProposalSelector(OURS_IKE)
    assert selector.selectIke(theirs) == selectIkeProposal(OURS_IKE, theirs)
    assert selector.selectIke(theirs) == selectIkeProposal(OURS_IKE, theirs)


def test_ikeOfferSeenAgainIsNotChosenAgain(monkeypatch):
    """The same offer decoded again (from new bytes) costs one real selection in all."""
    theirs = strongswanOffer()
    calls = countingChoices(monkeypatch, "_chooseIke")
    selector = ProposalSelector(OURS_IKE)
    again = Message.fromBytes(STRONGSWAN_INIT.read_bytes()).get(SAPayload).proposals
    first = selector.selectIke(theirs)
    second = selector.selectIke(again)
    assert first == second
    assert len(calls) == 1


def test_ikeAnswerFollowsTheProposalNumber():
    """Same transforms under another proposal number: the answer carries the new number."""
    selector = ProposalSelector(OURS_IKE)
    text = "aes256gcm16-prfsha256-x25519"
    one = offer(text, IKE, 1)
    three = Proposal(3, IKE, b"", one.transforms)
    assert selector.selectIke([one])[0].number == 1
    assert selector.selectIke([three])[0].number == 3


def test_childAnswerUsesEachOffersSpi(monkeypatch):
    """
    Offers differing only in their SPI (every IKE_AUTH) share one selection, and each answer
    names the SPI of the offer it came with.
    """
    first = offer("aes128gcm16-aes256gcm16-noesn", ESP, 1, b"\x00\x00\x10\x01")
    second = Proposal(1, ESP, b"\x00\x00\x10\x02", first.transforms)
    offers = ([first], [second])
    expectations = [selectChildProposal(OURS_ESP, theirs, ignoreKe=True) for theirs in offers]
    calls = countingChoices(monkeypatch, "_chooseChild")
    selector = ProposalSelector(OURS_ESP)
    for theirs, (expected, expectedSuite) in zip(offers, expectations):
        picked, transforms, suite = selector.chooseChild(theirs, ignoreKe=True)
        assert picked is theirs[0]
        assert Proposal(picked.number, ESP, picked.spi, transforms) == expected
        assert suite == expectedSuite
    assert len(calls) == 1


def test_noAcceptableProposalIsRememberedAsSuch(monkeypatch):
    """An offer we cannot accept gives None every time, for one real selection."""
    calls = countingChoices(monkeypatch, "_chooseIke")
    selector = ProposalSelector(OURS_IKE)
    theirs = [offer("aes128-sha1-modp1024", IKE, 1)]
    assert selector.selectIke(theirs) is None
    assert selector.selectIke(theirs) is None
    assert len(calls) == 1


def test_optionsAreRememberedApart():
    """A choice made ignoring KE transforms is not reused when they count."""
    selector = ProposalSelector([parseProposal("aes256gcm16-noesn", ESP)])
    theirs = [offer("aes256gcm16-x25519-noesn", ESP, 1, b"\x00\x00\x10\x01")]
    assert selector.chooseChild(theirs, ignoreKe=True) is not None
    assert selector.chooseChild(theirs) is None
    assert selectChildProposal(selector.ours, theirs) is None


def test_memoryIsBounded():
    """However many distinct offers arrive, at most LIMIT are remembered."""
    selector = ProposalSelector(OURS_IKE)
    for _ in range(ProposalSelector.LIMIT + 20):
        theirs = [offer("aes256gcm16-prfsha256-x25519", IKE, 1)]
        selector.selectIke(theirs)
        assert len(selector._choices) <= ProposalSelector.LIMIT


def test_hugeOffersAreChosenAmongButNotRemembered():
    """An offer beyond MAX_TRANSFORMS is answered correctly and not stored."""
    one = offer("aes256gcm16-prfsha256-x25519", IKE, 1)
    theirs = [Proposal(n, IKE, b"", one.transforms) for n in range(1, 100)]
    selector = ProposalSelector(OURS_IKE)
    assert selector.selectIke(theirs) == selectIkeProposal(OURS_IKE, theirs)
    assert selector._choices == {}
