"""
Finite-field Diffie-Hellman over the fixed MODP groups of RFC 2409 and RFC 3526.

cryptography has deprecated finite-field DH, so everything that touches its C{dh}
module lives behind L{ModpGroup}: when the support goes, only this file changes. The
deprecation warning fires on attribute access of the C{dh} module, so the names are
fetched once, here, with that one warning silenced.
"""

from __future__ import annotations

import warnings

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning

from ikehub.crypto.errors import InvalidKeyExchange
from ikehub.wire.constants import KeGroup

with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from cryptography.hazmat.primitives.asymmetric import dh as _dh

    _DHParameterNumbers = _dh.DHParameterNumbers
    _DHPublicNumbers = _dh.DHPublicNumbers

GENERATOR = 2

#: The primes as printed in RFC 2409 section 6.2 and RFC 3526 sections 3-5.
_PRIMES_HEX = {
    KeGroup.MODP_1024: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"
    ),
    KeGroup.MODP_2048: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF"
    ),
    KeGroup.MODP_3072: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
    ),
    KeGroup.MODP_4096: (
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
        "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
        "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
        "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
        "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
        "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
        "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
        "3995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33"
        "A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
        "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864"
        "D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7"
        "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8"
        "DBBBC2DB04DE8EF92E8EFC141FBECAA6287C59474E6BC05D99B2964FA090C3A2"
        "233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9"
        "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF"
    ),
}

#: The prime of each group, as an integer.
MODP_PRIMES: dict[int, int] = {
    group: int(text, 16) for group, text in _PRIMES_HEX.items()
}


class ModpGroup:
    """
    One MODP group: its prime, generator 2, and the cryptography parameters object,
    built once and shared by every exchange in the group (building it validates the
    prime, which is too slow to repeat per handshake).
    """

    __slots__ = ("_parameterNumbers", "_parameters", "group", "length", "prime")

    def __init__(self, group: int) -> None:
        self.group = group
        self.prime = MODP_PRIMES[group]
        self.length = (self.prime.bit_length() + 7) // 8
        self._parameterNumbers = _DHParameterNumbers(self.prime, GENERATOR)
        self._parameters = self._parameterNumbers.parameters()

    def generatePrivateKey(self):
        """A fresh private key; its public value is L{publicBytes}."""
        return self._parameters.generate_private_key()

    def publicBytes(self, privateKey) -> bytes:
        """g^x mod p, left-padded to the prime's length as the KE payload carries it."""
        y = privateKey.public_key().public_numbers().y
        return y.to_bytes(self.length, "big")

    def computeSharedSecret(self, privateKey, peerPublic: bytes) -> bytes:
        """
        g^xy mod p, padded to the prime's length (RFC 7296 section 2.14).

        @raise InvalidKeyExchange: C{peerPublic} is not exactly the prime's length or
            its value is outside [2, p-2] (0, 1 and p-1 force a guessable secret).
        """
        if len(peerPublic) != self.length:
            raise InvalidKeyExchange(
                f"MODP group {self.group} public value must be {self.length} bytes, "
                f"got {len(peerPublic)}"
            )
        y = int.from_bytes(peerPublic, "big")
        if not 2 <= y <= self.prime - 2:
            raise InvalidKeyExchange(
                f"MODP group {self.group} public value outside [2, p-2]"
            )
        try:
            peerKey = _DHPublicNumbers(y, self._parameterNumbers).public_key()
            secret = privateKey.exchange(peerKey)
        except (ValueError, UnsupportedAlgorithm) as e:
            raise InvalidKeyExchange(
                f"MODP group {self.group} public value rejected: {e}"
            ) from e
        return secret.rjust(self.length, b"\x00")


_groups: dict[int, ModpGroup] = {}


def modpGroup(group: int) -> ModpGroup:
    """
    The shared L{ModpGroup} for C{group}, built on first use so that a hub that never
    negotiates MODP never pays for it.

    @raise KeyError: C{group} is not one of the MODP groups here.
    """
    instance = _groups.get(group)
    if instance is None:
        instance = _groups[group] = ModpGroup(group)
    return instance
