"""
Proposals: strongSwan proposal strings, our default proposals, and selection by our
preference, including on a real strongSwan 5.9.8 IKE_SA_INIT exchange.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikehub.crypto import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    ChildSuite,
    CryptoError,
    IkeSuite,
    ProposalSpec,
    ProposalSyntaxError,
    checkChosenProposal,
    encrAlgorithm,
    integAlgorithm,
    parseProposal,
    prfAlgorithm,
    selectChildProposal,
    selectIkeProposal,
    suiteFromProposal,
)
from ikehub.wire import Message, Proposal, SAPayload, Transform
from ikehub.wire.constants import (
    EncrId,
    EsnId,
    IntegId,
    KeGroup,
    PrfId,
    ProtocolId,
    TransformType,
)

IKE = ProtocolId.IKE
ESP = ProtocolId.ESP
DATA = Path(__file__).parent / "data"

GCM128 = encrAlgorithm(EncrId.AES_GCM_16, 128)
GCM256 = encrAlgorithm(EncrId.AES_GCM_16, 256)
CBC128 = encrAlgorithm(EncrId.AES_CBC, 128)
CBC256 = encrAlgorithm(EncrId.AES_CBC, 256)
CHACHA = encrAlgorithm(EncrId.CHACHA20_POLY1305)
SHA256 = integAlgorithm(IntegId.HMAC_SHA2_256_128)
SHA384 = integAlgorithm(IntegId.HMAC_SHA2_384_192)
PRF256 = prfAlgorithm(PrfId.HMAC_SHA2_256)
PRF384 = prfAlgorithm(PrfId.HMAC_SHA2_384)


def ike(text: str) -> ProposalSpec:
    return parseProposal(text, IKE)


def esp(text: str) -> ProposalSpec:
    return parseProposal(text, ESP)


def offer(text: str, protocolId: int, number: int, spi: bytes = b"") -> Proposal:
    """A peer's proposal, built from a strongSwan string."""
    return parseProposal(text, protocolId).toWire(number, spi)


def types(proposal: Proposal) -> list[int]:
    return [t.transformType for t in proposal.transforms]


# -- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", DEFAULT_IKE_PROPOSALS)
def test_defaultIkeProposalsParseAndRoundTrip(text):
    """Each default parses, and its canonical form parses back to the same spec."""
    spec = ike(text)
    assert spec.protocolId == IKE and spec.esn == ()
    assert ike(str(spec)) == spec


@pytest.mark.parametrize("text", DEFAULT_ESP_PROPOSALS)
def test_defaultEspProposalsParseAndRoundTrip(text):
    spec = esp(text)
    assert spec.protocolId == ESP and spec.prf == ()
    assert esp(str(spec)) == spec


def test_defaultsCoverWhatCommonClientsOfferWithoutLegacy():
    """
    AES-GCM-16 and AES-CBC with HMAC-SHA2, PRF SHA2, groups 14, 19, 20, 21, 31, 32 are
    all accepted; GCM and X25519 come first; MODP 1024 and SHA-1 are nowhere.
    """
    specs = [ike(t) for t in DEFAULT_IKE_PROPOSALS]
    assert specs[0].encr[0].transformId == EncrId.AES_GCM_16
    assert specs[0].ke[0] == KeGroup.CURVE25519
    groups = {g for s in specs for g in s.ke}
    assert groups >= {14, 19, 20, 21, 31, 32}
    assert KeGroup.MODP_1024 not in groups
    encrs = {(e.transformId, e.keyLength) for s in specs for e in s.encr}
    assert {(20, 128), (20, 256), (12, 128), (12, 256), (28, None)} <= encrs
    integs = {i.transformId for s in specs for i in s.integ}
    assert integs == {
        IntegId.HMAC_SHA2_256_128,
        IntegId.HMAC_SHA2_384_192,
        IntegId.HMAC_SHA2_512_256,
    }
    prfs = {p.transformId for s in specs for p in s.prf}
    assert prfs == {PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_384, PrfId.HMAC_SHA2_512}
    espSpecs = [esp(t) for t in DEFAULT_ESP_PROPOSALS]
    # CHILD SA rekeys may bring PFS in any group the IKE SA could use (and, allowNoPfs, none).
    assert all(set(s.ke) == groups for s in espSpecs)
    assert all(set(s.esn) == {EsnId.NO_ESN, EsnId.ESN} for s in espSpecs)
    assert espSpecs[0].encr[0].transformId == EncrId.AES_GCM_16
    assert not any(i.transformId == IntegId.HMAC_SHA1_96 for s in espSpecs for i in s.integ)


def test_bareIntegrityNameAlsoNamesThePrfInIke():
    """As in strongSwan, sha256 in an IKE proposal is HMAC-SHA2-256-128 and PRF SHA2-256."""
    spec = ike("aes128-sha256-modp2048")
    assert spec.integ == (SHA256,)
    assert spec.prf == (PRF256,)
    assert spec.ke == (KeGroup.MODP_2048,)


def test_explicitPrfOverridesImpliedOnes():
    spec = ike("aes128-sha256-prfsha384-x25519")
    assert spec.integ == (SHA256,)
    assert spec.prf == (PRF384,)


def test_integrityNameNextToAeadNamesOnlyThePrf():
    spec = ike("aes256gcm16-sha384-x25519")
    assert spec.integ == ()
    assert spec.prf == (PRF384,)


def test_espDefaultsToNoEsnAndTakesPfsGroups():
    spec = esp("aes128gcm16")
    assert spec.esn == (EsnId.NO_ESN,)
    assert spec.ke == ()
    pfs = esp("aes256-sha256-ecp256-esn")
    assert pfs.ke == (KeGroup.ECP_256,)
    assert pfs.esn == (EsnId.ESN,)


def test_aliasesAndCaseAreAccepted():
    assert ike("AES128GCM128-PRFSHA256-Curve25519") == ike("aes128gcm16-prfsha256-x25519")
    assert ike("aes256gcm-prfsha256-curve448").ke == (KeGroup.CURVE448,)
    assert ike("aes256gcm16-aes256gcm-prfsha256-x25519").encr == (GCM256,)


@pytest.mark.parametrize(
    "text,bad",
    [
        ("aes128-foo-sha256-modp2048", "'foo'"),
        ("aes128-sha256-modp2047", "'modp2047'"),
        ("3des-sha1-modp1024", "'3des'"),
        ("aes128--sha256-modp2048", "empty"),
    ],
)
def test_unknownTokenNamesItAndListsAcceptedNames(text, bad):
    with pytest.raises(ProposalSyntaxError) as caught:
        ike(text)
    message = str(caught.value)
    assert bad in message
    for accepted in (
        "aes256gcm16",
        "chacha20poly1305",
        "sha384",
        "prfsha512",
        "x25519",
        "ecp521",
    ):
        assert accepted in message


@pytest.mark.parametrize(
    "text,protocolId,problem",
    [
        ("aes256gcm16-aes256-sha256-prfsha256-x25519", IKE, "AEAD"),
        ("aes256gcm16-x25519", IKE, "PRF"),
        ("aes256-sha256", IKE, "key exchange"),
        ("aes256-prfsha256-x25519", IKE, "integrity"),
        ("sha256-prfsha256-x25519", IKE, "encryption"),
        ("aes256-sha256-x25519-esn", IKE, "ESN"),
        ("aes256-sha256-prfsha256", ESP, "PRF"),
        ("aes256gcm16-sha256", ESP, "integrity"),
        ("aes128gcm16-aes128", ESP, "AEAD"),
        ("aes128", ESP, "integrity"),
        ("aes128-sha256", ProtocolId.AH, "IKE and ESP"),
    ],
)
def test_semanticallyInvalidProposalsAreRefused(text, protocolId, problem):
    with pytest.raises(ProposalSyntaxError) as caught:
        parseProposal(text, protocolId)
    assert problem in str(caught.value)
    assert isinstance(caught.value, CryptoError)


def test_specConstructionValidatesToo():
    with pytest.raises(ProposalSyntaxError):
        ProposalSpec(IKE, (GCM128, CBC128), (), (PRF256,), (31,))
    with pytest.raises(ProposalSyntaxError):
        ProposalSpec(IKE, (CBC128,), (SHA256,), (PRF256,), (9999,))
    assert ProposalSpec(IKE, (GCM128,), (), (PRF256,), (31,)).esn == ()


def test_toWireEmitsOneTransformPerAlgorithmWithKeyLengths():
    proposal = ike("aes256gcm16-chacha20poly1305-prfsha384-x25519-ecp256").toWire(3, b"")
    assert (proposal.number, proposal.protocolId, proposal.spi) == (3, IKE, b"")
    assert proposal.transforms == (
        Transform(TransformType.ENCR, EncrId.AES_GCM_16, 256),
        Transform(TransformType.ENCR, EncrId.CHACHA20_POLY1305, None),
        Transform(TransformType.PRF, PrfId.HMAC_SHA2_384),
        Transform(TransformType.KE, KeGroup.CURVE25519),
        Transform(TransformType.KE, KeGroup.ECP_256),
    )
    child = esp("aes128-sha256-noesn-esn").toWire(1, b"\x01\x02\x03\x04")
    assert types(child) == [1, 3, 5, 5]
    assert child.spi == b"\x01\x02\x03\x04"
    assert Proposal.toBytes(child)  # encodes


# -- IKE selection -----------------------------------------------------------------------


def test_ikeSelectionFollowsOurPreferenceNotTheirs():
    """Whatever order they list their proposals in, our first spec that fits wins."""
    theirs = [
        offer("aes128-sha256-modp2048", IKE, 1),
        offer("aes128gcm16-prfsha256-x25519", IKE, 2),
    ]
    ours = [
        ike("aes256gcm16-aes128gcm16-prfsha256-x25519"),
        ike("aes128-sha256-modp2048"),
    ]
    chosen, suite = selectIkeProposal(ours, theirs)
    assert chosen.number == 2
    assert suite == IkeSuite(GCM128, None, PRF256, KeGroup.CURVE25519)
    chosen, suite = selectIkeProposal(list(reversed(ours)), theirs)
    assert chosen.number == 1
    assert suite == IkeSuite(CBC128, SHA256, PRF256, KeGroup.MODP_2048)


def test_ikeSelectionPicksOurMostPreferredAlgorithmInEachType():
    theirs = [offer("aes128gcm16-aes256gcm16-prfsha256-prfsha384-modp2048-ecp256-x25519", IKE, 7)]
    ours = [ike("aes256gcm16-aes128gcm16-prfsha384-prfsha256-x25519-ecp256-modp2048")]
    chosen, suite = selectIkeProposal(ours, theirs)
    assert suite == IkeSuite(GCM256, None, PRF384, KeGroup.CURVE25519)
    assert chosen.number == 7 and chosen.spi == b""
    assert chosen.transforms == (
        Transform(TransformType.ENCR, EncrId.AES_GCM_16, 256),
        Transform(TransformType.PRF, PrfId.HMAC_SHA2_384),
        Transform(TransformType.KE, KeGroup.CURVE25519),
    )


def test_ikeKeGroupOrderIsOurs():
    theirs = [offer("aes128-sha256-ecp384-ecp256-modp2048", IKE, 1)]
    _, suite = selectIkeProposal([ike("aes128-sha256-x25519-ecp256-ecp384")], theirs)
    assert suite.keGroup == KeGroup.ECP_256
    _, suite = selectIkeProposal([ike("aes128-sha256-modp2048-ecp384")], theirs)
    assert suite.keGroup == KeGroup.MODP_2048


def test_ikeCbcAnswerCarriesOneTransformPerType():
    theirs = [offer("aes256-aes128-sha512-sha256-modp2048", IKE, 1)]
    chosen, suite = selectIkeProposal([ike("aes128-aes256-sha256-x25519-modp2048")], theirs)
    assert suite == IkeSuite(CBC128, SHA256, PRF256, KeGroup.MODP_2048)
    assert types(chosen) == [
        TransformType.ENCR,
        TransformType.PRF,
        TransformType.INTEG,
        TransformType.KE,
    ]
    assert chosen.transforms[0].keyLength == 128


def test_ikeNoOverlapIsNone():
    theirs = [
        offer("aes128-sha1-modp1024", IKE, 1),
        offer("aes128gcm16-prfsha1-modp1024", IKE, 2),
    ]
    ours = [ike(t) for t in DEFAULT_IKE_PROPOSALS]
    assert selectIkeProposal(ours, theirs) is None
    assert selectIkeProposal(ours, []) is None
    assert selectIkeProposal([], theirs) is None


def test_ikeSkipsWrongProtocolAndSpiSize():
    good = "aes128gcm16-prfsha256-x25519"
    ours = [ike(good)]
    assert selectIkeProposal(ours, [offer(good, IKE, 1, b"\x01" * 8)]) is None
    assert selectIkeProposal(ours, [offer(good, IKE, 1, b"\x01" * 8)], spiSize=8) is not None
    espShaped = Proposal(1, ESP, b"", ike(good).toWire(1, b"").transforms)
    assert selectIkeProposal(ours, [espShaped]) is None


def test_ikeIgnoresUnusableTransformsButNotTheirSiblings():
    """
    A transform with an unknown attribute, or AES without KEY_LENGTH, is skipped
    (RFC 7296 section 3.3.6) while other transforms of the same type still count.
    """
    transforms = (
        Transform(TransformType.ENCR, EncrId.AES_GCM_16, 256, hasUnknownAttributes=True),
        Transform(TransformType.ENCR, EncrId.AES_GCM_16, None),
        Transform(TransformType.ENCR, EncrId.AES_GCM_16, 128),
        Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
        Transform(TransformType.KE, KeGroup.CURVE25519),
    )
    _, suite = selectIkeProposal(
        [ike("aes256gcm16-aes128gcm16-prfsha256-x25519")],
        [Proposal(1, IKE, b"", transforms)],
    )
    assert suite.encr == GCM128
    only = Proposal(1, IKE, b"", transforms[:2] + transforms[3:])
    assert selectIkeProposal([ike("aes256gcm16-prfsha256-x25519")], [only]) is None


def test_ikeProposalWithUnknownTransformTypeIsUnacceptable():
    """A transform type we do not understand makes that whole proposal unacceptable."""
    base = offer("aes128gcm16-prfsha256-x25519", IKE, 1)
    withAddKe = Proposal(1, IKE, b"", base.transforms + (Transform(6, 31),))
    ours = [ike("aes128gcm16-prfsha256-x25519")]
    assert selectIkeProposal(ours, [withAddKe]) is None
    chosen, _ = selectIkeProposal(ours, [withAddKe, Proposal(2, IKE, b"", base.transforms)])
    assert chosen.number == 2


def test_ikeAeadIgnoresTheirIntegrityTransforms():
    """
    A mixed proposal (AEAD and CBC ciphers with INTEG) can still give an AEAD suite;
    the answer then carries no INTEG transform.
    """
    transforms = (
        Transform(TransformType.ENCR, EncrId.AES_CBC, 128),
        Transform(TransformType.ENCR, EncrId.AES_GCM_16, 128),
        Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
        Transform(TransformType.PRF, PrfId.HMAC_SHA2_256),
        Transform(TransformType.KE, KeGroup.CURVE25519),
    )
    chosen, suite = selectIkeProposal(
        [ike("aes128gcm16-prfsha256-x25519")], [Proposal(4, IKE, b"", transforms)]
    )
    assert suite.integ is None
    assert TransformType.INTEG not in types(chosen)


def test_strongSwanInitRequestSelectsGcmAndX25519WithDefaults():
    """
    The IKE_SA_INIT request of a real strongSwan 5.9.8 client (aes256gcm16-prfsha256-
    x25519, aes256-sha256-modp2048) is answered from our defaults with its first
    proposal: AES-256-GCM-16, PRF SHA2-256, X25519.
    """
    path = DATA / "strongswan_ike_sa_init_request.bin"
    if not path.exists():
        pytest.skip("tests/data/strongswan_ike_sa_init_request.bin is absent")
    proposals = Message.fromBytes(path.read_bytes()).get(SAPayload).proposals
    chosen, suite = selectIkeProposal([ike(t) for t in DEFAULT_IKE_PROPOSALS], proposals)
    assert suite == IkeSuite(GCM256, None, PRF256, KeGroup.CURVE25519)
    assert chosen.number == proposals[0].number
    only = selectIkeProposal([ike("aes128-aes256-sha256-modp2048")], proposals)
    assert only[1] == IkeSuite(CBC256, SHA256, PRF256, KeGroup.MODP_2048)
    assert only[0].number == proposals[1].number


def test_strongSwanInitResponseIsAcceptedByTheInitiatorCheck():
    """The real strongSwan responder's answer is something its client offered."""
    path = DATA / "strongswan_ike_sa_init_response.bin"
    if not path.exists():
        pytest.skip("tests/data/strongswan_ike_sa_init_response.bin is absent")
    (chosen,) = Message.fromBytes(path.read_bytes()).get(SAPayload).proposals
    ours = [ike("aes256gcm16-prfsha256-x25519"), ike("aes256-sha256-modp2048")]
    suite = checkChosenProposal(ours, chosen)
    assert suite == IkeSuite(GCM256, None, PRF256, KeGroup.CURVE25519)
    assert checkChosenProposal([ike("aes256-sha256-modp2048")], chosen) is None


# -- ESP selection -----------------------------------------------------------------------

SPI4 = b"\xc0\xa4\x71\x71"


def test_espSelectionFollowsOurPreferenceAndEchoesTheirSpi():
    theirs = [
        offer("aes128-sha256-noesn", ESP, 1, SPI4),
        offer("aes256gcm16-noesn", ESP, 2, SPI4),
    ]
    ours = [esp(t) for t in DEFAULT_ESP_PROPOSALS]
    chosen, suite = selectChildProposal(ours, theirs, allowNoPfs=True)
    assert suite == ChildSuite(GCM256, None, False, None)
    assert (chosen.number, chosen.spi) == (2, SPI4)
    assert types(chosen) == [TransformType.ENCR, TransformType.ESN]


def test_espSkipsProposalsWithoutFourByteSpi():
    ours = [esp("aes128gcm16")]
    for spi in (b"", b"\x01" * 8, b"\x01\x02\x03"):
        assert selectChildProposal(ours, [offer("aes128gcm16", ESP, 1, spi)]) is None


def test_espEsnPreferenceAndMissingEsn():
    """Our ESN order decides; a proposal without ESN transforms counts as noesn."""
    theirs = [offer("aes128-sha256-esn-noesn", ESP, 1, SPI4)]
    assert selectChildProposal([esp("aes128-sha256-noesn-esn")], theirs)[1].esn is False
    assert selectChildProposal([esp("aes128-sha256-esn-noesn")], theirs)[1].esn is True
    bare = Proposal(1, ESP, SPI4, esp("aes128-sha256").toWire(1, SPI4).transforms[:2])
    chosen, suite = selectChildProposal([esp("aes128-sha256")], [bare])
    assert suite.esn is False and TransformType.ESN not in types(chosen)
    assert selectChildProposal([esp("aes128-sha256-esn")], [bare]) is None


def test_espPfsGroupsFollowOurOrder():
    theirs = [offer("aes128gcm16-modp2048-ecp256-noesn", ESP, 1, SPI4)]
    chosen, suite = selectChildProposal([esp("aes128gcm16-x25519-ecp256-modp2048")], theirs)
    assert suite.keGroup == KeGroup.ECP_256
    assert Transform(TransformType.KE, KeGroup.ECP_256) in chosen.transforms


def test_espWithoutKeIsAcceptedOnlyWithoutOurGroupsUnlessAllowed():
    theirs = [offer("aes128gcm16-noesn", ESP, 1, SPI4)]
    assert selectChildProposal([esp("aes128gcm16-ecp256")], theirs) is None
    chosen, suite = selectChildProposal([esp("aes128gcm16-ecp256")], theirs, allowNoPfs=True)
    assert suite.keGroup is None and TransformType.KE not in types(chosen)
    assert selectChildProposal([esp("aes128gcm16")], theirs)[1].keGroup is None


def test_espKeNoneCountsAsNoPfsAndIsEchoed():
    transforms = esp("aes128gcm16").toWire(1, SPI4).transforms + (
        Transform(TransformType.KE, KeGroup.NONE),
    )
    theirs = [Proposal(1, ESP, SPI4, transforms)]
    chosen, suite = selectChildProposal([esp("aes128gcm16")], theirs)
    assert suite.keGroup is None
    assert Transform(TransformType.KE, KeGroup.NONE) in chosen.transforms
    assert selectChildProposal([esp("aes128gcm16-ecp256")], theirs) is None


def test_espTheyRequirePfsWeOfferNone():
    """They offer only real groups and we list none: no match, unless KE is ignored."""
    theirs = [offer("aes128gcm16-ecp256-noesn", ESP, 1, SPI4)]
    assert selectChildProposal([esp("aes128gcm16")], theirs) is None
    chosen, suite = selectChildProposal([esp("aes128gcm16")], theirs, ignoreKe=True)
    assert suite.keGroup is None and TransformType.KE not in types(chosen)


def test_espNoOverlapIsNone():
    theirs = [offer("aes192-sha384", ESP, 1, SPI4), offer("aes192gcm16", ESP, 2, SPI4)]
    assert selectChildProposal([esp(t) for t in DEFAULT_ESP_PROPOSALS], theirs) is None


# -- the initiator's side ----------------------------------------------------------------


def test_suiteFromProposalReadsSingleTransformAnswers():
    ikeAnswer = ike("aes128-sha384-ecp384").toWire(1, b"")
    assert suiteFromProposal(ikeAnswer, IKE) == IkeSuite(CBC128, SHA384, PRF384, KeGroup.ECP_384)
    espAnswer = esp("chacha20poly1305-x448-esn").toWire(1, SPI4)
    assert suiteFromProposal(espAnswer, ESP) == ChildSuite(CHACHA, None, True, KeGroup.CURVE448)


@pytest.mark.parametrize(
    "proposal,protocolId",
    [
        (ike("aes128-aes256-sha256-x25519").toWire(1, b""), IKE),
        (ike("aes128-sha256-prfsha384-prfsha256-x25519").toWire(1, b""), IKE),
        (
            Proposal(1, IKE, b"", ike("aes128-sha256-x25519").toWire(1, b"").transforms[:3]),
            IKE,
        ),
        (esp("aes128gcm16").toWire(1, SPI4), IKE),
        (
            Proposal(1, ESP, SPI4, (Transform(TransformType.ENCR, EncrId.AES_CBC, 128),)),
            ESP,
        ),
        (
            Proposal(1, ESP, SPI4, (Transform(TransformType.ENCR, EncrId.THREE_DES),)),
            ESP,
        ),
        (
            Proposal(
                1,
                ESP,
                SPI4,
                (
                    Transform(TransformType.ENCR, EncrId.AES_GCM_16, 128),
                    Transform(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
                ),
            ),
            ESP,
        ),
        (
            Proposal(
                1,
                ESP,
                SPI4,
                (
                    Transform(TransformType.ENCR, EncrId.AES_GCM_16, 128),
                    Transform(9, 1),
                ),
            ),
            ESP,
        ),
        (
            Proposal(
                1,
                ESP,
                SPI4,
                (Transform(TransformType.ENCR, EncrId.AES_GCM_16, 128, True),),
            ),
            ESP,
        ),
    ],
)
def test_suiteFromProposalRejectsMalformedAnswers(proposal, protocolId):
    with pytest.raises(CryptoError):
        suiteFromProposal(proposal, protocolId)


def test_checkChosenProposalAcceptsOnlyWhatWeOffered():
    ours = [ike("aes256gcm16-prfsha384-x25519"), ike("aes128-sha256-modp2048")]
    assert checkChosenProposal(ours, ike("aes256gcm16-prfsha384-x25519").toWire(1, b""))
    assert checkChosenProposal(ours, ike("aes128-sha256-modp2048").toWire(2, b""))
    for notOffered in (
        "aes256gcm16-prfsha256-x25519",
        "aes128-sha256-x25519",
        "aes256-sha256-modp2048",
        "aes128-sha384-modp2048",
    ):
        assert checkChosenProposal(ours, ike(notOffered).toWire(1, b"")) is None
    assert checkChosenProposal(ours, ike("aes128-sha256-modp2048").toWire(1, b"\x01" * 8)) is None
    assert checkChosenProposal(
        ours, ike("aes128-sha256-modp2048").toWire(1, b"\x01" * 8), spiSize=8
    )


def test_checkChosenEspProposalPfsAndEsn():
    ours = [esp("aes128gcm16-ecp256-noesn")]
    assert checkChosenProposal(ours, esp("aes128gcm16-ecp256").toWire(1, SPI4))
    assert checkChosenProposal(ours, esp("aes128gcm16").toWire(1, SPI4)) is None
    assert checkChosenProposal(ours, esp("aes128gcm16").toWire(1, SPI4), allowNoPfs=True)
    assert checkChosenProposal(ours, esp("aes128gcm16").toWire(1, SPI4), ignoreKe=True)
    assert checkChosenProposal(ours, esp("aes128gcm16-ecp256-esn").toWire(1, SPI4)) is None
    assert checkChosenProposal(ours, esp("aes128gcm16-ecp256").toWire(1, b"")) is None
    assert (
        checkChosenProposal([esp("aes128gcm16")], esp("aes128gcm16-x25519").toWire(1, SPI4)) is None
    )


# -- hostile input -------------------------------------------------------------------

_TRANSFORMS = st.builds(
    Transform,
    st.sampled_from([1, 2, 3, 4, 5, 6, 0, 255]),
    st.one_of(st.sampled_from([0, 2, 5, 12, 14, 19, 20, 28, 31, 32, 1]), st.integers(0, 65535)),
    st.one_of(st.none(), st.sampled_from([128, 192, 256]), st.integers(0, 65535)),
    st.booleans(),
)
_PROPOSALS = st.builds(
    Proposal,
    st.integers(0, 255),
    st.sampled_from([0, 1, 2, 3, 200]),
    st.sampled_from([b"", b"\x01" * 4, b"\x02" * 8, b"\x03"]),
    st.lists(_TRANSFORMS, max_size=12).map(tuple),
)
_OUR_IKE = [ike(t) for t in DEFAULT_IKE_PROPOSALS]
_OUR_ESP = [esp(t) for t in DEFAULT_ESP_PROPOSALS] + [esp("aes128gcm16-ecp256")]


@settings(max_examples=300, deadline=None)
@given(theirs=st.lists(_PROPOSALS, max_size=4))
def test_selectionOnArbitraryProposalsNeverRaises(theirs):
    """
    A peer's proposals are attacker input: selection returns a choice or None, and a
    choice is always one transform per type from the proposal it names.
    """
    for result in (
        selectIkeProposal(_OUR_IKE, theirs),
        selectChildProposal(_OUR_ESP, theirs),
        selectChildProposal(_OUR_ESP, theirs, allowNoPfs=True, ignoreKe=True),
    ):
        if result is None:
            continue
        chosen, suite = result
        assert len(set(types(chosen))) == len(chosen.transforms)
        assert any(
            (p.number, p.protocolId, p.spi) == (chosen.number, chosen.protocolId, chosen.spi)
            and set(chosen.transforms) <= set(p.transforms)
            for p in theirs
        )
        assert suiteFromProposal(chosen, chosen.protocolId) == suite
    for proposal in theirs:
        try:
            suiteFromProposal(proposal, proposal.protocolId)
        except CryptoError:
            pass
        checkChosenProposal(_OUR_IKE + _OUR_ESP, proposal)


@settings(max_examples=300, deadline=None)
@given(
    text=st.one_of(
        st.text(max_size=40),
        st.lists(
            st.sampled_from(
                [
                    "aes128",
                    "aes256gcm16",
                    "sha256",
                    "prfsha384",
                    "x25519",
                    "esn",
                    "",
                    "modp2048",
                    "chacha20poly1305",
                    "noesn",
                    "bogus",
                ]
            ),
            max_size=6,
        ).map("-".join),
    ),
    protocolId=st.sampled_from([IKE, ESP, ProtocolId.AH]),
)
def test_parseProposalRaisesOnlyProposalSyntaxError(text, protocolId):
    try:
        spec = parseProposal(text, protocolId)
    except ProposalSyntaxError:
        return
    assert parseProposal(str(spec), protocolId) == spec
