"""
EAP-MD5-Challenge (RFC 3748 section 5.4 over RFC 1994 CHAP): the response is
MD5(Identifier | password | challenge), success derives no MSK, and every wrong or
malformed Response fails.
"""

import hashlib

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ikehub.auth.eap.conversation import Continue, EAPConversation, Failed, Succeeded
from ikehub.auth.eap.md5 import EAPMD5Server, chapResponse
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType
from ikehub.auth.users import User, UserDatabase

CHALLENGE = bytes(range(16))


def users():
    return UserDatabase(
        [
            User("alice", password="wonderland"),
            User("bob", storedNtHash=bytes(16)),
        ]
    )


def md5Response(identifier, value, name=b"alice", valueSize=None):
    size = len(value) if valueSize is None else valueSize
    data = bytes([size]) + value + name
    return EAPPacket(EAPCode.RESPONSE, identifier, EAPType.MD5_CHALLENGE, data)


def correct(identifier, password=b"wonderland", challenge=CHALLENGE):
    """The peer's answer, computed with hashlib (independently of the code under test)."""
    return hashlib.md5(bytes([identifier]) + password + challenge).digest()


class ChapResponseTests(SynchronousTestCase):
    def test_orderOfInputs(self):
        """
        Identifier, then secret, then challenge: with the RFC 1321 test strings split that
        way the results are RFC 1321's published digests.
        """
        self.assertEqual(
            chapResponse(ord("a"), b"b", b"c"), bytes.fromhex("900150983cd24fb0d6963f7d28e17f72")
        )
        self.assertEqual(
            chapResponse(ord("m"), b"essage ", b"digest"),
            bytes.fromhex("f96b697d7cb7938d525a2f31aaf161d0"),
        )

    def test_matchesHashlib(self):
        self.assertEqual(chapResponse(7, b"wonderland", CHALLENGE), correct(7))


class ServerTests(SynchronousTestCase):
    def server(self, identity="alice"):
        return EAPMD5Server(identity, users(), challenge=CHALLENGE, serverName="hub")

    def test_requestLayout(self):
        """Type 4; Type-Data is Value-Size 16, the challenge, then the server name."""
        request = self.server().start(0x33)
        self.assertEqual((request.code, request.identifier, request.type), (1, 0x33, 4))
        self.assertEqual(request.data, bytes([16]) + CHALLENGE + b"hub")

    def test_randomChallenge(self):
        """Without a fixed challenge each server draws a fresh 16-octet one."""
        a = EAPMD5Server("alice", users()).start(1).data
        b = EAPMD5Server("alice", users()).start(1).data
        self.assertEqual((a[0], len(a)), (16, 1 + 16 + len(b"ikehub")))
        self.assertNotEqual(a[1:17], b[1:17])

    def test_correctPassword(self):
        """The right digest succeeds, with no MSK: EAP-MD5 generates no keys."""
        server = self.server()
        server.start(0x33)
        self.assertEqual(server.handle(md5Response(0x33, correct(0x33))), Succeeded(msk=None))

    def test_identifierIsPartOfTheDigest(self):
        """A digest over another identifier fails."""
        server = self.server()
        server.start(0x33)
        self.assertEqual(server.handle(md5Response(0x33, correct(0x34))), Failed("wrong password"))

    def test_wrongPassword(self):
        server = self.server()
        server.start(1)
        outcome = server.handle(md5Response(1, correct(1, b"rabbit hole")))
        self.assertEqual(outcome, Failed("wrong password"))
        self.assertNotIn("wonderland", outcome.reason)

    def test_unknownUser(self):
        server = self.server("mallory")
        server.start(1)
        self.assertEqual(server.handle(md5Response(1, correct(1))), Failed("unknown user"))

    def test_ntHashOnlyUserCannotUseMD5(self):
        """EAP-MD5 needs the cleartext; a user stored as nt_hash fails with a clear reason."""
        server = self.server("bob")
        server.start(1)
        outcome = server.handle(md5Response(1, correct(1)))
        self.assertIsInstance(outcome, Failed)
        self.assertIn("cleartext", outcome.reason)

    def test_wrongValueSize(self):
        server = self.server()
        server.start(1)
        outcome = server.handle(md5Response(1, correct(1)[:15]))
        self.assertIsInstance(outcome, Failed)
        self.assertIn("Value-Size", outcome.reason)

    def test_truncatedValue(self):
        """Value-Size says 16 but fewer octets follow."""
        server = self.server()
        server.start(1)
        outcome = server.handle(md5Response(1, correct(1)[:10], name=b"", valueSize=16))
        self.assertEqual(outcome, Failed("truncated EAP-MD5 Response"))

    def test_emptyTypeData(self):
        server = self.server()
        server.start(1)
        self.assertIsInstance(server.handle(EAPPacket(2, 1, 4, b"")), Failed)

    def test_responseBeforeStart(self):
        self.assertIsInstance(self.server().handle(md5Response(1, correct(1))), Failed)


@given(st.binary(max_size=64))
def test_randomTypeDataNeverRaises(data):
    server = EAPMD5Server("alice", users(), challenge=CHALLENGE)
    server.start(1)
    outcome = server.handle(EAPPacket(EAPCode.RESPONSE, 1, EAPType.MD5_CHALLENGE, data))
    assert isinstance(outcome, (Succeeded, Failed))


class ConversationTests(SynchronousTestCase):
    """EAP-MD5 inside an EAPConversation, identity round on and off."""

    def conversation(self, identityRound, peerIdentity=None):
        factory = EAPMD5Server.factory(users(), challenge=CHALLENGE)
        return EAPConversation(factory, identityRound, peerIdentity, firstIdentifier=200)

    def challenge(self, conversation, identityRound, identity=b"alice"):
        request = EAPPacket.fromBytes(conversation.start())
        if identityRound:
            self.assertEqual((request.type, request.identifier), (EAPType.IDENTITY, 200))
            outcome = conversation.receive(
                EAPPacket(EAPCode.RESPONSE, 200, EAPType.IDENTITY, identity).toBytes()
            )
            self.assertIsInstance(outcome, Continue)
            request = EAPPacket.fromBytes(outcome.message)
            self.assertEqual(request.identifier, 201)
        self.assertEqual(request.type, EAPType.MD5_CHALLENGE)
        return request

    def test_successWithIdentityRound(self):
        conversation = self.conversation(True)
        request = self.challenge(conversation, True)
        outcome = conversation.receive(
            md5Response(request.identifier, correct(request.identifier)).toBytes()
        )
        self.assertEqual(outcome, Succeeded(None, bytes([3, request.identifier, 0, 4]), "alice"))
        self.assertTrue(conversation.finished)

    def test_successWithoutIdentityRound(self):
        conversation = self.conversation(False, "alice")
        request = self.challenge(conversation, False)
        self.assertEqual(request.identifier, 200)
        outcome = conversation.receive(md5Response(200, correct(200)).toBytes())
        self.assertEqual(outcome, Succeeded(None, bytes([3, 200, 0, 4]), "alice"))

    def test_wrongPasswordWithIdentityRound(self):
        conversation = self.conversation(True)
        request = self.challenge(conversation, True)
        outcome = conversation.receive(
            md5Response(request.identifier, correct(request.identifier, b"guess")).toBytes()
        )
        self.assertEqual(
            outcome, Failed("wrong password", bytes([4, request.identifier, 0, 4]), "alice")
        )

    def test_wrongPasswordWithoutIdentityRound(self):
        conversation = self.conversation(False, "alice")
        self.challenge(conversation, False)
        outcome = conversation.receive(md5Response(200, correct(200, b"guess")).toBytes())
        self.assertEqual(outcome, Failed("wrong password", bytes([4, 200, 0, 4]), "alice"))

    def test_identityFromTheIdentityRoundIsChecked(self):
        """The password checked is the one of the EAP identity the peer gave."""
        conversation = self.conversation(True)
        request = self.challenge(conversation, True, identity=b"bob")
        outcome = conversation.receive(
            md5Response(request.identifier, correct(request.identifier)).toBytes()
        )
        self.assertIsInstance(outcome, Failed)
        self.assertEqual(outcome.identity, "bob")
