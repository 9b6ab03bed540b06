"""
The built-in authenticators and local EAP methods, as plugins: C{psk}, C{pubkey},
C{eap-md5} and C{eap-mschapv2}. Cheap to import: the work lives in C{ikehub.auth}.
"""

from twisted.plugin import IPlugin
from zope.interface import implementer

from ikehub.auth.plugin import PluginConfigError
from ikehub.interfaces import IAuthenticatorPlugin, IEAPMethodPlugin


def _noOptions(context) -> None:
    for key in context.options:
        raise PluginConfigError(key, f"unknown key; {context.name} takes no options")


@implementer(IPlugin, IAuthenticatorPlugin)
class _PSK:
    name = "psk"

    def build(self, context):
        from ikehub.auth.builtin import PSKAuthenticator

        _noOptions(context)
        return PSKAuthenticator()


@implementer(IPlugin, IAuthenticatorPlugin)
class _Pubkey:
    name = "pubkey"

    def build(self, context):
        from ikehub.auth.builtin import PubkeyAuthenticator

        _noOptions(context)
        if context.trust is None:
            raise PluginConfigError("", "checks peer certificates against trusted CAs; set hub.ca")
        return PubkeyAuthenticator(context.trust)


@implementer(IPlugin, IEAPMethodPlugin)
class _LocalEAP:
    """An EAP method that checks passwords in the hub's own user database (hub.users)."""

    mutual = False

    def __init__(self, name: str, module: str, className: str) -> None:
        self.name = name
        self._where = (module, className)

    def build(self, context):
        import importlib

        from ikehub.auth.eap.local import LocalEAPMethod

        _noOptions(context)
        if context.users is None:
            raise PluginConfigError(
                "", "checks passwords in the local user database; set hub.users to its file"
            )
        module, className = self._where
        server = getattr(importlib.import_module(module), className)
        return LocalEAPMethod(self.name, server.factory(context.users))


psk = _PSK()
pubkey = _Pubkey()
eapMD5 = _LocalEAP("eap-md5", "ikehub.auth.eap.md5", "EAPMD5Server")
eapMSCHAPv2 = _LocalEAP("eap-mschapv2", "ikehub.auth.eap.mschapv2", "EAPMSCHAPv2Server")
