"""
The IKE SA machine end to end in memory: an initiator and a responder endpoint exchange datagrams
on a task.Clock, including loss, retransmission, cookies, INVALID_KE and every error notify.
"""

import ipaddress

from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from ikehub.ike.initiator import IKEFailure
from ikehub.ike.sa import IKEState
from ikehub.policy.identities import parseIdentityPattern
from ikehub.policy.pad import PAD, PADEntry
from ikehub.wire.constants import ExchangeType, NotifyType
from ikehub.wire.header import IKEHeader
from ikehub.wire.identity import Identity
from ikehub.wire.message import Message
from ikehub.wire.payloads import NotifyPayload

from tests.ikepump import (
    CLIENT,
    HUB,
    Pair,
    clientSpec,
    espProposals,
    hubSettings,
    ikeProposals,
    makePool,
    padWith,
)


def exchangesSent(net, host, exchangeType, response=None):
    found = []
    for source, _, _, datagram in net.log:
        if source != host:
            continue
        header = IKEHeader.fromBytes(datagram)
        if header.exchangeType == exchangeType and (
            response is None or header.isResponse == response
        ):
            found.append(datagram)
    return found


class EstablishTests(SynchronousTestCase):
    def test_pskEstablishesIkeAndChildSa(self):
        """
        A PSK initiator and the hub agree on an IKE SA and a CHILD SA whose keys mirror each other,
        and the initiator gets the first address of the pool.
        """
        pair = Pair()
        results, failures = pair.connect()
        self.assertEqual(failures, [])
        [clientSa] = results
        self.assertIs(clientSa.state, IKEState.ESTABLISHED)
        hubSa = pair.hub.sas[clientSa.spiR]
        self.assertIs(hubSa.state, IKEState.ESTABLISHED)
        self.assertEqual(hubSa.peerIdentity, Identity.fromString("alice@example.com"))
        self.assertEqual(clientSa.peerIdentity, Identity.fromString("hub.example.com"))
        [hubChild] = hubSa.children
        [clientChild] = clientSa.children
        self.assertEqual(hubChild.inboundSpi, clientChild.outboundSpi)
        self.assertEqual(hubChild.outboundSpi, clientChild.inboundSpi)
        self.assertEqual(hubChild.encrIn, clientChild.encrOut)
        self.assertEqual(hubChild.encrOut, clientChild.encrIn)
        self.assertNotEqual(hubChild.encrIn, hubChild.encrOut)
        self.assertIs(pair.hubSad.lookup(hubChild.inboundSpi).child, hubChild)
        vip = ipaddress.ip_address("198.51.100.10")
        self.assertEqual([a for _, a in clientSa.virtualIps], [vip])
        self.assertEqual([str(ts) for ts in hubChild.remoteTs], ["198.51.100.10/32"])
        self.assertEqual([str(ts) for ts in hubChild.localTs], ["203.0.113.0/24"])
        self.assertEqual(pair.hub.halfOpen, {})
        self.assertEqual(hubSa.initRequest, b"")

    def test_clientFloatsToNattPort(self):
        """
        The hub reports a NAT, so the initiator moves to port 4500 before IKE_AUTH (RFC 7296 2.23).
        """
        pair = Pair()
        [clientSa], _ = pair.connect()
        self.assertEqual(clientSa.peer, (HUB, 4500))
        hubSa = pair.hub.sas[clientSa.spiR]
        self.assertEqual(hubSa.peer, (CLIENT, 4500))
        self.assertEqual(hubSa.path, 4500)

    def test_secondClientGetsAnotherAddress(self):
        pair = Pair()
        [first], _ = pair.connect()
        [second], _ = pair.connect()
        self.assertNotEqual(first.virtualIps[0][1], second.virtualIps[0][1])

    def test_eachProposalFamilyWorks(self):
        """
        CBC+HMAC with MODP-2048, GCM with ECP-256 and ChaCha20-Poly1305 with X25519 all establish.
        """
        for ike, esp in [
            ("aes256-sha256-modp2048", "aes256-sha256"),
            ("aes128gcm16-prfsha256-ecp256", "aes128gcm16"),
            ("chacha20poly1305-prfsha256-x25519", "chacha20poly1305"),
        ]:
            settings = hubSettings(ikeProposals=ikeProposals(ike), espProposals=espProposals(esp))
            pair = Pair(settings=settings)
            results, failures = pair.connect(
                clientSpec(ikeProposals=ikeProposals(ike), espProposals=espProposals(esp))
            )
            self.assertEqual(failures, [], ike)
            self.assertEqual(len(results[0].children), 1, ike)


class NegotiationTests(SynchronousTestCase):
    def test_invalidKeRoundTrip(self):
        """
        A client guessing a group the hub ranks lower is told the preferred one and retries.
        """
        pair = Pair()
        spec = clientSpec(ikeProposals=ikeProposals("aes256gcm16-prfsha384-ecp256-x25519"))
        [sa], failures = pair.connect(spec)
        self.assertEqual(failures, [])
        self.assertEqual(sa.suite.keGroup, 31)
        self.assertEqual(pair.hub.counters["sent_invalid_ke_payload"], 1)
        self.assertEqual(len(exchangesSent(pair.net, CLIENT, ExchangeType.IKE_SA_INIT)), 2)

    def test_cookieRoundTrip(self):
        """
        Above the half-open threshold the hub answers with a COOKIE and keeps nothing; the
        client retries with it and establishes.
        """
        pair = Pair(settings=hubSettings(cookieThreshold=0))
        [sa], failures = pair.connect()
        self.assertEqual(failures, [])
        self.assertIs(sa.state, IKEState.ESTABLISHED)
        self.assertEqual(pair.hub.counters["sent_cookie"], 1)
        firstRequest, secondRequest = exchangesSent(pair.net, CLIENT, ExchangeType.IKE_SA_INIT)
        cookie = Message.fromBytes(secondRequest).payloads[0]
        self.assertEqual(cookie.notifyType, NotifyType.COOKIE)

    def test_forgedCookieIsChallengedAgain(self):
        pair = Pair(settings=hubSettings(cookieThreshold=0))
        pair.client.initiate(clientSpec(), (HUB, 500), 500)
        [request] = [d for h, _, _, d in pair.net.inFlight]
        pair.net.inFlight.clear()
        message = Message.fromBytes(request)
        forged = Message(
            message.header,
            (NotifyPayload(0, NotifyType.COOKIE, b"", b"\x00" * 17),) + message.payloads,
        ).toBytes()
        pair.net.inject(HUB, forged)
        [(_, _, _, answer)] = pair.net.inFlight
        self.assertEqual(Message.fromBytes(answer).payloads[0].notifyType, NotifyType.COOKIE)
        self.assertEqual(pair.hub.sas, {})

    def test_noProposalChosen(self):
        pair = Pair(settings=hubSettings(ikeProposals=ikeProposals("aes256-sha256-modp2048")))
        results, [failure] = pair.connect()
        self.assertEqual(failure.value.notifyType, NotifyType.NO_PROPOSAL_CHOSEN)
        self.assertEqual(pair.hub.sas, {})
        self.assertEqual(pair.client.sas, {})


class AuthenticationTests(SynchronousTestCase):
    def assertRefusedWithoutTrace(self, pair, failures):
        [failure] = failures
        failure.trap(IKEFailure)
        self.assertEqual(failure.value.notifyType, NotifyType.AUTHENTICATION_FAILED)
        self.assertEqual(pair.hub.sas, {})
        self.assertEqual(pair.hub.halfOpen, {})
        self.assertEqual(len(pair.hubSad), 0)
        self.assertEqual(pair.pool.inUse, 0)
        self.assertEqual(pair.client.sas, {})

    def test_wrongPskFails(self):
        pair = Pair()
        _, failures = pair.connect(clientSpec(psk=b"not the right key at all"))
        self.assertRefusedWithoutTrace(pair, failures)

    def test_unknownIdentityFailsTheSameWay(self):
        pair = Pair()
        spec = clientSpec(identity=Identity.fromString("mallory@example.com"))
        _, failures = pair.connect(spec)
        self.assertRefusedWithoutTrace(pair, failures)

    def test_authenticationFailedIsTheOnlyPayload(self):
        """
        RFC 7296 2.21.2: the refusal carries AUTHENTICATION_FAILED and nothing else.
        """
        pair = Pair()
        seen = []
        original = pair.client._authAnswered

        def record(sa, header, payloads, *rest):
            seen.append(payloads)
            return original(sa, header, payloads, *rest)

        pair.client._authAnswered = record
        pair.connect(clientSpec(psk=b"not the right key at all"))
        [[only]] = seen
        self.assertEqual(only.notifyType, NotifyType.AUTHENTICATION_FAILED)

    def test_responderAuthIsVerified(self):
        """
        An initiator whose expected responder identity differs refuses the hub's AUTH.
        """
        pair = Pair()
        spec = clientSpec(remoteIdentity=Identity.fromString("other.example.com"))
        _, [failure] = pair.connect(spec)
        failure.trap(IKEFailure)


class ChildErrorTests(SynchronousTestCase):
    def test_tsUnacceptable(self):
        """
        Selectors outside what the PAD allows cost the CHILD SA but not the IKE SA.
        """
        pair = Pair()
        spec = clientSpec(remoteTs=(ipaddress.ip_network("192.0.2.0/24"),))
        [sa], failures = pair.connect(spec)
        self.assertEqual(failures, [])
        self.assertEqual(sa.children, [])
        self.assertEqual(pair.hub.counters["child_ts_unacceptable"], 1)
        self.assertEqual(len(pair.hubSad), 0)

    def test_childNoProposalChosen(self):
        pair = Pair()
        [sa], _ = pair.connect(clientSpec(espProposals=espProposals("aes128-sha1")))
        self.assertEqual(sa.children, [])
        self.assertEqual(pair.hub.counters["child_no_proposal_chosen"], 1)

    def test_pfsGroupInIkeAuthIsIgnored(self):
        """
        A client listing a PFS group in IKE_AUTH's ESP proposal still gets its first CHILD SA: the
        group only matters for later CREATE_CHILD_SA exchanges (RFC 7296 section 1.2).
        """
        pair = Pair()
        [sa], _ = pair.connect(clientSpec(espProposals=espProposals("aes256gcm16-x25519")))
        self.assertEqual(len(sa.children), 1)

    def test_internalAddressFailureWhenPoolExhausted(self):
        pool = makePool("198.51.100.10-198.51.100.10")
        pair = Pair(pool=pool, pad=padWith(pool))
        [first], _ = pair.connect()
        [second], _ = pair.connect(clientSpec())
        self.assertEqual(len(first.children), 1)
        self.assertEqual(second.children, [])
        self.assertEqual(second.virtualIps, [])
        self.assertEqual(pair.hub.counters["pool_exhausted"], 1)

    def test_staticClientWithoutVirtualIp(self):
        """
        Without a CP request, 'dynamic' means the client's own address.
        """
        pair = Pair()
        spec = clientSpec(requestVirtualIp=False)
        [sa], _ = pair.connect(spec)
        [child] = pair.hub.sas[sa.spiR].children
        self.assertEqual([str(ts) for ts in child.remoteTs], [f"{CLIENT}/32"])


class LossAndRetransmissionTests(SynchronousTestCase):
    def test_lostAuthResponseIsResentFromCache(self):
        pair = Pair()
        dropped = []

        def dropFirstAuthResponse(host, peer, datagram):
            header = IKEHeader.fromBytes(datagram)
            if host == HUB and header.exchangeType == ExchangeType.IKE_AUTH and not dropped:
                dropped.append(datagram)
                return True
            return False

        pair.net.dropIf = dropFirstAuthResponse
        results, failures = pair.connect()
        self.assertEqual(results, [])
        pair.clock.advance(2.0)
        pair.net.pump()
        self.assertEqual(len(results), 1)
        self.assertEqual(pair.hub.counters["retransmitted_request"], 1)
        resent = exchangesSent(pair.net, HUB, ExchangeType.IKE_AUTH, response=True)
        self.assertEqual(resent[0], resent[1])

    def test_lostInitRequestIsRetransmitted(self):
        pair = Pair()
        drops = [True]
        pair.net.dropIf = lambda host, peer, d: host == CLIENT and bool(drops) and drops.pop()
        results, _ = pair.connect()
        self.assertEqual(results, [])
        pair.clock.advance(2.0)
        pair.net.pump()
        self.assertEqual(len(results), 1)

    def test_duplicatedInitRequestGetsTheSameAnswer(self):
        pair = Pair()
        pair.client.initiate(clientSpec(), (HUB, 500), 500)
        [(_, _, _, request)] = pair.net.inFlight
        pair.net.inFlight.clear()
        pair.net.inject(HUB, request)
        pair.net.inject(HUB, request)
        first, second = [d for _, _, _, d in pair.net.inFlight]
        self.assertEqual(first, second)
        self.assertEqual(len(pair.hub.sas), 1)

    def test_unresponsivePeerIsGivenUp(self):
        pair = Pair()
        pair.net.dropIf = lambda host, peer, d: host == HUB
        _, failures = pair.connect()
        for _ in range(10):
            pair.clock.advance(30)
        self.assertEqual(len(failures), 1)
        self.assertEqual(pair.client.sas, {})
        self.assertEqual(pair.client.counters["retransmitted"], 3)

    def test_halfOpenSaExpires(self):
        pair = Pair()
        pair.net.dropIf = lambda host, peer, d: (
            host == CLIENT and IKEHeader.fromBytes(d).exchangeType == ExchangeType.IKE_AUTH
        )
        pair.connect()
        self.assertEqual(len(pair.hub.halfOpen), 1)
        pair.clock.advance(29)
        self.assertEqual(len(pair.hub.halfOpen), 1)
        pair.clock.advance(3)
        self.assertEqual(pair.hub.halfOpen, {})
        self.assertEqual(pair.hub.sas, {})


class DeleteTests(SynchronousTestCase):
    def test_clientDeletesIkeSa(self):
        pair = Pair()
        [sa], _ = pair.connect()
        pair.client.deleteIkeSa(sa)
        pair.net.pump()
        self.assertEqual(pair.hub.sas, {})
        self.assertEqual(pair.client.sas, {})
        self.assertEqual(len(pair.hubSad), 0)
        self.assertEqual(pair.pool.inUse, 0)

    def test_hubShutdownDeletesEverySa(self):
        pair = Pair()
        pair.connect()
        pair.connect()
        done = []
        pair.hub.shutdown().addCallback(done.append)
        pair.net.pump()
        pair.clock.advance(0)
        self.assertEqual(done, [None])
        self.assertEqual(pair.client.sas, {})
        self.assertEqual(pair.hub.sas, {})

    def test_shutdownGivesUpOnSilentPeers(self):
        pair = Pair()
        pair.connect()
        pair.net.dropIf = lambda *a: True
        done = []
        pair.hub.shutdown(timeout=2.0).addCallback(done.append)
        pair.clock.advance(2.0)
        self.assertEqual(done, [None])
        self.assertEqual(pair.hub.sas, {})

    def test_livenessCheckIsAnswered(self):
        pair = Pair()
        [sa], _ = pair.connect()
        answered = []
        pair.client.sendRequest(
            sa, ExchangeType.INFORMATIONAL, [], lambda *args: answered.append(args[2])
        )
        pair.net.pump()
        self.assertEqual(answered, [()])
        self.assertIs(pair.hub.sas[sa.spiR].state, IKEState.ESTABLISHED)

    def test_childDeleteIsAnsweredWithOurSpi(self):
        from ikehub.wire.payloads import DeletePayload

        pair = Pair()
        [sa], _ = pair.connect()
        [child] = sa.children
        answered = []
        pair.client.sendRequest(
            sa,
            ExchangeType.INFORMATIONAL,
            [DeletePayload(3, (child.inboundSpi,))],
            lambda *args: answered.append(args[2]),
        )
        pair.net.pump()
        [[delete]] = answered
        self.assertEqual(delete.spis, (child.outboundSpi,))
        self.assertEqual(len(pair.hubSad), 0)


class RequestQueueTests(SynchronousTestCase):
    def test_requestsWaitForTheOutstandingOne(self):
        """
        Our requests go one at a time (window of one): a second waits for the first answer and
        uses the next message ID.
        """
        pair = Pair()
        [sa], _ = pair.connect()
        answers = []
        for _ in range(3):
            pair.client.sendRequest(
                sa, ExchangeType.INFORMATIONAL, [], lambda *args: answers.append(args[1].messageId)
            )
        self.assertEqual(len(pair.net.inFlight), 1)
        pair.net.pump()
        self.assertEqual(answers, [2, 3, 4])

    def test_hubDeletesAChildSa(self):
        """
        A hard lifetime ends a CHILD SA: the hub stops using it and tells the peer, who removes
        its side; the IKE SA stays.
        """
        pair = Pair()
        [sa], _ = pair.connect()
        hubSa = pair.hub.sas[sa.spiR]
        [child] = hubSa.children
        pair.hub.deleteChildSa(child)
        pair.net.pump()
        self.assertEqual(len(pair.hubSad), 0)
        self.assertEqual(sa.children, [])
        self.assertEqual(len(pair.clientSad), 0)
        self.assertIs(hubSa.state, IKEState.ESTABLISHED)


class PassedOverEntryTests(SynchronousTestCase):
    """
    A peer governed by a later PAD entry than the first: the hub notes an earlier entry whose
    identity pattern took the peer, whatever kind of pattern each earlier entry holds.
    """

    def pairWith(self, first: PADEntry) -> Pair:
        pool = makePool()
        alice = padWith(pool).entries[0]
        pair = Pair(pad=PAD([first, alice]), pool=pool)
        self.events = []
        pair.hub.log = Logger(namespace="test", observer=self.events.append)
        return pair

    def entry(self, identity, **fields) -> PADEntry:
        return PADEntry(
            name="first",
            identity=parseIdentityPattern(identity),
            auth="psk",
            psk=b"another key of at least 16 bytes",
            pool=None,
            localTs=(ipaddress.ip_network("203.0.113.0/24"),),
            remoteTs=("dynamic",),
            **fields,
        )

    def test_addressRangeEntryBeforeTheGoverningOne(self):
        """
        An entry for devices that identify by IP address (Windows: identity "0.0.0.0/0")
        listed first does not stop alice@example.com, whom the second entry governs, from
        establishing (it used to raise AttributeError after AUTH and leave the SA hanging).
        """
        pair = self.pairWith(self.entry("0.0.0.0/0"))
        [sa], failures = pair.connect()
        self.assertEqual(failures, [])
        self.assertIs(pair.hub.sas[sa.spiR].state, IKEState.ESTABLISHED)
        self.assertEqual(pair.hub.counters["internal_error"], 0)
        self.assertNotIn("pad_passed_over", [e.get("event") for e in self.events])

    def test_entryPassedOverForItsRemoteAddrsIsLogged(self):
        """
        An earlier entry whose identity pattern takes the peer but whose remote_addrs exclude
        its address is passed over, and the hub says so.
        """
        first = self.entry("*@example.com", remoteAddrs=(ipaddress.ip_network("198.51.100.0/24"),))
        pair = self.pairWith(first)
        [sa], failures = pair.connect()
        self.assertEqual(failures, [])
        self.assertIs(pair.hub.sas[sa.spiR].state, IKEState.ESTABLISHED)
        [passed] = [e for e in self.events if e.get("event") == "pad_passed_over"]
        self.assertIn("outside remote_addrs", passed["reason"])
