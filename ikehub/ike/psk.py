"""
AUTH payloads for pre-shared keys (RFC 7296 section 2.15).

AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <signed octets>), where the signed octets
are the sender's IKE_SA_INIT message, the peer's nonce and prf(SK_p, the sender's ID body).
"""

import hmac

from ikehub.crypto.transforms import PrfAlgorithm

KEY_PAD = b"Key Pad for IKEv2"


def signedOctets(
    prf: PrfAlgorithm, initMessage: bytes, peerNonce: bytes, skP: bytes, idBody: bytes
) -> bytes:
    return initMessage + peerNonce + prf.compute(skP, idBody)


def pskAuthData(prf: PrfAlgorithm, psk: bytes, octets: bytes) -> bytes:
    return prf.compute(prf.compute(psk, KEY_PAD), octets)


def verifyPskAuth(prf: PrfAlgorithm, psk: bytes, octets: bytes, received: bytes) -> bool:
    return hmac.compare_digest(pskAuthData(prf, psk, octets), received)
