"""
twistd plugin: makes C{twistd ikehub} available.

Kept tiny and cheap to import: Twisted imports every dropin when it scans for plugins.
"""

from twisted.application.service import ServiceMaker

ikehub = ServiceMaker(
    "ikehub",
    "ikehub.tap",
    "An IKEv2 (RFC 7296) VPN concentrator.",
    "ikehub",
)
