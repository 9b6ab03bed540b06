"""
Bad input to the responder: every malformed or out-of-place datagram is dropped and counted or
answered with RFC 7296's notify; nothing raises and no state is left behind.
"""

import os
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ikehub.wire.constants import ExchangeType, HeaderFlag, NotifyType
from ikehub.wire.header import IKEHeader
from ikehub.wire.message import Message
from ikehub.wire.payloads import KEPayload, NoncePayload, NotifyPayload, SAPayload, SKPayload

from tests.ikepump import CLIENT, HUB, Pair, clientSpec, ikeProposals

UNKNOWN_CRITICAL = bytes([0, 0x80, 0, 8]) + b"abcd"


def validInitRequest(pair: Pair, spec=None) -> bytes:
    pair.client.initiate(spec or clientSpec(), (HUB, 500), 500)
    [(_, _, _, request)] = pair.net.inFlight
    pair.net.inFlight.clear()
    return request


def replacePayloads(datagram: bytes, transform) -> bytes:
    message = Message.fromBytes(datagram)
    return Message(message.header, tuple(transform(list(message.payloads)))).toBytes()


class Scenario(SynchronousTestCase):
    def setUp(self):
        self.pair = Pair()
        self.hub = self.pair.hub

    def send(self, datagram: bytes, source=(CLIENT, 500)):
        self.pair.net.inFlight.clear()
        self.pair.net.inject(HUB, datagram, source)
        answers = [d for host, _, _, d in self.pair.net.inFlight if host == HUB]
        self.pair.net.inFlight.clear()
        return answers

    def assertNoState(self):
        self.assertEqual(self.hub.sas, {})
        self.assertEqual(self.hub.halfOpen, {})
        self.assertEqual(self.hub.counters["internal_error"], 0)

    def assertAnsweredWith(self, answers, notifyType):
        [answer] = answers
        message = Message.fromBytes(answer)
        self.assertTrue(message.header.isResponse)
        self.assertEqual(message.header.spiR, b"\x00" * 8)
        [notify] = message.payloads
        self.assertEqual(notify.notifyType, notifyType)
        return notify


class MalformedDatagramTests(Scenario):
    def test_truncatedHeader(self):
        self.assertEqual(self.send(b"\x01" * 27), [])
        self.assertEqual(self.hub.counters["drop_truncated"], 1)
        self.assertNoState()

    def test_headerLengthLongerThanDatagram(self):
        request = validInitRequest(self.pair)
        self.assertEqual(self.send(request[:-1]), [])
        self.assertEqual(self.hub.counters["drop_bad_length"], 1)
        self.assertNoState()

    def test_oversizedDatagram(self):
        request = validInitRequest(self.pair)
        self.assertEqual(self.send(request + os.urandom(65000)), [])
        self.assertNoState()

    def test_payloadLengthBeyondDatagram(self):
        request = bytearray(validInitRequest(self.pair))
        struct.pack_into("!H", request, 28 + 2, 60000)
        self.assertEqual(self.send(bytes(request)), [])
        self.assertEqual(self.hub.counters["drop_malformed"], 1)
        self.assertNoState()

    def test_payloadLengthZero(self):
        request = bytearray(validInitRequest(self.pair))
        struct.pack_into("!H", request, 28 + 2, 0)
        self.assertEqual(self.send(bytes(request)), [])
        self.assertNoState()

    def test_majorVersionThreeIsAnswered(self):
        request = bytearray(validInitRequest(self.pair))
        request[17] = 0x30
        [answer] = self.send(bytes(request))
        message = Message.fromBytes(answer)
        self.assertEqual(message.payloads[0].notifyType, NotifyType.INVALID_MAJOR_VERSION)
        self.assertNoState()

    def test_unsupportedCriticalPayloadIsAnswered(self):
        request = bytearray(validInitRequest(self.pair))
        # Append an unknown critical payload (type 200) to the end of the chain.
        message = Message.fromBytes(bytes(request))
        body = message.toBytes()
        lastOffset = 28
        offsets = []
        while True:
            offsets.append(lastOffset)
            nxt = body[lastOffset]
            length = struct.unpack_from("!H", body, lastOffset + 2)[0]
            if nxt == 0:
                break
            lastOffset += length
        patched = bytearray(body + UNKNOWN_CRITICAL)
        patched[offsets[-1]] = 200
        struct.pack_into("!I", patched, 24, len(patched))
        notify = self.assertAnsweredWith(
            self.send(bytes(patched)), NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD
        )
        self.assertEqual(notify.data, bytes([200]))
        self.assertNoState()

    def test_initWithResponderSpiIsDropped(self):
        request = bytearray(validInitRequest(self.pair))
        request[8:16] = os.urandom(8)
        self.assertEqual(self.send(bytes(request)), [])
        self.assertNoState()


class MissingAndDuplicatePayloadTests(Scenario):
    def test_missingEachRequiredPayload(self):
        for kind in (SAPayload, KEPayload, NoncePayload):
            request = replacePayloads(
                validInitRequest(self.pair), lambda ps: [p for p in ps if type(p) is not kind]
            )
            self.assertEqual(self.send(request), [], kind.__name__)
            self.assertNoState()
        self.assertEqual(self.hub.counters["drop_ike_sa_init_missing_payload"], 3)

    def test_duplicatePayload(self):
        request = replacePayloads(
            validInitRequest(self.pair),
            lambda ps: ps + [p for p in ps if type(p) is KEPayload],
        )
        self.assertEqual(self.send(request), [])
        self.assertEqual(self.hub.counters["drop_duplicate_payload"], 1)
        self.assertNoState()


class KeyExchangeAndNonceTests(Scenario):
    def test_keOfWrongSize(self):
        request = replacePayloads(
            validInitRequest(self.pair),
            lambda ps: [
                KEPayload(p.group, p.keyData[:-1]) if type(p) is KEPayload else p for p in ps
            ],
        )
        self.assertAnsweredWith(self.send(request), NotifyType.INVALID_SYNTAX)
        self.assertNoState()

    def test_invalidCurvePoint(self):
        spec = clientSpec(ikeProposals=ikeProposals("aes256gcm16-prfsha384-ecp256"))
        request = replacePayloads(
            validInitRequest(self.pair, spec),
            lambda ps: [KEPayload(19, b"\x01" * 64) if type(p) is KEPayload else p for p in ps],
        )
        self.assertAnsweredWith(self.send(request), NotifyType.INVALID_SYNTAX)
        self.assertNoState()

    def test_keForAnotherGroupGetsInvalidKe(self):
        request = replacePayloads(
            validInitRequest(self.pair),
            lambda ps: [KEPayload(19, b"\x01" * 64) if type(p) is KEPayload else p for p in ps],
        )
        notify = self.assertAnsweredWith(self.send(request), NotifyType.INVALID_KE_PAYLOAD)
        self.assertEqual(notify.data, struct.pack("!H", 31))
        self.assertNoState()

    def test_nonceOutsideSixteenTo256Bytes(self):
        for size in (0, 15, 257):
            request = replacePayloads(
                validInitRequest(self.pair),
                lambda ps: [
                    NoncePayload(os.urandom(size)) if type(p) is NoncePayload else p for p in ps
                ],
            )
            self.assertAnsweredWith(self.send(request), NotifyType.INVALID_SYNTAX)
            self.assertNoState()


class OutOfContextTests(Scenario):
    def test_responseToARequestNeverSent(self):
        header = IKEHeader(
            os.urandom(8), os.urandom(8), 0, ExchangeType.IKE_AUTH, int(HeaderFlag.RESPONSE), 1
        )
        self.assertEqual(self.send(Message(header, ()).toBytes()), [])
        self.assertEqual(self.hub.counters["drop_unexpected_response"], 1)
        self.assertNoState()

    def test_ikeAuthBeforeIkeSaInitGetsInvalidIkeSpi(self):
        header = IKEHeader(
            os.urandom(8), os.urandom(8), 0, ExchangeType.IKE_AUTH, int(HeaderFlag.INITIATOR), 1
        )
        datagram = Message(header, (SKPayload(35, os.urandom(80)),)).toBytes()
        [answer] = self.send(datagram)
        message = Message.fromBytes(answer)
        self.assertEqual(message.payloads[0].notifyType, NotifyType.INVALID_IKE_SPI)
        self.assertNoState()

    def test_invalidIkeSpiAnswersAreRateLimited(self):
        header = IKEHeader(
            os.urandom(8),
            os.urandom(8),
            0,
            ExchangeType.INFORMATIONAL,
            int(HeaderFlag.INITIATOR),
            5,
        )
        datagram = Message(header, (SKPayload(0, os.urandom(48)),)).toBytes()
        answers = sum(len(self.send(datagram)) for _ in range(100))
        self.assertLess(answers, 20)
        self.assertEqual(self.hub.counters["drop_unknown_spi"], 100)

    def test_garbageSkLeavesTheHalfOpenSaAlone(self):
        """
        A forged IKE_AUTH (bad ICV) for a real half-open SA is dropped; the genuine initiator can
        still complete.
        """
        pair = self.pair
        pair.net.dropIf = lambda host, peer, d: (
            host == CLIENT and IKEHeader.fromBytes(d).exchangeType == ExchangeType.IKE_AUTH
        )
        results, _ = pair.connect()
        [hubSa] = self.hub.sas.values()
        header = IKEHeader(
            hubSa.spiI, hubSa.spiR, 0, ExchangeType.IKE_AUTH, int(HeaderFlag.INITIATOR), 1
        )
        for size in (0, 1, 15, 16, 40, 200):
            forged = Message(header, (SKPayload(35, os.urandom(size)),)).toBytes()
            self.assertEqual(self.send(forged, source=(CLIENT, 4500)), [])
        self.assertEqual(len(self.hub.halfOpen), 1)
        self.assertEqual(self.hub.counters["drop_integrity"], 6)
        pair.net.dropIf = None
        pair.clock.advance(2.0)
        pair.net.pump()
        self.assertEqual(len(results), 1)

    def test_requestOutsideWindowIsDropped(self):
        pair = self.pair
        [sa], _ = pair.connect()
        hubSa = self.hub.sas[sa.spiR]
        datagram = sa.seal(ExchangeType.INFORMATIONAL, 7, [], response=False)
        self.assertEqual(self.send(datagram, source=(CLIENT, 4500)), [])
        self.assertEqual(self.hub.counters["drop_message_id_outside_window"], 1)
        self.assertIs(self.hub.sas[sa.spiR], hubSa)

    def test_ikeSaInitRequestWithoutInitiatorFlag(self):
        request = bytearray(validInitRequest(self.pair))
        request[19] = 0
        self.assertEqual(self.send(bytes(request)), [])
        self.assertNoState()

    def test_emptyIdentityIsRefused(self):
        """
        An IDi with no data is no identity: AUTHENTICATION_FAILED, nothing kept.
        """
        from types import SimpleNamespace

        from ikehub.ike.initiator import IKEFailure

        results, [failure] = self.pair.connect(
            clientSpec(identity=SimpleNamespace(idType=2, data=b""))
        )
        failure.trap(IKEFailure)
        self.assertEqual(failure.value.notifyType, NotifyType.AUTHENTICATION_FAILED)
        self.assertNoState()

    def test_keepsServingOthersAfterGarbage(self):
        for size in (28, 29, 100, 1000):
            self.send(os.urandom(size))
        results, failures = self.pair.connect()
        self.assertEqual(len(results), 1)


class FuzzTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.binary(min_size=0, max_size=600))
    def test_randomBytesNeverRaise(self, data):
        pair = Pair()
        pair.net.inject(HUB, data)
        self.assertEqual(pair.hub.counters["internal_error"], 0)
        self.assertEqual(pair.hub.sas, {})

    @settings(max_examples=300, deadline=None)
    @given(st.data())
    def test_mutatedInitRequestsNeverRaise(self, data):
        pair = Pair()
        request = bytearray(validInitRequest(pair))
        position = data.draw(st.integers(0, len(request) - 1))
        request[position] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(28, len(request)))
        pair.net.inject(HUB, bytes(request[:cut]))
        self.assertEqual(pair.hub.counters["internal_error"], 0)

    def test_notifyOnlyInitIsDropped(self):
        pair = Pair()
        header = IKEHeader(os.urandom(8), b"\x00" * 8, 0, 34, int(HeaderFlag.INITIATOR), 0)
        datagram = Message(header, (NotifyPayload(0, NotifyType.COOKIE, b"", b"x"),)).toBytes()
        pair.net.inject(HUB, datagram)
        self.assertEqual(pair.hub.sas, {})


def test_notifyNamesForLogs():
    """Log lines name notifies; unknown numbers and None still give a readable word."""
    from ikehub.wire.constants import notifyName

    assert notifyName(NotifyType.TEMPORARY_FAILURE) == "TEMPORARY_FAILURE"
    assert notifyName(24) == "AUTHENTICATION_FAILED"
    assert notifyName(40999) == "40999"
    assert notifyName(None) == "no notify"
