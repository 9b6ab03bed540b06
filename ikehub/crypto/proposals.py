"""
Proposals: strongSwan-style proposal strings, and choosing among a peer's proposals.

Configuration names algorithms the way strongSwan does (C{aes256gcm16-prfsha384-x25519}),
so an administrator can paste a proposal from a strongSwan or client configuration.
Selection follows I{our} preference: for each of our proposals in order, the first of
the peer's proposals that can be completed from it wins, with our most preferred
algorithm in every transform type (RFC 7296 section 2.7 lets the responder choose).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ikehub.crypto.errors import CryptoError, ProposalSyntaxError
from ikehub.crypto.transforms import (
    ENCR_NAMES,
    ESN_NAMES,
    INTEG_NAMES,
    KE_NAMES,
    PRF_FOR_INTEG,
    PRF_NAMES,
    EncrAlgorithm,
    IntegAlgorithm,
    PrfAlgorithm,
    encrAlgorithm,
    integAlgorithm,
    prfAlgorithm,
)
from ikehub.wire.constants import EsnId, IntegId, KeGroup, ProtocolId, TransformType
from ikehub.wire.payloads import Proposal, Transform

#: SPI sizes (RFC 7296 section 3.3.1): none for IKE in IKE_SA_INIT, 8 when an IKE SA is
#: rekeyed, 4 for ESP.
IKE_SPI_SIZE_INIT = 0
IKE_SPI_SIZE_REKEY = 8
ESP_SPI_SIZE = 4

_KNOWN_TYPES = frozenset(TransformType)
_KE_NAME_OF = {group: name for name, group in reversed(KE_NAMES.items())}
_ESN_NAME_OF = {esn: name for name, esn in ESN_NAMES.items()}


def _dedupe(items):
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, slots=True)
class ProposalSpec:
    """
    One of our proposals: the algorithms we accept for each transform type, most
    preferred first.

    @ivar ke: KE groups; required for IKE, optional (PFS) for ESP.
    @ivar esn: ESN choices, ESP only; an IKE spec always has none.
    @raise ProposalSyntaxError: on construction, for a combination RFC 7296 or RFC 5282
        forbids (mixed AEAD and non-AEAD ciphers, AEAD with an integrity algorithm, IKE
        without a PRF or KE group, non-AEAD without an integrity algorithm...).
    """

    protocolId: int
    encr: tuple[EncrAlgorithm, ...]
    integ: tuple[IntegAlgorithm, ...] = ()
    prf: tuple[PrfAlgorithm, ...] = ()
    ke: tuple[int, ...] = ()
    esn: tuple[int, ...] = (EsnId.NO_ESN,)

    def __post_init__(self) -> None:
        if self.protocolId == ProtocolId.IKE:
            object.__setattr__(self, "esn", ())
        problem = self._problem()
        if problem:
            raise ProposalSyntaxError(f"proposal {self}: {problem}")

    def _problem(self) -> str | None:
        if self.protocolId not in (ProtocolId.IKE, ProtocolId.ESP):
            return "only IKE and ESP proposals are supported"
        if not self.encr:
            return "no encryption algorithm"
        aead = {e.isAead for e in self.encr}
        if len(aead) > 1:
            return "AEAD and non-AEAD encryption algorithms cannot share a proposal"
        if self.isAead and self.integ:
            return "an AEAD encryption algorithm takes no integrity algorithm"
        if not self.isAead and not self.integ:
            return "no integrity algorithm"
        for group in self.ke:
            if group not in _KE_NAME_OF:
                return f"unsupported key exchange group {group}"
        if self.protocolId == ProtocolId.IKE:
            if not self.prf:
                return "an IKE proposal needs a PRF (prfsha256, or sha256 and the like)"
            if not self.ke:
                return "an IKE proposal needs a key exchange group"
            return None
        if self.prf:
            return "an ESP proposal has no PRF"
        if not self.esn or any(e not in _ESN_NAME_OF for e in self.esn):
            return "ESN must be esn, noesn or both"
        return None

    @property
    def isAead(self) -> bool:
        return self.encr[0].isAead if self.encr else False

    def __str__(self) -> str:
        names = [e.name for e in self.encr]
        names += [i.name for i in self.integ]
        names += [p.name for p in self.prf]
        names += [_KE_NAME_OF.get(g, str(g)) for g in self.ke]
        names += [_ESN_NAME_OF.get(e, str(e)) for e in self.esn]
        return "-".join(names)

    def toWire(self, number: int, spi: bytes) -> Proposal:
        """
        This spec as a proposal to send: one transform per algorithm, AES with its
        KEY_LENGTH attribute.
        """
        transforms = [
            Transform(TransformType.ENCR, e.transformId, e.keyLength) for e in self.encr
        ]
        transforms += [Transform(TransformType.PRF, p.transformId) for p in self.prf]
        transforms += [
            Transform(TransformType.INTEG, i.transformId) for i in self.integ
        ]
        transforms += [Transform(TransformType.KE, g) for g in self.ke]
        transforms += [Transform(TransformType.ESN, e) for e in self.esn]
        return Proposal(number, self.protocolId, spi, tuple(transforms))


def _acceptedNames() -> str:
    return "; ".join(
        f"{kind}: {', '.join(names)}"
        for kind, names in (
            ("encryption", ENCR_NAMES),
            ("integrity", INTEG_NAMES),
            ("PRF", PRF_NAMES),
            ("key exchange", KE_NAMES),
            ("ESN (ESP only)", ESN_NAMES),
        )
    )


def parseProposal(text: str, protocolId: int) -> ProposalSpec:
    """
    Parse a strongSwan proposal string such as C{aes256gcm16-prfsha384-x25519-ecp256}.

    In an IKE proposal a bare integrity name (C{sha256}) also names the matching PRF,
    unless C{prfXXX} names PRFs explicitly; next to an AEAD cipher it names only the
    PRF. An ESP proposal has no PRF, and ESN defaults to C{noesn}.

    @raise ProposalSyntaxError: naming the offending token and the accepted names.
    """
    encr: list[EncrAlgorithm] = []
    integ: list[IntegAlgorithm] = []
    prf: list[PrfAlgorithm] = []
    ke: list[int] = []
    esn: list[int] = []
    isIke = protocolId == ProtocolId.IKE
    for token in text.strip().lower().split("-"):
        if token in ENCR_NAMES:
            encr.append(ENCR_NAMES[token])
        elif token in INTEG_NAMES:
            integ.append(INTEG_NAMES[token])
        elif token in PRF_NAMES:
            if not isIke:
                raise ProposalSyntaxError(
                    f"{token!r} in proposal {text!r}: ESP proposals have no PRF"
                )
            prf.append(PRF_NAMES[token])
        elif token in KE_NAMES:
            ke.append(KE_NAMES[token])
        elif token in ESN_NAMES:
            if isIke:
                raise ProposalSyntaxError(
                    f"{token!r} in proposal {text!r}: ESN applies to ESP proposals only"
                )
            esn.append(ESN_NAMES[token])
        else:
            what = f"unknown algorithm {token!r}" if token else "empty algorithm name"
            raise ProposalSyntaxError(
                f"{what} in proposal {text!r}; accepted names are {_acceptedNames()}"
            )
    aead = bool(encr) and all(e.isAead for e in encr)
    if isIke:
        implied = [PRF_FOR_INTEG[i.transformId] for i in integ]
        if aead:
            prf += implied
            integ = []
        elif not prf:
            prf = implied
    elif aead and integ:
        raise ProposalSyntaxError(
            f"proposal {text!r}: an AEAD encryption algorithm takes no integrity "
            f"algorithm ({', '.join(i.name for i in integ)})"
        )
    return ProposalSpec(
        protocolId,
        _dedupe(encr),
        _dedupe(integ),
        _dedupe(prf),
        _dedupe(ke),
        _dedupe(esn) or (EsnId.NO_ESN,),
    )


@dataclass(frozen=True, slots=True)
class IkeSuite:
    """The algorithms of one IKE SA; C{integ} is C{None} with an AEAD cipher."""

    encr: EncrAlgorithm
    integ: IntegAlgorithm | None
    prf: PrfAlgorithm
    keGroup: int


@dataclass(frozen=True, slots=True)
class ChildSuite:
    """
    The algorithms of one CHILD SA pair; C{integ} is C{None} with an AEAD cipher and
    C{keGroup} is the PFS group, or C{None} without PFS.
    """

    encr: EncrAlgorithm
    integ: IntegAlgorithm | None
    esn: bool
    keGroup: int | None


class _Offer:
    """One of the peer's proposals, indexed by transform type for selection."""

    __slots__ = ("encr", "esn", "index", "integ", "ke", "prf")

    def __init__(self, index: int, proposal: Proposal) -> None:
        #: Where the proposal sits in the peer's list.
        self.index = index
        self.encr: dict[tuple[int, int | None], Transform] = {}
        self.prf: dict[int, Transform] = {}
        self.integ: dict[int, Transform] = {}
        self.ke: dict[int, Transform] = {}
        self.esn: dict[int, Transform] = {}
        byType = {
            TransformType.ENCR: None,
            TransformType.PRF: self.prf,
            TransformType.INTEG: self.integ,
            TransformType.KE: self.ke,
            TransformType.ESN: self.esn,
        }
        for transform in proposal.transforms:
            if transform.hasUnknownAttributes:
                continue
            if transform.transformType == TransformType.ENCR:
                self.encr.setdefault(
                    (transform.transformId, transform.keyLength), transform
                )
            else:
                byType[transform.transformType].setdefault(
                    transform.transformId, transform
                )

    @classmethod
    def fromProposal(cls, index: int, proposal: Proposal) -> _Offer | None:
        """
        C{None} for a proposal with a transform type we do not understand, which RFC
        7296 section 3.3.6 makes unacceptable as a whole.
        """
        for transform in proposal.transforms:
            if transform.transformType not in _KNOWN_TYPES:
                return None
        return cls(index, proposal)


def _first(preferences, offered: dict):
    for item in preferences:
        transform = offered.get(item)
        if transform is not None:
            return item, transform
    return None


def _chooseCipher(spec: ProposalSpec, offer: _Offer):
    """
    The (encr, integ, transforms) part common to IKE and ESP, or C{None}.
    With an AEAD cipher the peer's integrity transforms are ignored, except that an
    offered INTEG NONE is echoed.
    """
    chosenEncr = _first(((e.transformId, e.keyLength) for e in spec.encr), offer.encr)
    if chosenEncr is None:
        return None
    (transformId, keyLength), encrTransform = chosenEncr
    encr = encrAlgorithm(transformId, keyLength)
    if encr.isAead:
        none = offer.integ.get(IntegId.NONE)
        return encr, None, [encrTransform], ([none] if none is not None else [])
    chosenInteg = _first((i.transformId for i in spec.integ), offer.integ)
    if chosenInteg is None:
        return None
    return encr, integAlgorithm(chosenInteg[0]), [encrTransform], [chosenInteg[1]]


def _offers(theirs: Sequence[Proposal], protocolId: int, spiSize: int) -> list[_Offer]:
    offers = []
    for index, proposal in enumerate(theirs):
        if proposal.protocolId != protocolId or len(proposal.spi) != spiSize:
            continue
        offer = _Offer.fromProposal(index, proposal)
        if offer is not None:
            offers.append(offer)
    return offers


#: What a selection decides, apart from the SPI: which of the peer's proposals (by index),
#: the transforms of the answer, and the suite they stand for.
_Choice = tuple[int, tuple[Transform, ...], IkeSuite | ChildSuite]


def _answer(theirs: Sequence[Proposal], choice: _Choice) -> tuple[Proposal, Any]:
    """The proposal to answer with: the chosen transforms under the peer's number and SPI."""
    index, transforms, suite = choice
    proposal = theirs[index]
    return Proposal(proposal.number, proposal.protocolId, proposal.spi, transforms), suite


def _chooseIke(
    ours: Sequence[ProposalSpec], theirs: Sequence[Proposal], spiSize: int
) -> _Choice | None:
    offers = _offers(theirs, ProtocolId.IKE, spiSize)
    for spec in ours:
        if spec.protocolId != ProtocolId.IKE:
            continue
        for offer in offers:
            if offer.esn:
                continue
            cipher = _chooseCipher(spec, offer)
            if cipher is None:
                continue
            prf = _first((p.transformId for p in spec.prf), offer.prf)
            ke = _first(spec.ke, offer.ke)
            if prf is None or ke is None:
                continue
            encr, integ, encrTransforms, integTransforms = cipher
            transforms = (*encrTransforms, prf[1], *integTransforms, ke[1])
            return offer.index, transforms, IkeSuite(encr, integ, prfAlgorithm(prf[0]), ke[0])
    return None


def selectIkeProposal(
    ours: Sequence[ProposalSpec],
    theirs: Sequence[Proposal],
    *,
    spiSize: int = IKE_SPI_SIZE_INIT,
) -> tuple[Proposal, IkeSuite] | None:
    """
    Choose an IKE SA proposal, our preference first.

    @param spiSize: 0 in IKE_SA_INIT, 8 when rekeying the IKE SA; proposals with
        another SPI size are skipped.
    @return: the proposal to answer with (their number and SPI, one transform per type)
        and the suite, or C{None} for NO_PROPOSAL_CHOSEN.
    """
    choice = _chooseIke(ours, theirs, spiSize)
    return None if choice is None else _answer(theirs, choice)


def _chooseChildKe(spec: ProposalSpec, offer: _Offer, allowNoPfs: bool, ignoreKe: bool):
    """
    ([answer transforms], group or None), or C{None} when the KE part cannot match:
    with groups in C{spec} the peer must offer one of them, unless C{allowNoPfs} and it
    offers none (or NONE); without groups the peer must offer none or NONE.
    """
    if ignoreKe:
        return [], None
    offeredNone = offer.ke.get(KeGroup.NONE)
    noPfs = ([offeredNone] if offeredNone is not None else [], None)
    noPfsOffered = not offer.ke or offeredNone is not None
    if spec.ke:
        chosen = _first(spec.ke, offer.ke)
        if chosen is not None:
            return [chosen[1]], chosen[0]
        return noPfs if allowNoPfs and noPfsOffered else None
    return noPfs if noPfsOffered else None


def _chooseChild(
    ours: Sequence[ProposalSpec],
    theirs: Sequence[Proposal],
    allowNoPfs: bool,
    ignoreKe: bool,
) -> _Choice | None:
    offers = _offers(theirs, ProtocolId.ESP, ESP_SPI_SIZE)
    for spec in ours:
        if spec.protocolId != ProtocolId.ESP:
            continue
        for offer in offers:
            if offer.prf:
                continue
            cipher = _chooseCipher(spec, offer)
            if cipher is None:
                continue
            if offer.esn:
                esn = _first(spec.esn, offer.esn)
                if esn is None:
                    continue
                esnTransforms = [esn[1]]
                esnOn = esn[0] == EsnId.ESN
            elif EsnId.NO_ESN in spec.esn:
                esnTransforms = []
                esnOn = False
            else:
                continue
            ke = _chooseChildKe(spec, offer, allowNoPfs, ignoreKe)
            if ke is None:
                continue
            encr, integ, encrTransforms, integTransforms = cipher
            keTransforms, group = ke
            transforms = (*encrTransforms, *integTransforms, *keTransforms, *esnTransforms)
            return offer.index, transforms, ChildSuite(encr, integ, esnOn, group)
    return None


def selectChildProposal(
    ours: Sequence[ProposalSpec],
    theirs: Sequence[Proposal],
    *,
    allowNoPfs: bool = False,
    ignoreKe: bool = False,
) -> tuple[Proposal, ChildSuite] | None:
    """
    Choose an ESP proposal, our preference first.

    A peer's proposal without ESN transforms counts as offering C{noesn}.

    @param allowNoPfs: accept a proposal without KE (or with KE NONE) even when our
        spec lists PFS groups.
    @param ignoreKe: disregard KE transforms altogether, as in IKE_AUTH, whose CHILD SA
        takes its keys from the IKE SA (RFC 7296 section 1.2); the answer then carries
        no KE transform.
    @return: the proposal to answer with and the suite, or C{None}.
    """
    choice = _chooseChild(ours, theirs, allowNoPfs, ignoreKe)
    return None if choice is None else _answer(theirs, choice)


class ProposalSelector:
    """
    L{selectIkeProposal} and L{selectChildProposal} over one fixed list of our proposals,
    remembering what they chose.

    A choice depends only on our proposals and the transforms the peer offers, and every
    client of one implementation and configuration offers the same transforms in every
    handshake: a responder would otherwise work out the same answer thousands of times a
    second. Offers are remembered without their SPIs (the ESP SPI is new in every
    IKE_AUTH), so an answer is rebuilt around the SPI of the proposal it picks. The memory
    is bounded, and an offer with no acceptable proposal is remembered as such, so hostile
    offers cost what selection costs and never more memory than the bound.
    """

    __slots__ = ("_choices", "ours")

    #: Offers remembered at most; beyond that the memory starts over.
    LIMIT = 256
    #: Offers with more transforms than this are chosen among afresh every time.
    MAX_TRANSFORMS = 256

    def __init__(self, ours: Sequence[ProposalSpec]) -> None:
        self.ours = tuple(ours)
        #: offer key -> [the offer's transforms tuples, choice or None, last IKE answer built]
        self._choices: dict[tuple, list] = {}

    def selectIke(
        self, theirs: Sequence[Proposal], *, spiSize: int = IKE_SPI_SIZE_INIT
    ) -> tuple[Proposal, IkeSuite] | None:
        """L{selectIkeProposal} with our proposals."""
        entry = self._remembered(theirs, (ProtocolId.IKE, spiSize), _chooseIke, spiSize)
        choice = entry[1]
        if choice is None:
            return None
        index, transforms, suite = choice
        offer = theirs[index]
        answer = entry[2]
        # IKE_SA_INIT offers carry no SPI, so the answer itself is usually the same.
        if answer is None or answer.number != offer.number or answer.spi != offer.spi:
            answer = entry[2] = Proposal(offer.number, offer.protocolId, offer.spi, transforms)
        return answer, suite

    def chooseChild(
        self,
        theirs: Sequence[Proposal],
        *,
        allowNoPfs: bool = False,
        ignoreKe: bool = False,
    ) -> tuple[Proposal, tuple[Transform, ...], ChildSuite] | None:
        """
        What L{selectChildProposal} with our proposals chooses, as the peer's proposal that
        was picked (its number and SPI), the transforms to answer with, and the suite: the
        answer carries our own SPI, so the caller builds it.
        """
        entry = self._remembered(
            theirs, (ProtocolId.ESP, allowNoPfs, ignoreKe), _chooseChild, allowNoPfs, ignoreKe
        )
        choice = entry[1]
        if choice is None:
            return None
        index, transforms, suite = choice
        return theirs[index], transforms, suite

    def _remembered(self, theirs: Sequence[Proposal], kind: tuple, choose, *options) -> list:
        # Offers are told apart by the identity of their transforms tuples rather than their
        # values: hashing Transform values costs a Python call per transform (strongSwan offers
        # dozens), while the wire decoder hands out one shared tuple per distinct encoding. An
        # entry holds its tuples, so no other tuple can take their ids while it exists.
        key = [kind]
        held = []
        count = 0
        for proposal in theirs:
            transforms = proposal.transforms
            count += len(transforms)
            held.append(transforms)
            key.append((proposal.protocolId, len(proposal.spi), id(transforms)))
        if count > self.MAX_TRANSFORMS:
            return [held, choose(self.ours, theirs, *options), None]
        frozenKey = tuple(key)
        entry = self._choices.get(frozenKey)
        if entry is None:
            if len(self._choices) >= self.LIMIT:
                self._choices.clear()
            entry = self._choices[frozenKey] = [held, choose(self.ours, theirs, *options), None]
        return entry


def suiteFromProposal(proposal: Proposal, protocolId: int) -> IkeSuite | ChildSuite:
    """
    The suite a single-transform-per-type proposal (a responder's answer) stands for.

    @raise CryptoError: the proposal is for another protocol, repeats a transform type,
        lacks a mandatory one, carries one that does not belong, or names an algorithm
        we do not implement (L{UnsupportedTransform}).
    """
    if proposal.protocolId != protocolId:
        raise CryptoError(
            f"proposal is for protocol {proposal.protocolId}, expected {protocolId}"
        )
    chosen: dict[int, Transform] = {}
    for transform in proposal.transforms:
        kind = transform.transformType
        if kind not in _KNOWN_TYPES:
            raise CryptoError(f"chosen proposal has unknown transform type {kind}")
        if transform.hasUnknownAttributes:
            raise CryptoError("chosen transform has unknown attributes")
        if kind in chosen:
            raise CryptoError(
                f"chosen proposal has more than one transform of type {kind}"
            )
        chosen[kind] = transform
    encrTransform = chosen.get(TransformType.ENCR)
    if encrTransform is None:
        raise CryptoError("chosen proposal has no encryption transform")
    encr = encrAlgorithm(encrTransform.transformId, encrTransform.keyLength)
    integTransform = chosen.get(TransformType.INTEG)
    integId = integTransform.transformId if integTransform is not None else IntegId.NONE
    if encr.isAead:
        if integId != IntegId.NONE:
            raise CryptoError("chosen AEAD cipher comes with an integrity transform")
        integ = None
    elif integId == IntegId.NONE:
        raise CryptoError("chosen cipher needs an integrity transform")
    else:
        integ = integAlgorithm(integId)
    keTransform = chosen.get(TransformType.KE)
    group = keTransform.transformId if keTransform is not None else KeGroup.NONE
    if protocolId == ProtocolId.IKE:
        prfTransform = chosen.get(TransformType.PRF)
        if prfTransform is None or group == KeGroup.NONE:
            raise CryptoError("chosen IKE proposal needs a PRF and a KE group")
        if TransformType.ESN in chosen:
            raise CryptoError("chosen IKE proposal carries an ESN transform")
        return IkeSuite(encr, integ, prfAlgorithm(prfTransform.transformId), group)
    if protocolId != ProtocolId.ESP:
        raise CryptoError(f"protocol {protocolId} is not supported")
    if TransformType.PRF in chosen:
        raise CryptoError("chosen ESP proposal carries a PRF")
    esnTransform = chosen.get(TransformType.ESN)
    esn = esnTransform.transformId if esnTransform is not None else EsnId.NO_ESN
    if esn not in _ESN_NAME_OF:
        raise CryptoError(f"chosen ESN value {esn} is not defined")
    if group != KeGroup.NONE and group not in _KE_NAME_OF:
        raise CryptoError(f"chosen key exchange group {group} is not supported")
    return ChildSuite(
        encr, integ, esn == EsnId.ESN, None if group == KeGroup.NONE else group
    )


def checkChosenProposal(
    ours: Sequence[ProposalSpec],
    chosen: Proposal,
    *,
    spiSize: int | None = None,
    allowNoPfs: bool = False,
    ignoreKe: bool = False,
) -> IkeSuite | ChildSuite | None:
    """
    As initiator: the suite of the responder's answer if it is something one of C{ours}
    offered, else C{None} (the exchange must then fail).

    @param spiSize: the SPI size the answer must have; by default 0 for IKE (as in
        IKE_SA_INIT; pass 8 for a rekey) and 4 for ESP.
    @param allowNoPfs: accept an ESP answer without a KE group although we asked for PFS.
    @param ignoreKe: IKE_AUTH: an ESP answer's KE transform, if any, must be NONE and
        our groups do not matter.
    """
    protocolId = chosen.protocolId
    if spiSize is None:
        spiSize = ESP_SPI_SIZE if protocolId == ProtocolId.ESP else IKE_SPI_SIZE_INIT
    if len(chosen.spi) != spiSize:
        return None
    try:
        suite = suiteFromProposal(chosen, protocolId)
    except CryptoError:
        return None
    for spec in ours:
        if spec.protocolId == protocolId and _specAllows(
            spec, suite, allowNoPfs or ignoreKe
        ):
            return suite
    return None


def _specAllows(
    spec: ProposalSpec, suite: IkeSuite | ChildSuite, noPfsOk: bool
) -> bool:
    if suite.encr not in spec.encr:
        return False
    if suite.integ is not None and suite.integ not in spec.integ:
        return False
    if isinstance(suite, IkeSuite):
        return suite.prf in spec.prf and suite.keGroup in spec.ke
    if (EsnId.ESN if suite.esn else EsnId.NO_ESN) not in spec.esn:
        return False
    if suite.keGroup is None:
        return not spec.ke or noPfsOk
    return suite.keGroup in spec.ke


_ALL_GROUPS = "x25519-ecp256-ecp384-ecp521-x448-modp3072-modp2048-modp4096"

#: Our IKE proposals by default: AEAD and X25519 first, then AES-CBC with HMAC-SHA2,
#: then ChaCha20-Poly1305. No MODP 1024 and no SHA-1.
DEFAULT_IKE_PROPOSALS: tuple[str, ...] = (
    f"aes256gcm16-aes128gcm16-prfsha384-prfsha256-prfsha512-{_ALL_GROUPS}",
    f"aes256-aes192-aes128-sha384-sha256-sha512-{_ALL_GROUPS}",
    f"chacha20poly1305-prfsha256-prfsha384-prfsha512-{_ALL_GROUPS}",
)

#: Our ESP proposals by default, ESN accepted but not preferred. The groups are for CHILD SA
#: rekeys with PFS (a CHILD SA made in IKE_AUTH takes its keys from the IKE SA); a rekey without
#: is accepted too unless [esp] require_pfs says otherwise.
DEFAULT_ESP_PROPOSALS: tuple[str, ...] = (
    f"aes256gcm16-aes128gcm16-{_ALL_GROUPS}-noesn-esn",
    f"aes256-aes128-sha256-sha384-sha512-{_ALL_GROUPS}-noesn-esn",
    f"chacha20poly1305-{_ALL_GROUPS}-noesn-esn",
)
