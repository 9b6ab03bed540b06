"""
Stateless cookies (RFC 7296 section 2.6).

When too many IKE SAs are half-open, the responder answers IKE_SA_INIT with a COOKIE notify and
keeps nothing; a genuine initiator repeats its request with the cookie, proving it receives at its
source address. Cookie = version | HMAC-SHA256(secret, Ni | IPi | SPIi), with the secret rotated
so that a cookie cannot be replayed for long; the previous secret stays valid for one period.
"""

import hmac
import ipaddress
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

COOKIE_LENGTH = 1 + 16


class CookieJar:
    __slots__ = ("_clock", "_period", "_secrets", "_version", "_rotatedAt")

    def __init__(self, clock, period: float = 300.0) -> None:
        self._clock = clock
        self._period = period
        self._version = 0
        self._secrets = {0: os.urandom(32)}
        self._rotatedAt = clock.seconds()

    def _rotate(self) -> None:
        now = self._clock.seconds()
        if now - self._rotatedAt < self._period:
            return
        self._version = (self._version + 1) % 256
        self._secrets = {
            self._version: os.urandom(32),
            (self._version - 1) % 256: self._secrets[self._version],
        }
        self._rotatedAt = now

    def _compute(self, version: int, nonce: bytes, host: str, spiI: bytes) -> bytes:
        mac = crypto_hmac.HMAC(self._secrets[version], hashes.SHA256())
        mac.update(nonce + ipaddress.ip_address(host).packed + spiI)
        return bytes([version]) + mac.finalize()[:16]

    def make(self, nonce: bytes, host: str, spiI: bytes) -> bytes:
        self._rotate()
        return self._compute(self._version, nonce, host, spiI)

    def check(self, cookie: bytes, nonce: bytes, host: str, spiI: bytes) -> bool:
        self._rotate()
        if len(cookie) != COOKIE_LENGTH or cookie[0] not in self._secrets:
            return False
        return hmac.compare_digest(cookie, self._compute(cookie[0], nonce, host, spiI))
