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
    #: Offer MOBIKE (RFC 4555) to initiators that announce it: their IKE SA then moves only on
    #: UPDATE_SA_ADDRESSES, no longer on every authenticated request from a new address.
    mobike: bool = True
