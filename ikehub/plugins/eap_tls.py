"""
The C{eap-tls} EAP method plugin: EAP-TLS (RFC 5216, TLS 1.3 per RFC 9190) run inside
the hub, with the hub's certificate and key as the TLS server's and the hub's CA
directory as the trust anchors for the peers' certificates.

Options in its C{[auth.eap-tls]} table, all optional:
  - C{fragment_size}: octets of TLS data per EAP-TLS packet the hub sends, 256..16384
    (default 1024, as strongSwan's charon);
  - C{max_version}: the highest TLS version, C{"1.2"} or C{"1.3"} (default C{"1.3"});
  - C{tls13_profile}: how TLS 1.3 ends and derives the MSK, C{"rfc9190"} (default) or
    C{"strongswan"} for strongSwan 5.9 clients with TLS 1.3 enabled, whose draft-era
    EAP-TLS 1.3 uses another MSK and crashes on RFC 9190's commitment message (see
    L{ikehub.auth.eap.tls}). TLS 1.2 is the same either way.

Importing this module is cheap: OpenSSL and the EAP-TLS code load in C{build()}.
"""

from __future__ import annotations

from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from ikehub.interfaces import IEAPMethodPlugin

__all__ = ["EAPTLSPlugin", "eapTLS"]

_FRAGMENT_SIZES = (256, 16384)
_VERSIONS = ("1.2", "1.3")
_PROFILES = ("rfc9190", "strongswan")
_OPTIONS = ("fragment_size", "max_version", "tls13_profile")


@implementer(IPlugin, IEAPMethodPlugin)
class EAPTLSPlugin:
    """EAP-TLS: mutual certificate authentication with an MSK."""

    name = "eap-tls"
    mutual = True

    def build(self, context: Any) -> Any:
        from ikehub.auth.plugin import PluginConfigError

        if context.credentials is None:
            raise PluginConfigError(
                "",
                "eap-tls needs the hub's own certificate and private key: configure the "
                "hub's certificate chain and key file",
            )
        if context.trust is None:
            raise PluginConfigError(
                "",
                "eap-tls needs trusted CAs for the peers' certificates: configure the hub's "
                "CA directory",
            )
        options = dict(context.options)
        for key in options:
            if key not in _OPTIONS:
                raise PluginConfigError(key, f"unknown option; eap-tls takes {', '.join(_OPTIONS)}")
        fragmentSize = options.get("fragment_size", 1024)
        low, high = _FRAGMENT_SIZES
        if (
            isinstance(fragmentSize, bool)
            or not isinstance(fragmentSize, int)
            or not low <= fragmentSize <= high
        ):
            raise PluginConfigError(
                "fragment_size",
                f"must be a whole number of octets from {low} to {high}, not {fragmentSize!r} "
                "(1024 suits most paths)",
            )
        maxVersion = options.get("max_version", "1.3")
        if maxVersion not in _VERSIONS:
            raise PluginConfigError(
                "max_version",
                f'must be "1.2" or "1.3" (a string), not {maxVersion!r}',
            )
        tls13Profile = options.get("tls13_profile", "rfc9190")
        if tls13Profile not in _PROFILES:
            raise PluginConfigError(
                "tls13_profile",
                f'must be "rfc9190" or "strongswan" (for strongSwan 5.9 clients with TLS 1.3), '
                f"not {tls13Profile!r}",
            )

        from OpenSSL import SSL

        from ikehub.auth.eap.local import LocalEAPMethod
        from ikehub.auth.eap.tls import EAPTLSServer

        try:
            factory = EAPTLSServer.factory(
                context.trust,
                context.credentials,
                maxVersion=maxVersion,
                fragmentSize=fragmentSize,
                clock=context.clock,
                tls13Profile=tls13Profile,
            )
        except SSL.Error as e:
            raise PluginConfigError(
                "",
                f"OpenSSL refuses the hub's certificate or key for TLS ({e}); check that the "
                "key belongs to the certificate",
            ) from None
        return LocalEAPMethod(self.name, factory)


eapTLS = EAPTLSPlugin()
