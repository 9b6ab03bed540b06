"""
EAP-MD5-Challenge server (RFC 3748 section 5.4, computed as CHAP, RFC 1994 section 4.1).

One round: the server sends a random 16-octet challenge, the peer answers
C{MD5(Identifier | password | challenge)}, where Identifier is the EAP identifier of the
Request. It authenticates the peer only, derives no keys (C{Succeeded(msk=None)}), and
needs the cleartext password: a user stored only as C{nt_hash} cannot use it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes

from ikehub.auth.eap.conversation import EAPServerMethod, Failed, Outcome, Succeeded
from ikehub.auth.eap.packet import EAPCode, EAPPacket, EAPType

if TYPE_CHECKING:
    from ikehub.auth.users import UserDatabase

__all__ = ["EAPMD5Server", "chapResponse"]

CHALLENGE_LENGTH = 16
#: An MD5 digest.
RESPONSE_LENGTH = 16


def chapResponse(identifier: int, secret: bytes, challenge: bytes) -> bytes:
    """The CHAP Response Value: MD5 over the identifier octet, the secret and the challenge."""
    digest = hashes.Hash(hashes.MD5())
    digest.update(bytes([identifier]))
    digest.update(secret)
    digest.update(challenge)
    return digest.finalize()


class EAPMD5Server(EAPServerMethod):
    """
    EAP-MD5-Challenge for one peer, checked against the cleartext password in the user
    database. An unknown user, or one without a cleartext password, is answered exactly
    like a wrong password; only C{Failed.reason} tells them apart, for the logs.

    @param challenge: fixed challenge for tests; random otherwise.
    """

    eapType = EAPType.MD5_CHALLENGE
    name = "eap-md5"

    def __init__(
        self,
        identity: str,
        users: UserDatabase,
        *,
        serverName: str = "ikehub",
        challenge: bytes | None = None,
    ) -> None:
        if challenge is None:
            challenge = os.urandom(CHALLENGE_LENGTH)
        if not 1 <= len(challenge) <= 0xFF:
            raise ValueError("the challenge is 1 to 255 octets")
        self.identity = identity
        self.users = users
        self.serverName = serverName.encode("utf-8")
        self.challenge = challenge
        self.identifier: int | None = None

    @classmethod
    def factory(cls, users: UserDatabase, **options: object) -> Callable[[str], EAPServerMethod]:
        """A C{methodFactory} for L{EAPConversation} that checks against C{users}."""
        return lambda identity: cls(identity, users, **options)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} identity={self.identity!r}>"

    def start(self, identifier: int) -> EAPPacket:
        self.identifier = identifier
        data = bytes([len(self.challenge)]) + self.challenge + self.serverName
        return EAPPacket(EAPCode.REQUEST, identifier, EAPType.MD5_CHALLENGE, data)

    def handle(self, response: EAPPacket) -> Outcome:
        if self.identifier is None:
            return Failed("EAP-MD5 Response before its Challenge")
        data = response.data
        if not data:
            return Failed("empty EAP-MD5 Response")
        valueSize = data[0]
        if valueSize != RESPONSE_LENGTH:
            return Failed(f"EAP-MD5 Response Value-Size {valueSize} is not {RESPONSE_LENGTH}")
        if len(data) < 1 + RESPONSE_LENGTH:
            return Failed("truncated EAP-MD5 Response")
        value = data[1 : 1 + RESPONSE_LENGTH]

        user = self.users.lookup(self.identity)
        password = user.password if user is not None else None
        secret = password.encode("utf-8") if password is not None else os.urandom(16)
        expected = chapResponse(self.identifier, secret, self.challenge)
        matches = hmac.compare_digest(expected, value)
        if user is None:
            return Failed("unknown user")
        if password is None:
            return Failed("EAP-MD5 needs a cleartext password and this user has only nt_hash")
        if not matches:
            return Failed("wrong password")
        return Succeeded(msk=None)
