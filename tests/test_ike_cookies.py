"""
Denial-of-service protection of the responder, in memory on a task.Clock: the global and
per-source half-open thresholds that make IKE_SA_INIT return a cookie, the per-source block
threshold, and the cookie itself as RFC 7296 section 2.6 describes it (bound to the initiator's
address, SPI and nonce; first payload; secret rotated on the clock).
"""

import dataclasses
import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ikehub.ike.cookies import COOKIE_LENGTH, SECRET_PERIOD, CookieJar
from ikehub.ike.sa import IKEState
from ikehub.wire.constants import ExchangeType, NotifyType
from ikehub.wire.header import IKEHeader
from ikehub.wire.message import Message
from ikehub.wire.payloads import NoncePayload, NotifyPayload, SAPayload
from tests.ikepump import CLIENT, HUB, Pair, clientSpec, hubSettings

OTHER = "192.0.2.12"
THIRD = "192.0.2.13"
V6 = "2001:db8::11"


def initRequest(pair: Pair) -> bytes:
    """
    A fresh IKE_SA_INIT request (new SPIi and nonce) from our in-project initiator; the
    initiator's own SA is forgotten, so only the hub's side is under test.
    """
    d = pair.client.initiate(clientSpec(), (HUB, 500), 500)
    d.addErrback(lambda failure: None)
    [(_, _, _, request)] = pair.net.inFlight
    pair.net.inFlight.clear()
    for sa in list(pair.client.sas.values()):
        pair.client.removeSa(sa, "only the request was wanted")
    return request


def withCookie(request: bytes, cookie: bytes, first: bool = True) -> bytes:
    message = Message.fromBytes(request)
    notify = NotifyPayload(0, NotifyType.COOKIE, b"", cookie)
    if first:
        payloads = (notify, *message.payloads)
    else:
        payloads = (*message.payloads, notify)
    return Message(message.header, payloads).toBytes()


def withoutCookie(request: bytes) -> bytes:
    message = Message.fromBytes(request)
    payloads = tuple(
        p
        for p in message.payloads
        if not (type(p) is NotifyPayload and p.notifyType == NotifyType.COOKIE)
    )
    return Message(message.header, payloads).toBytes()


def withSpi(request: bytes, spiI: bytes) -> bytes:
    message = Message.fromBytes(request)
    return Message(dataclasses.replace(message.header, spiI=spiI), message.payloads).toBytes()


def withNonce(request: bytes, nonce: bytes) -> bytes:
    message = Message.fromBytes(request)
    payloads = tuple(
        NoncePayload(nonce) if type(p) is NoncePayload else p for p in message.payloads
    )
    return Message(message.header, payloads).toBytes()


class Hub:
    """
    A hub endpoint fed IKE_SA_INIT requests from any address; each answer is classified.
    """

    def __init__(self, **settings) -> None:
        self.pair = Pair(settings=hubSettings(**settings))
        self.hub = self.pair.hub

    def send(self, request: bytes, host: str = CLIENT, port: int = 500) -> list[bytes]:
        """The hub's answers to C{request} from C{host}."""
        self.pair.net.inFlight.clear()
        self.pair.net.inject(HUB, request, (host, port))
        answers = [d for source, _, _, d in self.pair.net.inFlight if source == HUB]
        self.pair.net.inFlight.clear()
        return answers

    def request(self) -> bytes:
        return initRequest(self.pair)

    def open(self, host: str = CLIENT) -> bytes:
        """Make one half-open SA from C{host}; returns its request."""
        request = self.request()
        [answer] = self.send(request, host)
        assert isAccepted(answer), Message.fromBytes(answer).payloads
        return request

    def cookieFor(self, request: bytes, host: str = CLIENT) -> bytes:
        """The COOKIE the hub answers C{request} from C{host} with."""
        [answer] = self.send(request, host)
        cookie = challenge(answer)
        assert cookie is not None, Message.fromBytes(answer).payloads
        return cookie


def challenge(answer: bytes) -> bytes | None:
    """The cookie of a COOKIE answer (which carries only that notify), else None."""
    message = Message.fromBytes(answer)
    if message.header.spiR != b"\x00" * 8 or len(message.payloads) != 1:
        return None
    [payload] = message.payloads
    if type(payload) is NotifyPayload and payload.notifyType == NotifyType.COOKIE:
        return payload.data
    return None


def isAccepted(answer: bytes) -> bool:
    """Whether the hub answered with its own SA, KE and nonce (a half-open SA exists)."""
    message = Message.fromBytes(answer)
    return any(type(p) is SAPayload for p in message.payloads)


class GlobalThresholdTests(SynchronousTestCase):
    def test_aboveTheGlobalThresholdEveryoneIsChallenged(self):
        """
        With cookie_threshold half-open SAs, a request from an address that has none is
        answered with a COOKIE and nothing is kept for it.
        """
        h = Hub(cookieThreshold=3)
        for host in (CLIENT, OTHER, THIRD):
            h.open(host)
        before = dict(h.hub.sas)
        cookie = h.cookieFor(h.request(), "192.0.2.14")
        self.assertEqual(len(cookie), COOKIE_LENGTH)
        self.assertEqual(h.hub.sas, before)
        self.assertEqual(len(h.hub.halfOpen), 3)
        self.assertNotIn("192.0.2.14", h.hub.halfOpenBySource)
        self.assertEqual(h.hub.counters["sent_cookie"], 1)
        self.assertEqual(h.hub.counters["cookie_missing"], 1)

    def test_belowTheThresholdACookieIsNotNeeded(self):
        h = Hub(cookieThreshold=3)
        h.open(CLIENT)
        h.open(OTHER)
        self.assertEqual(h.hub.counters["sent_cookie"], 0)

    def test_theRetryWithTheCookieIsAccepted(self):
        h = Hub(cookieThreshold=0)
        request = h.request()
        cookie = h.cookieFor(request)
        [answer] = h.send(withCookie(request, cookie))
        self.assertTrue(isAccepted(answer))
        self.assertEqual(h.hub.counters["cookie_accepted"], 1)
        self.assertEqual(h.hub.halfOpenBySource, {CLIENT: 1})

    def test_initiatorFollowsTheCookieAndEstablishes(self):
        """Our own initiator against a hub demanding cookies from everybody."""
        pair = Pair(settings=hubSettings(cookieThresholdPerSource=0))
        [sa], failures = pair.connect()
        self.assertEqual(failures, [])
        self.assertIs(sa.state, IKEState.ESTABLISHED)
        self.assertEqual(pair.hub.counters["sent_cookie"], 1)
        self.assertEqual(pair.hub.counters["cookie_accepted"], 1)
        self.assertEqual(pair.hub.halfOpenBySource, {})


class PerSourceThresholdTests(SynchronousTestCase):
    def test_aBusySourceIsChallengedWhileAnotherIsNot(self):
        """
        An address holding cookie_threshold_per_source half-open SAs must return cookies even
        though the hub as a whole is far below its global threshold; another address is not
        challenged.
        """
        h = Hub(cookieThreshold=1000, cookieThresholdPerSource=2, blockThreshold=10)
        h.open(CLIENT)
        h.open(CLIENT)
        request = h.request()
        cookie = h.cookieFor(request, CLIENT)
        self.assertEqual(h.hub.halfOpenBySource, {CLIENT: 2})
        h.open(OTHER)
        self.assertEqual(h.hub.counters["sent_cookie"], 1)
        # The busy address proves it receives there, and gets its SA.
        [answer] = h.send(withCookie(request, cookie), CLIENT)
        self.assertTrue(isAccepted(answer))
        self.assertEqual(h.hub.halfOpenBySource, {CLIENT: 3, OTHER: 1})

    def test_portsOfOneAddressCountTogether(self):
        """Many clients behind one NAT share an address: the tally is per address, not port."""
        h = Hub(cookieThresholdPerSource=2, blockThreshold=10)
        [a] = h.send(h.request(), CLIENT, 500)
        [b] = h.send(h.request(), CLIENT, 40001)
        self.assertTrue(isAccepted(a) and isAccepted(b))
        [c] = h.send(h.request(), CLIENT, 40002)
        self.assertIsNotNone(challenge(c))

    def test_ipv6Sources(self):
        h = Hub(cookieThresholdPerSource=0)
        request = h.request()
        cookie = h.cookieFor(request, V6)
        [answer] = h.send(withCookie(request, cookie), V6)
        self.assertTrue(isAccepted(answer))
        self.assertEqual(h.hub.halfOpenBySource, {V6: 1})


class BlockThresholdTests(SynchronousTestCase):
    def test_aboveTheBlockThresholdRequestsAreDroppedAndCounted(self):
        """
        An address holding block_threshold half-open SAs is not answered at all, even with a
        valid cookie; nothing is kept, the drop is counted, and another address is served.
        """
        h = Hub(cookieThresholdPerSource=1, blockThreshold=2)
        h.open(CLIENT)
        request = h.request()
        cookie = h.cookieFor(request)
        [answer] = h.send(withCookie(request, cookie))
        self.assertTrue(isAccepted(answer))
        self.assertEqual(h.hub.halfOpenBySource, {CLIENT: 2})
        sas = dict(h.hub.sas)

        blocked = h.request()
        self.assertEqual(h.send(blocked), [])
        message = Message.fromBytes(blocked)
        valid = h.hub.cookies.make(message.payloads[2].nonce, CLIENT, message.header.spiI)
        self.assertEqual(h.send(withCookie(blocked, valid)), [])
        self.assertEqual(h.hub.counters["drop_blocked_source"], 2)
        self.assertEqual(h.hub.sas, sas)
        self.assertEqual(h.hub.halfOpenBySource, {CLIENT: 2})
        h.open(OTHER)

    def test_retransmissionsOfABlockedSourcesSasAreStillAnswered(self):
        """The block is for new SAs: a retransmitted request for an existing one is answered."""
        h = Hub(cookieThresholdPerSource=0, blockThreshold=1)
        request = h.request()
        retry = withCookie(request, h.cookieFor(request))
        [first] = h.send(retry)
        [again] = h.send(retry)
        self.assertEqual(first, again)
        self.assertEqual(h.hub.counters["retransmitted_request"], 1)
        self.assertEqual(h.hub.counters["drop_blocked_source"], 0)

    def test_theBlockLiftsWhenHalfOpenSasExpire(self):
        h = Hub(cookieThresholdPerSource=1, blockThreshold=2, halfOpenTimeout=30.0)
        h.open(CLIENT)
        request = h.request()
        h.send(withCookie(request, h.cookieFor(request)))
        self.assertEqual(h.send(h.request()), [])
        h.pair.clock.advance(32)
        self.assertEqual(h.hub.halfOpenBySource, {})
        self.assertEqual(h.hub.counters["half_open_expired"], 2)
        h.open(CLIENT)


class CountingTests(SynchronousTestCase):
    def test_countsGoDownWhenHalfOpenSasComplete(self):
        pair = Pair()
        [sa], failures = pair.connect()
        self.assertEqual(failures, [])
        self.assertEqual(pair.hub.halfOpen, {})
        self.assertEqual(pair.hub.halfOpenBySource, {})
        self.assertEqual(len(pair.hub.sas), 1)

    def test_countsGoDownWhenHalfOpenSasExpire(self):
        h = Hub()
        h.open(CLIENT)
        h.open(CLIENT)
        h.open(OTHER)
        self.assertEqual(h.hub.halfOpenBySource, {CLIENT: 2, OTHER: 1})
        h.pair.clock.advance(32)
        self.assertEqual(h.hub.halfOpen, {})
        self.assertEqual(h.hub.halfOpenBySource, {})
        self.assertEqual(h.hub.sas, {})

    def test_countsGoDownWhenAuthenticationFails(self):
        from tests.ikepump import PSK

        pair = Pair()
        _, [failure] = pair.connect(clientSpec(psk=PSK + b"-wrong"))
        self.assertEqual(failure.value.notifyType, NotifyType.AUTHENTICATION_FAILED)
        self.assertEqual(pair.hub.halfOpenBySource, {})

    def test_countsStayRightWhenAnEstablishedSaIsRemoved(self):
        """Removing an SA that is no longer half-open must not take from its address's tally."""
        pair = Pair()
        [sa], _ = pair.connect()
        h = pair.hub
        request = initRequest(pair)
        pair.net.inject(HUB, request, (CLIENT, 500))
        pair.net.inFlight.clear()
        self.assertEqual(h.halfOpenBySource, {CLIENT: 1})
        [established] = [s for s in h.sas.values() if s.state is IKEState.ESTABLISHED]
        h.removeSa(established, "test")
        h.removeSa(established, "test, twice")
        self.assertEqual(h.halfOpenBySource, {CLIENT: 1})


class CookieBindingTests(SynchronousTestCase):
    """
    A cookie is good only for the request it was made for; anything else is refused with a
    fresh COOKIE, and nothing is kept.
    """

    def setUp(self):
        self.h = Hub(cookieThreshold=0)
        self.request = self.h.request()
        self.cookie = self.h.cookieFor(self.request)

    def assertRefused(self, datagram, host=CLIENT):
        [answer] = self.h.send(datagram, host)
        fresh = challenge(answer)
        self.assertIsNotNone(fresh, Message.fromBytes(answer).payloads)
        self.assertEqual(self.h.hub.sas, {})
        self.assertEqual(self.h.hub.halfOpen, {})
        self.assertEqual(self.h.hub.halfOpenBySource, {})
        return fresh

    def test_fromAnotherAddress(self):
        fresh = self.assertRefused(withCookie(self.request, self.cookie), OTHER)
        self.assertNotEqual(fresh, self.cookie)
        self.assertEqual(self.h.hub.counters["cookie_refused"], 1)

    def test_fromAnotherPortOfTheSameAddressIsAccepted(self):
        """RFC 7296 binds the cookie to IPi: a NAT may move the port between the two tries."""
        [answer] = self.h.send(withCookie(self.request, self.cookie), CLIENT, 4500)
        self.assertTrue(isAccepted(answer))

    def test_withAnotherSpi(self):
        self.assertRefused(withSpi(withCookie(self.request, self.cookie), os.urandom(8)))

    def test_withAnotherNonce(self):
        self.assertRefused(withNonce(withCookie(self.request, self.cookie), os.urandom(32)))

    def test_forAnotherRequest(self):
        other = self.h.request()
        self.assertRefused(withCookie(other, self.cookie))

    def test_cookieNotTheFirstPayload(self):
        self.assertRefused(withCookie(self.request, self.cookie, first=False))
        self.assertEqual(self.h.hub.counters["cookie_missing"], 2)

    def test_tamperedCookie(self):
        tampered = self.cookie[:-1] + bytes([self.cookie[-1] ^ 1])
        self.assertRefused(withCookie(self.request, tampered))

    def test_otherVersionByte(self):
        self.assertRefused(withCookie(self.request, bytes([7]) + self.cookie[1:]))

    def test_peerCookieLengths(self):
        """
        Cookies of any length a peer may send (1..64 bytes, and the forbidden 0 and 65) are
        refused with a fresh cookie, never an error.
        """
        for length in (0, 1, 16, COOKIE_LENGTH - 1, COOKIE_LENGTH + 1, 64, 65, 300):
            self.assertRefused(withCookie(self.request, os.urandom(length)))
        self.assertEqual(self.h.hub.counters["internal_error"], 0)

    def test_theRightCookieIsAccepted(self):
        [answer] = self.h.send(withCookie(self.request, self.cookie))
        self.assertTrue(isAccepted(answer))

    def test_aCookieIsIgnoredWhenNoneIsDemanded(self):
        """Below every threshold, a request carrying a cookie (even a bad one) is served."""
        h = Hub()
        [answer] = h.send(withCookie(h.request(), b"\x00" * COOKIE_LENGTH))
        self.assertTrue(isAccepted(answer))
        self.assertEqual(h.hub.counters["sent_cookie"], 0)


class RotationTests(SynchronousTestCase):
    def test_previousSecretHonouredForOnePeriodThenRefused(self):
        """
        A cookie made just before a rotation is still accepted during the next period, and
        refused once a second rotation has passed.
        """
        h = Hub(cookieThreshold=0)
        request = h.request()
        cookie = h.cookieFor(request)
        h.pair.clock.advance(SECRET_PERIOD)
        fresh = h.cookieFor(h.request())
        self.assertNotEqual(fresh[0], cookie[0], "a new secret (version) after one period")
        [answer] = h.send(withCookie(request, cookie))
        self.assertTrue(isAccepted(answer))

        h2 = Hub(cookieThreshold=0)
        request = h2.request()
        cookie = h2.cookieFor(request)
        h2.pair.clock.advance(SECRET_PERIOD)
        h2.cookieFor(h2.request())  # the rotation happens
        h2.pair.clock.advance(SECRET_PERIOD)
        [answer] = h2.send(withCookie(request, cookie))
        self.assertIsNotNone(challenge(answer))
        self.assertEqual(h2.hub.counters["cookie_refused"], 1)

    def test_aLongSilenceExpiresBothSecrets(self):
        """
        With no cookie traffic for two periods, the secret a cookie was made with is not
        "previous" by one rotation only: it is gone.
        """
        clock = Clock()
        jar = CookieJar(clock, period=10)
        nonce, spi = os.urandom(32), os.urandom(8)
        cookie = jar.make(nonce, CLIENT, spi)
        clock.advance(25)
        self.assertFalse(jar.check(cookie, nonce, CLIENT, spi))

    def test_jarWithinAndAcrossPeriods(self):
        clock = Clock()
        jar = CookieJar(clock, period=10)
        nonce, spi = os.urandom(32), os.urandom(8)
        cookie = jar.make(nonce, CLIENT, spi)
        self.assertTrue(jar.check(cookie, nonce, CLIENT, spi))
        clock.advance(9.9)
        self.assertTrue(jar.check(cookie, nonce, CLIENT, spi))
        clock.advance(0.1)  # the second period: the secret is the previous one
        self.assertTrue(jar.check(cookie, nonce, CLIENT, spi))
        self.assertNotEqual(jar.make(nonce, CLIENT, spi), cookie)
        clock.advance(10)  # the third: it has expired
        self.assertFalse(jar.check(cookie, nonce, CLIENT, spi))

    def test_versionByteWrapsAround(self):
        clock = Clock()
        jar = CookieJar(clock, period=1)
        nonce, spi = os.urandom(32), os.urandom(8)
        for _ in range(300):
            cookie = jar.make(nonce, CLIENT, spi)
            clock.advance(1)
            self.assertTrue(jar.check(cookie, nonce, CLIENT, spi))


class InitiatorCookieTests(SynchronousTestCase):
    """Our initiator (site-to-site, the load generator) against a responder's cookies."""

    def answerWithCookie(self, pair, cookie: bytes) -> None:
        [(_, _, _, request)] = pair.net.inFlight
        pair.net.inFlight.clear()
        header = IKEHeader.fromBytes(request)
        answer = Message(
            dataclasses.replace(header, flags=0x20, spiR=b"\x00" * 8),
            (NotifyPayload(0, NotifyType.COOKIE, b"", cookie),),
        ).toBytes()
        pair.client.datagramReceived(answer, (HUB, 500), 500)

    def test_echoesCookiesOfEveryAllowedLength(self):
        for length in (1, 17, 64):
            pair = Pair()
            d = pair.client.initiate(clientSpec(), (HUB, 500), 500)
            d.addErrback(lambda failure: None)
            cookie = os.urandom(length)
            self.answerWithCookie(pair, cookie)
            [(_, _, _, retry)] = pair.net.inFlight
            first = Message.fromBytes(retry).payloads[0]
            self.assertEqual((first.notifyType, first.data), (NotifyType.COOKIE, cookie))

    def test_refusesCookiesOfForbiddenLengths(self):
        for length in (0, 65):
            pair = Pair()
            failures = []
            pair.client.initiate(clientSpec(), (HUB, 500), 500).addErrback(failures.append)
            self.answerWithCookie(pair, os.urandom(length))
            self.assertEqual(len(failures), 1, length)
            self.assertEqual(pair.client.sas, {})

    def test_givesUpOnEndlessCookies(self):
        pair = Pair()
        failures = []
        pair.client.initiate(clientSpec(), (HUB, 500), 500).addErrback(failures.append)
        for _ in range(4):
            self.answerWithCookie(pair, os.urandom(17))
            if failures:
                break
        self.assertEqual(len(failures), 1)
        self.assertIn("keeps asking", str(failures[0].value))
        self.assertEqual(pair.client.sas, {})

    def test_sameSpiAndNonceOnTheRetry(self):
        """
        RFC 7296 section 2.6: the retry carries the same SPI, SA, KE and nonce, the cookie in
        front (the NAT detection hashes differ: ours is random on purpose).
        """
        pair = Pair()
        pair.client.initiate(clientSpec(), (HUB, 500), 500).addErrback(lambda f: None)
        [(_, _, _, request)] = pair.net.inFlight
        self.answerWithCookie(pair, b"c" * 17)
        [(_, _, _, retry)] = pair.net.inFlight
        before, after = Message.fromBytes(request), Message.fromBytes(withoutCookie(retry))
        self.assertEqual(after.header.exchangeType, ExchangeType.IKE_SA_INIT)
        self.assertEqual(after.header.spiI, before.header.spiI)
        self.assertEqual(after.payloads[:3], before.payloads[:3])
        self.assertIs(type(after.payloads[2]), NoncePayload)


class RestartTests(SynchronousTestCase):
    """What a peer meets when the hub restarts under it, and while the hub stops."""

    def test_aRestartedHubAnswersTheOldIkeSaWithInvalidIkeSpi(self):
        """
        RFC 7296 section 2.21.4: a protected request for an IKE SA the (new) hub never had is
        answered outside any SA: INVALID_IKE_SPI, the request's SPIs and message ID, response
        flag, nothing kept.
        """
        from ikehub.ike.endpoint import IKEEndpoint

        pair = Pair()
        [sa], _ = pair.connect()
        old = pair.hub
        fresh = IKEEndpoint(old.settings, old.pad, old.sad, pair.clock, pair.net.sender(HUB))
        pair.net.attach(HUB, fresh)
        dpd = sa.seal(ExchangeType.INFORMATIONAL, sa.nextRequestId, [], response=False)
        pair.net.inFlight.clear()
        pair.net.inject(HUB, dpd, (CLIENT, 4500), 4500)
        [(_, _, _, answer)] = pair.net.inFlight
        message = Message.fromBytes(answer)
        self.assertEqual((message.header.spiI, message.header.spiR), (sa.spiI, sa.spiR))
        self.assertTrue(message.header.isResponse)
        self.assertEqual(message.header.messageId, sa.nextRequestId)
        [notify] = message.payloads
        self.assertEqual(notify.notifyType, NotifyType.INVALID_IKE_SPI)
        self.assertEqual(fresh.counters["sent_invalid_ike_spi"], 1)
        self.assertEqual(fresh.sas, {})

    def test_aStoppingHubTakesNoNewIkeSas(self):
        """
        Once shutdown has begun, IKE_SA_INIT is dropped (counted) instead of answered: a
        client told of the Delete retransmits it until the restarted hub hears it.
        """
        h = Hub()
        h.hub.shutdown()
        self.assertEqual(h.send(h.request()), [])
        self.assertEqual(h.hub.counters["drop_shutting_down"], 1)
        self.assertEqual(h.hub.sas, {})
        self.assertEqual(h.hub.halfOpenBySource, {})


class InvalidSpiTests(SynchronousTestCase):
    """
    RFC 7296 section 1.5: ESP for an SPI we do not have, from the address of a peer with an
    established IKE SA, is answered with INVALID_SPI in an INFORMATIONAL request on that SA.
    """

    SPI = b"\xde\xad\xbe\xef"

    def setUp(self):
        self.pair = Pair()
        [self.clientSa], _ = self.pair.connect()
        self.hub = self.pair.hub
        [self.hubSa] = self.hub.sas.values()
        self.pair.net.log.clear()

    def notifiesSent(self):
        """The notifies of every INFORMATIONAL request the hub sent, decrypted by the client."""
        found = []
        for source, _, _, datagram in self.pair.net.log:
            header = IKEHeader.fromBytes(datagram)
            if source != HUB or header.exchangeType != ExchangeType.INFORMATIONAL:
                continue
            if header.isResponse:
                continue
            message = Message.fromBytes(datagram, header)
            found.append(list(self.clientSa.skIn.unprotect(datagram, message)))
        return found

    def test_theIkeSaFromThatAddressCarriesInvalidSpi(self):
        self.hub.espUnknownSpi(self.SPI, self.hubSa.peer)
        self.pair.net.pump()
        [[notify]] = self.notifiesSent()
        self.assertEqual(notify.notifyType, NotifyType.INVALID_SPI)
        self.assertEqual((notify.protocolId, notify.spi, notify.data), (0, b"", self.SPI))
        self.assertEqual(self.hub.counters["sent_invalid_spi"], 1)
        # The peer answered, the IKE SA stands and has nothing outstanding.
        self.assertIsNone(self.hubSa.pending)
        self.assertIs(self.hubSa.state, IKEState.ESTABLISHED)

    def test_oncePerIntervalPerIkeSa(self):
        from ikehub.ike.endpoint import INVALID_SPI_INTERVAL

        for _ in range(5):
            self.hub.espUnknownSpi(self.SPI, self.hubSa.peer)
            self.pair.net.pump()
        self.assertEqual(len(self.notifiesSent()), 1)
        self.assertEqual(self.hub.counters["invalid_spi_rate_limited"], 4)
        self.pair.clock.advance(INVALID_SPI_INTERVAL)
        self.hub.espUnknownSpi(self.SPI, self.hubSa.peer)
        self.pair.net.pump()
        self.assertEqual(len(self.notifiesSent()), 2)

    def test_otherAddressesAndPortsGetNothing(self):
        """
        No IKE SA with that (address, port), no notify: behind one NAT address, another
        port is another peer.
        """
        host, port = self.hubSa.peer
        for peer in ((host, port + 1), (OTHER, port)):
            self.hub.espUnknownSpi(self.SPI, peer)
        self.assertEqual(self.notifiesSent(), [])
        self.assertEqual(self.hub.counters["sent_invalid_spi"], 0)

    def test_notBehindAnOutstandingRequest(self):
        """While a request of ours is outstanding (a Delete, say), nothing is queued."""
        self.pair.net.dropIf = lambda host, peer, d: host == HUB
        self.hub.espUnknownSpi(self.SPI, self.hubSa.peer)
        self.pair.clock.advance(100)  # past the interval; the first request still waits
        self.hub.espUnknownSpi(self.SPI, self.hubSa.peer)
        self.assertEqual(self.hub.counters["sent_invalid_spi"], 1)
        self.assertIsNone(self.hubSa.queued)

    def test_theIndexFollowsTheSa(self):
        """A NAT mapping that moves takes the index along; a removed SA leaves it."""
        old = self.hubSa.peer
        self.assertIs(self.hub.byPeer[old], self.hubSa)
        self.hub.movePeer(self.hubSa, (OTHER, 40000), 4500)
        self.assertEqual(self.hub.byPeer, {(OTHER, 40000): self.hubSa})
        self.hub.removeSa(self.hubSa, "test")
        self.assertEqual(self.hub.byPeer, {})
        self.hub.espUnknownSpi(self.SPI, (OTHER, 40000))
        self.assertEqual(self.hub.counters["sent_invalid_spi"], 0)

    def test_aHalfOpenSaIsNotIndexed(self):
        h = Hub()
        h.open(OTHER)
        self.assertEqual(h.hub.byPeer, {})
