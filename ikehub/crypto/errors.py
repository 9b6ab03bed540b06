"""
Typed errors of the crypto layer.

Every failure a peer can provoke (a bad public value, a forged ICV, a malformed
ciphertext, a proposal we cannot accept) is one of these, so the IKE layer can catch
L{CryptoError} and answer or drop without mistaking a hostile packet for a bug.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error this package raises for bad input."""


class UnsupportedTransform(CryptoError, KeyError):
    """
    An algorithm identifier (ENCR, PRF, INTEG or KE) that this hub does not implement.

    It is also a C{KeyError}, because looking up an unknown transform is a failed
    lookup; the message stays a plain sentence rather than C{KeyError}'s quoted repr.
    """

    __str__ = Exception.__str__


class InvalidKeyExchange(CryptoError):
    """
    A peer's key exchange value that must not be used: wrong length, a point off the
    curve or at infinity, a MODP value outside [2, p-2], or an all-zero X25519/X448
    result (a low-order point).
    """


class IntegrityError(CryptoError):
    """An ICV or AEAD tag that does not verify; the message must be dropped."""


class DecryptError(CryptoError):
    """
    An encrypted payload that authenticated (or could not be checked) but does not
    decrypt to something well formed: too short for its IV and ICV, a ciphertext that
    is not a whole number of blocks, or a pad length longer than the plaintext.
    """


class ProposalSyntaxError(CryptoError):
    """A proposal string (strongSwan syntax) that names an unknown or misplaced token."""
