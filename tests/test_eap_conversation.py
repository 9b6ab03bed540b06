"""
The authenticator side of RFC 3748 (L{EAPConversation}) with any method: identifiers,
the identity round, Nak, Notification, wrong codes, round limits, and malformed input,
none of which ever raises out of C{receive}.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ikehub.auth.eap.conversation import (
    MAX_DISCARDED,
    MAX_ROUNDS,
    Continue,
    EAPConversation,
    EAPServerMethod,
    Failed,
    Succeeded,
)
from ikehub.auth.eap.md5 import EAPMD5Server
from ikehub.auth.eap.mschapv2 import EAPMSCHAPv2Server
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType
from ikehub.auth.users import User, UserDatabase

ECHO_TYPE = 200


class EchoMethod(EAPServerMethod):
    """
    A toy method: each Request carries a counter; the peer echoes "ok" to go on, "done"
    to succeed, anything else fails. Requests come back with a deliberately wrong
    identifier to show the conversation assigns the real one.
    """

    eapType = ECHO_TYPE
    name = "eap-echo"

    def __init__(self, identity):
        self.identity = identity
        self.seen = []

    def start(self, identifier):
        return EAPPacket(EAPCode.REQUEST, identifier, ECHO_TYPE, b"0")

    def handle(self, response):
        self.seen.append(response)
        if response.data == b"ok":
            return Continue(EAPPacket(EAPCode.REQUEST, 0, ECHO_TYPE, b"%d" % len(self.seen)))
        if response.data == b"done":
            return Succeeded(b"k" * 64)
        if response.data == b"boom":
            raise RuntimeError("a bug in the method")
        return Failed("echo mismatch")


class Factory:
    def __init__(self):
        self.methods = []

    def __call__(self, identity):
        method = EchoMethod(identity)
        self.methods.append(method)
        return method


def response(identifier, eapType, data=b""):
    return EAPPacket(EAPCode.RESPONSE, identifier, eapType, data).toBytes()


class ConversationTests(SynchronousTestCase):
    def setUp(self):
        self.factory = Factory()

    def conversation(self, identityRound=True, peerIdentity=None, first=10, **kw):
        return EAPConversation(
            self.factory, identityRound, peerIdentity, firstIdentifier=first, **kw
        )

    def started(self, **kw):
        """A conversation past the identity round: the method's first Request is out."""
        conversation = self.conversation(**kw)
        identityRequest = EAPPacket.fromBytes(conversation.start())
        outcome = conversation.receive(
            response(identityRequest.identifier, EAPType.IDENTITY, b"carol")
        )
        return conversation, outcome.request

    # -- start and the identity round --------------------------------------------------------

    def test_identityRequestFirst(self):
        """With an identity round the first Request is Identity, with the first identifier."""
        request = EAPPacket.fromBytes(self.conversation().start())
        self.assertEqual(request, EAPPacket(EAPCode.REQUEST, 10, EAPType.IDENTITY, b""))
        self.assertEqual(self.factory.methods, [])

    def test_startIsIdempotent(self):
        conversation = self.conversation()
        self.assertEqual(conversation.start(), conversation.start())

    def test_methodFirstWithoutIdentityRound(self):
        """Without an identity round the method starts at once for the given identity."""
        request = EAPPacket.fromBytes(self.conversation(False, "ike-idi@example").start())
        self.assertEqual((request.type, request.identifier), (ECHO_TYPE, 10))
        self.assertEqual(self.factory.methods[0].identity, "ike-idi@example")

    def test_identityGoesToTheFactory(self):
        conversation, request = self.started()
        self.assertEqual(self.factory.methods[0].identity, "carol")
        self.assertEqual(conversation.identity, "carol")
        self.assertEqual((request.type, request.identifier), (ECHO_TYPE, 11))

    def test_needsAnIdentitySomewhere(self):
        """No identity round and no peer identity is a programming error."""
        self.assertRaises(ValueError, EAPConversation, self.factory, False, None)

    def test_randomFirstIdentifier(self):
        """Without firstIdentifier the first identifier is random."""
        identifiers = {
            EAPPacket.fromBytes(EAPConversation(self.factory, True, None).start()).identifier
            for _ in range(40)
        }
        self.assertGreater(len(identifiers), 1)

    def test_emptyIdentity(self):
        conversation = self.conversation()
        conversation.start()
        outcome = conversation.receive(response(10, EAPType.IDENTITY, b""))
        self.assertEqual(
            outcome, Failed("the peer sent an empty EAP identity", b"\x04\x0a\x00\x04")
        )

    def test_identityNotUtf8(self):
        conversation = self.conversation()
        conversation.start()
        outcome = conversation.receive(response(10, EAPType.IDENTITY, b"\xff\xfe"))
        self.assertIsInstance(outcome, Failed)

    def test_identityWithControlCharacters(self):
        conversation = self.conversation()
        conversation.start()
        outcome = conversation.receive(response(10, EAPType.IDENTITY, b"eve\nroot"))
        self.assertIsInstance(outcome, Failed)
        self.assertEqual(self.factory.methods, [])

    def test_wrongTypeToIdentityRequest(self):
        conversation = self.conversation()
        conversation.start()
        self.assertIsInstance(conversation.receive(response(10, ECHO_TYPE, b"ok")), Failed)

    def test_nakToIdentityRequest(self):
        """Nak only answers a method Request (RFC 3748 section 5.3.1)."""
        conversation = self.conversation()
        conversation.start()
        outcome = conversation.receive(response(10, EAPType.NAK, b"\x1a"))
        self.assertIsInstance(outcome, Failed)
        self.assertIn("Nak", outcome.reason)

    # -- identifiers -------------------------------------------------------------------------

    def test_identifiersIncreasePerRequest(self):
        """Each new Request takes the next identifier, whatever the method put there."""
        conversation, request = self.started()
        identifiers = [request.identifier]
        for _ in range(3):
            request = conversation.receive(response(request.identifier, ECHO_TYPE, b"ok")).request
            identifiers.append(request.identifier)
        self.assertEqual(identifiers, [11, 12, 13, 14])

    def test_identifiersWrap(self):
        """After 255 comes 0."""
        conversation, request = self.started(first=254)
        self.assertEqual(request.identifier, 255)
        request = conversation.receive(response(255, ECHO_TYPE, b"ok")).request
        self.assertEqual(request.identifier, 0)

    def test_wrongIdentifierIsIgnored(self):
        """
        A Response that does not answer the outstanding Request is discarded (RFC 3748
        section 4.1): Continue with the same Request, and the method never sees it.
        """
        conversation, request = self.started()
        outcome = conversation.receive(response(99, ECHO_TYPE, b"done"))
        self.assertEqual(outcome, Continue(request))
        self.assertEqual(outcome.message, request.toBytes())
        self.assertEqual(self.factory.methods[0].seen, [])
        final = conversation.receive(response(request.identifier, ECHO_TYPE, b"done"))
        self.assertIsInstance(final, Succeeded)

    def test_tooManyWrongIdentifiersFail(self):
        conversation, request = self.started()
        for _ in range(MAX_DISCARDED):
            self.assertEqual(
                conversation.receive(response(99, ECHO_TYPE, b"ok")), Continue(request)
            )
        outcome = conversation.receive(response(99, ECHO_TYPE, b"ok"))
        self.assertIsInstance(outcome, Failed)
        self.assertIn("identifier", outcome.reason)

    def test_wrongIdentifierDuringIdentityRound(self):
        conversation = self.conversation()
        first = conversation.start()
        outcome = conversation.receive(response(11, EAPType.IDENTITY, b"carol"))
        self.assertEqual(outcome.message, first)

    # -- codes -------------------------------------------------------------------------------

    def test_requestFromPeerFails(self):
        conversation, request = self.started()
        data = EAPPacket(EAPCode.REQUEST, request.identifier, ECHO_TYPE, b"ok").toBytes()
        outcome = conversation.receive(data)
        self.assertIsInstance(outcome, Failed)
        self.assertIn("Request", outcome.reason)

    def test_successFromPeerFails(self):
        conversation, request = self.started()
        outcome = conversation.receive(bytes([EAPCode.SUCCESS, request.identifier, 0, 4]))
        self.assertIsInstance(outcome, Failed)
        self.assertIn("Success", outcome.reason)

    def test_failureFromPeerFails(self):
        conversation, request = self.started()
        outcome = conversation.receive(bytes([EAPCode.FAILURE, request.identifier, 0, 4]))
        self.assertIsInstance(outcome, Failed)

    # -- Nak, Notification, Type mismatch --------------------------------------------------

    def test_nakFails(self):
        """A Nak proposing another type refuses the only method offered."""
        conversation, request = self.started()
        outcome = conversation.receive(response(request.identifier, EAPType.NAK, b"\x1a\x04"))
        self.assertIsInstance(outcome, Failed)
        self.assertTrue(outcome.reason.startswith("peer refused eap-echo"), outcome.reason)
        self.assertIn("26, 4", outcome.reason)
        self.assertEqual(outcome.message, bytes([4, request.identifier, 0, 4]))
        self.assertEqual(outcome.identity, "carol")

    def test_nakWithoutAlternative(self):
        """A Nak of 0 (no acceptable alternative) fails the same way."""
        conversation, request = self.started()
        outcome = conversation.receive(response(request.identifier, EAPType.NAK, b"\x00"))
        self.assertIn("none", outcome.reason)

    def test_nakMidMethodFails(self):
        conversation, request = self.started()
        request = conversation.receive(response(request.identifier, ECHO_TYPE, b"ok")).request
        outcome = conversation.receive(response(request.identifier, EAPType.NAK, b"\x04"))
        self.assertIsInstance(outcome, Failed)
        self.assertIn("peer refused eap-echo", outcome.reason)

    def test_strayNotificationResponseIsDiscarded(self):
        """
        This server sends no Notification Request, so a Notification Response answers
        nothing (RFC 3748 section 5.2): discarded, the outstanding Request stands.
        """
        conversation, request = self.started()
        outcome = conversation.receive(response(request.identifier, EAPType.NOTIFICATION))
        self.assertEqual(outcome, Continue(request))
        self.assertEqual(self.factory.methods[0].seen, [])

    def test_notificationResponsesCountTowardsTheDiscardLimit(self):
        conversation, request = self.started()
        for _ in range(MAX_DISCARDED):
            conversation.receive(response(request.identifier, EAPType.NOTIFICATION))
        outcome = conversation.receive(response(request.identifier, EAPType.NOTIFICATION))
        self.assertIsInstance(outcome, Failed)

    def test_typeMismatchFails(self):
        """A Response of some other Type than the Request's (not Nak) fails."""
        conversation, request = self.started()
        outcome = conversation.receive(response(request.identifier, EAPType.MD5_CHALLENGE, b""))
        self.assertIsInstance(outcome, Failed)
        self.assertEqual(self.factory.methods[0].seen, [])

    # -- limits and the end ------------------------------------------------------------------

    def test_atMostFiftyRounds(self):
        """A peer that keeps a method going fails on Response number 51."""
        conversation, request = self.started()
        rounds = 1  # the Identity Response
        outcome = Continue(request)
        while isinstance(outcome, Continue):
            outcome = conversation.receive(response(outcome.request.identifier, ECHO_TYPE, b"ok"))
            rounds += 1
        self.assertEqual(rounds, MAX_ROUNDS + 1)
        self.assertEqual(outcome.reason, f"more than {MAX_ROUNDS} EAP rounds")

    def test_finishedConversationRepeatsItsOutcome(self):
        conversation, request = self.started()
        final = conversation.receive(response(request.identifier, ECHO_TYPE, b"done"))
        self.assertEqual(final.msk, b"k" * 64)
        self.assertIs(conversation.receive(response(request.identifier, ECHO_TYPE, b"x")), final)
        self.assertIs(conversation.receive(b"garbage"), final)

    def test_successPacketAnswersTheLastResponse(self):
        """EAP-Success carries the identifier of the Response it answers (section 4.2)."""
        conversation, request = self.started()
        final = conversation.receive(response(request.identifier, ECHO_TYPE, b"done"))
        self.assertEqual(final.message, bytes([3, request.identifier, 0, 4]))
        self.assertEqual(final.identity, "carol")

    def test_methodFailureBecomesEapFailure(self):
        conversation, request = self.started()
        final = conversation.receive(response(request.identifier, ECHO_TYPE, b"nope"))
        self.assertEqual(
            final, Failed("echo mismatch", bytes([4, request.identifier, 0, 4]), "carol")
        )

    def test_methodBugFailsClosed(self):
        """An exception inside a method never escapes and never authenticates."""
        conversation, request = self.started()
        outcome = conversation.receive(response(request.identifier, ECHO_TYPE, b"boom"))
        self.assertEqual(outcome.reason, "internal error in eap-echo")
        self.flushLoggedErrors(RuntimeError)

    def test_receiveBeforeStart(self):
        outcome = self.conversation().receive(response(10, EAPType.IDENTITY, b"carol"))
        self.assertIsInstance(outcome, Failed)

    # -- malformed packets -------------------------------------------------------------------

    def test_shortPacketFails(self):
        conversation, _ = self.started()
        outcome = conversation.receive(b"\x02\x0b")
        self.assertIsInstance(outcome, Failed)
        self.assertIn("malformed", outcome.reason)

    def test_lengthMismatchFails(self):
        conversation, request = self.started()
        data = bytearray(response(request.identifier, ECHO_TYPE, b"done"))
        data[3] += 1
        outcome = conversation.receive(bytes(data))
        self.assertIsInstance(outcome, Failed)
        self.assertIn("Length", outcome.reason)

    def test_expandedTypeFails(self):
        conversation, request = self.started()
        data = bytes([2, request.identifier, 0, 12, 254]) + bytes(7)
        self.assertIsInstance(conversation.receive(data), Failed)


# -- no input ever raises --------------------------------------------------------------------


def _users():
    return UserDatabase([User("alice", password="wonderland")])


_factories = st.sampled_from(
    [
        lambda: EAPMD5Server.factory(_users()),
        lambda: EAPMSCHAPv2Server.factory(_users()),
        lambda: Factory(),
    ]
)


def _packets(identifier):
    """Mostly well-formed Responses with the right identifier, some raw noise."""
    wellFormed = st.builds(
        lambda t, d: EAPPacket(EAPCode.RESPONSE, identifier, t, d).toBytes(),
        st.sampled_from([1, 2, 3, 4, 26, ECHO_TYPE, 255]),
        st.binary(max_size=80),
    )
    return wellFormed | st.binary(max_size=80)


@settings(max_examples=300)
@given(_factories, st.booleans(), st.lists(st.binary(max_size=80), max_size=6))
def test_randomBytesNeverRaise(makeFactory, identityRound, inputs):
    """Random bytes into receive give an outcome, never an exception."""
    conversation = EAPConversation(makeFactory(), identityRound, "alice")
    conversation.start()
    for data in inputs:
        outcome = conversation.receive(data)
        assert isinstance(outcome, (Continue, Succeeded, Failed))


@settings(max_examples=300)
@given(_factories, st.booleans(), st.data())
def test_plausibleResponsesNeverRaise(makeFactory, identityRound, data):
    """Responses that answer the outstanding Request, with random Types and contents."""
    conversation = EAPConversation(makeFactory(), identityRound, "alice")
    outstanding = EAPPacket.fromBytes(conversation.start())
    for _ in range(6):
        outcome = conversation.receive(data.draw(_packets(outstanding.identifier)))
        assert isinstance(outcome, (Continue, Succeeded, Failed))
        if not isinstance(outcome, Continue):
            assert outcome.message[0] in (EAPCode.SUCCESS, EAPCode.FAILURE)
            break
        outstanding = outcome.request
