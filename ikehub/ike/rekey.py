"""
The hub's own rekeys (RFC 7296 sections 1.3, 2.8): CHILD SAs at their soft lifetime, IKE SAs at
their rekey time, each with CREATE_CHILD_SA as initiator.

A rekey proposes the algorithms the SA already has (the peer accepted them once), with PFS in the
group the CHILD SA last had, or none; a peer that insists on PFS (NO_PROPOSAL_CHOSEN) gets one
more try in the IKE SA's group. Each rekey offers one KE group (or none), so a conformant peer
has no other group to name in INVALID_KE_PAYLOAD: it answers NO_PROPOSAL_CHOSEN. Refusals for
the moment (TEMPORARY_FAILURE, an IKE SA being rekeyed) are retried after 10 to 20 seconds.
When the peer rekeyed the same SA at the same time, the nonce rule of sections 2.8.1 and 2.8.2
decides which new SA stays (the answering side is in L{ikehub.ike.createchild}).
"""

import dataclasses
import os

from ikehub.crypto.errors import CryptoError
from ikehub.crypto.ke import newKeyExchange
from ikehub.crypto.proposals import suiteFromProposal
from ikehub.ike.child import ChildSA
from ikehub.ike.createchild import requestIndex
from ikehub.ike.responder import NONCE_MAX, NONCE_MIN, DuplicatePayload
from ikehub.ike.sa import IKESA, IKEState
from ikehub.ike.ts import covers
from ikehub.wire.constants import (
    EsnId,
    ExchangeType,
    NotifyType,
    ProtocolId,
    TransformType,
    notifyName,
)
from ikehub.wire.payloads import (
    DeletePayload,
    KEPayload,
    NoncePayload,
    Proposal,
    SAPayload,
    Transform,
    TSiPayload,
    TSrPayload,
)

#: Seconds before a refused (TEMPORARY_FAILURE, NO_PROPOSAL_CHOSEN, ...) rekey is tried again,
#: before jitter.
RETRY_DELAY = 10.0


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

    __slots__ = ("nonce", "kex", "spi", "collision")

    def __init__(self, group: int, spi: bytes):
        self.nonce = os.urandom(32)
        self.kex = newKeyExchange(group)
        self.spi = spi
        #: (the IKE SA we made answering the peer's rekey of the same SA, its Ni, our Nr).
        self.collision: tuple | None = None


def ikeSuiteProposal(suite, spi: bytes) -> Proposal:
    """
    The one proposal that asks for C{suite} again: a rekey keeps the algorithms the peer
    already accepted, so it is never refused for them.
    """
    transforms = [Transform(TransformType.ENCR, suite.encr.transformId, suite.encr.keyLength)]
    transforms.append(Transform(TransformType.PRF, suite.prf.transformId))
    if suite.integ is not None:
        transforms.append(Transform(TransformType.INTEG, suite.integ.transformId))
    transforms.append(Transform(TransformType.KE, suite.keGroup))
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


class RekeyInitiator:
    """
    Mixed into L{ikehub.ike.endpoint.IKEEndpoint}.
    """

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
            found = requestIndex(payloads)
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
        if (
            alive
            and not rekey.retried
            and notifyType == NotifyType.NO_PROPOSAL_CHOSEN
            and rekey.group is None
        ):
            # The peer wants PFS: in the IKE SA's own group, which it accepted once.
            owner = self.sas[old.ikeSpi]
            return self._sendChildRekey(owner, old, owner.suite.keGroup, retried=True)
        self.counters.increment("child_sa_rekey_refused")
        self.log.info(
            "Rekey of CHILD SA {spi_in} with {peer} ({identity}) refused: {notify}",
            event="child_sa_rekey_refused",
            spi_in=old.inboundSpi.hex(),
            notify=notifyName(notifyType) if notifyType is not None else "a malformed answer",
            **sa.describe(),
        )
        if alive and notifyType == NotifyType.TEMPORARY_FAILURE:
            self.clock.callLater(self._retryDelay(old.inboundSpi), self.rekeyChildSa, old)

    # -- as initiator: the IKE SA -----------------------------------------------------------------

    def rekeyIkeSa(self, sa: IKESA) -> None:
        """
        Rekey C{sa} itself: new SPIs and keys, the same algorithms (its KE group too, so a
        conformant peer has no other group to ask for), CHILD SAs moved over.
        """
        if sa.state is not IKEState.ESTABLISHED or sa.ikeRekey is not None:
            return
        try:
            rekey = IkeRekey(sa.suite.keGroup, self.newSpi())
        except CryptoError:
            return
        sa.ikeRekey = rekey
        self.counters.increment("ike_sa_rekey_sent")
        self.sendRequest(
            sa,
            ExchangeType.CREATE_CHILD_SA,
            [
                SAPayload((ikeSuiteProposal(sa.suite, rekey.spi),)),
                NoncePayload(rekey.nonce),
                KEPayload(rekey.kex.group, rekey.kex.publicKey),
            ],
            lambda sa, header, answer, *rest: self._ikeRekeyAnswered(sa, answer, rekey),
        )

    def _ikeRekeyAnswered(self, sa: IKESA, payloads, rekey: IkeRekey) -> None:
        sa.ikeRekey = None
        try:
            found = requestIndex(payloads)
        except DuplicatePayload:
            found = {"error": None}
        collision = rekey.collision
        problem = None
        if "error" in found:
            error = found["error"]
            problem = notifyName(error.notifyType) if error is not None else "a malformed answer"
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
