"""
What the IKE SA machine needs to know about the hub itself.

Kept separate from the TOML configuration (C{ikehub.config}) so the protocol core can be built in
tests and benchmarks without a file, and so the machine never sees keys it does not use.
"""

from dataclasses import dataclass

from ikehub.crypto.proposals import ProposalSpec
from ikehub.wire.identity import Identity


@dataclass(frozen=True, slots=True)
class IKESettings:
    identity: Identity
    ikeProposals: tuple[ProposalSpec, ...]
    espProposals: tuple[ProposalSpec, ...]
    #: Half-open IKE SAs beyond which every new IKE_SA_INIT must return a COOKIE (RFC 7296 2.6).
    cookieThreshold: int = 1000
    #: Seconds a responder keeps an IKE SA that has not completed IKE_AUTH.
    halfOpenTimeout: float = 30.0
    retransmitTimeout: float = 2.0
    retransmitBase: float = 1.8
    retransmitTries: int = 5
    #: INVALID_IKE_SPI answers to unknown-SPI requests allowed per second (RFC 7296 2.21.4).
    invalidSpiRate: float = 10.0
    #: Answer IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383) to initiators that offer it.
    fragmentation: bool = True
    #: The largest IP datagram (IP and UDP headers and the non-ESP marker included, like
    #: strongSwan's charon.fragment_size) an IKE message we send may fill on an SA that
    #: negotiated fragmentation; larger messages go out as SKF fragments of this size.
    fragmentSize: int = 1280
    #: Reassembly limits (RFC 7383 section 2.6, ikehub.ike.fragments): fragments per message,
    #: bytes of reassembled payload chain, seconds a reassembly may wait for its last fragment.
    fragmentMaxCount: int = 64
    fragmentMaxBytes: int = 65535
    fragmentTimeout: float = 20.0
    #: Bytes all reassemblies together may hold: a half-open SA has keys (the peer did the
    #: Diffie-Hellman), so each could otherwise fill fragmentMaxBytes.
    fragmentMaxTotalBytes: int = 16 * 1024 * 1024
