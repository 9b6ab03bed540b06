"""
Finding the authenticator and EAP-method plugins and building the ones the configuration uses.

Discovery is C{twisted.plugin.getPlugins} over C{ikehub.plugins}. Because that function logs
and skips a module that fails to import, every module of the plugin package is imported here
first, so that a broken plugin file stops the hub at start with its name, instead of peers
failing later with "unknown authenticator".
"""

from __future__ import annotations

import importlib
import pkgutil
import traceback
from collections.abc import Mapping

from twisted.plugin import getPlugins
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

import ikehub.plugins
from ikehub.auth.plugin import PluginConfigError, PluginContext
from ikehub.auth.signatures import signWithBestHash
from ikehub.config import ConfigError, HubConfig
from ikehub.interfaces import (
    IAuthenticator,
    IAuthenticatorPlugin,
    IEAPMethod,
    IEAPMethodPlugin,
)

__all__ = ["AuthRegistry", "HubSigner", "buildRegistry", "discoverPlugins"]


def discoverPlugins() -> tuple[dict, dict]:
    """
    Every authenticator plugin and EAP-method plugin by name.

    @raise ConfigError: naming a plugin module that does not import, a plugin whose object
        does not provide its interface, or two plugins with one name.
    """
    problems = []
    for module in pkgutil.iter_modules(ikehub.plugins.__path__, "ikehub.plugins."):
        try:
            importlib.import_module(module.name)
        except Exception as e:  # noqa: BLE001 - any failure of a plugin is reported, named
            where = traceback.extract_tb(e.__traceback__)[-1]
            problems.append(
                f"plugin module {module.name} ({where.filename}) failed to import: "
                f"{type(e).__name__}: {e}; fix or remove that file"
            )
    authenticators: dict = {}
    methods: dict = {}
    for interface, found in ((IAuthenticatorPlugin, authenticators), (IEAPMethodPlugin, methods)):
        for plugin in getPlugins(interface, ikehub.plugins):
            name = getattr(plugin, "name", None)
            try:
                verifyObject(interface, plugin)
            except Invalid as e:
                problems.append(
                    f"plugin {name or plugin!r} claims {interface.__name__} but does not "
                    f"provide it: {e}"
                )
                continue
            if name in authenticators or name in methods:
                problems.append(f"two plugins are named {name!r}; rename one of them")
                continue
            found[name] = plugin
    if problems:
        raise ConfigError("\n".join(problems), tuple(problems))
    return authenticators, methods


class HubSigner:
    """
    The hub's certificate chain and its signature AUTH payloads (RFC 7296 section 2.15), made
    by L{ikehub.auth.signatures.signWithBestHash} as our initiator's are.
    """

    def __init__(self, credentials) -> None:
        from cryptography.hazmat.primitives import serialization

        self.credentials = credentials
        #: The Certificate Data of our CERT payloads, end entity first.
        self.certificates = tuple(
            cert.public_bytes(serialization.Encoding.DER) for cert in credentials.chain
        )

    def sign(self, octets: bytes, peerHashes) -> tuple[int, bytes]:
        """
        (AUTH method, Authentication Data) over C{octets}.

        @param peerHashes: the hashes the peer announced, or None if it sent no
            SIGNATURE_HASH_ALGORITHMS.
        """
        return signWithBestHash(self.credentials.privateKey, octets, peerHashes)


class AuthRegistry:
    """
    The built authenticators and EAP methods the configuration's peers use, by name, with the
    hub's signer and the CERTREQ data for its CAs. This is what the IKE machine is given.
    """

    def __init__(
        self,
        authenticators: Mapping[str, object],
        eapMethods: Mapping[str, object],
        signer: HubSigner | None = None,
        certReqData: bytes | None = None,
        mutualMethods: frozenset[str] = frozenset(),
    ) -> None:
        self.authenticators = dict(authenticators)
        self.eapMethods = dict(eapMethods)
        self.signer = signer
        self.certReqData = certReqData
        self.mutualMethods = mutualMethods


def buildRegistry(config: HubConfig, reactor=None) -> AuthRegistry:
    """
    Build every authenticator and EAP method that some peer's C{auth} names, once.

    @raise ConfigError: naming the file and key for an unknown name, a plugin that refuses
        its configuration, or an C{[auth.NAME]} table no peer uses.
    """
    authPlugins, eapPlugins = discoverPlugins()
    known = sorted(authPlugins) + sorted(eapPlugins)
    problems: list[str] = []
    path = config.path
    wanted: dict[str, str] = {}
    for index, peer in enumerate(config.peers):
        rounds = [(peer.auth, f"peers[{index}].auth")]
        if peer.secondAuth is not None:
            rounds = [(peer.auth, f"peers[{index}].auth[0]")]
            where = f"peers[{index}].auth[1]"
            if peer.secondAuth not in eapPlugins:
                problems.append(
                    f"{path}: {where}: {peer.secondAuth!r} is not an EAP method; use one of: "
                    f"{', '.join(sorted(eapPlugins))}"
                )
            else:
                wanted.setdefault(peer.secondAuth, where)
        for name, where in rounds:
            if name not in authPlugins and name not in eapPlugins:
                problems.append(
                    f"{path}: {where}: unknown authenticator {name!r}; use one of: "
                    f"{', '.join(known)} (or install its plugin in an ikehub/plugins directory)"
                )
            else:
                wanted.setdefault(name, where)
    for name in config.authOptions:
        if name not in authPlugins and name not in eapPlugins:
            problems.append(
                f'{path}: auth."{name}": no authenticator plugin is named {name!r}; use one '
                f"of: {', '.join(known)}"
            )
    authenticators: dict = {}
    methods: dict = {}
    for name, where in wanted.items():
        plugin = authPlugins.get(name) or eapPlugins[name]
        context = PluginContext(
            name=name,
            options=config.authOptions.get(name, {}),
            configPath=path,
            trust=config.trust,
            credentials=config.credentials,
            users=config.users,
            clock=reactor,
            reactor=reactor,
        )
        try:
            built = plugin.build(context)
        except PluginConfigError as e:
            key = f'auth."{name}".{e.key}' if e.key else where
            problems.append(f"{path}: {key}: {name}: {e.problem}")
            continue
        except Exception as e:  # noqa: BLE001 - a third party's bug, reported by name
            problems.append(f"{path}: {where}: plugin {name!r} failed to start: {e!r}")
            continue
        interface = IAuthenticator if name in authPlugins else IEAPMethod
        try:
            verifyObject(interface, built)
        except Invalid as e:
            problems.append(
                f"{path}: {where}: plugin {name!r} built an object without "
                f"{interface.__name__}: {e}"
            )
            continue
        (authenticators if name in authPlugins else methods)[name] = built
    if problems:
        raise ConfigError("\n".join(problems), tuple(problems))
    from ikehub.auth.certs import certReqHashes

    return AuthRegistry(
        authenticators,
        methods,
        signer=HubSigner(config.credentials) if config.credentials is not None else None,
        certReqData=certReqHashes(config.trust) if config.trust is not None else None,
        mutualMethods=frozenset(n for n in methods if getattr(eapPlugins[n], "mutual", False)),
    )
