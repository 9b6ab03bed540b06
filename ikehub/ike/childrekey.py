"""
Rekeying a CHILD SA (RFC 7296 sections 1.3.3 and 2.8), as the responder.

The peer sends CREATE_CHILD_SA with REKEY_SA naming the CHILD SA it replaces; the hub answers with
a new CHILD SA (fresh SPIs, KEYMAT from SK_d and the exchange's nonces, a new shared secret when
the proposal has PFS) and keeps the old one until the peer deletes it with an INFORMATIONAL
Delete, so no packet in flight is lost.

strongSwan needs this for MOBIKE as well as for its hourly rekeying: with kernel-libipsec it
cannot change the addresses of an installed ESP SA, so after UPDATE_SA_ADDRESSES it rekeys every
CHILD SA, and without an answer it tears the whole IKE SA down and authenticates again.

Additional CHILD SAs and rekeying the IKE SA itself are not offered: they are refused with
NO_ADDITIONAL_SAS, which leaves the peer's current SAs standing.
"""

import os

from ikehub.crypto.errors import CryptoError
from ikehub.crypto.ke import newKeyExchange
from ikehub.ike.sa import IKESA, IKEState
from ikehub.wire.constants import ExchangeType, NotifyType, ProtocolId
from ikehub.wire.payloads import (
    KEPayload,
    NoncePayload,
    NotifyPayload,
    SAPayload,
    TSiPayload,
    TSrPayload,
)

#: RFC 7296 section 2.10: nonces of 16 to 256 octets, as in IKE_SA_INIT.
NONCE_MIN, NONCE_MAX = 16, 256
#: CHILD SAs one IKE SA may hold at once: the first one, plus rekeyed ones until the peer deletes
#: their predecessors. A peer that rekeys without deleting is refused beyond this.
MAX_CHILDREN = 8
#: The payloads of a CREATE_CHILD_SA request, each at most once.
_SINGULAR = (SAPayload, NoncePayload, KEPayload, TSiPayload, TSrPayload)


class ChildRekeyResponder:
    """
    Mixed into L{ikehub.ike.responder.ResponderExchanges}, whose C{_narrowSelectors} and
    C{_installChild} it shares with IKE_AUTH's first CHILD SA.
    """

    def handle_CREATE_CHILD_SA(self, sa: IKESA, header, payloads) -> None:
        rekey = None
        found: dict = {}
        for payload in payloads:
            kind = type(payload)
            if kind is NotifyPayload:
                if payload.notifyType == NotifyType.REKEY_SA:
                    if rekey is not None:
                        return self._refuseChild(sa, "two REKEY_SA notifies")
                    rekey = payload
            elif kind in _SINGULAR:
                if kind in found:
                    return self._refuseChild(sa, f"two {kind.__name__} payloads")
                found[kind] = payload
        if (
            rekey is None
            or rekey.protocolId != ProtocolId.ESP
            or sa.state is not IKEState.ESTABLISHED
        ):
            # A new CHILD SA, or the IKE SA's own rekeying: the RFC's answer lets the peer keep
            # its current SAs.
            self.counters.increment("create_child_sa_refused")
            return self._answerChild(sa, NotifyType.NO_ADDITIONAL_SAS)
        old = next((c for c in sa.children if c.outboundSpi == rekey.spi), None)
        if old is None:
            # Section 2.25: probably deleted meanwhile by the hub; the peer gives it up.
            self.counters.increment("child_sa_not_found")
            return self.respond(
                sa,
                ExchangeType.CREATE_CHILD_SA,
                [self.notify(NotifyType.CHILD_SA_NOT_FOUND, b"", ProtocolId.ESP, rekey.spi)],
            )
        saPayload = found.get(SAPayload)
        nonce = found.get(NoncePayload)
        tsi, tsr = found.get(TSiPayload), found.get(TSrPayload)
        if saPayload is None or nonce is None or tsi is None or tsr is None:
            return self._refuseChild(sa, "SA, Nonce, TSi or TSr missing")
        if not NONCE_MIN <= len(nonce.nonce) <= NONCE_MAX:
            return self._refuseChild(sa, f"a nonce of {len(nonce.nonce)} octets")
        if len(sa.children) >= MAX_CHILDREN:
            self.counters.increment("create_child_sa_refused")
            return self._answerChild(sa, NotifyType.NO_ADDITIONAL_SAS)
        chosen = self._espSelector.chooseChild(saPayload.proposals)
        if chosen is None:
            self.counters.increment("child_no_proposal_chosen")
            return self._answerChild(sa, NotifyType.NO_PROPOSAL_CHOSEN)
        offer, transforms, suite = chosen
        sharedSecret = None
        answerKe = None
        if suite.keGroup is not None:
            ke = found.get(KEPayload)
            if ke is None or ke.group != suite.keGroup:
                self.counters.increment("sent_invalid_ke_payload")
                return self.respond(
                    sa,
                    ExchangeType.CREATE_CHILD_SA,
                    [
                        self.notify(
                            NotifyType.INVALID_KE_PAYLOAD, suite.keGroup.to_bytes(2, "big")
                        )
                    ],
                )
            try:
                kex = newKeyExchange(suite.keGroup)
                sharedSecret = kex.computeSharedSecret(ke.keyData)
            except CryptoError:
                return self._refuseChild(sa, "an unusable KE public value")
            answerKe = KEPayload(suite.keGroup, kex.publicKey)
        narrowed = self._narrowSelectors(sa, tsi, tsr)
        if narrowed is None:
            return self._answerChild(sa, NotifyType.TS_UNACCEPTABLE)
        nonceR = os.urandom(32)
        answerSa, child = self._installChild(
            sa, offer, transforms, suite, narrowed, nonce.nonce, nonceR, sharedSecret
        )
        answer = [answerSa, NoncePayload(nonceR)]
        if answerKe is not None:
            answer.append(answerKe)
        answer += [TSiPayload(narrowed[0]), TSrPayload(narrowed[1])]
        self.counters.increment("child_sa_rekeyed")
        self.log.info(
            "CHILD SA {old} with {peer} ({identity}) rekeyed as {new}",
            event="child_sa_rekeyed",
            old=f"{old.inboundSpi.hex()}/{old.outboundSpi.hex()}",
            new=f"{child.inboundSpi.hex()}/{child.outboundSpi.hex()}",
            pfs=suite.keGroup,
            **sa.describe(),
        )
        self.respond(sa, ExchangeType.CREATE_CHILD_SA, answer)

    def _answerChild(self, sa: IKESA, notifyType: int) -> None:
        self.respond(sa, ExchangeType.CREATE_CHILD_SA, [self.notify(notifyType)])

    def _refuseChild(self, sa: IKESA, reason: str) -> None:
        """A malformed request: INVALID_SYNTAX, nothing created, the IKE SA stands."""
        self.counters.increment("create_child_sa_malformed")
        self.log.info(
            "CREATE_CHILD_SA from {peer} ({identity}) refused: {reason}",
            event="child_sa_failed",
            reason=reason,
            **sa.describe(),
        )
        self._answerChild(sa, NotifyType.INVALID_SYNTAX)
