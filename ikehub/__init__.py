"""
ikehub: an IKEv2 VPN concentrator on Twisted.

The package is laid out by the vocabulary of RFC 4301 and RFC 7296: C{wire} (message codec),
C{crypto} (transforms and key derivation), C{ike} (the sans-IO IKE SA machine), C{policy}
(PAD, SPD, address pools), C{esp} (SAD and the ESP datapath), C{net} (Twisted glue).
"""

__version__ = "0.1.0"
