"""
IKE fragmentation (RFC 7383) between our initiator and the hub, in memory on a task.Clock:
negotiation in IKE_SA_INIT; reassembly in order, out of order and with duplicates; forged
fragments dropped while the genuine ones still assemble; the caps (fragment count, size,
timeout) and the RFC's rules for a changed total; fragments that were never negotiated or sit
in IKE_SA_INIT; a Windows-sized IKE_AUTH (626-byte datagrams, more than 16 fragments) and the
hub's own large IKE_AUTH response fragmented both ways; retransmissions of fragmented requests
and responses.
"""

import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.logger import Logger, formatEvent

from ikehub.auth.builtin import PubkeyAuthenticator
from ikehub.auth.certs import TrustStore, certReqHashes
from ikehub.auth.credentials import HubCredentials
from ikehub.auth.registry import AuthRegistry, HubSigner
from ikehub.ike.sa import IKEState
from ikehub.policy.pad import PAD, PADEntry
from ikehub.wire.constants import ExchangeType, HeaderFlag, NotifyType, PayloadType, ProtocolId
from ikehub.wire.header import IKEHeader
from ikehub.wire.identity import Identity
from ikehub.wire.message import Message
from ikehub.wire.payloads import NotifyPayload, SKFPayload
from tests.ikepump import CLIENT, HUB, Pair, clientSpec, hubSettings, makePool
from tests.pki import NOW, dn, issue

HUB_ID = Identity.fromString("hub.example.com")
#: An unknown status notify (ignored by the hub) to make an INFORMATIONAL request large.
_PADDING_NOTIFY = 40000


def bigRequest(size: int):
    return [NotifyPayload(ProtocolId.NONE, _PADDING_NOTIFY, b"", os.urandom(size))]


def header(datagram: bytes) -> IKEHeader:
    return IKEHeader.fromBytes(datagram)


def isFragment(datagram: bytes) -> bool:
    return header(datagram).nextPayload == PayloadType.SKF


def fragmentNumber(datagram: bytes) -> int:
    return Message.fromBytes(datagram).sk.fragmentNumber


def forge(datagram: bytes) -> bytes:
    """The same fragment with one ciphertext byte flipped: its ICV or tag no longer verifies."""
    return datagram[:-20] + bytes((datagram[-20] ^ 0x01,)) + datagram[-19:]


def established(hubOverrides=None, offer=True, clientOverrides=None):
    """
    A hub and our initiator with an IKE SA between them (fragmentation offered by the
    initiator when C{offer}); returns (pair, client SA, hub SA).
    """
    settings = hubSettings(**(hubOverrides or {}))
    clientSettings = hubSettings(
        identity=Identity.fromString("alice@example.com"), **(clientOverrides or {})
    )
    pair = Pair(settings=settings, clientSettings=clientSettings)
    results, failures = pair.connect(clientSpec(fragmentation=offer))
    assert results and not failures, failures
    [hubSa] = pair.hub.sas.values()
    return pair, results[0], hubSa


class Answers:
    """Records the responses to the requests a test sends from the client."""

    def __init__(self):
        self.payloads = []

    def __call__(self, sa, header, payloads, data, peer, path):
        self.payloads.append(payloads)


def sendFragmented(pair, clientSa, size=3000, fragmentSize=400):
    """
    Queue a large INFORMATIONAL request from the client, fragmented at C{fragmentSize}
    bytes, and take its fragments off the network; returns (fragments, answers).
    """
    clientSa.fragmentSize = fragmentSize
    answers = Answers()
    pair.client.sendRequest(clientSa, ExchangeType.INFORMATIONAL, bigRequest(size), answers)
    fragments = [record for record in pair.net.inFlight if record[0] == CLIENT]
    pair.net.inFlight.clear()
    assert len(fragments) > 1 and all(isFragment(r[3]) for r in fragments)
    return fragments, answers


def hubInitNotifies(pair):
    """The notify types of the hub's IKE_SA_INIT response."""
    response = next(r[3] for r in pair.net.log if r[0] == HUB)
    payloads = Message.fromBytes(response).payloads
    return [p.notifyType for p in payloads if type(p) is NotifyPayload]


def deliver(pair, records):
    pair.net.inFlight.extend(records)
    pair.net.pump()


# -- negotiation ------------------------------------------------------------------------------


def test_negotiatedWhenOffered():
    """
    IKEV2_FRAGMENTATION_SUPPORTED offered by the initiator is answered by the hub, and both
    SAs record the largest message they send whole: 1280 - 20 (IPv4) - 8 (UDP) - 4 (marker).
    """
    pair, clientSa, hubSa = established()
    assert (clientSa.fragmentSize, hubSa.fragmentSize) == (1248, 1248)
    notifies = hubInitNotifies(pair)
    assert NotifyType.IKEV2_FRAGMENTATION_SUPPORTED in notifies


@pytest.mark.parametrize("offer, hubAllows", [(False, True), (True, False)])
def test_notNegotiatedUnlessBothWant(offer, hubAllows):
    """Without the initiator's offer, or with fragmentation = false, neither side fragments."""
    pair, clientSa, hubSa = established({"fragmentation": hubAllows}, offer=offer)
    assert (clientSa.fragmentSize, hubSa.fragmentSize) == (0, 0)
    notifies = hubInitNotifies(pair)
    assert NotifyType.IKEV2_FRAGMENTATION_SUPPORTED not in notifies


def test_smallMessagesAreNotFragmented():
    """A negotiated SA still sends what fits as one SK message."""
    pair, clientSa, hubSa = established()
    assert all(not isFragment(r[3]) for r in pair.net.log)
    assert pair.hub.counters["fragmented_messages_sent"] == 0


def test_fragmentSizeCountsTheIpv6Header():
    """An IPv6 peer's fragments leave room for the 40-byte IPv6 header."""
    pair = Pair()
    assert pair.hub.fragmentLimit(("2001:db8::1", 500)) == 1280 - 40 - 8 - 4
    assert pair.hub.fragmentLimit(("192.0.2.11", 4500)) == 1280 - 20 - 8 - 4


def test_fragmentSizeFollowsAMoveToAnotherFamily():
    """
    An SA that moves from IPv4 to IPv6 (MOBIKE allows it) leaves room for the larger IPv6
    header from then on; one that never negotiated fragmentation still does not fragment.
    """
    pair, clientSa, hubSa = established()
    pair.hub.movePeer(hubSa, ("2001:db8::11", 4500), 4500)
    assert hubSa.fragmentSize == 1280 - 40 - 8 - 4
    pair.hub.movePeer(hubSa, ("192.0.2.11", 4500), 4500)
    assert hubSa.fragmentSize == 1280 - 20 - 8 - 4
    pair, clientSa, hubSa = established(offer=False)
    pair.hub.movePeer(hubSa, ("2001:db8::11", 4500), 4500)
    assert hubSa.fragmentSize == 0


# -- reassembly ---------------------------------------------------------------------------------


def test_reassemblyInOrder():
    """A fragmented request is reassembled, answered once, and leaves no state behind."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    assert all(len(r[3]) <= 400 for r in fragments)
    deliver(pair, fragments)
    assert answers.payloads == [()]
    assert pair.hub.counters["fragmented_messages_received"] == 1
    assert pair.hub.counters["fragments_received"] == len(fragments)
    assert hubSa.reassembly is None and len(pair.hub.fragments) == 0
    assert hubSa.nextPeerRequestId == 3


def test_reassemblyOutOfOrder():
    """Fragments arriving last-first still make the request."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    deliver(pair, fragments[::-1])
    assert answers.payloads == [()]
    assert pair.hub.counters["fragmented_messages_received"] == 1


def test_duplicateFragmentsAreDropped():
    """Every fragment but the last arrives twice: the copies are dropped and counted."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    doubled = [r for record in fragments[:-1] for r in (record, record)] + fragments[-1:]
    deliver(pair, doubled)
    assert answers.payloads == [()]
    assert pair.hub.counters["drop_fragment_duplicate"] == len(fragments) - 1
    assert pair.hub.counters["fragments_received"] == len(fragments)


def test_forgedFragmentsAreDroppedAndTheRealOnesStillAssemble():
    """
    A forged copy of every fragment, each before the genuine one (so it would take its
    place if it were stored), and a forged fragment of a number that does not exist: all
    fail verification, are counted, and the genuine fragments still make the request.
    """
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    mixed = []
    for record in fragments:
        mixed.append((record[0], record[1], record[2], forge(record[3])))
        mixed.append(record)
    deliver(pair, mixed)
    assert answers.payloads == [()]
    assert pair.hub.counters["drop_fragment_integrity"] == len(fragments)
    assert pair.hub.counters["fragments_received"] == len(fragments)
    assert hubSa.state is IKEState.ESTABLISHED


def test_forgedFragmentsAloneLeaveNoState():
    """Fragments that fail verification cost no memory: no reassembly is started."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    deliver(pair, [(r[0], r[1], r[2], forge(r[3])) for r in fragments])
    assert pair.hub.counters["drop_fragment_integrity"] == len(fragments)
    assert hubSa.reassembly is None and len(pair.hub.fragments) == 0
    assert answers.payloads == []


def test_tooManyFragmentsAreDropped():
    """A total above the cap (64) is dropped before any decryption or storage."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa, size=40000, fragmentSize=576)
    total = Message.fromBytes(fragments[0][3]).sk.totalFragments
    assert total > 64
    deliver(pair, fragments)
    assert pair.hub.counters["drop_fragment_too_many"] == len(fragments)
    assert pair.hub.counters["drop_fragment_integrity"] == 0
    assert hubSa.reassembly is None and answers.payloads == []


def test_windowsSizedRequestFitsTheCap():
    """More than 16 fragments (Windows at 626 bytes) are fine."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa, size=12000, fragmentSize=594)
    assert len(fragments) > 16
    deliver(pair, fragments)
    assert answers.payloads == [()]


def test_reassembledLogNamesWhereTheFragmentsCameFrom():
    """
    The reassembly's log line names the address and port the fragments came from, not the
    SA's before them: strongSwan sends its fragmented IKE_AUTH from port 4500 to an SA that
    knows it at 500 until that very request is accepted, and a NAT may move a peer's port.
    """
    pair, clientSa, hubSa = established()
    events = []
    pair.hub.log = Logger(observer=events.append)
    fragments, answers = sendFragmented(pair, clientSa)
    moved = [(host, 4501, destination, datagram) for host, _, destination, datagram in fragments]
    assert hubSa.peer == (CLIENT, 4500)
    deliver(pair, moved)
    assert answers.payloads == [()]
    [event] = [e for e in events if e.get("event") == "ike_fragments_reassembled"]
    assert event["peer"] == f"{CLIENT}:4501" and event["fragments"] == len(fragments)
    assert formatEvent(event).startswith(f"Reassembled INFORMATIONAL request 2 from {CLIENT}:4501")


def test_oversizedMessageIsRefusedAndFreed():
    """
    A message whose verified pieces outgrow the byte cap is abandoned: its pieces are freed,
    the rest of its fragments are dropped unread, and it is never answered.
    """
    pair, clientSa, hubSa = established({"fragmentMaxBytes": 1500})
    fragments, answers = sendFragmented(pair, clientSa, size=3000)
    deliver(pair, fragments)
    assert pair.hub.counters["drop_fragment_oversized"] >= 1
    [reassembly] = hubSa.reassembly.values()
    assert reassembly.refused and reassembly.parts == {} and reassembly.size == 0
    assert answers.payloads == []
    assert hubSa.nextPeerRequestId == 2


def test_stalledReassemblyExpires():
    """All fragments but one: the reassembly waits, then the timeout frees it."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    pair.net.dropIf = lambda source, destination, datagram: source == CLIENT
    deliver(pair, fragments[:-1])
    assert hubSa.reassembly is not None and len(pair.hub.fragments) == 1
    pair.clock.advance(19)
    assert len(pair.hub.fragments) == 1
    pair.clock.advance(1.5)
    assert hubSa.reassembly is None and len(pair.hub.fragments) == 0
    assert pair.hub.counters["fragment_reassembly_expired"] == 1
    # The last fragment alone now starts a new reassembly rather than completing a message.
    deliver(pair, fragments[-1:])
    assert answers.payloads == []
    [again] = hubSa.reassembly.values()
    assert list(again.parts) == [len(fragments)]


def test_removingTheSaFreesItsReassembly():
    """A half-reassembled message goes with its IKE SA."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    deliver(pair, fragments[:2])
    assert len(pair.hub.fragments) == 1
    pair.hub.removeSa(hubSa, "test")
    assert hubSa.reassembly is None and len(pair.hub.fragments) == 0
    assert pair.clock.getDelayedCalls() == [] or all(
        call.func != pair.hub.fragments._expire for call in pair.clock.getDelayedCalls()
    )


def test_largerTotalRestartsAndSmallerTotalIsDropped():
    """
    RFC 7383 section 2.6: the sender refragments with smaller fragments (a larger total): what
    was kept is discarded and reassembly starts over; a fragment of the older, smaller total
    is then dropped.
    """
    pair, clientSa, hubSa = established()
    messageHeader = clientSa.header(ExchangeType.INFORMATIONAL, clientSa.nextRequestId, False)
    payloads = bigRequest(3000)
    coarse = clientSa.skOut.protectFragments(messageHeader, payloads, 1200)
    fine = clientSa.skOut.protectFragments(messageHeader, payloads, 500)
    assert len(fine) > len(coarse) > 1
    for datagram in coarse[:-1]:
        pair.net.inject(HUB, datagram)
    for datagram in fine[:-1]:
        pair.net.inject(HUB, datagram)
    assert pair.hub.counters["fragment_reassembly_restarted"] == 1
    pair.net.inject(HUB, coarse[-1])
    assert pair.hub.counters["drop_fragment_stale_total"] == 1
    pair.net.inject(HUB, fine[-1])
    assert pair.hub.counters["fragmented_messages_received"] == 1
    assert hubSa.nextPeerRequestId == 3


def test_unnegotiatedFragmentsAreDropped():
    """Fragments on an SA that did not negotiate fragmentation: dropped, counted, no state."""
    pair, clientSa, hubSa = established(offer=False)
    messageHeader = clientSa.header(ExchangeType.INFORMATIONAL, clientSa.nextRequestId, False)
    fragments = clientSa.skOut.protectFragments(messageHeader, bigRequest(2000), 500)
    for datagram in fragments:
        pair.net.inject(HUB, datagram)
    assert pair.hub.counters["drop_fragment_unnegotiated"] == len(fragments)
    assert hubSa.reassembly is None and hubSa.nextPeerRequestId == 2


def test_fragmentsInIkeSaInitAreDropped():
    """IKE_SA_INIT is never fragmented: an SKF there is dropped and nothing is created."""
    pair = Pair()
    forged = Message(
        IKEHeader(os.urandom(8), bytes(8), 0x20, ExchangeType.IKE_SA_INIT, HeaderFlag.INITIATOR, 0),
        (SKFPayload(PayloadType.SA, 1, 2, os.urandom(64)),),
    ).toBytes()
    pair.net.inject(HUB, forged)
    assert pair.hub.counters["drop_fragment_in_ike_sa_init"] == 1
    assert pair.hub.sas == {} and pair.hub.halfOpen == {}
    assert pair.net.inFlight == []


def test_fragmentOfAnUnknownSaIsAnsweredAsAnyOther():
    """
    An SKF message for an SPI we do not have is an unknown-SPI request like any other: dropped
    and answered with INVALID_IKE_SPI outside any SA (RFC 7296 section 2.21.4).
    """
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    pair.hub.removeSa(hubSa, "test")
    sent = len(pair.net.log)
    deliver(pair, fragments[:1])
    assert pair.hub.counters["drop_unknown_spi"] == 1
    assert pair.hub.counters["sent_invalid_ike_spi"] == 1
    [answer] = [r[3] for r in pair.net.log[sent:] if r[0] == HUB]
    [notify] = Message.fromBytes(answer).payloads
    assert notify.notifyType == NotifyType.INVALID_IKE_SPI


def test_garbageSkfNeverRaises():
    """Truncated and impossible SKF payloads on an established SA are dropped, not raised."""
    pair, clientSa, hubSa = established()
    base = clientSa.header(ExchangeType.INFORMATIONAL, clientSa.nextRequestId, False)
    for skf in (
        SKFPayload(0, 1, 1, b""),
        SKFPayload(0, 2, 3, b"\x00" * 7),
        SKFPayload(PayloadType.NOTIFY, 1, 64, os.urandom(100)),
    ):
        pair.net.inject(HUB, Message(base, (skf,)).toBytes())
    for raw in (b"\x00\x00", b"\x00\x00\x00\x00", b"\x00\x03\x00\x02"):
        datagram = base.toBytesWith(PayloadType.SKF, 28 + 4 + len(raw)) + bytes(
            (0, 0, 0, 4 + len(raw))
        ) + raw
        pair.net.inject(HUB, datagram)
    assert pair.hub.counters["internal_error"] == 0
    assert pair.hub.counters["drop_fragment_integrity"] == 3
    assert pair.hub.counters["drop_malformed"] == 3
    assert hubSa.reassembly is None and hubSa.state is IKEState.ESTABLISHED


# -- retransmission -------------------------------------------------------------------------------


def test_retransmittedFragmentedRequestGetsTheCachedResponseOnce():
    """
    RFC 7383 section 2.6.1: the whole fragmented request again (the peer lost our answer):
    only fragment 1 makes us resend the cached response; the others are ignored.
    """
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    deliver(pair, fragments)
    cached = hubSa.lastResponse
    sent = len(pair.net.log)
    for record in fragments[::-1]:
        pair.net.inject(HUB, record[3], source=(record[0], record[1]), path=record[2][1])
    assert pair.hub.counters["retransmitted_request"] == 1
    assert pair.hub.counters["drop_fragment_retransmission_ignored"] == len(fragments) - 1
    resent = [r[3] for r in pair.net.log[sent:]]
    assert resent == [cached]


def test_forgedFragmentOneOfAnAnsweredRequestIsNotAnswered():
    """A fragment 1 that does not verify never makes us resend."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    deliver(pair, fragments)
    sent = len(pair.net.log)
    pair.net.inject(HUB, forge(fragments[0][3]), source=(CLIENT, fragments[0][1]), path=4500)
    assert pair.hub.counters["drop_fragment_integrity"] == 1
    assert pair.hub.counters["retransmitted_request"] == 0
    assert len(pair.net.log) == sent


def test_refragmentedRetransmissionIsAnsweredAfterVerifying():
    """
    A retransmission fragmented anew (other bytes, same message ID) is recognised by
    verifying its fragment 1, not by its bytes.
    """
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    deliver(pair, fragments)
    messageHeader = clientSa.header(ExchangeType.INFORMATIONAL, clientSa.nextRequestId - 1, False)
    again = clientSa.skOut.protectFragments(messageHeader, bigRequest(3000), 700)
    pair.net.inject(HUB, again[0], source=(CLIENT, fragments[0][1]), path=4500)
    assert pair.hub.counters["retransmitted_request"] == 1


def test_ourFragmentedRequestIsRetransmittedWhole():
    """Unanswered, our fragmented request goes out again: every fragment, same bytes."""
    pair, clientSa, hubSa = established()
    pair.net.dropIf = lambda source, destination, datagram: source == CLIENT
    clientSa.fragmentSize = 400
    pair.client.sendRequest(clientSa, ExchangeType.INFORMATIONAL, bigRequest(3000), Answers())
    first = [r[3] for r in pair.net.log if r[0] == CLIENT and isFragment(r[3])]
    pair.clock.advance(2.0)
    everything = [r[3] for r in pair.net.log if r[0] == CLIENT and isFragment(r[3])]
    assert everything == first + first
    assert pair.client.counters["retransmitted"] == 1


# -- whole exchanges --------------------------------------------------------------------------


class BigPKI:
    """
    ECDSA certificates made large by a long subjectAltName list, so that one IKE_AUTH message
    needs many fragments without generating RSA keys.
    """

    def __init__(self, names: int):
        self.caKey = ec.generate_private_key(ec.SECP256R1())
        self.ca = issue(dn("ikehub test CA"), self.caKey, dn("ikehub test CA"), self.caKey, ca=True)
        filler = [x509.DNSName(f"host{i:04d}.fragments.example.com") for i in range(names)]
        self.hubKey = ec.generate_private_key(ec.SECP256R1())
        self.hubCert = issue(
            dn("hub.example.com"),
            self.hubKey,
            self.ca.subject,
            self.caKey,
            san=[x509.DNSName("hub.example.com"), *filler],
        )
        self.clientKey = ec.generate_private_key(ec.SECP256R1())
        self.clientCert = issue(
            dn("alice"),
            self.clientKey,
            self.ca.subject,
            self.caKey,
            san=[x509.RFC822Name("alice@example.com"), *filler],
        )
        self.trust = TrustStore([self.ca])


def certificatePair(pki, hubFragmentSize=1280, clientFragmentSize=1280):
    """The hub signing with its large certificate, our initiator with its own."""
    pool = makePool()
    entry = PADEntry(
        "roadwarriors",
        Identity.fromString("*@example.com"),
        "pubkey",
        None,
        pool,
        tuple(clientSpec().remoteTs),
        ("dynamic",),
        localAuth="pubkey",
    )
    pair = Pair(
        settings=hubSettings(fragmentSize=hubFragmentSize),
        pad=PAD([entry]),
        pool=pool,
        clientSettings=hubSettings(
            identity=Identity.fromString("alice@example.com"), fragmentSize=clientFragmentSize
        ),
    )
    pair.hub.auth = AuthRegistry(
        {"pubkey": PubkeyAuthenticator(pki.trust)},
        {},
        signer=HubSigner(HubCredentials([pki.hubCert], pki.hubKey)),
        certReqData=certReqHashes(pki.trust),
    )
    pair.hub.prepareResponder()
    pair.clock.advance(NOW.timestamp())
    return pair


def certSpec(pki, **overrides):
    return clientSpec(
        psk=None,
        credentials=HubCredentials([pki.clientCert], pki.clientKey),
        trust=pki.trust,
        remoteIdentity=HUB_ID,
        fragmentation=True,
        **overrides,
    )


def authFragments(pair, host):
    """The IKE_AUTH fragments C{host} sent, as datagrams."""
    return [
        r[3]
        for r in pair.net.log
        if r[0] == host
        and header(r[3]).exchangeType == ExchangeType.IKE_AUTH
        and isFragment(r[3])
    ]


@pytest.fixture(scope="module")
def bigPki():
    return BigPKI(names=300)


def test_windowsSizedIkeAuthEstablishes(bigPki):
    """
    Our initiator sends its IKE_AUTH at 626-byte datagrams, as Windows does: more than 16
    fragments, every one within 626 - 32 bytes; the hub reassembles, verifies the certificate
    and the signature, and the IKE SA and CHILD SA are established on both sides.
    """
    pair = certificatePair(bigPki, clientFragmentSize=626)
    results, failures = pair.connect(certSpec(bigPki))
    assert not failures, failures[0].value
    [clientSa] = results
    assert clientSa.state is IKEState.ESTABLISHED and clientSa.children
    [hubSa] = pair.hub.sas.values()
    assert hubSa.state is IKEState.ESTABLISHED and len(hubSa.children) == 1
    sent = authFragments(pair, CLIENT)
    assert len(sent) > 16 and all(len(d) <= 626 - 32 for d in sent)
    assert sorted(fragmentNumber(d) for d in sent) == list(range(1, len(sent) + 1))
    assert pair.hub.counters["fragmented_messages_received"] == 1
    assert pair.hub.counters["fragments_received"] == len(sent)


def test_hubsLargeIkeAuthResponseIsFragmentedAndReassembled(bigPki):
    """
    The hub's IKE_AUTH response with its large certificate exceeds fragment_size: it goes out
    as SKF fragments, which our initiator reassembles and accepts (it checks the chain and the
    signature inside).
    """
    pair = certificatePair(bigPki, hubFragmentSize=576)
    results, failures = pair.connect(certSpec(bigPki))
    assert not failures, failures[0].value
    assert results[0].state is IKEState.ESTABLISHED
    sent = authFragments(pair, HUB)
    assert len(sent) > 8 and all(len(d) <= 576 - 32 for d in sent)
    assert pair.hub.counters["fragmented_messages_sent"] == 1
    assert pair.client.counters["fragmented_messages_received"] == 1
    [hubSa] = pair.hub.sas.values()
    assert hubSa.lastResponse == tuple(sent)


def test_lostFragmentedIkeAuthResponseIsResentWhole(bigPki):
    """
    The hub's fragmented IKE_AUTH response is lost once: our initiator retransmits its
    fragmented request, the hub resends every fragment of the cached response (once, for
    fragment 1), and the exchange completes.
    """
    pair = certificatePair(bigPki, hubFragmentSize=576, clientFragmentSize=626)
    dropped = []

    def loseFirstResponse(source, destination, datagram):
        if source == HUB and header(datagram).exchangeType == ExchangeType.IKE_AUTH:
            if pair.hub.counters["retransmitted_request"] == 0:
                dropped.append(datagram)
                return True
        return False

    pair.net.dropIf = loseFirstResponse
    results, failures = [], []
    d = pair.client.initiate(certSpec(bigPki), (HUB, 500), 500)
    d.addCallbacks(results.append, failures.append)
    pair.net.pump()
    assert dropped and not results
    pair.clock.advance(2.0)
    pair.net.pump()
    assert not failures, failures[0].value
    assert results and results[0].state is IKEState.ESTABLISHED
    assert pair.hub.counters["retransmitted_request"] == 1
    requestFragments = len(authFragments(pair, CLIENT)) // 2
    assert pair.hub.counters["drop_fragment_retransmission_ignored"] == requestFragments - 1
    assert authFragments(pair, HUB) == dropped + dropped


def test_requestThatCameWholeFreesItsPartialFragments():
    """
    The peer gives up fragmenting and sends the request whole: once it is accepted, the
    fragments of it kept so far are freed at once rather than at the timeout.
    """
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    deliver(pair, fragments[:2])
    assert len(pair.hub.fragments) == 1
    messageHeader = clientSa.header(ExchangeType.INFORMATIONAL, clientSa.nextRequestId - 1, False)
    pair.net.inject(HUB, clientSa.skOut.protect(messageHeader, bigRequest(100)))
    assert hubSa.nextPeerRequestId == 3
    assert hubSa.reassembly is None and len(pair.hub.fragments) == 0


def test_fragmentNumberAndTotalAreCoveredByTheTag():
    """
    RFC 7383 section 2.5: the fragment number and total are inside what the ICV or tag
    covers; a genuine fragment renumbered in transit fails verification.
    """
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    datagram = fragments[1][3]
    # Fragment number (offset 32) 2 -> 3, total (offset 34) unchanged, and the reverse.
    renumbered = datagram[:32] + (3).to_bytes(2, "big") + datagram[34:]
    total = Message.fromBytes(datagram).sk.totalFragments
    retotaled = datagram[:34] + (total + 1).to_bytes(2, "big") + datagram[36:]
    pair.net.inject(HUB, renumbered, source=(CLIENT, 4500), path=4500)
    pair.net.inject(HUB, retotaled, source=(CLIENT, 4500), path=4500)
    assert pair.hub.counters["drop_fragment_integrity"] == 2
    assert hubSa.reassembly is None
    deliver(pair, fragments)
    assert answers.payloads == [()]


def test_cbcWithHmacFragmentsToo():
    """AES-CBC with HMAC (encrypt-then-MAC, block padding per fragment) reassembles as well."""
    from tests.ikepump import ikeProposals

    settings = hubSettings()
    pair = Pair(settings=settings)
    spec = clientSpec(fragmentation=True, ikeProposals=ikeProposals("aes256-sha256-modp2048"))
    results, failures = pair.connect(spec)
    assert results and not failures
    [clientSa] = results
    [hubSa] = pair.hub.sas.values()
    assert not clientSa.suite.encr.isAead
    fragments, answers = sendFragmented(pair, clientSa)
    assert all(len(r[3]) <= 400 for r in fragments)
    deliver(pair, fragments[::-1])
    assert answers.payloads == [()]
    assert pair.hub.counters["fragmented_messages_received"] == 1


def test_allReassembliesShareOneMemoryBudget():
    """
    Beyond fragmentMaxTotalBytes held by all reassemblies together, verified fragments are
    dropped (fragment_memory) instead of kept; once the holder finishes, the budget is back.
    """
    pair, clientSa, hubSa = established({"fragmentMaxTotalBytes": 1000})
    fragments, answers = sendFragmented(pair, clientSa, size=3000)
    deliver(pair, fragments)
    assert pair.hub.counters["drop_fragment_memory"] >= 1
    assert pair.hub.fragments.bytesHeld <= 1000
    assert answers.payloads == []
    pair.hub.removeSa(hubSa, "test")
    assert pair.hub.fragments.bytesHeld == 0 and len(pair.hub.fragments) == 0


def test_bytesHeldReturnsToZero():
    """Completed, refused and expired reassemblies all give their bytes back."""
    pair, clientSa, hubSa = established({"fragmentMaxBytes": 1500})
    fragments, answers = sendFragmented(pair, clientSa, size=1000)
    deliver(pair, fragments)
    assert answers.payloads == [()] and pair.hub.fragments.bytesHeld == 0
    fragments, answers = sendFragmented(pair, clientSa, size=3000)
    deliver(pair, fragments[:2])
    assert pair.hub.fragments.bytesHeld > 0
    deliver(pair, fragments[2:])
    assert pair.hub.counters["drop_fragment_oversized"] >= 1
    assert pair.hub.fragments.bytesHeld == 0 and len(pair.hub.fragments) == 1
    pair.net.dropIf = lambda source, destination, datagram: True
    pair.clock.advance(21)
    assert pair.hub.fragments.bytesHeld == 0 and len(pair.hub.fragments) == 0


def test_fragmentOnesDatagramCountsTowardTheBudget():
    """
    A reassembly keeps fragment 1's whole datagram besides its piece (it fingerprints the
    request for retransmissions), so the shared budget counts both: otherwise a peer sending
    large fragment 1s would hold up to twice fragmentMaxTotalBytes. Completion gives it back.
    """
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    deliver(pair, fragments[:1])
    [reassembly] = hubSa.reassembly.values()
    assert pair.hub.fragments.bytesHeld == len(reassembly.parts[1]) + len(fragments[0][3])
    deliver(pair, fragments[1:])
    assert answers.payloads == [()] and pair.hub.fragments.bytesHeld == 0


def test_fragmentOneBeyondTheBudgetIsDropped():
    """A budget with room for fragment 1's piece but not for its datagram as well refuses it."""
    pair, clientSa, hubSa = established()
    fragments, answers = sendFragmented(pair, clientSa)
    pair.hub.fragments.maxTotalBytes = len(fragments[0][3])
    deliver(pair, fragments[:1])
    assert pair.hub.counters["drop_fragment_memory"] == 1
    assert hubSa.reassembly is None and pair.hub.fragments.bytesHeld == 0


def partialResponse(pair, clientSa, hubSa):
    """
    Our initiator sends a request (nothing reaches the hub) and receives the first two
    fragments of a large response to it, made with the hub's keys; returns its header.
    """
    pair.net.dropIf = lambda source, destination, datagram: True
    pair.client.sendRequest(clientSa, ExchangeType.INFORMATIONAL, [], Answers())
    messageHeader = hubSa.header(ExchangeType.INFORMATIONAL, clientSa.pending.messageId, True)
    fragments = hubSa.skOut.protectFragments(messageHeader, bigRequest(3000), 400)
    for datagram in fragments[:2]:
        pair.net.inject(CLIENT, datagram, source=(HUB, 4500), path=4500)
    assert len(pair.client.fragments) == 1 and pair.client.fragments.bytesHeld > 0
    return messageHeader


def test_responseAnsweredWholeFreesItsPartialFragments():
    """
    Our request is answered by a whole response while fragments of another answer to it
    were being reassembled: they are freed at once, not held until the timeout.
    """
    pair, clientSa, hubSa = established()
    messageHeader = partialResponse(pair, clientSa, hubSa)
    pair.net.inject(CLIENT, hubSa.skOut.protect(messageHeader, []), source=(HUB, 4500), path=4500)
    assert clientSa.pending is None
    assert clientSa.reassembly is None and len(pair.client.fragments) == 0
    assert pair.client.fragments.bytesHeld == 0


def test_supersededRequestFreesItsPartialResponse():
    """A Delete that supersedes our outstanding request frees the fragments of its answer."""
    pair, clientSa, hubSa = established()
    partialResponse(pair, clientSa, hubSa)
    pair.client.deleteIkeSa(clientSa)
    assert clientSa.reassembly is None and len(pair.client.fragments) == 0


def test_oneSourceCannotTakeTheWholeBudget():
    """
    The reassemblies begun from one address hold at most fragmentMaxSourceBytes together:
    beyond it that address's fragments are dropped (fragment_source_memory) while another
    address still has room in the shared budget; and what an address held goes back when its
    reassemblies end, leaving no entry behind.
    """
    pair, clientSa, hubSa = established({"fragmentMaxSourceBytes": 3600})
    results, _ = pair.connect(clientSpec(fragmentation=True))
    secondClientSa = results[0]
    secondHubSa = pair.hub.sas[secondClientSa.spiR]
    first, firstAnswers = sendFragmented(pair, clientSa)
    deliver(pair, first[:-1])
    assert 3000 < pair.hub.fragments.bytesBySource[CLIENT] <= 3600
    second, secondAnswers = sendFragmented(pair, secondClientSa)
    deliver(pair, second[:1])
    assert pair.hub.counters["drop_fragment_source_memory"] == 1
    assert secondHubSa.reassembly is None
    # The same SA seen from another address (as after a move) draws on that address's
    # budget, untouched by the first.
    pair.hub.movePeer(secondHubSa, ("192.0.2.99", 4500), secondHubSa.path)
    deliver(pair, second[:1])
    assert pair.hub.fragments.bytesBySource["192.0.2.99"] > 0
    deliver(pair, first[-1:])
    assert firstAnswers.payloads == [()]
    assert CLIENT not in pair.hub.fragments.bytesBySource
    pair.hub.removeSa(secondHubSa, "test")
    assert pair.hub.fragments.bytesBySource == {} and pair.hub.fragments.bytesHeld == 0
