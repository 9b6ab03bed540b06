"""
The CREATE_CHILD_SA exchange (RFC 7296 sections 1.3, 2.8, 2.17, 2.18, 2.25) as the peer asks it,
and what both roles share: keying a new CHILD SA, building a rekeyed IKE SA and moving everything
to it. The hub's own rekeys, as initiator, are in L{ikehub.ike.rekey}.

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

import os
import struct

from ikehub.crypto.errors import CryptoError
from ikehub.crypto.ke import newKeyExchange
from ikehub.crypto.keys import deriveChildKeys, deriveIkeKeysFromSkeyseed, deriveRekeyedSkeyseed
from ikehub.ike.child import ChildSA
from ikehub.ike.responder import NONCE_MAX, NONCE_MIN, DuplicatePayload
from ikehub.ike.sa import IKESA, IKEState
from ikehub.ike.ts import narrow, rangesOf
from ikehub.wire.constants import ExchangeType, NotifyType, ProtocolId, notifyName
from ikehub.wire.payloads import (
    KEPayload,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SAPayload,
    TSiPayload,
    TSrPayload,
)

_GROUP = struct.Struct("!H")
_SINGULAR = frozenset({SAPayload, NoncePayload, KEPayload, TSiPayload, TSrPayload})
#: Notify types below this are errors (RFC 7296 section 3.10.1).
_FIRST_STATUS = 16384
#: CHILD SAs one IKE SA may hold, old ones awaiting their Delete included: an authenticated peer
#: that creates or rekeys without deleting cannot make the hub keep SAs without end.
MAX_CHILDREN = 8



def requestIndex(payloads) -> dict:
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


class CreateChildExchanges:
    """
    Mixed into L{ikehub.ike.endpoint.IKEEndpoint}.
    """

    # -- as responder ---------------------------------------------------------------------------

    def handle_CREATE_CHILD_SA(self, sa: IKESA, header, payloads) -> None:
        try:
            found = requestIndex(payloads)
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
        self.counters.increment("create_child_sa_refused_" + notifyName(notifyType).lower())
        self.respond(
            sa,
            ExchangeType.CREATE_CHILD_SA,
            [self.notify(notifyType, data, protocolId, spi)],
        )
        self.log.info(
            "CREATE_CHILD_SA from {peer} ({identity}) answered {notify}: {reason}",
            event="create_child_sa_refused",
            notify=notifyName(notifyType),
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
