"""
MOBIKE (RFC 4555) as the hub runs it, in memory: negotiation in IKE_AUTH, UPDATE_SA_ADDRESSES
moving the IKE SA and its CHILD SAs (and the ESP datapath with them), the NAT detection and
COOKIE2 answers, and what must move nothing: forged and replayed requests, requests from
elsewhere without UPDATE_SA_ADDRESSES, malformed notifies, NO_NATS_ALLOWED, remote_addrs.
"""

import ipaddress
import os

from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from ikehub.esp.datapath import ESPDatapath
from ikehub.ike.mobike import MalformedMobility, parseMobility, peerAddressList
from ikehub.ike.nat import natDetectionHash, natDetectionNotifies
from ikehub.ike.responder import ADDITIONAL_ADDRESSES, indexed
from ikehub.net.memorysink import MemoryPacketInterface
from ikehub.policy.pad import PAD, PADEntry
from ikehub.policy.spd import SPD
from ikehub.wire.constants import ExchangeType, NotifyType, ProtocolId
from ikehub.wire.header import IKEHeader
from ikehub.wire.identity import Identity
from ikehub.wire.message import Message
from ikehub.wire.payloads import DeletePayload, NotifyPayload

from tests.ikepump import CLIENT, HUB, PSK, Pair, clientSpec, hubSettings, makePool, padWith

#: Where the client moves: a second address of its own segment.
MOVED = "192.0.2.12"
#: A third party's address.
ELSEWHERE = "192.0.2.99"
LAN_HOST = "203.0.113.10"


def notify(notifyType, data=b""):
    return NotifyPayload(ProtocolId.NONE, notifyType, b"", data)


def notifyTypes(payloads):
    return [p.notifyType for p in payloads if type(p) is NotifyPayload]


def ipv4(source: str, destination: str) -> bytes:
    import struct

    return struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        52,
        0,
        0,
        64,
        17,
        0,
        ipaddress.ip_address(source).packed,
        ipaddress.ip_address(destination).packed,
    ) + b"x" * 32


class MobikeScenario(SynchronousTestCase):
    """A client that negotiated MOBIKE with the hub, and a way to send it requests by hand."""

    clientMobike = True
    settings = None
    pad = None

    def setUp(self):
        self.pool = makePool()
        self.pair = Pair(
            settings=self.settings,
            pool=self.pool,
            pad=self.pad or padWith(self.pool),
        )
        self.hub = self.pair.hub
        self.events = []
        self.hub.log = Logger(
            "ikehub.ike.endpoint.IKEEndpoint", self.hub, observer=self.events.append
        )
        [self.sa], _ = self.pair.connect(clientSpec(mobike=self.clientMobike))
        self.hubSa = self.hub.sas[self.sa.spiR]
        [self.child] = self.hubSa.children

    def seal(self, payloads, messageId=None):
        """An INFORMATIONAL request under the client SA's keys, with the next message ID."""
        sa = self.sa
        if messageId is None:
            messageId = sa.nextRequestId
            sa.nextRequestId += 1
        return sa.seal(ExchangeType.INFORMATIONAL, messageId, payloads, response=False)

    def send(self, datagram, source=(MOVED, 4500), path=4500):
        """
        Deliver C{datagram} to the hub from C{source}; returns what the hub sent back as
        (destination, path, datagram) triples. Nothing is delivered onwards.
        """
        before = len(self.pair.net.log)
        self.pair.net.inject(HUB, datagram, source, path)
        self.pair.net.inFlight.clear()
        return [(peer, p, d) for host, p, peer, d in self.pair.net.log[before:] if host == HUB]

    def opened(self, datagram):
        """The payloads of a response the hub sealed for the client."""
        header = IKEHeader.fromBytes(datagram)
        return self.sa.skIn.unprotect(datagram, Message.fromBytes(datagram, header))

    def request(self, payloads, source=(MOVED, 4500), path=4500):
        """Send a sealed request from C{source}; returns (destination, path, payloads)."""
        [(destination, sentPath, datagram)] = self.send(self.seal(payloads), source, path)
        return destination, sentPath, self.opened(datagram)

    def assertNotMoved(self):
        self.assertEqual(self.hubSa.peer, (CLIENT, 4500))
        self.assertEqual((self.child.peer, self.child.path), ((CLIENT, 4500), 4500))
        self.assertEqual(self.hub.counters["mobike_moved"], 0)

    def moves(self):
        return [e for e in self.events if e.get("event") == "ike_sa_moved"]


def updateRequest(cookie=b"c" * 16, natDetection=True, sa=None, source=(MOVED, 4500)):
    payloads = [notify(NotifyType.UPDATE_SA_ADDRESSES)]
    if natDetection:
        payloads.extend(natDetectionNotifies(sa.spiI, sa.spiR, source, (HUB, 4500)))
    if cookie is not None:
        payloads.append(notify(NotifyType.COOKIE2, cookie))
    return payloads


class NegotiationTests(SynchronousTestCase):
    def authResponse(self, pair, clientSa):
        """The payloads of the hub's IKE_AUTH response, opened with the client's keys."""
        for host, _, _, datagram in pair.net.log:
            header = IKEHeader.fromBytes(datagram)
            if host == HUB and header.exchangeType == ExchangeType.IKE_AUTH:
                return clientSa.skIn.unprotect(datagram, Message.fromBytes(datagram, header))
        raise AssertionError("no IKE_AUTH response")

    def test_negotiatedWhenBothWantIt(self):
        """
        A client announcing MOBIKE_SUPPORTED gets it back in the IKE_AUTH response, and both
        SAs record MOBIKE (RFC 4555 section 3.2).
        """
        pair = Pair()
        [sa], _ = pair.connect(clientSpec(mobike=True))
        self.assertIn(NotifyType.MOBIKE_SUPPORTED, notifyTypes(self.authResponse(pair, sa)))
        self.assertTrue(pair.hub.sas[sa.spiR].mobike)
        self.assertTrue(sa.mobike)

    def test_peerWithoutMobikeIsNotOfferedIt(self):
        """A client that did not announce MOBIKE is not sent MOBIKE_SUPPORTED."""
        pair = Pair()
        [sa], _ = pair.connect(clientSpec())
        self.assertNotIn(NotifyType.MOBIKE_SUPPORTED, notifyTypes(self.authResponse(pair, sa)))
        self.assertFalse(pair.hub.sas[sa.spiR].mobike)

    def test_hubWithMobikeOffDoesNotNegotiate(self):
        """[hub] mobike = false: the client's announcement goes unanswered."""
        pair = Pair(settings=hubSettings(mobike=False))
        [sa], _ = pair.connect(clientSpec(mobike=True))
        self.assertNotIn(NotifyType.MOBIKE_SUPPORTED, notifyTypes(self.authResponse(pair, sa)))
        self.assertFalse(pair.hub.sas[sa.spiR].mobike)
        self.assertFalse(sa.mobike)

    def test_negotiatedAcrossEapRounds(self):
        """
        With EAP, the announcement rides the first IKE_AUTH request (the one with the SA
        payload) and the answer the last response (the one with the CHILD SA), RFC 4555 3.2.
        """
        from tests.test_ike_initiator_auth import PASSWORD, connect, hubPair, pkiFor

        pki = pkiFor("ecdsa")
        pair = hubPair("eap-mschapv2", pki)
        spec = clientSpec(psk=None, eapPassword=PASSWORD, trust=pki.trust, mobike=True)
        [sa], failures = connect(pair, spec)
        self.assertEqual(failures, [])
        self.assertTrue(sa.mobike)
        [hubSa] = pair.hub.sas.values()
        self.assertTrue(hubSa.mobike)
        answers = []
        for host, _, _, datagram in pair.net.log:
            header = IKEHeader.fromBytes(datagram)
            if host == HUB and header.exchangeType == ExchangeType.IKE_AUTH:
                answers.append(sa.skIn.unprotect(datagram, Message.fromBytes(datagram, header)))
        self.assertGreater(len(answers), 2)
        withMobike = [
            i for i, a in enumerate(answers) if NotifyType.MOBIKE_SUPPORTED in notifyTypes(a)
        ]
        self.assertEqual(withMobike, [len(answers) - 1])

    def test_ikeAuthIndexKeepsAdditionalAddresses(self):
        """
        The IKE_AUTH index notes MOBIKE_SUPPORTED and keeps ADDITIONAL_IP4/6_ADDRESS in order;
        one of the wrong size is skipped, not fatal.
        """
        found = indexed(
            [
                notify(NotifyType.MOBIKE_SUPPORTED),
                notify(NotifyType.ADDITIONAL_IP4_ADDRESS, bytes([198, 51, 100, 7])),
                notify(NotifyType.ADDITIONAL_IP4_ADDRESS, b"\x01\x02\x03"),
                notify(
                    NotifyType.ADDITIONAL_IP6_ADDRESS,
                    ipaddress.ip_address("2001:db8::7").packed,
                ),
            ]
        )
        self.assertTrue(found[NotifyType.MOBIKE_SUPPORTED])
        self.assertEqual(
            peerAddressList(found[ADDITIONAL_ADDRESSES]), ("198.51.100.7", "2001:db8::7")
        )


class UpdateTests(MobikeScenario):
    def test_updateMovesIkeAndChildSas(self):
        """
        UPDATE_SA_ADDRESSES from a new address moves the IKE SA and its CHILD SA there, the
        answer goes there, and the CHILD SA's keys and ESP state are untouched.
        """
        espBefore = self.pair.hubSad.lookup(self.child.inboundSpi)
        keysBefore = (self.child.encrIn, self.child.encrOut)
        destination, path, _ = self.request(updateRequest(sa=self.sa))
        self.assertEqual((destination, path), ((MOVED, 4500), 4500))
        self.assertEqual((self.hubSa.peer, self.hubSa.path), ((MOVED, 4500), 4500))
        self.assertEqual((self.child.peer, self.child.path), ((MOVED, 4500), 4500))
        self.assertIs(self.pair.hubSad.lookup(self.child.inboundSpi), espBefore)
        self.assertEqual((self.child.encrIn, self.child.encrOut), keysBefore)
        self.assertEqual(self.hub.counters["mobike_moved"], 1)

    def test_answerCarriesNatDetectionAndCookie2(self):
        """
        The answer has both NAT detection notifies (the destination hash names the new
        address; the source hash still reports a NAT) and the COOKIE2 copied as-is.
        """
        cookie = os.urandom(24)
        _, _, payloads = self.request(updateRequest(cookie, sa=self.sa))
        byType = {p.notifyType: p.data for p in payloads if type(p) is NotifyPayload}
        self.assertEqual(byType[NotifyType.COOKIE2], cookie)
        sa = self.hubSa
        self.assertEqual(
            byType[NotifyType.NAT_DETECTION_DESTINATION_IP],
            natDetectionHash(sa.spiI, sa.spiR, MOVED, 4500),
        )
        self.assertNotEqual(
            byType[NotifyType.NAT_DETECTION_SOURCE_IP],
            natDetectionHash(sa.spiI, sa.spiR, HUB, 4500),
        )

    def test_noNatDetectionAskedNoneAnswered(self):
        _, _, payloads = self.request(updateRequest(natDetection=False, sa=self.sa))
        self.assertEqual(notifyTypes(payloads), [NotifyType.COOKIE2])
        self.assertEqual(self.hubSa.peer, (MOVED, 4500))

    def test_moveIsLoggedWithOldAndNewAddress(self):
        self.request(updateRequest(sa=self.sa))
        [event] = self.moves()
        self.assertEqual(event["old"], f"{CLIENT}:4500")
        self.assertEqual(event["new"], f"{MOVED}:4500")
        self.assertEqual(event["identity"], "alice@example.com")
        self.assertEqual(event["log_level"].name, "info")

    def test_updateFromTheSameAddressMovesNothing(self):
        _, _, payloads = self.request(updateRequest(sa=self.sa), source=(CLIENT, 4500))
        self.assertIn(NotifyType.COOKIE2, notifyTypes(payloads))
        self.assertNotMoved()
        self.assertEqual(self.hub.counters["mobike_update_same_address"], 1)

    def test_hubsOwnRequestsFollowTheMove(self):
        """After the move the hub's own requests (here its Delete) go to the new address."""
        self.request(updateRequest(sa=self.sa))
        before = len(self.pair.net.log)
        self.hub.deleteIkeSa(self.hubSa)
        [(_, path, destination, _)] = self.pair.net.log[before:]
        self.assertEqual((destination, path), ((MOVED, 4500), 4500))

    def test_lostAnswerIsResentToTheNewAddress(self):
        datagram = self.seal(updateRequest(sa=self.sa))
        [(_, _, first)] = self.send(datagram)
        [(destination, _, again)] = self.send(datagram)
        self.assertEqual(again, first)
        self.assertEqual(destination, (MOVED, 4500))
        self.assertEqual(self.hub.counters["retransmitted_request"], 1)
        self.assertEqual(self.hub.counters["mobike_moved"], 1)

    def test_additionalAddressesAreRecordedAndReplaced(self):
        v6 = ipaddress.ip_address("2001:db8::7").packed
        self.request(
            [
                notify(NotifyType.ADDITIONAL_IP4_ADDRESS, bytes([198, 51, 100, 7])),
                notify(NotifyType.ADDITIONAL_IP6_ADDRESS, v6),
            ],
            source=(CLIENT, 4500),
        )
        self.assertEqual(self.hubSa.peerAddresses, ("198.51.100.7", "2001:db8::7"))
        self.request([notify(NotifyType.NO_ADDITIONAL_ADDRESSES)], source=(CLIENT, 4500))
        self.assertEqual(self.hubSa.peerAddresses, ())
        self.assertNotMoved()


class FamilyChangeTests(MobikeScenario):
    def setUp(self):
        super().setUp()
        [self.sa], _ = self.pair.connect(clientSpec(mobike=True, fragmentation=True))
        self.hubSa = self.hub.sas[self.sa.spiR]

    def test_moveToIpv6LeavesRoomForItsHeader(self):
        """
        With IKE fragmentation negotiated over IPv4, a move to IPv6 makes the hub's fragments
        20 bytes smaller (an IPv6 header is 40 bytes, IPv4's 20), so they still fit
        fragment_size; and back.
        """
        size = self.hub.settings.fragmentSize
        self.assertEqual(self.hubSa.fragmentSize, size - 20 - 8 - 4)
        v6 = ("2001:db8::12", 4500)
        self.request(updateRequest(sa=self.sa, source=v6), source=v6)
        self.assertEqual(self.hubSa.peer, v6)
        self.assertEqual(self.hubSa.fragmentSize, size - 40 - 8 - 4)
        self.request(updateRequest(sa=self.sa))
        self.assertEqual(self.hubSa.fragmentSize, size - 20 - 8 - 4)


class DatapathFollowsTests(MobikeScenario):
    def test_outboundEspGoesToTheNewAddressAndInboundIsAccepted(self):
        """
        The ESP datapath reads the CHILD SA's address per packet: right after the move, a packet
        from the LAN leaves for the new address, and ESP from the new address is accepted with
        the replay window carried over.
        """
        sent = []
        hubTun = MemoryPacketInterface("hub0")
        datapath = ESPDatapath(
            self.pair.hubSad,
            hubTun,
            SPD([]),
            self.pair.clock,
            lambda packet, peer, path: sent.append((peer, path, packet)),
        )
        hubTun.startReading()
        clientSent = []
        clientTun = MemoryPacketInterface("client0")
        self.clientPath = ESPDatapath(
            self.pair.clientSad,
            clientTun,
            SPD([]),
            self.pair.clock,
            lambda packet, peer, path: clientSent.append(packet),
        )
        vip = str(self.sa.virtualIps[0][1])
        clientTun.startReading()
        clientTun.inject(ipv4(vip, LAN_HOST))
        datapath.espReceived(clientSent.pop(), (CLIENT, 4500), 4500)
        self.request(updateRequest(sa=self.sa))

        hubTun.inject(ipv4(LAN_HOST, vip))
        [(peer, path, _)] = sent
        self.assertEqual((peer, path), ((MOVED, 4500), 4500))
        clientTun.inject(ipv4(vip, LAN_HOST))
        datapath.espReceived(clientSent.pop(), (MOVED, 4500), 4500)
        self.assertEqual(len(hubTun.written), 2)
        espSa = self.pair.hubSad.lookup(self.child.inboundSpi)
        self.assertEqual(espSa.packetsIn, 2)
        self.assertEqual(espSa.drops, {})


class NoMoveTests(MobikeScenario):
    def test_forgedUpdateMovesNothing(self):
        """
        An UPDATE_SA_ADDRESSES whose ICV does not verify, from a third party, is dropped
        unanswered; the genuine peer's next request is still in the window.
        """
        datagram = bytearray(self.seal(updateRequest(sa=self.sa), messageId=self.sa.nextRequestId))
        datagram[-1] ^= 1
        self.assertEqual(self.send(bytes(datagram), source=(ELSEWHERE, 4500)), [])
        self.assertEqual(self.hub.counters["drop_integrity"], 1)
        self.assertNotMoved()
        self.request([], source=(CLIENT, 4500))

    def test_forgedWithOtherKeysMovesNothing(self):
        """A request sealed under another IKE SA's keys, with this SA's SPIs, is dropped."""
        [other], _ = self.pair.connect(clientSpec(mobike=True))
        header = IKEHeader.outgoing(
            self.sa.spiI, self.sa.spiR, ExchangeType.INFORMATIONAL, 0x08, self.sa.nextRequestId
        )
        forged = other.skOut.protect(header, updateRequest(sa=self.sa))
        self.assertEqual(self.send(forged, source=(ELSEWHERE, 4500)), [])
        self.assertNotMoved()

    def test_replayedUpdateFromAThirdAddressMovesNothing(self):
        """
        A captured UPDATE_SA_ADDRESSES replayed from elsewhere is a retransmission: the cached
        answer goes to the replayer, the SA stays where the genuine request put it.
        """
        datagram = self.seal(updateRequest(sa=self.sa))
        self.send(datagram)
        [(destination, _, _)] = self.send(datagram, source=(ELSEWHERE, 4500))
        self.assertEqual(destination, (ELSEWHERE, 4500))
        self.assertEqual(self.hubSa.peer, (MOVED, 4500))
        self.assertEqual(self.child.peer, (MOVED, 4500))
        self.assertEqual(self.hub.counters["mobike_moved"], 1)

    def test_otherRequestsFromElsewhereDoNotMoveTheSa(self):
        """
        RFC 4555 section 3.8: with MOBIKE, a liveness check or a NAT detection probe from a new
        address is answered there, but the SA stays until UPDATE_SA_ADDRESSES.
        """
        destination, _, payloads = self.request([])
        self.assertEqual(destination, (MOVED, 4500))
        self.assertEqual(payloads, ())
        sa = self.sa
        probe = natDetectionNotifies(sa.spiI, sa.spiR, (MOVED, 4500), (HUB, 4500))
        destination, _, payloads = self.request(probe)
        self.assertEqual(destination, (MOVED, 4500))
        self.assertEqual(
            sorted(notifyTypes(payloads)),
            [NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP],
        )
        self.assertNotMoved()
        self.assertEqual(self.hub.counters["mobike_request_from_elsewhere"], 2)
        self.assertEqual(self.moves(), [])

    def test_deleteFromElsewhereStillDeletes(self):
        destination, _, _ = self.request([DeletePayload(ProtocolId.IKE, ())])
        self.assertEqual(destination, (MOVED, 4500))
        self.assertNotIn(self.sa.spiR, self.hub.sas)

    def test_noNatsAllowedIsAnsweredUnexpectedNat(self):
        """
        NO_NATS_ALLOWED: the hub always reports a NAT (its ESP needs UDP), so the update is
        refused with UNEXPECTED_NAT_DETECTED, the COOKIE2 still echoed, nothing moved.
        """
        noNats = (
            ipaddress.ip_address(MOVED).packed
            + ipaddress.ip_address(HUB).packed
            + (4500).to_bytes(2, "big")
            + (4500).to_bytes(2, "big")
        )
        payloads = updateRequest(sa=self.sa) + [notify(NotifyType.NO_NATS_ALLOWED, noNats)]
        destination, _, answer = self.request(payloads)
        self.assertEqual(destination, (MOVED, 4500))
        types = notifyTypes(answer)
        self.assertIn(NotifyType.UNEXPECTED_NAT_DETECTED, types)
        self.assertIn(NotifyType.COOKIE2, types)
        self.assertNotMoved()
        self.assertEqual(self.hub.counters["mobike_unexpected_nat"], 1)


class RemoteAddrsTests(MobikeScenario):
    pad = None

    def setUp(self):
        pool = makePool()
        self.pad = PAD(
            [
                PADEntry(
                    name="roadwarriors",
                    identity=Identity.fromString("alice@example.com"),
                    auth="psk",
                    psk=PSK,
                    pool=pool,
                    localTs=(ipaddress.ip_network("203.0.113.0/24"),),
                    remoteTs=("dynamic",),
                    remoteAddrs=(ipaddress.ip_network("192.0.2.0/24"),),
                    duplicates="never",
                )
            ]
        )
        super().setUp()

    def test_moveOutsideRemoteAddrsIsRefused(self):
        """
        The PAD entry's remote_addrs bind the peer's address after a move too: outside them the
        answer is UNACCEPTABLE_ADDRESSES and the SA stays.
        """
        destination, _, answer = self.request(
            updateRequest(sa=self.sa), source=("198.51.100.99", 4500)
        )
        self.assertEqual(destination, ("198.51.100.99", 4500))
        self.assertIn(NotifyType.UNACCEPTABLE_ADDRESSES, notifyTypes(answer))
        self.assertNotMoved()

    def test_refusedMoveAnswersNatDetectionForTheRequester(self):
        """
        The refusal still answers NAT detection, hashed with the IKE SA's SPIs for the address
        the answer goes to (where the request came from), not the SA's unchanged one.
        """
        elsewhere = ("198.51.100.99", 4500)
        _, _, answer = self.request(updateRequest(sa=self.sa, source=elsewhere), source=elsewhere)
        byType = {p.notifyType: p.data for p in answer if type(p) is NotifyPayload}
        self.assertEqual(
            byType[NotifyType.NAT_DETECTION_DESTINATION_IP],
            natDetectionHash(self.hubSa.spiI, self.hubSa.spiR, *elsewhere),
        )
        self.assertNotMoved()

    def test_moveInsideRemoteAddrsIsDone(self):
        self.request(updateRequest(sa=self.sa))
        self.assertEqual(self.hubSa.peer, (MOVED, 4500))


class WithoutMobikeTests(MobikeScenario):
    clientMobike = False

    def test_rebindingStillFollowsThePeer(self):
        """Without MOBIKE, any authenticated request from elsewhere moves the SA (RFC 7296 2.23)."""
        self.request([])
        self.assertEqual(self.hubSa.peer, (MOVED, 4500))
        self.assertEqual(self.child.peer, (MOVED, 4500))

    def test_updateWithoutMobikeIsCountedCookieEchoed(self):
        _, _, payloads = self.request(updateRequest(sa=self.sa))
        self.assertIn(NotifyType.COOKIE2, notifyTypes(payloads))
        self.assertEqual(self.hub.counters["mobike_not_negotiated"], 1)
        self.assertEqual(self.hub.counters["mobike_moved"], 0)


    def test_malformedMobikeNotifiesAreIgnored(self):
        """
        Without MOBIKE its notifies are status notifies the SA has no use for, ignored even
        when malformed (RFC 7296 section 3.10.1): no INVALID_SYNTAX, and a Delete beside them
        is still carried out.
        """
        payloads = [
            notify(NotifyType.COOKIE2, b"short"),
            notify(NotifyType.ADDITIONAL_IP4_ADDRESS, b"\x01"),
            DeletePayload(ProtocolId.ESP, (self.child.outboundSpi,)),
        ]
        _, _, answer = self.request(payloads, source=(CLIENT, 4500))
        self.assertEqual(notifyTypes(answer), [])
        [deleted] = [p for p in answer if type(p) is DeletePayload]
        self.assertEqual(deleted.spis, (self.child.inboundSpi,))
        self.assertEqual(self.hubSa.children, [])
        self.assertEqual(self.hub.counters["mobike_malformed"], 0)
        self.assertEqual(self.hub.counters["mobike_not_negotiated"], 1)


class MalformedTests(MobikeScenario):
    cases = [
        ("short COOKIE2", [notify(NotifyType.COOKIE2, b"1234567")]),
        ("long COOKIE2", [notify(NotifyType.COOKIE2, b"x" * 65)]),
        ("two COOKIE2", [notify(NotifyType.COOKIE2, b"x" * 8)] * 2),
        ("NAT hash size", [notify(NotifyType.NAT_DETECTION_SOURCE_IP, b"x" * 19)]),
        ("IPv4 size", [notify(NotifyType.ADDITIONAL_IP4_ADDRESS, b"x" * 5)]),
        ("IPv6 size", [notify(NotifyType.ADDITIONAL_IP6_ADDRESS, b"x" * 4)]),
        ("NO_NATS size", [notify(NotifyType.NO_NATS_ALLOWED, b"x" * 13)]),
        (
            "contradiction",
            [
                notify(NotifyType.NO_ADDITIONAL_ADDRESSES),
                notify(NotifyType.ADDITIONAL_IP4_ADDRESS, bytes(4)),
            ],
        ),
    ]

    def test_malformedNotifiesAreAnsweredInvalidSyntax(self):
        """
        Each malformed MOBIKE request (with UPDATE_SA_ADDRESSES, from a new address) gets
        INVALID_SYNTAX and changes neither the addresses nor the peer's address list.
        """
        self.hubSa.peerAddresses = ("198.51.100.7",)
        for name, payloads in self.cases:
            destination, _, answer = self.request(
                [notify(NotifyType.UPDATE_SA_ADDRESSES), *payloads]
            )
            self.assertEqual(notifyTypes(answer), [NotifyType.INVALID_SYNTAX], name)
            self.assertEqual(destination, (MOVED, 4500), name)
            self.assertNotMoved()
            self.assertEqual(self.hubSa.peerAddresses, ("198.51.100.7",), name)
        self.assertEqual(self.hub.counters["mobike_malformed"], len(self.cases))
        self.assertEqual(self.hub.counters["internal_error"], 0)
        self.assertIn(self.sa.spiR, self.hub.sas)

    def test_cookie2OfEightAndSixtyFourOctetsIsEchoed(self):
        """RFC 4555: COOKIE2 carries 8 to 64 octets inclusive; both ends are accepted."""
        for size in (8, 64):
            cookie = os.urandom(size)
            _, _, answer = self.request([notify(NotifyType.COOKIE2, cookie)])
            self.assertEqual(
                [(p.notifyType, p.data) for p in answer], [(NotifyType.COOKIE2, cookie)], size
            )
        self.assertEqual(self.hub.counters["mobike_malformed"], 0)

    def test_noNatsAllowedOfIpv6IsRead(self):
        source = ipaddress.ip_address("2001:db8::12").packed
        destination = ipaddress.ip_address("2001:db8::1").packed
        request = parseMobility(
            [notify(NotifyType.NO_NATS_ALLOWED, source + destination + b"\x11\x94\x01\xf4")]
        )
        self.assertEqual(request.noNats, (("2001:db8::12", 4500), ("2001:db8::1", 500)))

    def test_parserNamesTheProblem(self):
        with self.assertRaises(MalformedMobility) as caught:
            parseMobility([notify(NotifyType.COOKIE2, b"x")])
        self.assertIn("COOKIE2 of 1 octets", str(caught.exception))

    def test_parserIgnoresOtherPayloads(self):
        self.assertIsNone(parseMobility([DeletePayload(ProtocolId.ESP, (b"abcd",))]))
        self.assertIsNone(parseMobility([notify(NotifyType.INITIAL_CONTACT)]))

    def test_randomNotifyDataNeverRaises(self):
        """
        Random sets of MOBIKE notifies, each of a valid or an invalid size, from the SA's own
        address or elsewhere: every request is answered exactly once, never an internal error.
        The sizes are chosen so that both the parser's refusals and the handling of
        well-formed requests (moves, refusals, COOKIE2 and NAT detection answers) are reached.
        """
        import random

        sizes = {
            NotifyType.UPDATE_SA_ADDRESSES: (0, 0, 3),
            NotifyType.COOKIE2: (8, 64, 16, 7, 65),
            NotifyType.NAT_DETECTION_SOURCE_IP: (20, 20, 19),
            NotifyType.NAT_DETECTION_DESTINATION_IP: (20, 20, 21),
            NotifyType.NO_NATS_ALLOWED: (12, 36, 13),
            NotifyType.ADDITIONAL_IP4_ADDRESS: (4, 4, 5),
            NotifyType.ADDITIONAL_IP6_ADDRESS: (16, 16, 4),
            NotifyType.NO_ADDITIONAL_ADDRESSES: (0,),
        }
        rng = random.Random(4555)
        sources = [(MOVED, 4500), (CLIENT, 4500), ("2001:db8::12", 4500), (MOVED, 4501)]
        for _ in range(200):
            payloads = [
                notify(kind, os.urandom(rng.choice(sizes[kind])))
                for kind in rng.sample(list(sizes), rng.randint(1, len(sizes)))
            ]
            self.assertEqual(len(self.send(self.seal(payloads), rng.choice(sources))), 1)
        counters = self.hub.counters
        self.assertEqual(counters["internal_error"], 0)
        for reached in ("mobike_malformed", "mobike_moved", "mobike_unexpected_nat"):
            self.assertGreater(counters[reached], 0, reached)
        self.assertIn(self.sa.spiR, self.hub.sas)


class TimerTests(SynchronousTestCase):
    def test_moveNeedsNoTimer(self):
        """The move happens in the request's handling: no timer is left behind."""
        pair = Pair()
        [sa], _ = pair.connect(clientSpec(mobike=True))
        calls = len(pair.hub.clock.getDelayedCalls())
        datagram = sa.seal(
            ExchangeType.INFORMATIONAL,
            sa.nextRequestId,
            [notify(NotifyType.UPDATE_SA_ADDRESSES)],
            response=False,
        )
        pair.net.inject(HUB, datagram, (MOVED, 4500), 4500)
        self.assertEqual(len(pair.hub.clock.getDelayedCalls()), calls)
        self.assertEqual(pair.hub.sas[sa.spiR].peer, (MOVED, 4500))
