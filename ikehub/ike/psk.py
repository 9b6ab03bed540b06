"""
AUTH payloads for pre-shared keys (RFC 7296 section 2.15).

AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <signed octets>), where the signed octets
are the sender's IKE_SA_INIT message, the peer's nonce and prf(SK_p, the sender's ID body).
"""

import hmac
import os

from ikehub.crypto.transforms import PrfAlgorithm

KEY_PAD = b"Key Pad for IKEv2"

#: What a responder verifies an AUTH payload against when the peer has no usable PSK, so that
#: refusing an unknown identity costs what refusing a wrong key costs. Random, and never accepted:
#: the caller refuses such peers whatever the comparison says.
DECOY_PSK = os.urandom(32)

#: prf(PSK, "Key Pad for IKEv2") by (PRF, PSK). It depends on nothing else, and a responder
#: needs it twice per IKE SA (to verify the peer's AUTH and to make its own), so it is derived
#: once. As secret as the PSKs themselves: kept in memory only, never logged; the PSKs come from
#: the configuration, and the bound only guards against a configuration of thousands of them.
_keyPads: dict[tuple[int, bytes], bytes] = {}
_KEY_PADS_LIMIT = 4096


def signedOctets(
    prf: PrfAlgorithm, initMessage: bytes, peerNonce: bytes, skP: bytes, idBody: bytes
) -> bytes:
    return initMessage + peerNonce + prf.compute(skP, idBody)


def pskKeyPad(prf: PrfAlgorithm, psk: bytes) -> bytes:
    """prf(PSK, "Key Pad for IKEv2"), the key of the AUTH payload's outer prf."""
    key = (prf.transformId, psk)
    keyPad = _keyPads.get(key)
    if keyPad is None:
        keyPad = prf.compute(psk, KEY_PAD)
        if len(_keyPads) >= _KEY_PADS_LIMIT:
            _keyPads.clear()
        _keyPads[key] = keyPad
    return keyPad


#: prf(PSK, "Key Pad for IKEv2") already keyed into an HMAC, by (PRF, PSK): copying it is
#: cheaper than keying a new one for each AUTH payload. As secret as L{_keyPads}.
_keyedPads: dict[tuple[int, bytes], object] = {}


def pskAuthData(prf: PrfAlgorithm, psk: bytes, octets: bytes) -> bytes:
    """AUTH data from a configured PSK; its keyed pad is remembered for the next peer."""
    key = (prf.transformId, psk)
    keyed = _keyedPads.get(key)
    if keyed is None:
        if len(_keyedPads) >= _KEY_PADS_LIMIT:
            _keyedPads.clear()
        keyed = _keyedPads[key] = prf.keyed(pskKeyPad(prf, psk))
    mac = keyed.copy()
    mac.update(octets)
    return mac.finalize()


def sessionKeyAuthData(prf: PrfAlgorithm, key: bytes, octets: bytes) -> bytes:
    """
    AUTH data keyed with a key used once (an EAP MSK, or SK_pi/SK_pr when the method made
    none; RFC 7296 section 2.16): the same formula, nothing remembered.
    """
    return prf.compute(prf.compute(key, KEY_PAD), octets)


def verifyPskAuth(prf: PrfAlgorithm, psk: bytes, octets: bytes, received: bytes) -> bool:
    return hmac.compare_digest(pskAuthData(prf, psk, octets), received)
