"""
EAP-MSCHAPv2: the RFC 2759 section 9.2 and RFC 3079 section 3.5.3 vectors byte for byte,
the MSK in Microsoft's / strongSwan's 64-octet layout, full conversations, and every
malformed Response class.
"""

import struct

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ikehub.auth.eap.conversation import Continue, EAPConversation, Failed, Succeeded
from ikehub.auth.eap.mschapv2 import (
    OPCODE_CHALLENGE,
    OPCODE_FAILURE,
    OPCODE_RESPONSE,
    OPCODE_SUCCESS,
    EAPMSCHAPv2Server,
    challengeHash,
    challengeResponse,
    generateAuthenticatorResponse,
    generateNtResponse,
    getAsymmetricStartKey,
    getMasterKey,
    hashNtPasswordHash,
    mschapUserName,
    ntPasswordHash,
    serverMsk,
)
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType
from ikehub.auth.users import User, UserDatabase

h = bytes.fromhex

# RFC 2759 section 9.2 "Hash Example"
USER_NAME = b"User"
PASSWORD = "clientPass"
UNICODE_PASSWORD = h("63 00 6C 00 69 00 65 00 6E 00 74 00 50 00 61 00 73 00 73 00")
AUTHENTICATOR_CHALLENGE = h("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28")
PEER_CHALLENGE = h("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")
CHALLENGE = h("D0 2E 43 86 BC E9 12 26")
PASSWORD_HASH = h("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
NT_RESPONSE = h("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
PASSWORD_HASH_HASH = h("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F")
AUTHENTICATOR_RESPONSE = "S=407A5589115FD0D6209F510FE9C04566932CDA56"

# RFC 3079 section 3.5.3 "Sample 128-bit Key Derivation" (same user, password, NT-Response)
MASTER_KEY = h("FD EC E3 71 7A 8C 83 8C B3 88 E5 27 AE 3C DD 31")
SEND_START_KEY_128 = h("8B 7C DC 14 9B 99 3A 1B A1 18 CB 15 3F 56 DC CB")
# The other direction's start key is not printed in RFC 3079; this value is published in
# AOSP's IKE library test vectors (EapTestUtils: "generated based on RFC 3079#3.5.3
# params", MSCHAP_V2_SEND_START_KEY for the peer = the server's receive key).
SERVER_RECEIVE_START_KEY = h("D5F0E9521E3EA9589645E86051C82226")


class RFC2759VectorTests(SynchronousTestCase):
    """RFC 2759 section 9.2, each intermediate value."""

    def test_unicodePassword(self):
        """The password enters NtPasswordHash as UTF-16LE."""
        self.assertEqual(PASSWORD.encode("utf-16-le"), UNICODE_PASSWORD)

    def test_ntPasswordHash(self):
        self.assertEqual(ntPasswordHash(PASSWORD), PASSWORD_HASH)

    def test_hashNtPasswordHash(self):
        self.assertEqual(hashNtPasswordHash(PASSWORD_HASH), PASSWORD_HASH_HASH)

    def test_challengeHash(self):
        self.assertEqual(
            challengeHash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER_NAME), CHALLENGE
        )

    def test_challengeResponse(self):
        """Three single-DES encryptions under the 21-octet zero-padded hash."""
        self.assertEqual(challengeResponse(CHALLENGE, PASSWORD_HASH), NT_RESPONSE)

    def test_generateNtResponse(self):
        self.assertEqual(
            generateNtResponse(AUTHENTICATOR_CHALLENGE, PEER_CHALLENGE, USER_NAME, PASSWORD_HASH),
            NT_RESPONSE,
        )

    def test_generateAuthenticatorResponse(self):
        self.assertEqual(
            generateAuthenticatorResponse(
                PASSWORD_HASH, NT_RESPONSE, PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USER_NAME
            ),
            AUTHENTICATOR_RESPONSE,
        )

    def test_domainIsStrippedFromTheUserName(self):
        """RFC 2759 section 8.2: only the user name, without a prepended domain, is hashed."""
        self.assertEqual(mschapUserName(b"EXAMPLE\\User"), b"User")
        self.assertEqual(mschapUserName(b"User"), b"User")


class RFC3079VectorTests(SynchronousTestCase):
    """RFC 3079 section 3.5.3 and the MSK built from it."""

    def test_masterKey(self):
        self.assertEqual(getMasterKey(PASSWORD_HASH_HASH, NT_RESPONSE), MASTER_KEY)

    def test_sendStartKey128(self):
        """The RFC's SendStartKey128 is the server's send key (IsSend, IsServer)."""
        self.assertEqual(
            getAsymmetricStartKey(MASTER_KEY, 16, isSend=True, isServer=True), SEND_START_KEY_128
        )

    def test_peerReceiveKeyIsServerSendKey(self):
        """The client's receive key is the server's send key (RFC 3079 section 3.4 magic)."""
        self.assertEqual(
            getAsymmetricStartKey(MASTER_KEY, 16, isSend=False, isServer=False),
            SEND_START_KEY_128,
        )

    def test_serverReceiveKey(self):
        self.assertEqual(
            getAsymmetricStartKey(MASTER_KEY, 16, isSend=False, isServer=True),
            SERVER_RECEIVE_START_KEY,
        )

    def test_shorterStartKeysArePrefixes(self):
        """40- and 56-bit start keys take the first 8 octets of the same digest."""
        self.assertEqual(
            getAsymmetricStartKey(MASTER_KEY, 8, isSend=True, isServer=True),
            SEND_START_KEY_128[:8],
        )

    def test_mskLayout(self):
        """
        MSK = MasterReceiveKey | MasterSendKey | 32 zero octets, as [MS-CHAP] section
        3.1.5.1 and strongSwan's eap_mschapv2 define it: 64 octets.
        """
        msk = serverMsk(PASSWORD_HASH, NT_RESPONSE)
        self.assertEqual(len(msk), 64)
        self.assertEqual(msk, SERVER_RECEIVE_START_KEY + SEND_START_KEY_128 + bytes(32))


# -- the peer side, built by hand from the draft's packet layouts ----------------------------


def challengeFields(request: EAPPacket):
    """Split a Challenge Request into (MS-CHAPv2-ID, MS-Length, challenge, name)."""
    data = request.data
    opcode, msId, msLength, valueSize = struct.unpack_from("!BBHB", data)
    assert opcode == OPCODE_CHALLENGE and valueSize == 16
    return msId, msLength, data[5:21], data[21:]


def responsePacket(
    identifier,
    msId,
    peerChallenge=PEER_CHALLENGE,
    ntResponse=NT_RESPONSE,
    name=USER_NAME,
    msLength=None,
    valueSize=49,
    opcode=OPCODE_RESPONSE,
):
    value = peerChallenge + bytes(8) + ntResponse + b"\x00"
    body = bytes([valueSize]) + value + name
    if msLength is None:
        msLength = 4 + len(body)
    data = struct.pack("!BBH", opcode, msId, msLength) + body
    return EAPPacket(EAPCode.RESPONSE, identifier, EAPType.MSCHAPV2, data)


def ack(identifier, opcode):
    return EAPPacket(EAPCode.RESPONSE, identifier, EAPType.MSCHAPV2, bytes([opcode]))


def rfcUsers(**kw):
    return UserDatabase([User("User", **kw)])


class ServerTests(SynchronousTestCase):
    """The server method on its own."""

    def server(self, users=None, identity="User"):
        users = users if users is not None else rfcUsers(password=PASSWORD)
        return EAPMSCHAPv2Server(
            identity, users, authenticatorChallenge=AUTHENTICATOR_CHALLENGE, serverName="hub"
        )

    def test_challengeLayout(self):
        """
        The Challenge: Type 26, OpCode 1, MS-CHAPv2-ID = EAP identifier, MS-Length = EAP
        Length - 5, Value-Size 16, the challenge, then the server name.
        """
        request = self.server().start(0x42)
        self.assertEqual((request.code, request.identifier, request.type), (1, 0x42, 26))
        msId, msLength, challenge, name = challengeFields(request)
        self.assertEqual(msId, 0x42)
        self.assertEqual(msLength, request.length - 5)
        self.assertEqual(challenge, AUTHENTICATOR_CHALLENGE)
        self.assertEqual(name, b"hub")

    def test_randomChallenge(self):
        """Without a fixed challenge, each server draws a fresh one."""
        a = EAPMSCHAPv2Server("User", rfcUsers(password=PASSWORD)).start(1)
        b = EAPMSCHAPv2Server("User", rfcUsers(password=PASSWORD)).start(1)
        self.assertNotEqual(challengeFields(a)[2], challengeFields(b)[2])

    def test_rfcVectorEndToEnd(self):
        """
        The RFC 2759 peer Response earns the RFC's authenticator response in a Success
        Request; the peer's Success yields the RFC 3079-derived MSK.
        """
        server = self.server()
        server.start(0x42)
        outcome = server.handle(responsePacket(0x42, 0x42))
        self.assertIsInstance(outcome, Continue)
        success = outcome.request
        self.assertEqual(success.data[0], OPCODE_SUCCESS)
        self.assertEqual(success.data[1], 0x42)
        self.assertEqual(struct.unpack_from("!H", success.data, 2)[0], len(success.data))
        message = success.data[4:].decode("ascii")
        self.assertTrue(message.startswith(AUTHENTICATOR_RESPONSE + " M="), message)
        final = server.handle(ack(success.identifier, OPCODE_SUCCESS))
        self.assertEqual(
            final, Succeeded(SERVER_RECEIVE_START_KEY + SEND_START_KEY_128 + bytes(32))
        )
        self.assertEqual(final.msk, SERVER_RECEIVE_START_KEY + SEND_START_KEY_128 + bytes(32))

    def test_ntHashOnlyUser(self):
        """A user stored only as the RFC's NT hash authenticates the same way."""
        server = self.server(rfcUsers(storedNtHash=PASSWORD_HASH))
        server.start(1)
        outcome = server.handle(responsePacket(1, 1))
        self.assertIn(AUTHENTICATOR_RESPONSE.encode(), outcome.request.data)

    def test_domainName(self):
        """A DOMAIN\\User Name is hashed as User, so the RFC vector still holds."""
        users = UserDatabase([User("EXAMPLE\\User", password=PASSWORD)])
        server = self.server(users, identity="EXAMPLE\\User")
        server.start(1)
        outcome = server.handle(responsePacket(1, 1, name=b"EXAMPLE\\User"))
        self.assertIn(AUTHENTICATOR_RESPONSE.encode(), outcome.request.data)

    def test_wrongPassword(self):
        """
        A wrong NT-Response gets a Failure Request "E=691 R=0 C=<32 hex> V=3 ..." (no
        retry); the peer's Failure then ends in Failed without an MSK.
        """
        server = self.server(rfcUsers(password="not the password"))
        server.start(9)
        outcome = server.handle(responsePacket(9, 9))
        self.assertIsInstance(outcome, Continue)
        data = outcome.request.data
        self.assertEqual(data[0], OPCODE_FAILURE)
        self.assertEqual(data[1], 9)
        self.assertEqual(struct.unpack_from("!H", data, 2)[0], len(data))
        fields = dict(part.split("=", 1) for part in data[4:].decode("ascii").split(" ", 4))
        self.assertEqual((fields["E"], fields["R"], fields["V"]), ("691", "0", "3"))
        self.assertRegex(fields["C"], "^[0-9A-F]{32}$")
        final = server.handle(ack(outcome.request.identifier, OPCODE_FAILURE))
        self.assertEqual(final, Failed("wrong password"))

    def test_anythingButFailureAfterFailureRequestFails(self):
        """After a Failure Request no answer can turn into success."""
        server = self.server(rfcUsers(password="not the password"))
        server.start(9)
        server.handle(responsePacket(9, 9))
        self.assertEqual(server.handle(ack(10, OPCODE_SUCCESS)), Failed("wrong password"))

    def test_unknownUserLooksLikeWrongPassword(self):
        """An unknown user gets the same Failure Request; only the log reason differs."""
        server = self.server(UserDatabase([User("someone", password="x")]))
        server.start(3)
        outcome = server.handle(responsePacket(3, 3))
        self.assertEqual(outcome.request.data[0], OPCODE_FAILURE)
        self.assertEqual(server.handle(ack(4, OPCODE_FAILURE)), Failed("unknown user"))

    def test_reasonsNeverContainSecrets(self):
        """Failure reasons name no password, hash or response."""
        server = self.server(rfcUsers(password="hunter2hunter2"))
        server.start(3)
        server.handle(responsePacket(3, 3))
        reason = server.handle(ack(4, OPCODE_FAILURE)).reason
        for secret in ("hunter2", PASSWORD_HASH.hex(), NT_RESPONSE.hex()):
            self.assertNotIn(secret.lower(), reason.lower())

    def assertFails(self, response, contains):
        server = self.server()
        server.start(5)
        outcome = server.handle(response)
        self.assertIsInstance(outcome, Failed)
        self.assertIn(contains, outcome.reason)
        return server

    def test_msLengthMismatch(self):
        """MS-Length must equal the octets from the OpCode on."""
        self.assertFails(responsePacket(5, 5, msLength=20), "MS-Length")
        self.assertFails(responsePacket(5, 5, msLength=200), "MS-Length")

    def test_truncatedResponse(self):
        """A Response shorter than its 49-octet value fails."""
        full = responsePacket(5, 5).data
        short = full[:30]
        data = short[:2] + struct.pack("!H", len(short)) + short[4:]
        self.assertFails(EAPPacket(EAPCode.RESPONSE, 5, 26, data), "truncated")

    def test_truncatedHeader(self):
        self.assertFails(EAPPacket(EAPCode.RESPONSE, 5, 26, b"\x02\x05"), "truncated")

    def test_emptyTypeData(self):
        self.assertFails(EAPPacket(EAPCode.RESPONSE, 5, 26, b""), "empty")

    def test_wrongValueSize(self):
        self.assertFails(responsePacket(5, 5, valueSize=48), "Value-Size")

    def test_msChapIdMismatch(self):
        self.assertFails(responsePacket(5, 6), "MS-CHAPv2-ID")

    def test_nameSwitch(self):
        """A Name other than the EAP identity fails, even with a valid NT-Response."""
        users = UserDatabase([User("User", password=PASSWORD), User("Admin", password=PASSWORD)])
        server = EAPMSCHAPv2Server("Admin", users, authenticatorChallenge=AUTHENTICATOR_CHALLENGE)
        server.start(5)
        outcome = server.handle(responsePacket(5, 5, name=b"User"))
        self.assertEqual(outcome, Failed("the MS-CHAPv2 Name differs from the EAP identity"))

    def test_unknownOpcode(self):
        self.assertFails(ack(5, 9), "unknown MS-CHAPv2 OpCode 9")

    def test_changePasswordUnsupported(self):
        self.assertFails(ack(5, 7), "Change-Password")

    def test_successBeforeResponse(self):
        """A peer Success before the server's Success Request does not succeed."""
        self.assertFails(ack(5, OPCODE_SUCCESS), "unexpected")

    def test_peerAbortsWithFailure(self):
        self.assertFails(ack(5, OPCODE_FAILURE), "aborted")

    def test_secondResponseAfterSuccessRequest(self):
        """After the Success Request only a Success completes; another Response fails."""
        server = self.server()
        server.start(5)
        server.handle(responsePacket(5, 5))
        self.assertIsInstance(server.handle(responsePacket(6, 5)), Failed)

    def test_nothingAfterTheEnd(self):
        """A finished method never succeeds later."""
        server = self.server()
        server.start(5)
        server.handle(responsePacket(5, 5))
        self.assertIsInstance(server.handle(ack(6, OPCODE_SUCCESS)), Succeeded)
        self.assertIsInstance(server.handle(ack(6, OPCODE_SUCCESS)), Failed)

    def test_reprHidesNothingSecret(self):
        server = self.server(rfcUsers(password="hunter2hunter2"))
        self.assertNotIn("hunter2", repr(server))


@given(st.binary(max_size=120), st.integers(0, 2))
def test_randomTypeDataNeverRaises(data, roundsBefore):
    """Whatever Type-Data arrives, in any state, handle returns an outcome."""
    server = EAPMSCHAPv2Server(
        "User", rfcUsers(password=PASSWORD), authenticatorChallenge=AUTHENTICATOR_CHALLENGE
    )
    server.start(1)
    if roundsBefore >= 1:
        server.handle(responsePacket(1, 1))
    outcome = server.handle(EAPPacket(EAPCode.RESPONSE, 2, EAPType.MSCHAPV2, data))
    assert isinstance(outcome, (Continue, Succeeded, Failed))


class ConversationTests(SynchronousTestCase):
    """EAP-MSCHAPv2 inside an EAPConversation, identity round on and off."""

    def conversation(self, identityRound, password=PASSWORD, peerIdentity=None):
        factory = EAPMSCHAPv2Server.factory(
            rfcUsers(password=password), authenticatorChallenge=AUTHENTICATOR_CHALLENGE
        )
        return EAPConversation(factory, identityRound, peerIdentity, firstIdentifier=0x10)

    def runToChallenge(self, conversation, identityRound):
        first = EAPPacket.fromBytes(conversation.start())
        if identityRound:
            self.assertEqual((first.code, first.type), (EAPCode.REQUEST, EAPType.IDENTITY))
            reply = EAPPacket(EAPCode.RESPONSE, first.identifier, EAPType.IDENTITY, b"User")
            outcome = conversation.receive(reply.toBytes())
            self.assertIsInstance(outcome, Continue)
            first = EAPPacket.fromBytes(outcome.message)
        self.assertEqual(first.type, EAPType.MSCHAPV2)
        return first

    def succeed(self, identityRound, peerIdentity=None):
        conversation = self.conversation(identityRound, peerIdentity=peerIdentity)
        challenge = self.runToChallenge(conversation, identityRound)
        msId = challengeFields(challenge)[0]
        outcome = conversation.receive(responsePacket(challenge.identifier, msId).toBytes())
        success = EAPPacket.fromBytes(outcome.message)
        self.assertEqual(success.identifier, (challenge.identifier + 1) & 0xFF)
        self.assertIn(AUTHENTICATOR_RESPONSE.encode(), success.data)
        final = conversation.receive(ack(success.identifier, OPCODE_SUCCESS).toBytes())
        self.assertIsInstance(final, Succeeded)
        self.assertEqual(final.msk, SERVER_RECEIVE_START_KEY + SEND_START_KEY_128 + bytes(32))
        self.assertEqual(final.message, bytes([EAPCode.SUCCESS, success.identifier, 0, 4]))
        self.assertEqual(final.identity, "User")

    def test_successWithIdentityRound(self):
        self.succeed(identityRound=True)

    def test_successWithoutIdentityRound(self):
        """Without an identity round the method runs for the IKE identity given."""
        self.succeed(identityRound=False, peerIdentity="User")

    def test_wrongPasswordWithIdentityRound(self):
        """A wrong password ends, after the MS-CHAPv2 Failure round, in an EAP-Failure."""
        conversation = self.conversation(True, password="other password")
        challenge = self.runToChallenge(conversation, True)
        outcome = conversation.receive(
            responsePacket(challenge.identifier, challengeFields(challenge)[0]).toBytes()
        )
        failure = EAPPacket.fromBytes(outcome.message)
        self.assertEqual(failure.data[0], OPCODE_FAILURE)
        final = conversation.receive(ack(failure.identifier, OPCODE_FAILURE).toBytes())
        self.assertEqual(
            final,
            Failed("wrong password", bytes([EAPCode.FAILURE, failure.identifier, 0, 4]), "User"),
        )

    def test_wrongPasswordWithoutIdentityRound(self):
        conversation = self.conversation(False, password="other password", peerIdentity="User")
        challenge = self.runToChallenge(conversation, False)
        outcome = conversation.receive(
            responsePacket(challenge.identifier, challengeFields(challenge)[0]).toBytes()
        )
        failure = EAPPacket.fromBytes(outcome.message)
        final = conversation.receive(ack(failure.identifier, OPCODE_FAILURE).toBytes())
        self.assertIsInstance(final, Failed)
        self.assertEqual(final.reason, "wrong password")
        self.assertEqual(final.message, bytes([EAPCode.FAILURE, failure.identifier, 0, 4]))

    def test_nameSwitchAfterIdentityRound(self):
        """EAP identity "User", then an MS-CHAPv2 Name "Admin": Failed."""
        conversation = self.conversation(True)
        challenge = self.runToChallenge(conversation, True)
        outcome = conversation.receive(
            responsePacket(
                challenge.identifier, challengeFields(challenge)[0], name=b"Admin"
            ).toBytes()
        )
        self.assertIsInstance(outcome, Failed)
        self.assertIn("differs from the EAP identity", outcome.reason)
        self.assertEqual(outcome.message[0], EAPCode.FAILURE)
