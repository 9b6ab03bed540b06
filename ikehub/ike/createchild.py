"""
The CREATE_CHILD_SA exchange (RFC 7296 sections 1.3, 2.8, 2.17, 2.18, 2.25) in both roles.

Three requests share the exchange: an additional CHILD SA, the rekey of a CHILD SA (a REKEY_SA
notify names it), and the rekey of the IKE SA itself (an SA payload with an IKE proposal). A rekey
with a KE payload gives perfect forward secrecy; unless the policy requires it, one without is
accepted too (macOS sends none).

Make-before-break. A CHILD SA rekey never leaves a moment without an SA in each direction. The
exchange's initiator sends on the new SA as soon as it has read the answer, then deletes the old
one, whose inbound side lives until the Delete exchange ends, so packets the peer sent before
switching still arrive. The responder receives on the new SA at once but goes on sending on the
old one until its Delete comes (before reading our answer the initiator could not decrypt the new
one). An IKE SA rekey moves the CHILD SAs, leases and identity to the new IKE SA in one step; the
old one answers only its Delete.

Collisions (sections 2.8.1 and 2.8.2): when both sides rekey the same SA at once, each answers the
other's request. Of the two new SAs, the one whose exchange used the lowest of the four nonces is
redundant, and whoever initiated that exchange deletes it; the other side deletes the old SA.
"""

import dataclasses
import os
import struct

from ikehub.crypto.errors import CryptoError
from ikehub.crypto.ke import newKeyExchange
from ikehub.crypto.keys import deriveChildKeys, deriveIkeKeysFromSkeyseed, deriveRekeyedSkeyseed
from ikehub.crypto.proposals import suiteFromProposal
from ikehub.ike.child import ChildSA
from ikehub.ike.responder import NONCE_MAX, NONCE_MIN, DuplicatePayload
from ikehub.ike.sa import IKESA, IKEState
from ikehub.ike.ts import covers, narrow, rangesOf
from ikehub.wire.constants import EsnId, ExchangeType, NotifyType, ProtocolId, TransformType
from ikehub.wire.payloads import (
    DeletePayload,
    KEPayload,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SAPayload,
    Transform,
    TSiPayload,
    TSrPayload,
)

_GROUP = struct.Struct("!H")
_SINGULAR = frozenset({SAPayload, NoncePayload, KEPayload, TSiPayload, TSrPayload})
#: Notify types below this are errors (RFC 7296 section 3.10.1).
_FIRST_STATUS = 16384
_NOTIFY_NAMES = frozenset(int(n) for n in NotifyType)
#: CHILD SAs one IKE SA may hold, old ones awaiting their Delete included: an authenticated peer
#: that creates or rekeys without deleting cannot make the hub keep SAs without end.
MAX_CHILDREN = 8
#: Seconds before a refused (TEMPORARY_FAILURE, NO_PROPOSAL_CHOSEN, ...) rekey is tried again,
#: before jitter.
RETRY_DELAY = 10.0


def _notifyName(notifyType: int) -> str:
    return NotifyType(notifyType).name if notifyType in _NOTIFY_NAMES else str(notifyType)


def _spread(spi: bytes) -> float:
    """
    A number in [0, 1] read from a random SPI: jitter that costs no random draw.
    """
    return int.from_bytes(spi[:4], "big") / 0xFFFFFFFF


class ChildRekey:
    """
    Our outstanding rekey of one CHILD SA.
    """

    __slots__ = ("old", "nonce", "kex", "group", "inboundSpi", "retried", "collision")

    def __init__(self, old: ChildSA, group: int | None, inboundSpi: bytes, retried: bool):
        self.old = old
        self.nonce = os.urandom(32)
        self.group = group
        self.kex = newKeyExchange(group) if group is not None else None
        self.inboundSpi = inboundSpi
        self.retried = retried
        #: (the CHILD SA we made answering the peer's rekey of the same SA, its Ni, our Nr).
        self.collision: tuple | None = None


class IkeRekey:
    """
    Our outstanding rekey of an IKE SA.
    """

    __slots__ = ("nonce", "kex", "spi", "retried", "collision")

    def __init__(self, group: int, spi: bytes, retried: bool):
        self.nonce = os.urandom(32)
        self.kex = newKeyExchange(group)
        self.spi = spi
        self.retried = retried
        #: (the IKE SA we made answering the peer's rekey of the same SA, its Ni, our Nr).
        self.collision: tuple | None = None


def _requestIndex(payloads) -> dict:
    """
    The request's singular payloads by type, its REKEY_SA notify, and its first error notify.
    """
    found: dict = {}
    for payload in payloads:
        kind = type(payload)
        if kind in _SINGULAR:
            if kind in found:
                raise DuplicatePayload(kind.__name__)
            found[kind] = payload
        elif kind is NotifyPayload:
            if payload.notifyType == NotifyType.REKEY_SA:
                if NotifyType.REKEY_SA in found:
                    raise DuplicatePayload("REKEY_SA notify")
                found[NotifyType.REKEY_SA] = payload
            elif payload.notifyType < _FIRST_STATUS:
                found.setdefault("error", payload)
    return found


def ikeSuiteProposal(suite, spi: bytes, group: int | None = None) -> Proposal:
    """
    The one proposal that asks for C{suite} again (with KE C{group} instead of its own if given):
    a rekey keeps the algorithms the peer already accepted, so it is never refused for them.
    """
    transforms = [Transform(TransformType.ENCR, suite.encr.transformId, suite.encr.keyLength)]
    transforms.append(Transform(TransformType.PRF, suite.prf.transformId))
    if suite.integ is not None:
        transforms.append(Transform(TransformType.INTEG, suite.integ.transformId))
    transforms.append(Transform(TransformType.KE, group if group is not None else suite.keGroup))
    return Proposal(1, ProtocolId.IKE, spi, tuple(transforms))


def childSuiteProposal(suite, spi: bytes, group: int | None) -> Proposal:
    """
    The one proposal for a CHILD SA rekey: the old SA's algorithms, with KE C{group} or none.
    """
    transforms = [Transform(TransformType.ENCR, suite.encr.transformId, suite.encr.keyLength)]
    if suite.integ is not None:
        transforms.append(Transform(TransformType.INTEG, suite.integ.transformId))
    if group is not None:
        transforms.append(Transform(TransformType.KE, group))
    transforms.append(Transform(TransformType.ESN, EsnId.ESN if suite.esn else EsnId.NO_ESN))
    return Proposal(1, ProtocolId.ESP, spi, tuple(transforms))


class CreateChildExchanges:
    """
    Mixed into L{ikehub.ike.endpoint.IKEEndpoint}.
    """

    # -- as responder ---------------------------------------------------------------------------

    def handle_CREATE_CHILD_SA(self, sa: IKESA, header, payloads) -> None:
        try:
            found = _requestIndex(payloads)
        except DuplicatePayload as e:
            return self._refuseCreate(sa, NotifyType.INVALID_SYNTAX, f"duplicate {e} payload")
        saPayload = found.get(SAPayload)
        nonce = found.get(NoncePayload)
        if saPayload is None or nonce is None or not saPayload.proposals:
            return self._refuseCreate(
                sa, NotifyType.INVALID_SYNTAX, "a request without SA or Nonce payload"
            )
        if not NONCE_MIN <= len(nonce.nonce) <= NONCE_MAX:
            return self._refuseCreate(
                sa, NotifyType.INVALID_SYNTAX, f"a nonce of {len(nonce.nonce)} bytes"
            )
        if sa.state is not IKEState.ESTABLISHED:
            return self._refuseCreate(
                sa, NotifyType.TEMPORARY_FAILURE, f"the IKE SA is {sa.state.value.lower()}"
            )
        if saPayload.proposals[0].protocolId == ProtocolId.IKE:
            return self._answerIkeRekey(sa, found, nonce.nonce)
        if sa.ikeRekey is not None:
            # RFC 7296 section 2.25: no new CHILD SAs on an IKE SA that is being rekeyed.
            return self._refuseCreate(
                sa, NotifyType.TEMPORARY_FAILURE, "the IKE SA is being rekeyed"
            )
        return self._answerChild(sa, found, nonce.nonce)

    def _refuseCreate(
        self, sa: IKESA, notifyType: int, reason: str, data=b"", protocolId=0, spi=b""
    ) -> None:
        self.counters.increment("create_child_sa_refused_" + _notifyName(notifyType).lower())
        self.respond(
            sa,
            ExchangeType.CREATE_CHILD_SA,
            [self.notify(notifyType, data, protocolId, spi)],
        )
        self.log.info(
            "CREATE_CHILD_SA from {peer} ({identity}) answered {notify}: {reason}",
            event="create_child_sa_refused",
            notify=_notifyName(notifyType),
            reason=reason,
            **sa.describe(),
        )

    def _answerChild(self, sa: IKESA, found: dict, nonceI: bytes) -> None:
        rekeyNotify = found.get(NotifyType.REKEY_SA)
        old = None
        if rekeyNotify is not None:
            if rekeyNotify.protocolId == ProtocolId.ESP:
                old = next((c for c in sa.children if c.outboundSpi == rekeyNotify.spi), None)
            if old is None:
                return self._refuseCreate(
                    sa,
                    NotifyType.CHILD_SA_NOT_FOUND,
                    f"no CHILD SA with SPI {rekeyNotify.spi.hex()} to rekey",
                    protocolId=rekeyNotify.protocolId,
                    spi=rekeyNotify.spi,
                )
            if old.replacedBy is not None:
                return self._refuseCreate(
                    sa,
                    NotifyType.TEMPORARY_FAILURE,
                    f"CHILD SA {old.inboundSpi.hex()} has been rekeyed already",
                )
        elif sa.entry is None:
            # The hub is this IKE SA's original initiator (a client): it asks for CHILD SAs.
            return self._refuseCreate(
                sa, NotifyType.NO_ADDITIONAL_SAS, "additional CHILD SAs are not accepted here"
            )
        tsi, tsr = found.get(TSiPayload), found.get(TSrPayload)
        if tsi is None or tsr is None:
            return self._refuseCreate(sa, NotifyType.INVALID_SYNTAX, "a request without TSi/TSr")
        if len(sa.children) >= MAX_CHILDREN:
            return self._refuseCreate(
                sa,
                NotifyType.NO_ADDITIONAL_SAS,
                f"the IKE SA holds {len(sa.children)} CHILD SAs, the most it may",
            )
        chosen = self._espSelector.chooseChild(
            found[SAPayload].proposals, allowNoPfs=not self.settings.requirePfs
        )
        if chosen is None:
            self.counters.increment("child_no_proposal_chosen")
            return self._refuseCreate(
                sa, NotifyType.NO_PROPOSAL_CHOSEN, "no acceptable ESP proposal"
            )
        offer, transforms, suite = chosen
        group = suite.keGroup
        sharedSecret = None
        answerKe = None
        if group is not None:
            ke = found.get(KEPayload)
            if ke is None or ke.group != group:
                return self._refuseCreate(
                    sa,
                    NotifyType.INVALID_KE_PAYLOAD,
                    f"KE group {ke.group if ke is not None else 'none'}, the hub chose {group}",
                    _GROUP.pack(group),
                )
            try:
                kex = newKeyExchange(group)
                sharedSecret = kex.computeSharedSecret(ke.keyData)
            except CryptoError:
                return self._refuseCreate(sa, NotifyType.INVALID_SYNTAX, "an invalid KE value")
            answerKe = KEPayload(group, kex.publicKey)
        if sa.entry is not None:
            # What the PAD entry allows now, as for the first CHILD SA (refusals logged there):
            # a rekey after a MOBIKE move asks for the peer's new address as its own side.
            narrowedI, narrowedR = self._narrowSelectors(sa, tsi, tsr) or ((), ())
        else:
            # The hub is the client here: a rekey by the responder keeps within the old SA.
            narrowedI = narrow(tsi.selectors, rangesOf(old.remoteTs))
            narrowedR = narrow(tsr.selectors, rangesOf(old.localTs))
            if not narrowedI or not narrowedR:
                self.counters.increment("child_ts_unacceptable")
        if not narrowedI or not narrowedR:
            return self._refuseCreate(
                sa,
                NotifyType.TS_UNACCEPTABLE,
                f"selectors {', '.join(map(str, tsi.selectors))} === "
                f"{', '.join(map(str, tsr.selectors))} are outside what the SA may use",
            )
        nonceR = os.urandom(32)
        child = self._newChild(
            sa, offer.spi, suite, narrowedR, narrowedI, nonceI, nonceR, sharedSecret,
            isInitiator=False, outbound=old is None,
        )
        if old is not None:
            child.predecessor = old
            old.replacedBy = child
            if old.rekey is not None:
                old.rekey.collision = (child, nonceI, nonceR)
        answer = [
            SAPayload((Proposal(offer.number, offer.protocolId, child.inboundSpi, transforms),)),
            NoncePayload(nonceR),
        ]
        if answerKe is not None:
            answer.append(answerKe)
        answer += [TSiPayload(narrowedI), TSrPayload(narrowedR)]
        self.respond(sa, ExchangeType.CREATE_CHILD_SA, answer)
        self._childCreated(sa, child, old, "peer")

    def _childCreated(self, sa: IKESA, child: ChildSA, old: ChildSA | None, by: str) -> None:
        self.counters.increment("child_sa_rekeyed" if old is not None else "child_sa_added")
        if old is not None:
            self.log.info(
                "CHILD SA {old_in}/{old_out} of {peer} ({identity}) rekeyed by the {by}: now "
                "{spi_in}/{spi_out} ({pfs})",
                event="child_sa_rekeyed",
                by=by,
                old_in=old.inboundSpi.hex(),
                old_out=old.outboundSpi.hex(),
                spi_in=child.inboundSpi.hex(),
                spi_out=child.outboundSpi.hex(),
                pfs=f"PFS group {child.suite.keGroup}" if child.suite.keGroup else "no PFS",
                **sa.describe(),
            )
        else:
            self.log.info(
                "CHILD SA {spi_in}/{spi_out} added for {peer} ({identity})",
                event="child_sa_added",
                spi_in=child.inboundSpi.hex(),
                spi_out=child.outboundSpi.hex(),
                **sa.describe(),
            )

    def _newChild(
        self, sa: IKESA, outboundSpi, suite, localTs, remoteTs, nonceI, nonceR, sharedSecret,
        isInitiator: bool, outbound: bool, inboundSpi: bytes | None = None,
    ) -> ChildSA:
        """
        Key and install a CHILD SA of C{sa}, whichever exchange made it and in either role:
        KEYMAT = prf+(SK_d, [g^ir |] Ni | Nr) (RFC 7296 section 2.17), with IKE_SA_INIT's
        nonces for the first CHILD SA and the exchange's own (and, with PFS, its fresh shared
        secret) for CREATE_CHILD_SA.
        """
        if inboundSpi is None:
            inboundSpi = self.sad.allocateSpi()
        child = ChildSA(
            inboundSpi=inboundSpi,
            outboundSpi=outboundSpi,
            suite=suite,
            localTs=localTs,
            remoteTs=remoteTs,
            peer=sa.peer,
            path=sa.path,
            ikeSpi=sa.localSpi,
            createdAt=self.clock.seconds(),
        )
        child.setKeys(
            deriveChildKeys(
                sa.suite.prf, sa.keys.skD, suite.encr, suite.integ, nonceI, nonceR, sharedSecret
            ),
            isInitiator=isInitiator,
        )
        self.sad.install(child, outbound=outbound)
        sa.children.append(child)
        return child

    def _answerIkeRekey(self, sa: IKESA, found: dict, nonceI: bytes) -> None:
        chosen = self._ikeSelector.selectIke(found[SAPayload].proposals, spiSize=8)
        if chosen is None:
            return self._refuseCreate(
                sa, NotifyType.NO_PROPOSAL_CHOSEN, "no acceptable IKE proposal for the rekey"
            )
        proposal, suite = chosen
        ke = found.get(KEPayload)
        if ke is None or ke.group != suite.keGroup:
            return self._refuseCreate(
                sa,
                NotifyType.INVALID_KE_PAYLOAD,
                f"KE group {ke.group if ke is not None else 'none'} in an IKE SA rekey, the hub "
                f"chose {suite.keGroup}",
                _GROUP.pack(suite.keGroup),
            )
        try:
            kex = newKeyExchange(suite.keGroup)
            sharedSecret = kex.computeSharedSecret(ke.keyData)
        except CryptoError:
            return self._refuseCreate(sa, NotifyType.INVALID_SYNTAX, "an invalid KE value")
        nonceR = os.urandom(32)
        new = self._rekeyedIkeSa(
            sa, False, proposal.spi, self.newSpi(), suite, sharedSecret, nonceI, nonceR
        )
        pending = sa.ikeRekey
        if pending is not None:
            # Both sides rekey at once: which new SA survives is decided when ours is answered.
            pending.collision = (new, nonceI, nonceR)
        else:
            self._moveToRekeyed(sa, new, "peer")
        self.respond(
            sa,
            ExchangeType.CREATE_CHILD_SA,
            [
                SAPayload(
                    (Proposal(proposal.number, ProtocolId.IKE, new.spiR, proposal.transforms),)
                ),
                NoncePayload(nonceR),
                KEPayload(suite.keGroup, kex.publicKey),
            ],
        )

    def _rekeyedIkeSa(
        self, old: IKESA, isInitiator: bool, spiI, spiR, suite, sharedSecret, nonceI, nonceR
    ) -> IKESA:
        """
        The IKE SA that replaces C{old}: keys from SKEYSEED = prf(SK_d (old), g^ir | Ni | Nr)
        (RFC 7296 section 2.18); whoever initiated the rekey is its initiator.
        """
        now = self.clock.seconds()
        new = IKESA(isInitiator, spiI, spiR, old.peer, old.path, now)
        seed = deriveRekeyedSkeyseed(old.suite.prf, old.keys.skD, sharedSecret, nonceI, nonceR)
        new.installKeys(
            suite,
            deriveIkeKeysFromSkeyseed(
                suite.prf, suite.encr, suite.integ, seed, nonceI, nonceR, spiI, spiR
            ),
        )
        new.nonceI, new.nonceR = nonceI, nonceR
        new.state = IKEState.ESTABLISHED
        new.peerIdentity = old.peerIdentity
        new.entry = old.entry
        # What IKE_SA_INIT and IKE_AUTH negotiated holds for the IKE SA's successors too.
        new.fragmentSize = old.fragmentSize
        new.mobike = old.mobike
        new.peerAddresses = old.peerAddresses
        new.configReply = old.configReply
        self.sas[new.localSpi] = new
        if self.keysDerived is not None:
            self.keysDerived(new)
        return new

    def _moveToRekeyed(self, old: IKESA, new: IKESA, by: str) -> None:
        """
        Hand everything of C{old} to C{new}: CHILD SAs, leases, the identity index. C{old} then
        waits only for its Delete (or, if none comes, for the linger timer).
        """
        new.children, old.children = old.children, []
        for child in new.children:
            child.ikeSpi = new.localSpi
        new.virtualIps, old.virtualIps = old.virtualIps, []
        key = old.uniqueKey
        if key is not None:
            same = self.byIdentity.get(key)
            if same is not None and old in same:
                same[same.index(old)] = new
            new.uniqueKey, old.uniqueKey = key, None
        self.indexPeer(new)
        old.state = IKEState.REKEYED
        old.rekeyAt = None
        old.lingerCall = self.clock.callLater(
            self.settings.rekeyedLinger, self._rekeyedLingered, old
        )
        self.counters.increment("ike_sa_rekeyed")
        self.log.info(
            "IKE SA with {peer} ({identity}) rekeyed by the {by}: now {new_spi_i}/{new_spi_r}",
            event="ike_sa_rekeyed",
            by=by,
            new_spi_i=new.spiI.hex(),
            new_spi_r=new.spiR.hex(),
            **old.describe(),
        )

    def _rekeyedLingered(self, old: IKESA) -> None:
        old.lingerCall = None
        if old.state is IKEState.REKEYED:
            self.removeSa(old, "rekeyed, and its Delete never came")

    # -- as initiator: CHILD SAs ---------------------------------------------------------------

    def rekeyChildSa(self, child: ChildSA) -> None:
        """
        Rekey C{child} (its soft lifetime came): with PFS in the group it had, or without if it
        had none, falling back to PFS in the IKE SA's group if the peer insists on it.
        """
        sa = self.sas.get(child.ikeSpi)
        if (
            sa is None
            or child not in sa.children
            or child.rekey is not None
            or child.replacedBy is not None
        ):
            return
        if sa.state is not IKEState.ESTABLISHED or sa.ikeRekey is not None:
            # Not now (RFC 7296 section 2.25); the next try comes after a while.
            self.clock.callLater(self._retryDelay(child.inboundSpi), self.rekeyChildSa, child)
            return
        self._sendChildRekey(sa, child, child.suite.keGroup, retried=False)

    def _retryDelay(self, spi: bytes) -> float:
        return RETRY_DELAY * (1.0 + _spread(spi))

    def _sendChildRekey(self, sa: IKESA, old: ChildSA, group, retried: bool) -> None:
        try:
            rekey = ChildRekey(old, group, self.sad.allocateSpi(), retried)
        except CryptoError:
            return
        old.rekey = rekey
        payloads = [
            self.notify(NotifyType.REKEY_SA, b"", ProtocolId.ESP, old.inboundSpi),
            SAPayload((childSuiteProposal(old.suite, rekey.inboundSpi, group),)),
            NoncePayload(rekey.nonce),
        ]
        if rekey.kex is not None:
            payloads.append(KEPayload(group, rekey.kex.publicKey))
        payloads += [TSiPayload(old.localTs), TSrPayload(old.remoteTs)]
        self.counters.increment("child_sa_rekey_sent")
        self.sendRequest(
            sa,
            ExchangeType.CREATE_CHILD_SA,
            payloads,
            lambda sa, header, answer, *rest: self._childRekeyAnswered(sa, answer, rekey),
        )

    def _childRekeyAnswered(self, sa: IKESA, payloads, rekey: ChildRekey) -> None:
        old = rekey.old
        old.rekey = None
        owner = self.sas.get(old.ikeSpi)
        alive = owner is not None and old in owner.children
        try:
            found = _requestIndex(payloads)
        except DuplicatePayload:
            found = {"error": None}
        error = found.get("error")
        if error is not None or "error" in found:
            self.sad.releaseSpi(rekey.inboundSpi)
            return self._childRekeyRefused(sa, rekey, error, alive)
        saPayload, nonce, ke = found.get(SAPayload), found.get(NoncePayload), found.get(KEPayload)
        tsi, tsr = found.get(TSiPayload), found.get(TSrPayload)
        problem = None
        suite = None
        if saPayload is None or len(saPayload.proposals) != 1 or nonce is None:
            problem = "no single SA proposal or no nonce"
        elif tsi is None or tsr is None or not (
            covers(old.localTs, tsi.selectors) and covers(old.remoteTs, tsr.selectors)
        ):
            problem = "selectors outside the old SA's"
        elif not NONCE_MIN <= len(nonce.nonce) <= NONCE_MAX:
            problem = "a bad nonce"
        else:
            chosen = saPayload.proposals[0]
            try:
                suite = suiteFromProposal(chosen, ProtocolId.ESP)
            except CryptoError:
                suite = None
            if (
                suite is None
                or suite != dataclasses.replace(old.suite, keGroup=rekey.group)
                or len(chosen.spi) != 4
            ):
                problem = "a proposal the hub did not make"
            elif rekey.group is not None and (ke is None or ke.group != rekey.group):
                problem = "no KE payload in the group asked for"
        sharedSecret = None
        if problem is None and rekey.kex is not None:
            try:
                sharedSecret = rekey.kex.computeSharedSecret(ke.keyData)
            except CryptoError:
                problem = "an invalid KE value"
        if problem is not None:
            self.sad.releaseSpi(rekey.inboundSpi)
            self.counters.increment("child_sa_rekey_bad_answer")
            self.log.warn(
                "Rekey of CHILD SA {spi_in} with {peer} ({identity}) failed: the answer had "
                "{problem}",
                event="child_sa_rekey_failed",
                spi_in=old.inboundSpi.hex(),
                problem=problem,
                **sa.describe(),
            )
            return
        home = owner if owner is not None else sa
        new = self._newChild(
            home, saPayload.proposals[0].spi, suite, tsi.selectors, tsr.selectors,
            rekey.nonce, nonce.nonce, sharedSecret, isInitiator=True, outbound=True,
            inboundSpi=rekey.inboundSpi,
        )
        # KEYMAT came from the IKE SA the exchange ran on; the new SA lives where the old one
        # lives now (an IKE SA rekey may have moved it meanwhile).
        if not alive:
            # The old SA was deleted while we rekeyed it: the new one has no reason to exist.
            self.deleteChildSa(new)
            return
        collision = rekey.collision
        if collision is not None:
            theirs, theirNonce, ourNonce = collision
            if min(rekey.nonce, nonce.nonce) < min(theirNonce, ourNonce):
                # Ours is redundant: we delete it; the peer deletes the old one, which lets
                # theirs carry our outbound traffic.
                self.counters.increment("child_sa_rekey_collision_lost")
                self.deleteChildSa(new)
                return
            # Theirs is redundant and the peer deletes it; it never carries our traffic.
            self.counters.increment("child_sa_rekey_collision_won")
            theirs.predecessor = None
        old.replacedBy = new
        self._childCreated(home, new, old, "hub")
        self.deleteChildSa(old, makeBeforeBreak=True)

    def _childRekeyRefused(self, sa: IKESA, rekey: ChildRekey, error, alive: bool) -> None:
        old = rekey.old
        notifyType = error.notifyType if error is not None else None
        if alive and not rekey.retried:
            if notifyType == NotifyType.INVALID_KE_PAYLOAD and len(error.data) == 2:
                (group,) = _GROUP.unpack(error.data)
                if group in self._childGroups():
                    return self._sendChildRekey(self.sas[old.ikeSpi], old, group, retried=True)
            if notifyType == NotifyType.NO_PROPOSAL_CHOSEN and rekey.group is None:
                # The peer wants PFS: in the IKE SA's own group, which it accepted once.
                owner = self.sas[old.ikeSpi]
                return self._sendChildRekey(owner, old, owner.suite.keGroup, retried=True)
        self.counters.increment("child_sa_rekey_refused")
        self.log.info(
            "Rekey of CHILD SA {spi_in} with {peer} ({identity}) refused: {notify}",
            event="child_sa_rekey_refused",
            spi_in=old.inboundSpi.hex(),
            notify=_notifyName(notifyType) if notifyType is not None else "a malformed answer",
            **sa.describe(),
        )
        if alive and notifyType == NotifyType.TEMPORARY_FAILURE:
            self.clock.callLater(self._retryDelay(old.inboundSpi), self.rekeyChildSa, old)

    def _childGroups(self) -> set:
        """The groups our proposals name, any of which a peer may ask a CHILD SA rekey for."""
        groups: set = set()
        for spec in (*self.settings.espProposals, *self.settings.ikeProposals):
            groups.update(spec.ke)
        return groups

    # -- as initiator: the IKE SA -----------------------------------------------------------------

    def rekeyIkeSa(self, sa: IKESA, group: int | None = None, retried: bool = False) -> None:
        """
        Rekey C{sa} itself: new SPIs and keys, the same algorithms, CHILD SAs moved over.
        """
        if sa.state is not IKEState.ESTABLISHED or sa.ikeRekey is not None:
            return
        try:
            group = group if group is not None else sa.suite.keGroup
            rekey = IkeRekey(group, self.newSpi(), retried)
        except CryptoError:
            return
        sa.ikeRekey = rekey
        self.counters.increment("ike_sa_rekey_sent")
        self.sendRequest(
            sa,
            ExchangeType.CREATE_CHILD_SA,
            [
                SAPayload((ikeSuiteProposal(sa.suite, rekey.spi, rekey.kex.group),)),
                NoncePayload(rekey.nonce),
                KEPayload(rekey.kex.group, rekey.kex.publicKey),
            ],
            lambda sa, header, answer, *rest: self._ikeRekeyAnswered(sa, answer, rekey),
        )

    def _ikeRekeyAnswered(self, sa: IKESA, payloads, rekey: IkeRekey) -> None:
        sa.ikeRekey = None
        try:
            found = _requestIndex(payloads)
        except DuplicatePayload:
            found = {"error": None}
        collision = rekey.collision
        problem = None
        if "error" in found:
            error = found["error"]
            notifyType = error.notifyType if error is not None else None
            if (
                notifyType == NotifyType.INVALID_KE_PAYLOAD
                and not rekey.retried
                and len(error.data) == 2
                and collision is None
                and sa.state is IKEState.ESTABLISHED
            ):
                (group,) = _GROUP.unpack(error.data)
                if any(group in spec.ke for spec in self.settings.ikeProposals):
                    return self.rekeyIkeSa(sa, group, retried=True)
            problem = _notifyName(notifyType) if notifyType is not None else "a malformed answer"
        saPayload, nonce, ke = found.get(SAPayload), found.get(NoncePayload), found.get(KEPayload)
        suite = None
        if problem is None:
            if saPayload is None or len(saPayload.proposals) != 1 or nonce is None or ke is None:
                problem = "an answer without one SA proposal, a nonce and a KE payload"
            elif not NONCE_MIN <= len(nonce.nonce) <= NONCE_MAX:
                problem = "a bad nonce"
            else:
                chosen = saPayload.proposals[0]
                try:
                    suite = suiteFromProposal(chosen, ProtocolId.IKE)
                except CryptoError:
                    suite = None
                if (
                    suite is None
                    or len(chosen.spi) != 8
                    or suite.keGroup != rekey.kex.group
                    or ke.group != rekey.kex.group
                    or (suite.encr, suite.integ, suite.prf)
                    != (sa.suite.encr, sa.suite.integ, sa.suite.prf)
                ):
                    problem = "a proposal the hub did not make"
        sharedSecret = None
        if problem is None:
            try:
                sharedSecret = rekey.kex.computeSharedSecret(ke.keyData)
            except CryptoError:
                problem = "an invalid KE value"
        if problem is None and sa.state is not IKEState.ESTABLISHED:
            problem = f"the IKE SA being {sa.state.value.lower()} meanwhile"
        if problem is not None:
            self.counters.increment("ike_sa_rekey_failed")
            self.log.info(
                "Rekey of IKE SA with {peer} ({identity}) failed: {problem}",
                event="ike_sa_rekey_failed",
                problem=problem,
                **sa.describe(),
            )
            if collision is not None and sa.state is IKEState.ESTABLISHED:
                # The peer's simultaneous rekey succeeded: it stands.
                self._moveToRekeyed(sa, collision[0], "peer")
            elif sa.state is IKEState.ESTABLISHED:
                sa.rekeyAt = self.clock.seconds() + self._retryDelay(sa.spiR) * 6
            return
        new = self._rekeyedIkeSa(
            sa, True, rekey.spi, saPayload.proposals[0].spi, suite, sharedSecret,
            rekey.nonce, nonce.nonce,
        )
        if collision is not None:
            theirs, theirNonce, ourNonce = collision
            if min(rekey.nonce, nonce.nonce) < min(theirNonce, ourNonce):
                # Ours is redundant: everything goes to theirs, we delete ours, and the peer
                # deletes the old one.
                self.counters.increment("ike_sa_rekey_collision_lost")
                self._moveToRekeyed(sa, theirs, "peer")
                self.deleteIkeSa(new)
                return
            # Theirs is redundant: the peer deletes it; ours takes over.
            self.counters.increment("ike_sa_rekey_collision_won")
            theirs.state = IKEState.REKEYED
            theirs.lingerCall = self.clock.callLater(
                self.settings.rekeyedLinger, self._rekeyedLingered, theirs
            )
        self._moveToRekeyed(sa, new, "hub")
        self.sendRequest(
            sa,
            ExchangeType.INFORMATIONAL,
            [DeletePayload(ProtocolId.IKE, ())],
            lambda old, *answer: self.removeSa(old, "rekeyed"),
        )
