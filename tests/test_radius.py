"""
eap-radius without sockets: the RADIUS codec against RFC 2865, radclient and FreeRADIUS
bytes, the authenticators and RFC 2548 key decryption against an encoder written here
independently, and the client and session on task.Clock with a fake transport (retransmission,
fail-over, silence, forged responses, long EAP messages, Accept/Challenge/Reject), plus the
plugin's configuration errors.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import task
from twisted.plugin import IPlugin, getPlugins
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

import ikehub.plugins
from ikehub.auth.eap.conversation import Continue, Failed, Succeeded
from ikehub.auth.eap.mschapv2 import ntPasswordHash, serverMsk
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType
from ikehub.auth.plugin import PluginConfigError, PluginContext
from ikehub.auth.radius import (
    ACCESS_ACCEPT,
    ACCESS_CHALLENGE,
    ACCESS_REJECT,
    ACCESS_REQUEST,
    RADIUSClient,
    RADIUSEAPSession,
    RADIUSPacket,
    RADIUSParseError,
    RADIUSResponse,
    RADIUSServer,
    decryptMPPEKey,
    encodeRequest,
    joinEAPMessage,
    messageAuthenticator,
    responseAuthenticator,
    splitEAPMessage,
    verifyResponse,
)
from ikehub.interfaces import IEAPMethod, IEAPMethodPlugin, IEAPSession
from ikehub.plugins.eap_radius import eapRadius

h = bytes.fromhex

# -- an independent encoder, straight from the RFCs --------------------------------------------


def md5(*parts: bytes) -> bytes:
    return hashlib.md5(b"".join(parts)).digest()


def attr(attrType: int, value: bytes) -> bytes:
    return bytes([attrType, 2 + len(value)]) + value


def encodeResponse(
    code,
    identifier,
    requestAuthenticator,
    attributes,
    secret,
    *,
    withMac=True,
    macSecret=None,
    raSecret=None,
):
    """A response per RFC 2865 section 3 and RFC 3579 section 3.2 (Message-Authenticator first)."""
    body = b"".join(attr(t, v) for t, v in attributes)
    if withMac:
        body = attr(80, bytes(16)) + body
    header = bytes([code, identifier]) + (20 + len(body)).to_bytes(2, "big")
    if withMac:
        mac = hmac.new(macSecret or secret, header + requestAuthenticator + body, "md5").digest()
        body = attr(80, mac) + body[18:]
    return header + md5(header, requestAuthenticator, body, raSecret or secret) + body


def saltEncrypt(key: bytes, secret: bytes, requestAuthenticator: bytes, salt: bytes) -> bytes:
    """RFC 2548 section 2.4.2, encryption side."""
    plain = bytes([len(key)]) + key
    plain += bytes(-len(plain) % 16)
    out = b""
    previous = requestAuthenticator + salt
    for i in range(0, len(plain), 16):
        block = bytes(a ^ b for a, b in zip(plain[i : i + 16], md5(secret, previous)))
        out += block
        previous = block
    return salt + out


def microsoft(vendorType: int, value: bytes) -> tuple[int, bytes]:
    return (26, struct.pack("!L", 311) + attr(vendorType, value))


# -- published and recorded vectors ------------------------------------------------------------

# RFC 2865 section 7.1, secret "xyzzy5461".
RFC2865_REQUEST = h(
    "01000038 0f403f94 73978057 bd83d5cb 98f4227a 01066e65 6d6f0212 0dbe708d"
    " 93d413ce 3196e43f 782a0aee 0406c0a8 01100506 00000003"
)
RFC2865_ACCEPT = h(
    "02000026 86fe220e 7624ba2a 1005f6bf 9b55e0b2 06060000 00010f06 00000000 0e06c0a8 0103"
)

# An Access-Request made by FreeRADIUS 3.2.1's radclient (User-Name "bob", NAS-Identifier
# "ikehub", EAP-Message = Identity "bob", Message-Authenticator) with this secret.
RADCLIENT_SECRET = b"xyzzy5461-and-some-more"
RADCLIENT_REQUEST = h(
    "0107003d75d91af338caecacf38c2e3d0ad7df090105626f622008696b656875624f0a0201000801626f62"
    "5012b0af1b69fdd492705bf521479c087a6b"
)

# The last round of an EAP-MSCHAPv2 conversation between this client and FreeRADIUS 3.2.1
# (tests/test_radius_freeradius.py's configuration): our Access-Request and FreeRADIUS's
# Access-Accept with Class, Framed-IP-Address, MS-MPPE-Send/Recv-Key, EAP-Success and
# Message-Authenticator; and the peer's NT-Response of that conversation.
FR_SECRET = b"ikehub-test-radius-secret-0123"
FR_PASSWORD = "correct horse battery"
FR_NT_RESPONSE = h("73cee6679fbd48d516351926b95fd2141cfacf1bb5b64cac")
FR_REQUEST = h(
    "0178005b62037b39031688eb4a373c92278d889850126e7b7354d1e51ee3f49c8621509a79d90107616c6963"
    "650606000000023d06000000052008696b6568756218127c54d6e47d56ccef19d5acb257680b0f4f08020200"
    "061a03"
)
FR_ACCEPT = h(
    "027800b0cbf34ea4e4f443c43f2676d53ceee4ca0806c633644d190b76706e2d73746166661a0c0000013707"
    "06000000011a0c000001370806000000061a2a00000137102481dd0c085fe8b670949c343435d76d416a46d3"
    "55dee68269529d9ada7705ea8fabbd1a2a0000013711248a937b5bfdf639edf31290783afe5ed0f675a61065"
    "23f5c2416ae20b3a2fc375e4954f060302000450129fb4fa2dfdba8f898345067c959e45410107616c696365"
)


class VectorTests(SynchronousTestCase):
    def test_rfc2865ResponseAuthenticator(self):
        """RFC 2865 section 7.1: the Access-Accept's Response Authenticator."""
        self.assertEqual(
            responseAuthenticator(RFC2865_ACCEPT, RFC2865_REQUEST[4:20], b"xyzzy5461"),
            RFC2865_ACCEPT[4:20],
        )
        self.assertNotEqual(
            responseAuthenticator(RFC2865_ACCEPT, RFC2865_REQUEST[4:20], b"xyzzy5462"),
            RFC2865_ACCEPT[4:20],
        )

    def test_rfc2865PacketsParseAndRoundTrip(self):
        """The RFC 2865 section 7.1 packets parse into their attributes and re-encode as-is."""
        request = RADIUSPacket.fromBytes(RFC2865_REQUEST)
        self.assertEqual(request.code, ACCESS_REQUEST)
        self.assertEqual(request.first(1), b"nemo")
        self.assertEqual(request.first(4), h("c0a80110"))
        self.assertEqual(request.toBytes(), RFC2865_REQUEST)
        accept = RADIUSPacket.fromBytes(RFC2865_ACCEPT)
        self.assertEqual([t for t, _ in accept.attributes], [6, 15, 14])
        self.assertEqual(accept.toBytes(), RFC2865_ACCEPT)

    def test_rfc2865AcceptFailsVerificationWithoutMessageAuthenticator(self):
        """A response without a Message-Authenticator is refused (RFC 3579, BlastRADIUS)."""
        with self.assertRaises(RADIUSParseError) as e:
            verifyResponse(RFC2865_ACCEPT, RFC2865_REQUEST[4:20], b"xyzzy5461")
        self.assertIn("Message-Authenticator", e.exception.reason)

    def test_radclientMessageAuthenticator(self):
        """Our HMAC-MD5 Message-Authenticator equals the one FreeRADIUS's radclient made."""
        packet = RADIUSPacket.fromBytes(RADCLIENT_REQUEST)
        self.assertEqual(
            messageAuthenticator(RADCLIENT_REQUEST, packet.authenticator, RADCLIENT_SECRET),
            packet.first(80),
        )
        self.assertEqual(joinEAPMessage(packet), h("0201000801626f62"))

    def test_freeradiusAcceptVerifies(self):
        """
        FreeRADIUS's Access-Accept passes both authenticator checks against our request's
        Request Authenticator, and fails them with any other secret or authenticator.
        """
        requestAuthenticator = FR_REQUEST[4:20]
        packet = verifyResponse(FR_ACCEPT, requestAuthenticator, FR_SECRET)
        self.assertEqual(packet.code, ACCESS_ACCEPT)
        self.assertEqual(packet.values(25), [b"vpn-staff"])
        self.assertEqual(packet.first(8), bytes([198, 51, 100, 77]))
        self.assertEqual(EAPPacket.fromBytes(joinEAPMessage(packet)).code, EAPCode.SUCCESS)
        with self.assertRaises(RADIUSParseError):
            verifyResponse(FR_ACCEPT, requestAuthenticator, FR_SECRET + b"x")
        with self.assertRaises(RADIUSParseError):
            verifyResponse(FR_ACCEPT, bytes(16), FR_SECRET)

    def test_freeradiusRequestMessageAuthenticator(self):
        """Our request that FreeRADIUS (require_message_authenticator) accepted checks out."""
        packet = RADIUSPacket.fromBytes(FR_REQUEST)
        self.assertEqual(packet.attributes[0][0], 80, "Message-Authenticator comes first")
        self.assertEqual(
            messageAuthenticator(FR_REQUEST, packet.authenticator, FR_SECRET), packet.first(80)
        )

    def test_freeradiusMppeKeysAreTheMschapv2Msk(self):
        """
        MS-MPPE-Recv-Key || MS-MPPE-Send-Key from FreeRADIUS, salt-decrypted, equal the first
        32 octets of ikehub's locally computed EAP-MSCHAPv2 MSK (RFC 3079 keys).
        """
        packet = verifyResponse(FR_ACCEPT, FR_REQUEST[4:20], FR_SECRET)
        response = RADIUSResponse(
            packet, RADIUSServer("127.0.0.1", 1812, FR_SECRET), 0, FR_REQUEST[4:20]
        )
        recv, send = response.mppeKeys()
        expected = serverMsk(ntPasswordHash(FR_PASSWORD), FR_NT_RESPONSE)
        self.assertEqual(recv + send, expected[:32])

    def test_everyFlippedOctetOfTheAcceptIsRefused(self):
        """Changing any single octet of the authenticated Accept makes verification fail."""
        for i in range(len(FR_ACCEPT)):
            mangled = bytearray(FR_ACCEPT)
            mangled[i] ^= 0x01
            with self.assertRaises(RADIUSParseError, msg=f"octet {i}"):
                verifyResponse(bytes(mangled), FR_REQUEST[4:20], FR_SECRET)


class MPPEKeyTests(SynchronousTestCase):
    def test_decryptsTheIndependentEncoder(self):
        """RFC 2548 salt decryption inverts the encoder above for 16-, 32- and 33-octet keys."""
        for length in (16, 32, 33, 1):
            key = os.urandom(length)
            auth = os.urandom(16)
            value = saltEncrypt(key, b"s3cret-s3cret-s3cret", auth, b"\x81\x23")
            self.assertEqual(decryptMPPEKey(value, b"s3cret-s3cret-s3cret", auth), key)

    def test_handCheckedValue(self):
        """One value worked by hand: a 16-octet key of zeros under MD5(secret|auth|salt)."""
        secret, auth, salt = b"k" * 16, bytes(range(16)), b"\x80\x01"
        b1 = md5(secret, auth, salt)
        b2 = bytes(a ^ b for a, b in zip(bytes([16]) + bytes(15), b1))
        c2 = bytes(a ^ b for a, b in zip(bytes(1) + bytes(15), md5(secret, b2)))
        self.assertEqual(decryptMPPEKey(salt + b2 + c2, secret, auth), bytes(16))

    def test_malformedValues(self):
        """Wrong lengths, a salt without its high bit and an oversized Key-Length are refused."""
        auth, secret = bytes(16), b"x" * 16
        for value in (b"", b"\x80\x00", b"\x80\x00" + bytes(15), b"\x80\x00" + bytes(17)):
            with self.assertRaises(RADIUSParseError):
                decryptMPPEKey(value, secret, auth)
        with self.assertRaises(RADIUSParseError):
            decryptMPPEKey(saltEncrypt(bytes(16), secret, auth, b"\x00\x01"), secret, auth)
        tooLong = saltEncrypt(bytes(16), secret, auth, b"\x80\x01")
        # Re-encrypt a plaintext whose Key-Length (40) exceeds its 31 following octets.
        plain = bytes([40]) + bytes(31)
        out, previous = b"", auth + b"\x80\x01"
        for i in (0, 16):
            block = bytes(a ^ b for a, b in zip(plain[i : i + 16], md5(secret, previous)))
            out, previous = out + block, block
        self.assertEqual(len(tooLong), len(b"\x80\x01" + out))
        with self.assertRaises(RADIUSParseError):
            decryptMPPEKey(b"\x80\x01" + out, secret, auth)


class CodecTests(SynchronousTestCase):
    def test_malformedPackets(self):
        """Short headers, bad Length fields and bad attribute lengths raise RADIUSParseError."""
        header = lambda length: bytes([2, 1]) + length.to_bytes(2, "big") + bytes(16)  # noqa: E731
        cases = [
            b"",
            bytes(19),
            header(19),
            header(21) + b"\x01",  # Length 21 but the data is shorter... and a truncated attr
            header(30),  # Length beyond the data
            header(4097) + bytes(4077),
            header(22) + b"\x01\x00",  # attribute Length 0
            header(22) + b"\x01\x01",  # attribute Length 1
            header(24) + b"\x01\x05ab",  # attribute runs past the packet
            header(21) + b"\x01",  # a lone attribute type octet
        ]
        for data in cases:
            with self.assertRaises(RADIUSParseError, msg=data.hex()):
                RADIUSPacket.fromBytes(data)

    def test_paddingIgnored(self):
        """Octets beyond the Length field are padding (RFC 2865 section 3)."""
        raw = bytes([2, 1, 0, 23]) + bytes(16) + b"\x01\x03a" + b"junk"
        self.assertEqual(RADIUSPacket.fromBytes(raw).attributes, ((1, b"a"),))

    @given(st.binary(max_size=300))
    def test_arbitraryBytesRaiseOnlyParseErrors(self, data):
        try:
            RADIUSPacket.fromBytes(data)
        except RADIUSParseError:
            pass

    @given(
        st.lists(
            st.tuples(st.integers(1, 255), st.binary(max_size=253)),
            max_size=12,
        )
    )
    def test_roundTrip(self, attributes):
        packet = RADIUSPacket(ACCESS_CHALLENGE, 7, bytes(range(16)), tuple(attributes))
        self.assertEqual(RADIUSPacket.fromBytes(packet.toBytes()), packet)

    def test_splitAndJoinEAPMessage(self):
        """EAP-Message attributes carry 253 octets each and join back in order."""
        message = os.urandom(1000)
        parts = splitEAPMessage(message)
        self.assertEqual([len(v) for _, v in parts], [253, 253, 253, 241])
        packet = RADIUSPacket(ACCESS_CHALLENGE, 1, bytes(16), ((24, b"s"), *parts, (25, b"c")))
        self.assertEqual(joinEAPMessage(packet), message)
        self.assertIsNone(joinEAPMessage(RADIUSPacket(ACCESS_CHALLENGE, 1, bytes(16))))
        split = RADIUSPacket(ACCESS_CHALLENGE, 1, bytes(16), (parts[0], (24, b"s"), parts[1]))
        with self.assertRaises(RADIUSParseError):
            joinEAPMessage(split)

    def test_vendorAttributes(self):
        """Microsoft sub-attributes are found; other vendors skipped; broken ones refused."""
        packet = RADIUSPacket(
            ACCESS_ACCEPT,
            1,
            bytes(16),
            (microsoft(17, b"abc"), (26, struct.pack("!L", 9) + attr(1, b"x"))),
        )
        self.assertEqual(packet.vendorAttributes(311), [(17, b"abc")])
        for bad in (
            b"\x00\x00\x01",
            struct.pack("!L", 311) + b"\x11\x01",
            struct.pack("!L", 311) + b"\x11\x09ab",
        ):
            with self.assertRaises(RADIUSParseError):
                RADIUSPacket(ACCESS_ACCEPT, 1, bytes(16), ((26, bad),)).vendorAttributes(311)

    def test_encodeRequestPutsAValidMessageAuthenticatorFirst(self):
        raw = encodeRequest(
            9, bytes(range(16)), [(1, b"alice"), *splitEAPMessage(b"\x02" * 300)], b"k" * 16
        )
        packet = RADIUSPacket.fromBytes(raw)
        self.assertEqual(packet.attributes[0][0], 80)
        zeroed = raw[:22] + bytes(16) + raw[38:]
        self.assertEqual(packet.first(80), hmac.new(b"k" * 16, zeroed, "md5").digest())


# -- the client and the session on a fake clock --------------------------------------------------

SECRET_A = b"secret-of-server-a"
SECRET_B = b"secret-of-server-b"
SERVER_A = RADIUSServer("192.0.2.10", 1812, SECRET_A)
SERVER_B = RADIUSServer("2001:db8::10", 11812, SECRET_B)


class Harness:
    """A RADIUSClient on task.Clock whose datagrams land in C{sent}."""

    def __init__(self, servers=(SERVER_A, SERVER_B), timeout=3.0, retries=2, failSend=False):
        self.clock = task.Clock()
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

        def send(data, address):
            self.sent.append((data, address))
            if failSend:
                raise OSError("network unreachable")

        self.client = RADIUSClient(servers, send, self.clock, timeout=timeout, retries=retries)
        self.secrets = {(s.address, s.port): s.secret for s in servers}

    def session(self, identity="alice", identityRound=False, **kw):
        kw.setdefault("peerAddress", "198.51.100.9")
        kw.setdefault("localAddress", "203.0.113.1")
        return RADIUSEAPSession(self.client, identity, identityRound, **kw)

    def last(self):
        data, address = self.sent[-1]
        return RADIUSPacket.fromBytes(data), address

    def reply(self, code, attributes, *, eap=None, request=None, **kw):
        """Answer the last (or given) request as its server would; returns the datagram."""
        data, address = request or self.sent[-1]
        packet = RADIUSPacket.fromBytes(data)
        attributes = list(attributes)
        if eap is not None:
            attributes += [(79, eap[i : i + 253]) for i in range(0, len(eap), 253)]
        secret = self.secrets[address]
        datagram = encodeResponse(
            code, packet.identifier, packet.authenticator, attributes, secret, **kw
        )
        return datagram, address

    def deliver(self, datagram, address):
        self.client.datagramReceived(datagram, address)


def fired(d):
    results = []
    d.addBoth(results.append)
    return results


def eapRequest(identifier, eapType=EAPType.MSCHAPV2, data=b"\x01\x00\x00\x05\x10"):
    return EAPPacket(EAPCode.REQUEST, identifier, eapType, data)


class ClientTests(SynchronousTestCase):
    def test_accessRequestContents(self):
        """
        The first Access-Request: a valid Message-Authenticator first, User-Name, EAP-Response/
        Identity with the peer identity, Service-Type Framed, NAS-Port-Type Virtual,
        NAS-Identifier, Calling- and Called-Station-Id, a random authenticator, to server A.
        """
        t = Harness()
        t.session(nasIdentifier="hub-7").start()
        packet, address = t.last()
        self.assertEqual(address, ("192.0.2.10", 1812))
        self.assertEqual(packet.code, ACCESS_REQUEST)
        self.assertEqual(packet.attributes[0][0], 80)
        raw = t.sent[-1][0]
        zeroed = raw[:22] + bytes(16) + raw[38:]
        self.assertEqual(packet.first(80), hmac.new(SECRET_A, zeroed, "md5").digest())
        self.assertEqual(packet.first(1), b"alice")
        self.assertEqual(packet.first(6), struct.pack("!L", 2))
        self.assertEqual(packet.first(61), struct.pack("!L", 5))
        self.assertEqual(packet.first(32), b"hub-7")
        self.assertEqual(packet.first(31), b"198.51.100.9")
        self.assertEqual(packet.first(30), b"203.0.113.1")
        self.assertIsNone(packet.first(24))
        eap = EAPPacket.fromBytes(joinEAPMessage(packet))
        self.assertEqual(
            (eap.code, eap.type, eap.data), (EAPCode.RESPONSE, EAPType.IDENTITY, b"alice")
        )
        t.session().start()
        self.assertNotEqual(
            RADIUSPacket.fromBytes(t.sent[0][0]).authenticator, t.last()[0].authenticator
        )

    def test_challengeContinuesAndStateIsEchoed(self):
        """Access-Challenge gives Continue with the server's EAP Request; the next request
        echoes the State and relays the peer's Response."""
        t = Harness()
        session = t.session()
        results = fired(session.start())
        self.assertEqual(results, [])
        request = eapRequest(42)
        t.deliver(*t.reply(ACCESS_CHALLENGE, [(24, b"state-1")], eap=request.toBytes()))
        self.assertEqual(results, [Continue(request)])
        response = EAPPacket(EAPCode.RESPONSE, 42, EAPType.MSCHAPV2, b"\x02" * 60)
        session.receive(response.toBytes())
        packet, _ = t.last()
        self.assertEqual(packet.first(24), b"state-1")
        self.assertEqual(joinEAPMessage(packet), response.toBytes())

    def acceptWith(self, attributes, eap=EAPPacket(EAPCode.SUCCESS, 42, None).toBytes()):
        t = Harness()
        session = t.session()
        session.start()
        t.deliver(*t.reply(ACCESS_CHALLENGE, [(24, b"s")], eap=eapRequest(42).toBytes()))
        results = fired(session.receive(EAPPacket(EAPCode.RESPONSE, 42, 26, b"\x03").toBytes()))
        _, address = t.last()
        auth = t.last()[0].authenticator
        attributes = [
            microsoft(v, saltEncrypt(k, t.secrets[address], auth, salt)) if v else (a, k)
            for a, v, k, salt in attributes
        ]
        t.deliver(*t.reply(ACCESS_ACCEPT, attributes, eap=eap))
        [outcome] = results
        return outcome

    def test_acceptSucceedsWithMskGroupsAndAddress(self):
        """Access-Accept: MSK = Recv-Key || Send-Key, Class values as groups, Framed-IP-Address,
        the server's EAP-Success as the message."""
        recv, send = os.urandom(32), os.urandom(32)
        outcome = self.acceptWith(
            [
                (None, 17, recv, b"\x80\x07"),
                (None, 16, send, b"\x93\x10"),
                (25, None, b"vpn-staff", None),
                (25, None, b"\xff\xfe", None),  # not text: not a group
                (25, None, b"admins", None),
                (8, None, bytes([198, 51, 100, 77]), None),
            ]
        )
        self.assertIsInstance(outcome, Succeeded)
        self.assertEqual(outcome.msk, recv + send)
        self.assertEqual(outcome.groups, ("vpn-staff", "admins"))
        self.assertEqual(outcome.address, "198.51.100.77")
        self.assertEqual(outcome.identity, "alice")
        self.assertEqual(outcome.message, EAPPacket(EAPCode.SUCCESS, 42, None).toBytes())

    def test_acceptWithoutEapMessageSynthesizesSuccess(self):
        """No EAP-Message in the Accept: an EAP-Success with the peer's last identifier; no
        MPPE keys: no MSK; Framed-IP-Address 255.255.255.254 is not an address."""
        outcome = self.acceptWith([(8, None, b"\xff\xff\xff\xfe", None)], eap=None)
        self.assertIsInstance(outcome, Succeeded)
        self.assertEqual(outcome.message, EAPPacket(EAPCode.SUCCESS, 42, None).toBytes())
        self.assertIsNone(outcome.msk)
        self.assertIsNone(outcome.address)

    def test_rejectFails(self):
        """Access-Reject: Failed with the server's EAP-Failure."""
        t = Harness()
        results = fired(t.session().start())
        failure = EAPPacket(EAPCode.FAILURE, 0, None).toBytes()
        t.deliver(*t.reply(ACCESS_REJECT, [], eap=failure))
        [outcome] = results
        self.assertIsInstance(outcome, Failed)
        self.assertEqual(outcome.message, failure)
        self.assertIn("rejected", outcome.reason)
        self.assertEqual(outcome.identity, "alice")

    def test_retransmissionFailoverAndSilence(self):
        """
        timeout 3 s, 2 retries: the same datagram to A at 0, 3, 6; a new request (new
        identifier space, new authenticator, B's secret) to B at 9, 12, 15; Failed("no RADIUS
        server answered") at 18 and not before.
        """
        t = Harness()
        results = fired(t.session().start())
        times = []
        for _ in range(20):
            times.append((t.clock.seconds(), len(t.sent)))
            t.clock.advance(1)
            if results:
                break
        sends = {}
        for now, count in times:
            sends.setdefault(count, now)
        self.assertEqual(sorted(sends.items()), [(1, 0), (2, 3), (3, 6), (4, 9), (5, 12), (6, 15)])
        self.assertEqual(t.clock.seconds(), 18)
        self.assertEqual(results[0].reason, "no RADIUS server answered")
        self.assertIsInstance(results[0], Failed)
        self.assertEqual(EAPPacket.fromBytes(results[0].message).code, EAPCode.FAILURE)
        self.assertEqual(len({d for d, _ in t.sent[:3]}), 1, "retransmissions are identical")
        self.assertEqual(
            [a for _, a in t.sent], [("192.0.2.10", 1812)] * 3 + [("2001:db8::10", 11812)] * 3
        )
        self.assertNotEqual(t.sent[0][0][4:20], t.sent[3][0][4:20])
        b = RADIUSPacket.fromBytes(t.sent[3][0])
        self.assertEqual(messageAuthenticator(t.sent[3][0], b.authenticator, SECRET_B), b.first(80))
        self.assertEqual(t.client.counters["retransmissions"], 4)
        self.assertEqual(t.client.counters["failovers"], 1)
        self.assertEqual(t.client.outstanding, 0)
        self.assertEqual(t.clock.getDelayedCalls(), [])

    def test_failoverServerAnswers(self):
        """After A is silent, B's answer is used and B becomes the preferred server; a late
        answer from A to its old request is dropped."""
        t = Harness(retries=0)
        results = fired(t.session().start())
        requestToA = t.sent[-1]
        t.clock.advance(3)
        self.assertEqual(t.last()[1], ("2001:db8::10", 11812))
        t.deliver(*t.reply(ACCESS_CHALLENGE, [], eap=eapRequest(1).toBytes()))
        self.assertIsInstance(results[0], Continue)
        self.assertEqual(t.client.preferred, 1)
        t.deliver(*t.reply(ACCESS_CHALLENGE, [], eap=eapRequest(1).toBytes(), request=requestToA))
        self.assertEqual(t.client.counters["dropped_unexpected"], 1)
        t.session().start()
        self.assertEqual(t.last()[1], ("2001:db8::10", 11812))

    def test_forgedAndMangledResponsesAreDropped(self):
        """
        Responses from an unknown source, for no outstanding identifier, with a wrong Response
        Authenticator, a wrong or missing Message-Authenticator, a non-response code, or
        garbage are dropped and counted; the genuine one afterwards is accepted.
        """
        t = Harness()
        results = fired(t.session().start())
        eap = eapRequest(5).toBytes()
        good, address = t.reply(ACCESS_CHALLENGE, [], eap=eap)
        packet, _ = t.last()
        forgeries = [
            (good, ("192.0.2.99", 1812)),
            (good, ("192.0.2.10", 1813)),
            (good[:1] + bytes([(good[1] + 1) & 0xFF]) + good[2:], address),
            (t.reply(ACCESS_CHALLENGE, [], eap=eap, raSecret=b"wrong")[0], address),
            (t.reply(ACCESS_CHALLENGE, [], eap=eap, macSecret=b"wrong")[0], address),
            (t.reply(ACCESS_CHALLENGE, [], eap=eap, withMac=False)[0], address),
            (t.reply(ACCESS_REQUEST, [], eap=eap)[0], address),
            (good[:-3], address),
            (b"\x0b", address),
            (good, ("not an address", 1812)),
        ]
        for datagram, source in forgeries:
            t.deliver(datagram, source)
        self.assertEqual(results, [])
        counters = t.client.counters
        self.assertEqual(counters["dropped_unknown_source"], 3)
        self.assertEqual(counters["dropped_unexpected"], 1)
        self.assertEqual(counters["dropped_bad_response"], 5)
        self.assertEqual(counters["dropped_malformed"], 1)
        t.deliver(good, address)
        self.assertEqual(results, [Continue(EAPPacket.fromBytes(eap))])
        t.deliver(good, address)  # a duplicate after the answer: no longer outstanding
        self.assertEqual(counters["dropped_unexpected"], 2)

    def test_longEapMessagesSplitAndJoined(self):
        """A 1200-octet peer Response goes out in 253-octet EAP-Message attributes; a
        1500-octet server Request comes back joined."""
        t = Harness()
        session = t.session()
        session.start()
        t.deliver(
            *t.reply(ACCESS_CHALLENGE, [(24, b"s")], eap=eapRequest(3, 13, b"\x20").toBytes())
        )
        big = EAPPacket(EAPCode.RESPONSE, 3, 13, os.urandom(1195))
        results = fired(session.receive(big.toBytes()))
        packet, _ = t.last()
        sizes = [len(v) for a, v in packet.attributes if a == 79]
        self.assertEqual(sizes, [253, 253, 253, 253, 188])
        self.assertEqual(joinEAPMessage(packet), big.toBytes())
        reply = eapRequest(4, 13, os.urandom(1495))
        t.deliver(*t.reply(ACCESS_CHALLENGE, [], eap=reply.toBytes()))
        self.assertEqual(results, [Continue(reply)])

    def test_eapTooLongForRadiusFails(self):
        t = Harness()
        session = t.session()
        session.start()
        t.deliver(*t.reply(ACCESS_CHALLENGE, [], eap=eapRequest(3, 13, b"\x20").toBytes()))
        outcome = fired(session.receive(EAPPacket(EAPCode.RESPONSE, 3, 13, bytes(4000)).toBytes()))
        self.assertIsInstance(outcome[0], Failed)
        self.assertIn("too long", outcome[0].reason)

    def test_identityRound(self):
        """With an identity round start() is a local Identity Request; the peer's Identity
        Response is relayed with its identity as User-Name."""
        t = Harness()
        session = t.session("ignored@idi", identityRound=True, firstIdentifier=200)
        [first] = fired(session.start())
        self.assertEqual(first.request, EAPPacket(EAPCode.REQUEST, 200, EAPType.IDENTITY))
        self.assertEqual(t.sent, [])
        response = EAPPacket(EAPCode.RESPONSE, 200, EAPType.IDENTITY, b"bob@example.com")
        session.receive(response.toBytes())
        packet, _ = t.last()
        self.assertEqual(packet.first(1), b"bob@example.com")
        self.assertEqual(joinEAPMessage(packet), response.toBytes())
        self.assertEqual(session.identity, "bob@example.com")

    def test_badPeerPackets(self):
        """Garbage or non-Responses from the peer fail locally; a wrong identifier is answered
        with the outstanding Request, up to three times."""
        t = Harness()
        session = t.session(identityRound=True, firstIdentifier=1)
        session.start()
        for _ in range(3):
            [again] = fired(session.receive(EAPPacket(EAPCode.RESPONSE, 9, 1, b"x").toBytes()))
            self.assertEqual(again.request.identifier, 1)
        [failed] = fired(session.receive(EAPPacket(EAPCode.RESPONSE, 9, 1, b"x").toBytes()))
        self.assertIsInstance(failed, Failed)
        for data in (b"\x00", EAPPacket(EAPCode.REQUEST, 1, 1).toBytes()):
            s = t.session(identityRound=True, firstIdentifier=1)
            s.start()
            [outcome] = fired(s.receive(data))
            self.assertIsInstance(outcome, Failed)
        self.assertEqual(t.sent, [])

    def test_sendErrorsStillEndInAnOutcome(self):
        """A transport that raises on every send: the Deferred still fires with Failed."""
        t = Harness(failSend=True, timeout=1, retries=0)
        results = fired(t.session().start())
        t.clock.advance(1)
        self.assertEqual(results, [])
        t.clock.advance(1)
        self.assertEqual([type(r) for r in results], [Failed])
        self.flushLoggedErrors(OSError)

    def test_cancelEndsInFailed(self):
        """Cancelling a pending outcome (the IKE SA went away) frees the request: Failed."""
        t = Harness()
        session = t.session()
        d = session.start()
        results = fired(d)
        d.cancel()
        self.assertIsInstance(results[0], Failed)
        self.assertEqual(t.client.outstanding, 0)
        self.assertEqual(t.clock.getDelayedCalls(), [])

    def test_identifiersPerServerAndExhaustion(self):
        """Concurrent requests to one server get distinct identifiers; with all 256 in use the
        next request goes to the next server."""
        t = Harness()
        for _ in range(256):
            t.client.request([(1, b"x"), *splitEAPMessage(b"\x02\x00\x00\x05\x01")])
        ids = {RADIUSPacket.fromBytes(d).identifier for d, a in t.sent}
        self.assertEqual(len(ids), 256)
        t.client.request([(1, b"x"), *splitEAPMessage(b"\x02\x00\x00\x05\x01")])
        self.assertEqual(t.last()[1], ("2001:db8::10", 11812))

    def test_interfaces(self):
        self.assertTrue(verifyObject(IEAPSession, Harness().session()))


# -- the plugin ------------------------------------------------------------------------------


class FakePort:
    def __init__(self):
        self.listening = True

    def stopListening(self):
        self.listening = False


class FakeUDPReactor(task.Clock):
    """A clock whose listenUDP records (port, protocol, interface) and hands out fake ports."""

    def __init__(self):
        super().__init__()
        self.udpServers = []
        self.ports = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udpServers.append((port, protocol, interface))
        self.ports.append(FakePort())
        return self.ports[-1]


class PluginTests(SynchronousTestCase):
    def context(self, options, configPath=""):
        reactor = FakeUDPReactor()
        return PluginContext(
            "eap-radius", options=options, configPath=configPath, clock=reactor, reactor=reactor
        )

    def mktemp(self):
        """A fresh path in a private temporary directory removed after the test."""
        directory = tempfile.mkdtemp(prefix="ikehub-radius-")
        self.addCleanup(shutil.rmtree, directory, True)
        return os.path.join(directory, "file")

    def secretFile(self, mode=0o600, content=b"file-secret-0123456789\n"):
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(content)
        os.chmod(path, mode)
        return path

    def assertConfigError(self, options, key, fragment, configPath=""):
        with self.assertRaises(PluginConfigError) as e:
            eapRadius.build(self.context(options, configPath))
        self.assertEqual(e.exception.key, key)
        self.assertIn(fragment, e.exception.problem)

    def test_plugin(self):
        """Found by getPlugins, provides IEAPMethodPlugin and IPlugin, mutual."""
        self.assertIn(eapRadius, list(getPlugins(IEAPMethodPlugin, ikehub.plugins)))
        self.assertTrue(verifyObject(IEAPMethodPlugin, eapRadius))
        self.assertTrue(IPlugin.providedBy(eapRadius))
        self.assertEqual(eapRadius.name, "eap-radius")
        self.assertTrue(eapRadius.mutual)

    def test_cheapImport(self):
        """Importing the plugin module does not import the RADIUS code."""
        code = (
            "import sys, ikehub.plugins.eap_radius; sys.exit('ikehub.auth.radius' in sys.modules)"
        )
        self.assertEqual(subprocess.run([sys.executable, "-c", code]).returncode, 0)

    def test_buildDefaults(self):
        """A minimal table builds: port 1812, timeout 3, retries 2, NAS-Identifier ikehub,
        one UDP socket per address family on an ephemeral port."""
        ctx = self.context(
            {
                "servers": [
                    {"address": "192.0.2.1", "secret": "0123456789abcdef"},
                    {"address": "2001:db8::1", "port": 1645, "secret_file": self.secretFile()},
                ]
            }
        )
        method = eapRadius.build(ctx)
        self.assertTrue(verifyObject(IEAPMethod, method))
        self.assertEqual(method.name, "eap-radius")
        client = method.client
        self.assertEqual((client.timeout, client.retries), (3.0, 2))
        self.assertEqual(client.servers[0], RADIUSServer("192.0.2.1", 1812, b"0123456789abcdef"))
        self.assertEqual(client.servers[1].secret, b"file-secret-0123456789")
        self.assertEqual(client.servers[1].port, 1645)
        self.assertEqual(method.nasIdentifier, "ikehub")
        ports = ctx.reactor.udpServers
        self.assertEqual([(p[0], p[2]) for p in ports], [(0, ""), (0, "::")])
        self.assertTrue(verifyObject(IEAPSession, method.newSession("alice", False)))
        method.close()
        self.assertEqual([p.listening for p in ctx.reactor.ports], [False, False])

    def test_relativeSecretFile(self):
        """secret_file is relative to the configuration file's directory."""
        path = self.secretFile()
        config = os.path.join(os.path.dirname(os.path.abspath(path)), "ikehub.toml")
        method = eapRadius.build(
            self.context(
                {"servers": [{"address": "192.0.2.1", "secret_file": os.path.basename(path)}]},
                config,
            )
        )
        self.assertEqual(method.client.servers[0].secret, b"file-secret-0123456789")

    def test_configErrors(self):
        good = {"address": "192.0.2.1", "secret": "0123456789abcdef"}
        cases = [
            ({"servers": [good], "bogus": 1}, "bogus", "unknown option"),
            ({}, "servers", "at least one server"),
            ({"servers": []}, "servers", "non-empty list"),
            ({"servers": good}, "servers", "non-empty list"),
            ({"servers": ["192.0.2.1"]}, "servers[0]", "table"),
            ({"servers": [{**good, "secert": "x"}]}, "servers[0].secert", "unknown server option"),
            (
                {"servers": [{**good, "address": "radius.example.com"}]},
                "servers[0].address",
                "not an IP",
            ),
            ({"servers": [{**good, "address": 3}]}, "servers[0].address", "IP address"),
            ({"servers": [{**good, "port": "1812"}]}, "servers[0].port", "port number"),
            ({"servers": [{**good, "port": 0}]}, "servers[0].port", "port number"),
            ({"servers": [{**good, "port": True}]}, "servers[0].port", "port number"),
            ({"servers": [{"address": "192.0.2.1"}]}, "servers[0]", "exactly one of"),
            ({"servers": [{**good, "secret_file": "x"}]}, "servers[0]", "exactly one of"),
            ({"servers": [{**good, "secret": "short"}]}, "servers[0].secret", "at least 16"),
            ({"servers": [{**good, "secret": 1234}]}, "servers[0].secret", "text"),
            ({"servers": [good, dict(good)]}, "servers[1]", "listed twice"),
            ({"servers": [good], "timeout": "3"}, "timeout", "seconds"),
            ({"servers": [good], "timeout": 0}, "timeout", "seconds"),
            ({"servers": [good], "timeout": True}, "timeout", "seconds"),
            ({"servers": [good], "retries": 2.5}, "retries", "whole number"),
            ({"servers": [good], "retries": -1}, "retries", "whole number"),
            ({"servers": [good], "nas_identifier": ""}, "nas_identifier", "1 to 253"),
            ({"servers": [good], "nas_identifier": 7}, "nas_identifier", "1 to 253"),
        ]
        for options, key, fragment in cases:
            with self.subTest(options=options):
                self.assertConfigError(options, key, fragment)

    def test_secretFileErrors(self):
        """Missing, group/other-readable, directory, unreadable or short secret files."""
        missing = self.mktemp()
        directory = self.mktemp()
        os.mkdir(directory)
        cases = [
            (missing, "does not exist"),
            (self.secretFile(mode=0o644), "chmod 600"),
            (self.secretFile(mode=0o640), "chmod 600"),
            (directory, "directory"),
            (self.secretFile(content=b"short\n"), "at least 16"),
            (self.secretFile(content=bytes(70000)), "larger than"),
        ]
        for path, fragment in cases:
            with self.subTest(path=path):
                self.assertConfigError(
                    {"servers": [{"address": "192.0.2.1", "secret_file": path}]},
                    "servers[0].secret_file",
                    fragment,
                )
