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
    #: Half-open IKE SAs from one IP address beyond which IKE_SA_INIT from that address must
    #: return a COOKIE, however few are half-open overall (strongSwan: cookie_threshold_ip).
    cookieThresholdPerSource: int = 10
    #: Half-open IKE SAs from one IP address beyond which IKE_SA_INIT from that address is
    #: dropped unanswered, cookie or not (strongSwan: block_threshold).
    blockThreshold: int = 100
    #: Seconds a responder keeps an IKE SA that has not completed IKE_AUTH.
    halfOpenTimeout: float = 30.0
    retransmitTimeout: float = 2.0
    retransmitBase: float = 1.8
    retransmitTries: int = 5
    #: INVALID_IKE_SPI answers to unknown-SPI requests allowed per second (RFC 7296 2.21.4).
    invalidSpiRate: float = 10.0
    #: Seconds of silence (no IKE message, no ESP packet) after which the hub checks that a peer
    #: is alive with an empty INFORMATIONAL (dead peer detection); 0 = never.
    dpdDelay: float = 30.0
    #: Seconds after which the hub rekeys an IKE SA itself (up to 10% earlier, as jitter);
    #: 0 = never (peers may still rekey).
    ikeRekeyTime: float = 14400.0
    #: Refuse CHILD SA rekeys and additional CHILD SAs without a KE payload (no PFS).
    requirePfs: bool = False
    #: Seconds a rekeyed IKE SA waits for its Delete before it is dropped without one.
    rekeyedLinger: float = 30.0
    #: Offer MOBIKE (RFC 4555) to initiators that announce it: their IKE SA then moves only on
    #: UPDATE_SA_ADDRESSES, no longer on every authenticated request from a new address.
    mobike: bool = True
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
    #: Bytes the reassemblies begun from one source address may hold together.
    fragmentMaxSourceBytes: int = 2 * 1024 * 1024
