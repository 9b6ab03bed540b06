"""
Stateless cookies (RFC 7296 section 2.6).

When too many IKE SAs are half-open, the responder answers IKE_SA_INIT with a COOKIE notify and
keeps nothing; a genuine initiator repeats its request with the cookie as the first payload,
proving that it receives at its source address. Cookie = version | HMAC-SHA256(secret, Ni | IPi |
SPIi) truncated to 16 bytes, so a cookie is good only for the address, SPI and nonce it was made
for.

The secret changes every C{period} seconds of the injected clock, so that a cookie cannot be
replayed for long: a cookie made with the previous secret is still accepted during the period
after it was replaced (an initiator whose retry crosses a rotation is not challenged twice), and
refused after that. The version byte says which secret made a cookie, so checking is one HMAC.
"""

import hmac
import ipaddress
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

#: Our cookies: a version byte and 16 bytes of MAC (RFC 7296 allows 1..64).
COOKIE_LENGTH = 1 + 16
#: The lengths RFC 7296 section 2.6 allows for a COOKIE notify's data.
COOKIE_MIN, COOKIE_MAX = 1, 64
#: Seconds between two secrets. Short enough that a cookie cannot be collected and replayed for
#: long, long enough that no genuine retry (one round trip) ever straddles two rotations.
SECRET_PERIOD = 300.0


class CookieJar:
    __slots__ = ("_clock", "_period", "_start", "_epoch", "_version", "_current", "_previous")

    def __init__(self, clock, period: float = SECRET_PERIOD) -> None:
        self._clock = clock
        self._period = period
        self._start = clock.seconds()
        #: How many periods after C{_start} the current secret was made in.
        self._epoch = 0
        self._version = 0
        self._current = os.urandom(32)
        #: The secret before the current one, while it is still honoured; None once expired.
        self._previous: bytes | None = None

    def _rotate(self) -> None:
        epoch = int((self._clock.seconds() - self._start) // self._period)
        if epoch <= self._epoch:
            return
        # Exactly one period later the current secret becomes the previous one; after a longer
        # silence it has expired as well and nothing made before is honoured.
        self._previous = self._current if epoch == self._epoch + 1 else None
        self._current = os.urandom(32)
        self._version = (self._version + 1) % 256
        self._epoch = epoch

    def _secret(self, version: int) -> bytes | None:
        if version == self._version:
            return self._current
        if version == (self._version - 1) % 256:
            return self._previous
        return None

    @staticmethod
    def _mac(secret: bytes, version: int, nonce: bytes, host: str, spiI: bytes) -> bytes:
        mac = crypto_hmac.HMAC(secret, hashes.SHA256())
        mac.update(nonce + ipaddress.ip_address(host).packed + spiI)
        return bytes([version]) + mac.finalize()[:16]

    def make(self, nonce: bytes, host: str, spiI: bytes) -> bytes:
        """A cookie for this initiator's nonce, address and SPI under the current secret."""
        self._rotate()
        return self._mac(self._current, self._version, nonce, host, spiI)

    def check(self, cookie: bytes, nonce: bytes, host: str, spiI: bytes) -> bool:
        """
        Whether C{cookie} is one we made for exactly this nonce, address and SPI, under the
        current secret or the previous one while it is honoured.
        """
        self._rotate()
        if len(cookie) != COOKIE_LENGTH:
            return False
        secret = self._secret(cookie[0])
        if secret is None:
            return False
        return hmac.compare_digest(cookie, self._mac(secret, cookie[0], nonce, host, spiI))
