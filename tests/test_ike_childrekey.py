"""
Rekeying a CHILD SA with the hub as responder (RFC 7296 sections 1.3.3 and 2.8), in memory: the
new CHILD SA's keys, the old one kept until the peer deletes it, ESP moving to the new one, PFS,
and every refusal (unknown SPI, bad payloads, proposals, selectors, too many CHILD SAs).
"""

import dataclasses
import ipaddress
import os

from twisted.trial.unittest import SynchronousTestCase

from ikehub.crypto.keys import deriveChildKeys
from ikehub.crypto.ke import newKeyExchange
from ikehub.esp.datapath import ESPDatapath
from ikehub.ike.createchild import MAX_CHILDREN
from ikehub.net.memorysink import MemoryPacketInterface
from ikehub.policy.spd import SPD
from ikehub.wire.constants import ExchangeType, KeGroup, NotifyType, ProtocolId
from ikehub.wire.header import IKEHeader
from ikehub.wire.message import Message
from ikehub.wire.payloads import (
    DeletePayload,
    KEPayload,
    NoncePayload,
    NotifyPayload,
    SAPayload,
    TSiPayload,
    TSrPayload,
    TrafficSelector,
)

from tests.ikepump import CLIENT, HUB, Pair, clientSpec, espProposals, hubSettings

LAN_HOST = "203.0.113.10"


def notifyTypes(payloads):
    return [p.notifyType for p in payloads if type(p) is NotifyPayload]


class RekeyScenario(SynchronousTestCase):
    hubEsp = ("aes256gcm16",)
    clientEsp = "aes256gcm16"

    def setUp(self):
        self.pair = Pair(settings=hubSettings(espProposals=espProposals(*self.hubEsp)))
        self.hub = self.pair.hub
        [self.sa], _ = self.pair.connect(clientSpec())
        self.hubSa = self.hub.sas[self.sa.spiR]
        [self.clientChild] = self.sa.children
        [self.oldChild] = self.hubSa.children

    def exchange(self, exchangeType, payloads):
        """Send a request sealed with the client's keys; returns the opened answer's payloads."""
        sa = self.sa
        datagram = sa.seal(exchangeType, sa.nextRequestId, payloads, response=False)
        sa.nextRequestId += 1
        before = len(self.pair.net.log)
        self.pair.net.inject(HUB, datagram, (CLIENT, 4500), 4500)
        self.pair.net.inFlight.clear()
        [(_, _, _, answer)] = [r for r in self.pair.net.log[before:] if r[0] == HUB]
        header = IKEHeader.fromBytes(answer)
        self.assertEqual(header.exchangeType, exchangeType)
        return sa.skIn.unprotect(answer, Message.fromBytes(answer, header))

    def rekeyPayloads(self, spi=None, nonce=None, esp=None, ke=None, tsi=None, tsr=None):
        proposal = espProposals(esp or self.clientEsp)[0].toWire(1, b"\x0a\x0b\x0c\x0d")
        payloads = [
            NotifyPayload(
                ProtocolId.ESP,
                NotifyType.REKEY_SA,
                spi if spi is not None else self.clientChild.inboundSpi,
                b"",
            ),
            SAPayload((proposal,)),
            NoncePayload(nonce if nonce is not None else os.urandom(32)),
        ]
        if ke is not None:
            payloads.append(ke)
        payloads.append(TSiPayload(tsi or self.clientChild.localTs))
        payloads.append(TSrPayload(tsr or self.clientChild.remoteTs))
        return payloads

    def rekey(self, **options):
        return self.exchange(ExchangeType.CREATE_CHILD_SA, self.rekeyPayloads(**options))

    def assertRefused(self, answer, notifyType):
        self.assertEqual(notifyTypes(answer), [notifyType])
        self.assertEqual(self.hubSa.children, [self.oldChild])
        self.assertIn(self.sa.spiR, self.hub.sas)


class RekeyTests(RekeyScenario):
    def test_rekeyMakesANewChildWithFreshKeys(self):
        """
        The answer carries SA (the hub's new SPI), Nr, TSi and TSr; the new CHILD SA's keys are
        KEYMAT from SK_d and this exchange's nonces, the peer being its initiator.
        """
        nonceI = os.urandom(32)
        answer = self.rekey(nonce=nonceI)
        kinds = [type(p) for p in answer]
        self.assertEqual(kinds, [SAPayload, NoncePayload, TSiPayload, TSrPayload])
        saPayload, noncePayload = answer[0], answer[1]
        [proposal] = saPayload.proposals
        old, new = self.hubSa.children
        self.assertIs(old, self.oldChild)
        self.assertEqual(proposal.spi, new.inboundSpi)
        self.assertEqual(new.outboundSpi, b"\x0a\x0b\x0c\x0d")
        self.assertNotEqual(new.inboundSpi, old.inboundSpi)
        suite = new.suite
        keys = deriveChildKeys(
            self.sa.suite.prf, self.sa.keys.skD, suite.encr, suite.integ, nonceI, noncePayload.nonce
        )
        self.assertEqual((new.encrIn, new.encrOut), (keys.encrI, keys.encrR))
        self.assertNotEqual(new.encrIn, old.encrIn)
        self.assertEqual(new.remoteTs, old.remoteTs)
        self.assertIs(self.pair.hubSad.lookup(new.inboundSpi).child, new)
        self.assertIs(self.pair.hubSad.lookup(old.inboundSpi).child, old)
        self.assertEqual(self.hub.counters["child_sa_rekeyed"], 1)

    def test_oldChildGoesWhenThePeerDeletesIt(self):
        self.rekey()
        old, new = self.hubSa.children
        [delete] = self.exchange(
            ExchangeType.INFORMATIONAL, [DeletePayload(ProtocolId.ESP, (old.outboundSpi,))]
        )
        self.assertEqual(delete.spis, (old.inboundSpi,))
        self.assertEqual(self.hubSa.children, [new])
        self.assertIsNone(self.pair.hubSad.lookup(old.inboundSpi))
        self.assertEqual(len(self.pair.hubSad), 1)

    def test_outboundEspMovesToTheNewChildWhenTheOldIsDeleted(self):
        """
        Make-before-break: after the rekey the LAN's traffic still leaves on the old CHILD SA
        (the peer may not have read our answer yet); once the peer deletes the old one, it
        leaves on the new.
        """
        sent = []
        tun = MemoryPacketInterface("hub0")
        ESPDatapath(
            self.pair.hubSad, tun, SPD([]), self.pair.clock, lambda p, peer, path: sent.append(p)
        )
        tun.startReading()
        self.rekey()
        old, new = self.hubSa.children
        vip = self.sa.virtualIps[0][1]
        packet = (
            bytes([0x45, 0, 0, 40]) + bytes(8)
            + ipaddress.ip_address(LAN_HOST).packed + vip.packed + bytes(20)
        )
        tun.inject(packet)
        self.exchange(
            ExchangeType.INFORMATIONAL,
            [DeletePayload(ProtocolId.ESP, (self.clientChild.inboundSpi,))],
        )
        tun.inject(packet)
        self.assertEqual([esp[:4] for esp in sent], [old.outboundSpi, new.outboundSpi])

    def test_retransmittedRekeyGetsTheSameAnswer(self):
        payloads = self.rekeyPayloads()
        sa = self.sa
        datagram = sa.seal(ExchangeType.CREATE_CHILD_SA, sa.nextRequestId, payloads, response=False)
        self.pair.net.inject(HUB, datagram, (CLIENT, 4500), 4500)
        self.pair.net.inject(HUB, datagram, (CLIENT, 4500), 4500)
        self.assertEqual(len(self.hubSa.children), 2)
        self.assertEqual(self.hub.counters["retransmitted_request"], 1)

    def test_unknownSpiIsChildSaNotFound(self):
        answer = self.rekey(spi=b"\xde\xad\xbe\xef")
        self.assertRefused(answer, NotifyType.CHILD_SA_NOT_FOUND)
        self.assertEqual(answer[0].spi, b"\xde\xad\xbe\xef")

    def test_malformedRequestsAreInvalidSyntax(self):
        cases = [
            ("no nonce", [p for p in self.rekeyPayloads() if type(p) is not NoncePayload]),
            ("no TSr", [p for p in self.rekeyPayloads() if type(p) is not TSrPayload]),
            ("short nonce", self.rekeyPayloads(nonce=b"x" * 15)),
            ("two SA", self.rekeyPayloads() + [self.rekeyPayloads()[1]]),
            ("two REKEY_SA", [self.rekeyPayloads()[0]] + self.rekeyPayloads()),
        ]
        for name, payloads in cases:
            answer = self.exchange(ExchangeType.CREATE_CHILD_SA, payloads)
            self.assertEqual(notifyTypes(answer), [NotifyType.INVALID_SYNTAX], name)
            self.assertRefused(answer, NotifyType.INVALID_SYNTAX)
        self.assertEqual(
            self.hub.counters["create_child_sa_refused_invalid_syntax"], len(cases)
        )

    def test_unacceptableProposal(self):
        answer = self.rekey(esp="aes128-sha256")
        self.assertRefused(answer, NotifyType.NO_PROPOSAL_CHOSEN)

    def test_selectorsOutsideThePadEntry(self):
        other = ipaddress.ip_network("192.0.2.0/24")
        answer = self.rekey(tsr=(TrafficSelector.fromNetwork(other),))
        self.assertRefused(answer, NotifyType.TS_UNACCEPTABLE)

    def test_tooManyChildSas(self):
        """A peer adding CHILD SAs without deleting any is stopped at MAX_CHILDREN."""
        additional = [p for p in self.rekeyPayloads() if type(p) is not NotifyPayload]
        for _ in range(MAX_CHILDREN - 1):
            self.exchange(ExchangeType.CREATE_CHILD_SA, additional)
        self.assertEqual(len(self.hubSa.children), MAX_CHILDREN)
        answer = self.rekey()
        self.assertEqual(notifyTypes(answer), [NotifyType.NO_ADDITIONAL_SAS])
        self.assertEqual(len(self.hubSa.children), MAX_CHILDREN)


class PfsTests(RekeyScenario):
    hubEsp = ("aes256gcm16-x25519",)
    clientEsp = "aes256gcm16-x25519"

    def test_rekeyWithPfsMixesAFreshSharedSecret(self):
        kex = newKeyExchange(KeGroup.CURVE25519)
        nonceI = os.urandom(32)
        answer = self.rekey(nonce=nonceI, ke=KEPayload(KeGroup.CURVE25519, kex.publicKey))
        kinds = [type(p) for p in answer]
        self.assertEqual(kinds, [SAPayload, NoncePayload, KEPayload, TSiPayload, TSrPayload])
        shared = kex.computeSharedSecret(answer[2].keyData)
        _, new = self.hubSa.children
        suite = new.suite
        keys = deriveChildKeys(
            self.sa.suite.prf,
            self.sa.keys.skD,
            suite.encr,
            suite.integ,
            nonceI,
            answer[1].nonce,
            shared,
        )
        self.assertEqual((new.encrIn, new.encrOut), (keys.encrI, keys.encrR))

    def test_missingKeIsAnsweredWithTheGroup(self):
        answer = self.rekey()
        self.assertRefused(answer, NotifyType.INVALID_KE_PAYLOAD)
        self.assertEqual(answer[0].data, int(KeGroup.CURVE25519).to_bytes(2, "big"))

    def test_noPfsOfferIsAcceptedByDefault(self):
        answer = self.rekey(esp="aes256gcm16")
        self.assertEqual(notifyTypes(answer), [])
        self.assertIsNone(self.hubSa.children[1].suite.keGroup)

    def test_noPfsOfferIsRefusedWhenThePolicyRequiresPfs(self):
        self.hub.settings = dataclasses.replace(self.hub.settings, requirePfs=True)
        answer = self.rekey(esp="aes256gcm16")
        self.assertRefused(answer, NotifyType.NO_PROPOSAL_CHOSEN)

    def test_badPublicValueIsInvalidSyntax(self):
        answer = self.rekey(ke=KEPayload(KeGroup.CURVE25519, bytes(32)))
        self.assertRefused(answer, NotifyType.INVALID_SYNTAX)
