"""
EAP-MSCHAPv2 server (draft-kamath-pppext-eap-mschapv2-02 carrying RFC 2759 MS-CHAP-V2),
with the MSK of RFC 3079 in the layout Windows and strongSwan use for IKEv2.

The exchange::

    server                                   peer
    Challenge  (OpCode 1, 16-octet challenge) ->
               <- Response (OpCode 2, peer challenge, NT-Response, Name)
    Success    (OpCode 3, "S=<authenticator response> M=...") ->
               <- Success (OpCode 3)                    => Succeeded(msk)
  or, when the NT-Response is wrong:
    Failure    (OpCode 4, "E=691 R=0 C=... V=3 M=...") ->
               <- Failure (OpCode 4)                    => Failed

No retries are offered (R=0): a wrong password ends the conversation.

The MSK is C{MasterReceiveKey | MasterSendKey | 32 zero octets} (64 octets), both keys
from the server's point of view (RFC 3079 section 3.3 GetAsymmetricStartKey with
IsServer). Sources: Microsoft's [MS-CHAP] section 3.1.5.1 ("MSK = MasterReceiveKey +
MasterSendKey + 32 bytes zeroes (padding)") and strongSwan's eap_mschapv2 plugin
(C{GenerateMSK}: receive key, send key, two 16-octet zero pads). hostapd exports only the
first 32 octets; with IKEv2's HMAC PRFs that is the same key, since HMAC zero-pads a key
to its block size, but with AES-XCBC/CMAC PRFs only the 64-octet form interoperates.

Primitives: MD4 from pycryptodome (C{Crypto.Hash.MD4}, the one thing taken from it,
since neither C{cryptography} nor OpenSSL 3's default provider has MD4), single DES as
C{cryptography}'s TripleDES with the key repeated three times, SHA-1 from C{cryptography}.
"""

from __future__ import annotations

import hmac
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from Crypto.Hash import MD4
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from ikehub.auth.eap.conversation import Continue, EAPServerMethod, Failed, Outcome, Succeeded
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType

if TYPE_CHECKING:
    from ikehub.auth.users import UserDatabase

__all__ = [
    "OPCODE_CHALLENGE",
    "OPCODE_FAILURE",
    "OPCODE_RESPONSE",
    "OPCODE_SUCCESS",
    "EAPMSCHAPv2Server",
    "challengeHash",
    "challengeResponse",
    "generateAuthenticatorResponse",
    "generateNtResponse",
    "getAsymmetricStartKey",
    "getMasterKey",
    "hashNtPasswordHash",
    "mschapUserName",
    "ntPasswordHash",
    "serverMsk",
]

OPCODE_CHALLENGE = 1
OPCODE_RESPONSE = 2
OPCODE_SUCCESS = 3
OPCODE_FAILURE = 4

CHALLENGE_LENGTH = 16
#: Peer-Challenge 16, Reserved 8, NT-Response 24, Flags 1 (RFC 2759 section 4).
RESPONSE_VALUE_LENGTH = 49
#: ERROR_AUTHENTICATION_FAILURE (RFC 2759 section 6).
ERROR_AUTHENTICATION_FAILURE = 691

# RFC 2759 section 8.7
_AUTH_MAGIC1 = b"Magic server to client signing constant"
_AUTH_MAGIC2 = b"Pad to make it do more than one iteration"
# RFC 3079 section 3.4
_KEY_MAGIC1 = b"This is the MPPE Master Key"
_KEY_MAGIC2 = (
    b"On the client side, this is the send key; on the server side, it is the receive key."
)
_KEY_MAGIC3 = (
    b"On the client side, this is the receive key; on the server side, it is the send key."
)
_SHS_PAD1 = b"\x00" * 40
_SHS_PAD2 = b"\xf2" * 40

# OpCode, MS-CHAPv2-ID, MS-Length
_HEADER = struct.Struct("!BBH")


# -- RFC 2759 section 8 and RFC 3079 section 3 -----------------------------------------------


def _sha1(*parts: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA1())
    for part in parts:
        digest.update(part)
    return digest.finalize()


def _md4(data: bytes) -> bytes:
    return MD4.new(data).digest()


def ntPasswordHash(password: str) -> bytes:
    """NtPasswordHash: MD4 of the password in UTF-16LE (RFC 2759 section 8.3)."""
    return _md4(password.encode("utf-16-le"))


def hashNtPasswordHash(passwordHash: bytes) -> bytes:
    """HashNtPasswordHash (RFC 2759 section 8.4)."""
    return _md4(passwordHash)


def mschapUserName(name: bytes) -> bytes:
    """
    The user name that enters ChallengeHash: the Name without a prepended
    C{DOMAIN\\} (RFC 2759 section 8.2), cut at the first backslash as strongSwan does.
    """
    _, backslash, user = name.partition(b"\\")
    return user if backslash else name


def challengeHash(peerChallenge: bytes, authenticatorChallenge: bytes, userName: bytes) -> bytes:
    """ChallengeHash (RFC 2759 section 8.2): 8 octets. C{userName} is already stripped."""
    return _sha1(peerChallenge, authenticatorChallenge, userName)[:8]


def _expandDesKey(key7: bytes) -> bytes:
    """Spread 56 key bits over 8 octets, 7 per octet, with odd parity in the low bit."""
    bits = int.from_bytes(key7, "big")
    out = bytearray()
    for i in range(8):
        septet = (bits >> (49 - 7 * i)) & 0x7F
        octet = septet << 1
        out.append(octet | (octet.bit_count() + 1) % 2)
    return bytes(out)


def _desEncrypt(clear: bytes, key7: bytes) -> bytes:
    """DesEncrypt (RFC 2759 section 8.6): single DES, as 3DES with K1 = K2 = K3."""
    key = _expandDesKey(key7)
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(clear) + encryptor.finalize()


def challengeResponse(challenge: bytes, passwordHash: bytes) -> bytes:
    """ChallengeResponse (RFC 2759 section 8.5): 24 octets."""
    zPasswordHash = passwordHash.ljust(21, b"\x00")
    return b"".join(_desEncrypt(challenge, zPasswordHash[i : i + 7]) for i in (0, 7, 14))


def generateNtResponse(
    authenticatorChallenge: bytes, peerChallenge: bytes, userName: bytes, passwordHash: bytes
) -> bytes:
    """
    GenerateNTResponse (RFC 2759 section 8.1), from the password hash rather than the
    password, so that a stored NT hash is enough.
    """
    challenge = challengeHash(peerChallenge, authenticatorChallenge, userName)
    return challengeResponse(challenge, passwordHash)


def generateAuthenticatorResponse(
    passwordHash: bytes,
    ntResponse: bytes,
    peerChallenge: bytes,
    authenticatorChallenge: bytes,
    userName: bytes,
) -> str:
    """GenerateAuthenticatorResponse (RFC 2759 section 8.7): C{"S=" + 40 hex digits}."""
    digest = _sha1(hashNtPasswordHash(passwordHash), ntResponse, _AUTH_MAGIC1)
    challenge = challengeHash(peerChallenge, authenticatorChallenge, userName)
    digest = _sha1(digest, challenge, _AUTH_MAGIC2)
    return "S=" + digest.hex().upper()


def getMasterKey(passwordHashHash: bytes, ntResponse: bytes) -> bytes:
    """GetMasterKey (RFC 3079 section 3.4): 16 octets."""
    return _sha1(passwordHashHash, ntResponse, _KEY_MAGIC1)[:16]


def getAsymmetricStartKey(masterKey: bytes, keyLength: int, isSend: bool, isServer: bool) -> bytes:
    """GetAsymmetricStartKey (RFC 3079 section 3.4)."""
    magic = _KEY_MAGIC3 if isSend == isServer else _KEY_MAGIC2
    return _sha1(masterKey, _SHS_PAD1, magic, _SHS_PAD2)[:keyLength]


def serverMsk(passwordHash: bytes, ntResponse: bytes) -> bytes:
    """
    The 64-octet EAP-MSCHAPv2 MSK as the authenticator exports it:
    MasterReceiveKey | MasterSendKey | 32 zero octets ([MS-CHAP] section 3.1.5.1).
    """
    masterKey = getMasterKey(hashNtPasswordHash(passwordHash), ntResponse)
    receiveKey = getAsymmetricStartKey(masterKey, 16, isSend=False, isServer=True)
    sendKey = getAsymmetricStartKey(masterKey, 16, isSend=True, isServer=True)
    return receiveKey + sendKey + b"\x00" * 32


# -- the server method ---------------------------------------------------------------------

_EXPECT_RESPONSE = "expect-response"
_EXPECT_SUCCESS = "expect-success"
_EXPECT_FAILURE = "expect-failure"
_DONE = "done"

_OPCODE_NAMES = {
    OPCODE_CHALLENGE: "Challenge",
    OPCODE_RESPONSE: "Response",
    OPCODE_SUCCESS: "Success",
    OPCODE_FAILURE: "Failure",
    7: "Change-Password",
}


class EAPMSCHAPv2Server(EAPServerMethod):
    """
    EAP-MSCHAPv2 for one peer, checked against the NT hash in the user database.

    The MS-CHAPv2 Name in the peer's Response must be exactly the identity this method
    was started for (the EAP identity): a peer may not switch identities mid-method.
    An unknown user is checked against a random hash, so it costs the same and looks
    the same to the peer as a wrong password.

    @param authenticatorChallenge: fixed challenge for tests; random otherwise.
    """

    eapType = EAPType.MSCHAPV2
    name = "eap-mschapv2"

    def __init__(
        self,
        identity: str,
        users: UserDatabase,
        *,
        serverName: str = "ikehub",
        authenticatorChallenge: bytes | None = None,
        successMessage: str = "Welcome",
    ) -> None:
        if authenticatorChallenge is None:
            authenticatorChallenge = os.urandom(CHALLENGE_LENGTH)
        if len(authenticatorChallenge) != CHALLENGE_LENGTH:
            raise ValueError("the authenticator challenge is 16 octets")
        self.identity = identity
        self.users = users
        self.serverName = serverName.encode("utf-8")
        self.successMessage = successMessage
        self.authenticatorChallenge = authenticatorChallenge
        self.msChapId = 0
        self.state = _EXPECT_RESPONSE
        self._msk: bytes | None = None
        self._failureReason = ""

    @classmethod
    def factory(cls, users: UserDatabase, **options: object) -> Callable[[str], EAPServerMethod]:
        """A C{methodFactory} for L{EAPConversation} that checks against C{users}."""
        return lambda identity: cls(identity, users, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} identity={self.identity!r} state={self.state}>"

    def start(self, identifier: int) -> EAPPacket:
        self.msChapId = identifier
        value = bytes([CHALLENGE_LENGTH]) + self.authenticatorChallenge + self.serverName
        return self._request(identifier, OPCODE_CHALLENGE, value)

    def handle(self, response: EAPPacket) -> Outcome:
        data = response.data
        if not data:
            return self._finish(Failed("empty EAP-MSCHAPv2 Response"))
        opcode = data[0]
        if opcode == OPCODE_FAILURE:
            if self.state == _EXPECT_FAILURE:
                return self._finish(Failed(self._failureReason))
            return self._finish(Failed("the peer aborted EAP-MSCHAPv2 with a Failure"))
        if self.state == _EXPECT_RESPONSE and opcode == OPCODE_RESPONSE:
            return self._response(response.identifier, data)
        if self.state == _EXPECT_SUCCESS and opcode == OPCODE_SUCCESS and self._msk:
            return self._finish(Succeeded(self._msk))
        if self.state == _EXPECT_FAILURE:
            return self._finish(Failed(self._failureReason))
        if opcode not in _OPCODE_NAMES:
            return self._finish(Failed(f"unknown MS-CHAPv2 OpCode {opcode}"))
        return self._finish(
            Failed(f"unexpected MS-CHAPv2 {_OPCODE_NAMES[opcode]} (state {self.state})")
        )

    # -- the Response ---------------------------------------------------------------------

    def _response(self, identifier: int, data: bytes) -> Outcome:
        if len(data) < _HEADER.size:
            return self._finish(Failed("truncated MS-CHAPv2 Response header"))
        _, msChapId, msLength = _HEADER.unpack_from(data)
        if msLength != len(data):
            return self._finish(
                Failed(f"MS-Length {msLength} does not match the {len(data)} octets received")
            )
        if msChapId != self.msChapId:
            return self._finish(
                Failed(f"MS-CHAPv2-ID {msChapId} does not match the Challenge's {self.msChapId}")
            )
        if len(data) < _HEADER.size + 1 + RESPONSE_VALUE_LENGTH:
            return self._finish(Failed("truncated MS-CHAPv2 Response"))
        valueSize = data[_HEADER.size]
        if valueSize != RESPONSE_VALUE_LENGTH:
            return self._finish(Failed(f"MS-CHAPv2 Response Value-Size {valueSize} is not 49"))
        value = data[_HEADER.size + 1 : _HEADER.size + 1 + RESPONSE_VALUE_LENGTH]
        peerChallenge = value[:16]
        ntResponse = value[24:48]
        name = data[_HEADER.size + 1 + RESPONSE_VALUE_LENGTH :]
        if name != self.identity.encode("utf-8"):
            return self._finish(Failed("the MS-CHAPv2 Name differs from the EAP identity"))

        nextIdentifier = (identifier + 1) & 0xFF
        user = self.users.lookup(self.identity)
        passwordHash = user.ntHash() if user is not None else os.urandom(16)
        userName = mschapUserName(name)
        expected = generateNtResponse(
            self.authenticatorChallenge, peerChallenge, userName, passwordHash
        )
        if user is None or not hmac.compare_digest(expected, ntResponse):
            self._failureReason = "unknown user" if user is None else "wrong password"
            self.state = _EXPECT_FAILURE
            message = (
                f"E={ERROR_AUTHENTICATION_FAILURE} R=0 C={os.urandom(16).hex().upper()} "
                "V=3 M=Authentication failed"
            )
            failure = self._request(nextIdentifier, OPCODE_FAILURE, message.encode("ascii"))
            return Continue(failure)

        authenticatorResponse = generateAuthenticatorResponse(
            passwordHash, ntResponse, peerChallenge, self.authenticatorChallenge, userName
        )
        self._msk = serverMsk(passwordHash, ntResponse)
        self.state = _EXPECT_SUCCESS
        message = f"{authenticatorResponse} M={self.successMessage}"
        return Continue(self._request(nextIdentifier, OPCODE_SUCCESS, message.encode("utf-8")))

    # -- helpers ---------------------------------------------------------------------------

    def _request(self, identifier: int, opcode: int, value: bytes) -> EAPPacket:
        """A Request whose MS-Length counts from the OpCode to the end (the EAP Length - 5)."""
        body = _HEADER.pack(opcode, self.msChapId, _HEADER.size + len(value)) + value
        return EAPPacket(EAPCode.REQUEST, identifier, EAPType.MSCHAPV2, body)

    def _finish(self, outcome: Outcome) -> Outcome:
        self.state = _DONE
        self._msk = None if isinstance(outcome, Failed) else self._msk
        return outcome
