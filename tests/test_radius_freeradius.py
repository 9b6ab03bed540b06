"""
eap-radius against a real FreeRADIUS 3.2 (Debian's C{freeradius}), on loopback.

The test starts C{freeradius -X} as a child process with a private configuration
(L{tests.freeradius}: its own radiusd.conf, clients.conf, users file, eap/mschap/files modules
and one virtual server listening on 127.0.0.1 on a free port), logs and pid/run directory, and
stops it by its PID whatever happens. The test plays the EAP peer with ikehub's own MSCHAPv2 and
MD5 helpers, so the conversation checks both ends against each other:

  - EAP-MSCHAPv2: Access-Accept with Framed-IP-Address and Class, the server's
    authenticator response verified by the peer, and the MSK from MS-MPPE-Recv-Key ||
    MS-MPPE-Send-Key equal to the first 32 octets of ikehub's local
    L{ikehub.auth.eap.mschapv2.serverMsk} for the same password and NT-Response: the key
    layout interoperates;
  - EAP-MD5 (the peer Naks the server's default MSCHAPv2 and asks for MD5), with the
    identity round relayed;
  - a wrong password ends in Failed with an EAP-Failure.

FreeRADIUS is configured with require_message_authenticator = yes, so it drops any request
whose Message-Authenticator is wrong; and ikehub drops any response whose authenticators are
wrong, so every successful round checks both directions.
"""

from __future__ import annotations

import os

import pytest
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from ikehub.auth.eap.conversation import Continue, Failed, Succeeded
from ikehub.auth.eap.md5 import chapResponse
from ikehub.auth.eap.mschapv2 import (
    OPCODE_CHALLENGE,
    OPCODE_FAILURE,
    OPCODE_RESPONSE,
    OPCODE_SUCCESS,
    generateAuthenticatorResponse,
    generateNtResponse,
    mschapUserName,
    ntPasswordHash,
    serverMsk,
)
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType
from ikehub.auth.plugin import PluginContext
from ikehub.plugins.eap_radius import eapRadius
from tests.freeradius import (
    CLASS,
    FRAMED_IP,
    PASSWORD,
    SECRET,
    USER,
    freeUdpPort,
    requireFreeRADIUS,
    runningFreeRADIUS,
)

@pytest.fixture(scope="module")
def freeradius(tmp_path_factory):
    """A FreeRADIUS child process on 127.0.0.1:<free port>, stopped by its PID at the end."""
    requireFreeRADIUS()
    with runningFreeRADIUS(tmp_path_factory.mktemp("freeradius"), freeUdpPort()) as server:
        yield server


class Peer:
    """
    The EAP peer side, from ikehub's own MSCHAPv2 and MD5 helpers.

    @param method: the EAP Type the peer wants; a Request of another method gets a Nak.
    """

    def __init__(self, identity: str, password: str, method: int) -> None:
        self.identity = identity
        self.password = password
        self.method = method
        self.peerChallenge = os.urandom(16)
        self.ntResponse: bytes | None = None
        self.expectedAuthenticatorResponse: str | None = None
        self.serverVerified = False
        self.methodsSeen: list[int] = []

    def answer(self, request: EAPPacket) -> bytes:
        assert request.code == EAPCode.REQUEST
        self.methodsSeen.append(request.type)
        if request.type == EAPType.IDENTITY:
            return self._response(request, EAPType.IDENTITY, self.identity.encode())
        if request.type != self.method:
            return self._response(request, EAPType.NAK, bytes([self.method]))
        if request.type == EAPType.MD5_CHALLENGE:
            size = request.data[0]
            challenge = request.data[1 : 1 + size]
            value = chapResponse(request.identifier, self.password.encode(), challenge)
            return self._response(request, EAPType.MD5_CHALLENGE, bytes([16]) + value)
        assert request.type == EAPType.MSCHAPV2
        opcode, msChapId = request.data[0], request.data[1]
        if opcode == OPCODE_CHALLENGE:
            size = request.data[4]
            assert size == 16
            authenticatorChallenge = request.data[5:21]
            passwordHash = ntPasswordHash(self.password)
            userName = mschapUserName(self.identity.encode())
            self.ntResponse = generateNtResponse(
                authenticatorChallenge, self.peerChallenge, userName, passwordHash
            )
            self.expectedAuthenticatorResponse = generateAuthenticatorResponse(
                passwordHash, self.ntResponse, self.peerChallenge, authenticatorChallenge, userName
            )
            value = self.peerChallenge + bytes(8) + self.ntResponse + b"\x00"
            body = bytes([49]) + value + self.identity.encode()
            header = bytes([OPCODE_RESPONSE, msChapId]) + (4 + len(body)).to_bytes(2, "big")
            return self._response(request, EAPType.MSCHAPV2, header + body)
        if opcode == OPCODE_SUCCESS:
            message = request.data[4:].decode("ascii")
            assert message.split(" ")[0] == self.expectedAuthenticatorResponse, message
            self.serverVerified = True
            return self._response(request, EAPType.MSCHAPV2, bytes([OPCODE_SUCCESS]))
        assert opcode == OPCODE_FAILURE, opcode
        return self._response(request, EAPType.MSCHAPV2, bytes([OPCODE_FAILURE]))

    @staticmethod
    def _response(request: EAPPacket, eapType: int, data: bytes) -> bytes:
        return EAPPacket(EAPCode.RESPONSE, request.identifier, eapType, data).toBytes()


class FreeRADIUSConversationTests(TestCase):
    """Full EAP conversations relayed through eap-radius to FreeRADIUS."""

    timeout = 60

    @pytest.fixture(autouse=True)
    def _server(self, freeradius):
        self.server = freeradius

    def buildMethod(self, **options):
        options.setdefault(
            "servers", [{"address": "127.0.0.1", "port": self.server.port, "secret": SECRET}]
        )
        context = PluginContext("eap-radius", options=options, clock=reactor, reactor=reactor)
        method = eapRadius.build(context)
        self.addCleanup(method.close)
        return method

    @defer.inlineCallbacks
    def converse(self, session, peer, maxRounds=10):
        outcome = yield session.start()
        for _ in range(maxRounds):
            if not isinstance(outcome, Continue):
                break
            outcome = yield session.receive(peer.answer(outcome.request))
        return outcome

    @defer.inlineCallbacks
    def test_mschapv2Succeeds(self):
        """
        EAP-MSCHAPv2 via RADIUS succeeds with the server's Framed-IP-Address and Class, the
        peer verifies the server, and MS-MPPE-Recv-Key || MS-MPPE-Send-Key is the first 32
        octets of the MSK ikehub computes locally for the same password and NT-Response.
        """
        method = self.buildMethod()
        session = method.newSession(USER, False, peerAddress="192.0.2.7")
        peer = Peer(USER, PASSWORD, EAPType.MSCHAPV2)
        outcome = yield self.converse(session, peer)
        self.assertIsInstance(outcome, Succeeded, getattr(outcome, "reason", ""))
        self.assertTrue(peer.serverVerified)
        self.assertEqual(outcome.address, FRAMED_IP)
        self.assertIn(CLASS, outcome.groups)
        self.assertEqual(outcome.identity, USER)
        self.assertEqual(EAPPacket.fromBytes(outcome.message).code, EAPCode.SUCCESS)
        local = serverMsk(ntPasswordHash(PASSWORD), peer.ntResponse)
        self.assertEqual(len(outcome.msk), 32)
        self.assertEqual(outcome.msk, local[:32])
        self.assertEqual(method.client.counters["dropped_bad_response"], 0)

    @defer.inlineCallbacks
    def test_md5WithIdentityRoundSucceeds(self):
        """
        With an identity round the peer's Identity Response is relayed; the peer Naks the
        server's MSCHAPv2 for MD5 and succeeds. EAP-MD5 derives no keys: msk is None.
        """
        method = self.buildMethod()
        session = method.newSession(USER, True)
        peer = Peer(USER, PASSWORD, EAPType.MD5_CHALLENGE)
        outcome = yield self.converse(session, peer)
        self.assertIsInstance(outcome, Succeeded, getattr(outcome, "reason", ""))
        self.assertEqual(
            peer.methodsSeen[:3],
            [EAPType.IDENTITY, EAPType.MSCHAPV2, EAPType.MD5_CHALLENGE],
        )
        self.assertIsNone(outcome.msk)
        self.assertEqual(outcome.address, FRAMED_IP)
        self.assertEqual(outcome.groups, (CLASS,))

    @defer.inlineCallbacks
    def test_mschapv2WrongPasswordFails(self):
        """A wrong password: Access-Reject, Failed with an EAP-Failure, no MSK anywhere."""
        method = self.buildMethod()
        session = method.newSession(USER, False)
        peer = Peer(USER, "wrong password", EAPType.MSCHAPV2)
        outcome = yield self.converse(session, peer)
        self.assertIsInstance(outcome, Failed)
        self.assertIn("rejected", outcome.reason)
        self.assertEqual(EAPPacket.fromBytes(outcome.message).code, EAPCode.FAILURE)
        self.assertFalse(peer.serverVerified)

    @defer.inlineCallbacks
    def test_md5WrongPasswordFails(self):
        """EAP-MD5 with a wrong password ends in Failed."""
        method = self.buildMethod()
        session = method.newSession(USER, False)
        outcome = yield self.converse(session, Peer(USER, "nope", EAPType.MD5_CHALLENGE))
        self.assertIsInstance(outcome, Failed)
        self.assertEqual(EAPPacket.fromBytes(outcome.message).code, EAPCode.FAILURE)

    @defer.inlineCallbacks
    def test_wrongSecretIsNoAnswer(self):
        """
        With the wrong shared secret FreeRADIUS drops the request (its Message-Authenticator
        is wrong), so after the retries the session fails with no server answering.
        """
        method = self.buildMethod(
            servers=[
                {"address": "127.0.0.1", "port": self.server.port, "secret": "x" * 20},
            ],
            timeout=0.2,
            retries=1,
        )
        session = method.newSession(USER, False)
        outcome = yield session.start()
        self.assertIsInstance(outcome, Failed)
        self.assertEqual(outcome.reason, "no RADIUS server answered")
        self.assertEqual(method.client.counters["retransmissions"], 1)
