"""
CREATE_CHILD_SA on task.Clock: additional CHILD SAs, CHILD SA and IKE SA rekeys in both
directions, with and without PFS, INVALID_KE_PAYLOAD, the collisions of RFC 7296 section 2.8.1
and 2.8.2, a rekey racing a delete, and dead peer detection.
"""

import ipaddress
import os

from twisted.trial.unittest import SynchronousTestCase

from ikehub.ike.sa import IKEState
from ikehub.wire.constants import ExchangeType, NotifyType, ProtocolId
from ikehub.wire.payloads import (
    KEPayload,
    NoncePayload,
    NotifyPayload,
    SAPayload,
    TrafficSelector,
    TSiPayload,
    TSrPayload,
)
from tests.ikepump import HUB, Pair, espProposals, hubSettings, makePool, padWith

LAN = int(ipaddress.ip_address("203.0.113.10"))


def notifies(payloads):
    return [p.notifyType for p in payloads if type(p) is NotifyPayload]


class RekeyScenario(SynchronousTestCase):
    hubOverrides: dict = {}
    clientOverrides: dict = {}

    def setUp(self):
        self.pool = makePool()
        self.pair = Pair(
            settings=hubSettings(**self.hubOverrides),
            pad=padWith(self.pool),
            pool=self.pool,
            clientSettings=hubSettings(**self.clientOverrides),
        )
        results, failures = self.pair.connect()
        self.assertEqual(failures, [])
        self.clientSa = results[0]
        self.hubSa = next(iter(self.pair.hub.byIdentity.values()))[0]
        self.vip = self.hubSa.virtualIps[0][1]

    def pump(self):
        self.pair.net.pump()

    def hubChild(self):
        (child,) = self.currentHubSa().children
        return child

    def clientChild(self):
        (child,) = self.currentClientSa().children
        return child

    def currentHubSa(self):
        (sa,) = self.pair.hub.byIdentity["alice@example.com"]
        return sa

    def currentClientSa(self):
        (sa,) = [s for s in self.pair.client.sas.values() if s.state is IKEState.ESTABLISHED]
        return sa

    def assertChildPairsMatch(self):
        """
        Each side holds exactly one CHILD SA, its SPIs and keys are the mirror of the other's,
        the SADs hold nothing else, and the hub routes the client's address to it.
        """
        hub, client = self.hubChild(), self.clientChild()
        self.assertEqual(hub.inboundSpi, client.outboundSpi)
        self.assertEqual(hub.outboundSpi, client.inboundSpi)
        self.assertEqual(hub.encrIn, client.encrOut)
        self.assertEqual(hub.encrOut, client.encrIn)
        self.assertEqual(len(self.pair.hubSad), 1)
        self.assertEqual(len(self.pair.clientSad), 1)
        self.assertIs(self.pair.hubSad.routes.lookup(4, int(self.vip)).child, hub)
        self.assertIs(self.pair.clientSad.routes.lookup(4, LAN).child, client)
        return hub, client


class ChildRekeyTests(RekeyScenario):
    def test_clientRekeysWithoutPfs(self):
        oldHub, oldClient = self.hubChild(), self.clientChild()
        self.pair.client.rekeyChildSa(oldClient)
        self.pump()
        hub, client = self.assertChildPairsMatch()
        self.assertNotEqual(hub.inboundSpi, oldHub.inboundSpi)
        self.assertNotEqual(hub.encrIn, oldHub.encrIn)
        self.assertIsNone(hub.suite.keGroup)
        self.assertEqual(self.pair.hub.counters["child_sa_rekeyed"], 1)
        self.assertIsNone(self.pair.hubSad.lookup(oldHub.inboundSpi))

    def test_hubRekeysAndTheClientAnswers(self):
        oldHub = self.hubChild()
        self.pair.hub.rekeyChildSa(oldHub)
        self.pump()
        hub, _ = self.assertChildPairsMatch()
        self.assertNotEqual(hub.inboundSpi, oldHub.inboundSpi)
        self.assertEqual(self.pair.client.counters["child_sa_rekeyed"], 1)

    def test_responderSendsOnTheOldSaUntilItsDelete(self):
        """
        Make-before-break on the responder's side: the new SA receives at once but carries the
        hub's outbound packets only after the initiator deleted the old one.
        """
        oldHub = self.hubChild()
        held = []
        self.pair.net.dropIf = lambda host, peer, data: (
            host != HUB and data[18] == ExchangeType.INFORMATIONAL and held.append(data) is None
        )
        self.pair.client.rekeyChildSa(self.clientChild())
        self.pump()
        newHub = next(c for c in self.currentHubSa().children if c is not oldHub)
        self.assertIsNotNone(self.pair.hubSad.lookup(newHub.inboundSpi))
        self.assertIs(self.pair.hubSad.routes.lookup(4, int(self.vip)).child, oldHub)
        self.pair.net.dropIf = None
        self.pair.net.inject(HUB, held[0], source=self.hubSa.peer, path=self.hubSa.path)
        self.assertIs(self.pair.hubSad.routes.lookup(4, int(self.vip)).child, newHub)
        self.assertIsNone(self.pair.hubSad.lookup(oldHub.inboundSpi))

    def test_initiatorKeepsTheOldInboundSaUntilTheDeleteIsAnswered(self):
        oldHub = self.hubChild()
        self.pair.net.dropIf = lambda host, peer, data: host != HUB and data[18] == (
            ExchangeType.INFORMATIONAL
        )
        self.pair.hub.rekeyChildSa(oldHub)
        self.pump()
        # The client's answer to the Delete is lost: the old SA still receives.
        self.assertIsNotNone(self.pair.hubSad.lookup(oldHub.inboundSpi))
        newHub = next(c for c in self.currentHubSa().children if c is not oldHub)
        self.assertIs(self.pair.hubSad.routes.lookup(4, int(self.vip)).child, newHub)
        self.pair.net.dropIf = None
        self.pair.clock.advance(2.1)
        self.pump()
        self.assertIsNone(self.pair.hubSad.lookup(oldHub.inboundSpi))
        self.assertChildPairsMatch()

    def test_pfsRekeyInTheGroupTheClientChooses(self):
        self.pair.client._sendChildRekey(
            self.currentClientSa(), self.clientChild(), 31, retried=False
        )
        self.pump()
        # This hub's ESP proposals name no group: PFS is refused, and the client falls back.
        self.assertEqual(self.pair.hub.counters["create_child_sa_refused_no_proposal_chosen"], 1)

    def test_simultaneousRekeysLeaveOnePair(self):
        self.pair.hub.rekeyChildSa(self.hubChild())
        self.pair.client.rekeyChildSa(self.clientChild())
        self.pump()
        self.pair.clock.advance(1)
        self.pump()
        self.assertChildPairsMatch()
        won = self.pair.hub.counters["child_sa_rekey_collision_won"] + self.pair.client.counters[
            "child_sa_rekey_collision_won"
        ]
        lost = self.pair.hub.counters["child_sa_rekey_collision_lost"] + self.pair.client.counters[
            "child_sa_rekey_collision_lost"
        ]
        self.assertEqual((won, lost), (1, 1))

    def test_rekeyRacingADelete(self):
        """
        The hub deletes a CHILD SA while the client rekeys it: whatever the rekey made is
        deleted too, and nothing is left on either side.
        """
        self.pair.client.rekeyChildSa(self.clientChild())
        self.pair.hub.deleteChildSa(self.hubChild())
        self.pump()
        self.pair.clock.advance(1)
        self.pump()
        self.assertEqual(self.currentHubSa().children, [])
        self.assertEqual(self.currentClientSa().children, [])
        self.assertEqual(len(self.pair.hubSad), 0)
        self.assertEqual(len(self.pair.clientSad), 0)

    def test_unknownChildAnsweredChildSaNotFound(self):
        answers = self._request(
            [
                NotifyPayload(ProtocolId.ESP, NotifyType.REKEY_SA, b"\x01\x02\x03\x04", b""),
                *self._childPayloads(),
            ]
        )
        self.assertEqual(notifies(answers), [NotifyType.CHILD_SA_NOT_FOUND])
        self.assertEqual(len(self.pair.hubSad), 1)

    def test_additionalChildSa(self):
        answers = self._request(self._childPayloads())
        self.assertIn(SAPayload, [type(p) for p in answers])
        self.assertEqual(len(self.currentHubSa().children), 2)
        self.assertEqual(self.pair.hub.counters["child_sa_added"], 1)

    def test_additionalChildSaOutsideThePolicyIsRefused(self):
        outside = TrafficSelector.fromNetwork(ipaddress.ip_network("192.0.2.0/24"))
        answers = self._request(self._childPayloads(tsr=(outside,)))
        self.assertEqual(notifies(answers), [NotifyType.TS_UNACCEPTABLE])
        self.assertEqual(len(self.pair.hubSad), 1)

    def test_malformedRequestsAreAnsweredAndKeepNothing(self):
        for payloads in (
            [SAPayload(self._proposals()), TSiPayload(()), TSrPayload(())],  # no nonce
            [SAPayload(self._proposals()), NoncePayload(b"short")],
            [*self._childPayloads(), NoncePayload(os.urandom(32))],  # two nonces
        ):
            answers = self._request(payloads)
            self.assertEqual(notifies(answers), [NotifyType.INVALID_SYNTAX])
        self.assertEqual(len(self.pair.hubSad), 1)
        self.assertEqual(self.currentHubSa().state, IKEState.ESTABLISHED)

    # -- helpers ------------------------------------------------------------------------------

    def _proposals(self, spi=b"\x00\x00\x10\x01"):
        return (espProposals("aes256gcm16")[0].toWire(1, spi),)

    def _childPayloads(self, tsr=None):
        tsi = (TrafficSelector.fromNetwork(ipaddress.ip_network(f"{self.vip}/32")),)
        tsr = tsr or (TrafficSelector.fromNetwork(ipaddress.ip_network("203.0.113.0/24")),)
        return [
            SAPayload(self._proposals()),
            NoncePayload(os.urandom(32)),
            TSiPayload(tsi),
            TSrPayload(tsr),
        ]

    def _request(self, payloads):
        answers = []
        self.pair.client.sendRequest(
            self.currentClientSa(),
            ExchangeType.CREATE_CHILD_SA,
            payloads,
            lambda sa, header, answer, *rest: answers.extend(answer),
        )
        self.pump()
        return answers


class PfsTests(RekeyScenario):
    hubOverrides = {"espProposals": espProposals("aes256gcm16-ecp256-x25519")}
    clientOverrides = {"espProposals": espProposals("aes256gcm16-x25519-ecp256")}

    def test_rekeyWithPfs(self):
        self.pair.client._sendChildRekey(
            self.currentClientSa(), self.clientChild(), 31, retried=False
        )
        self.pump()
        hub, client = self.assertChildPairsMatch()
        self.assertEqual(hub.suite.keGroup, 31)
        # Next time the hub rekeys it, PFS again, in the same group.
        self.pair.hub.rekeyChildSa(hub)
        self.pump()
        hub2, _ = self.assertChildPairsMatch()
        self.assertEqual(hub2.suite.keGroup, 31)
        self.assertNotEqual(hub2.encrIn, hub.encrIn)

    def test_groupTheHubDoesNotTakeIsRefusedAndAnotherWorks(self):
        """
        A rekey offering only a group the hub's proposals lack is refused (NO_PROPOSAL_CHOSEN),
        keeping the old SA; one in a group the hub takes succeeds.
        """
        self.pair.client._sendChildRekey(
            self.currentClientSa(), self.clientChild(), 21, retried=False
        )
        self.pump()
        self.assertEqual(self.pair.hub.counters["create_child_sa_refused_no_proposal_chosen"], 1)
        self.pair.client._sendChildRekey(
            self.currentClientSa(), self.clientChild(), 31, retried=False
        )
        self.pump()
        self.assertChildPairsMatch()

    def test_wrongKeGroupForTheChosenProposal(self):
        answers = []
        proposal = espProposals("aes256gcm16-ecp256")[0].toWire(1, b"\x00\x00\x20\x02")
        client = self.clientChild()
        self.pair.client.sendRequest(
            self.currentClientSa(),
            ExchangeType.CREATE_CHILD_SA,
            [
                NotifyPayload(ProtocolId.ESP, NotifyType.REKEY_SA, client.inboundSpi, b""),
                SAPayload((proposal,)),
                NoncePayload(os.urandom(32)),
                KEPayload(31, os.urandom(32)),
                TSiPayload(client.localTs),
                TSrPayload(client.remoteTs),
            ],
            lambda sa, header, answer, *rest: answers.extend(answer),
        )
        self.pump()
        self.assertEqual(notifies(answers), [NotifyType.INVALID_KE_PAYLOAD])
        self.assertEqual([p.data for p in answers], [b"\x00\x13"])


class RequirePfsTests(RekeyScenario):
    hubOverrides = {"espProposals": espProposals("aes256gcm16-x25519"), "requirePfs": True}

    def test_rekeyWithoutPfsRefusedThenRetriedWithIt(self):
        self.pair.client.rekeyChildSa(self.clientChild())
        self.pump()
        self.assertEqual(self.pair.hub.counters["create_child_sa_refused_no_proposal_chosen"], 1)
        hub, _ = self.assertChildPairsMatch()
        self.assertEqual(hub.suite.keGroup, 31)


class IkeRekeyTests(RekeyScenario):
    def test_clientRekeysTheIkeSa(self):
        old = self.currentHubSa()
        child = self.hubChild()
        self.pair.client.rekeyIkeSa(self.currentClientSa())
        self.pump()
        new = self.currentHubSa()
        self.assertIsNot(new, old)
        self.assertEqual(old.state, IKEState.DEAD)
        self.assertNotIn(old.localSpi, self.pair.hub.sas)
        self.assertEqual(new.children, [child])
        self.assertEqual(child.ikeSpi, new.localSpi)
        self.assertEqual(new.virtualIps, [(self.pool, self.vip)])
        self.assertEqual(len(self.pair.hub.sas), 1)
        self.assertEqual(len(self.pair.client.sas), 1)
        # The new IKE SA works: a CHILD SA rekey runs on it.
        self.pair.hub.rekeyChildSa(child)
        self.pump()
        self.assertChildPairsMatch()

    def test_hubRekeysTheIkeSaOnSchedule(self):
        pair = Pair(settings=hubSettings(ikeRekeyTime=100.0, dpdDelay=0.0))
        pair.connect()
        (old,) = pair.hub.sas.values()
        pair.clock.pump([1.0] * 89)
        pair.net.pump()
        self.assertIs(next(iter(pair.hub.sas.values())), old)
        pair.clock.pump([1.0] * 12)
        pair.net.pump()
        (new,) = pair.hub.sas.values()
        self.assertIsNot(new, old)
        self.assertTrue(new.isInitiator)
        self.assertEqual(pair.hub.counters["ike_sa_rekeyed"], 1)
        self.assertEqual(len(pair.client.sas), 1)

    def test_negotiatedExtensionsCarryOver(self):
        """Fragmentation and MOBIKE, negotiated once, hold for the rekeyed IKE SA too."""
        old = self.currentHubSa()
        old.fragmentSize, old.mobike = 1200, True
        self.pair.client.rekeyIkeSa(self.currentClientSa())
        self.pump()
        new = self.currentHubSa()
        self.assertIsNot(new, old)
        self.assertEqual((new.fragmentSize, new.mobike), (1200, True))

    def test_keysOfTheRekeyedSaAgree(self):
        self.pair.hub.rekeyIkeSa(self.currentHubSa())
        self.pump()
        hub, client = self.currentHubSa(), self.currentClientSa()
        self.assertEqual((hub.spiI, hub.spiR), (client.spiI, client.spiR))
        self.assertEqual(hub.keys.skD, client.keys.skD)
        self.assertNotEqual(hub.keys.skD, self.hubSa.keys.skD)

    def test_simultaneousIkeRekeysLeaveOneIkeSa(self):
        self.pair.hub.rekeyIkeSa(self.currentHubSa())
        self.pair.client.rekeyIkeSa(self.currentClientSa())
        self.pump()
        self.pair.clock.advance(1)
        self.pump()
        self.assertEqual(len(self.pair.hub.sas), 1)
        self.assertEqual(len(self.pair.client.sas), 1)
        hub, client = self.currentHubSa(), self.currentClientSa()
        self.assertEqual((hub.spiI, hub.spiR), (client.spiI, client.spiR))
        self.assertEqual(len(hub.children), 1)
        self.assertChildPairsMatch()

    def test_childRequestsDuringAnIkeRekeyAreTemporaryFailures(self):
        self.pair.hub.rekeyIkeSa(self.currentHubSa())
        self.pair.client.rekeyChildSa(self.clientChild())
        self.pump()
        for _ in range(40):
            self.pair.clock.advance(1.0)
            self.pump()
        self.assertEqual(self.pair.hub.counters["create_child_sa_refused_temporary_failure"], 1)
        # The client tried again later, on the new IKE SA.
        self.assertEqual(self.pair.client.counters["child_sa_rekey_sent"], 2)
        self.assertChildPairsMatch()


class DeadPeerDetectionTests(SynchronousTestCase):
    def test_silentPeerIsCheckedAndAnswers(self):
        pair = Pair(settings=hubSettings(dpdDelay=10.0, ikeRekeyTime=0.0))
        pair.connect()
        pair.clock.pump([1.0] * 15)
        pair.net.pump()
        self.assertEqual(pair.hub.counters["dpd_sent"], 1)
        self.assertEqual(len(pair.hub.sas), 1)

    def test_deadPeerIsRemovedWithItsLease(self):
        pool = makePool()
        pair = Pair(
            settings=hubSettings(dpdDelay=10.0, ikeRekeyTime=0.0), pad=padWith(pool), pool=pool
        )
        pair.connect()
        self.assertEqual(pool.inUse, 1)
        pair.net.dropIf = lambda host, peer, data: host != HUB
        for _ in range(120):
            pair.clock.advance(1.0)
            pair.net.pump()
        self.assertEqual(pair.hub.sas, {})
        self.assertEqual(len(pair.hubSad), 0)
        self.assertEqual(pool.inUse, 0)
        self.assertEqual(pair.hub.counters["peer_unresponsive"], 1)

    def test_espTrafficCountsAsLife(self):
        pair = Pair(settings=hubSettings(dpdDelay=10.0, ikeRekeyTime=0.0))
        pair.connect()
        (espSa,) = list(pair.hubSad)
        for _ in range(30):
            espSa.packetsIn += 1
            pair.clock.advance(1.0)
            pair.net.pump()
        self.assertEqual(pair.hub.counters["dpd_sent"], 0)


class StateTests(RekeyScenario):
    def test_ikeAuthOnAnEstablishedSaIsDropped(self):
        """
        IKE_AUTH belongs to a half-open SA: on an established one it is dropped and counted,
        and authenticates nothing again (no second address, no second CHILD SA).
        """
        sa = self.currentClientSa()
        datagram = sa.seal(ExchangeType.IKE_AUTH, sa.nextRequestId, [], response=False)
        self.pair.net.inject(HUB, datagram, source=self.hubSa.peer, path=self.hubSa.path)
        self.assertEqual(self.pair.hub.counters["drop_exchange_not_allowed_in_state"], 1)
        self.assertEqual(self.hubSa.state, IKEState.ESTABLISHED)
        self.assertEqual(len(self.hubSa.children), 1)
        self.assertEqual(self.pool.inUse, 1)
