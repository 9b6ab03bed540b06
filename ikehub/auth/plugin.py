"""
What the authenticator and EAP-method plugins are given and what they give back.

The interfaces are in L{ikehub.interfaces} (C{IAuthenticatorPlugin}, C{IAuthenticator},
C{IEAPMethodPlugin}, C{IEAPMethod}, C{IEAPSession}); this module holds the plain values that
cross them, so that a plugin file needs nothing from the IKE machine:

  - L{PluginContext}: what C{build()} gets once at start (its options table, the trust store,
    the hub's credentials, the user database, the clock and reactor);
  - L{AuthAttempt}: one peer's AUTH payload with what is needed to check it;
  - L{AuthResult}: the verdict, with a reason for the PAD's decision record;
  - L{PluginConfigError}: how C{build()} says its configuration is wrong.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ikehub.wire._frozen import fastInit

__all__ = ["AuthAttempt", "AuthResult", "PluginConfigError", "PluginContext"]


class PluginConfigError(Exception):
    """
    A plugin's configuration cannot be used.

    @ivar key: the offending key inside the plugin's C{[auth.NAME]} table (or C{""} for the
        table itself); the hub prefixes the file and the table when it reports it.
    @ivar problem: what is wrong and what to do, as a person should read it.
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class PluginContext:
    """
    What a plugin's C{build()} may use. Everything is optional except C{name}: a hub without
    certificates has no C{credentials}, one without EAP users no C{users}.

    @ivar name: the plugin's configuration name.
    @ivar options: the plugin's own C{[auth.NAME]} table from the configuration, as read.
    @ivar configPath: the configuration file, for messages and relative paths (L{resolve}).
    @ivar trust: an L{ikehub.auth.certs.TrustStore} of the CAs for peer certificates.
    @ivar credentials: the hub's own certificate chain and private key
        (L{ikehub.auth.credentials.HubCredentials}).
    @ivar users: the local L{ikehub.auth.users.UserDatabase} for the EAP methods.
    @ivar clock: an C{IReactorTime}.
    @ivar reactor: the reactor, for plugins that talk to servers (C{IReactorUDP} and friends).
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    configPath: str = ""
    trust: Any = None
    credentials: Any = None
    users: Any = None
    clock: Any = None
    reactor: Any = None

    def resolve(self, path: str) -> str:
        """A path from the options, relative to the configuration file's directory."""
        base = os.path.dirname(os.path.abspath(self.configPath)) if self.configPath else ""
        return os.path.join(base, os.path.expanduser(path))


@fastInit
@dataclass(frozen=True, slots=True)
class AuthAttempt:
    """
    One peer's AUTH payload, with what a verdict needs. Secrets stay out of C{repr}.

    @ivar identity: the identity the peer claims (IDi), an L{ikehub.wire.identity.Identity}.
    @ivar peerAddress: the peer's IP address as text.
    @ivar entry: the PAD entry governing the identity (L{ikehub.interfaces.IPADEntry}).
    @ivar method: the AUTH payload's method number (2 for a shared key MIC, 1/9-11/14 for
        signatures).
    @ivar authData: the AUTH payload's Authentication Data.
    @ivar octets: the signed octets (RFC 7296 section 2.15) the AUTH data covers.
    @ivar certificates: the Certificate Data (DER) of the peer's X.509 CERT payloads (encoding
        4), in order: its own certificate first.
    @ivar now: the time, as a POSIX timestamp, to validate certificates at.
    @ivar pskMac: C{pskMac(psk)} is the AUTH data a peer holding C{psk} would have sent.
    """

    identity: Any
    peerAddress: str
    entry: Any
    method: int
    authData: bytes = field(repr=False)
    octets: bytes = field(repr=False)
    certificates: tuple = ()
    now: float = 0.0
    pskMac: Callable[[bytes], bytes] = field(default=lambda psk: b"", repr=False)

    def verifyPsk(self, psk: bytes) -> bool:
        """Whether the AUTH data is the MAC of C{psk}, compared in constant time."""
        return hmac.compare_digest(self.pskMac(psk), self.authData)


@dataclass(frozen=True, slots=True)
class AuthResult:
    """
    The verdict on an L{AuthAttempt}.

    @ivar accepted: whether the peer proved its identity.
    @ivar reason: why, for the PAD's decision record and the log; never a secret.
    @ivar sharedKey: with a pre-shared-key style authenticator, the key the hub's own AUTH is
        made with (RFC 7296 uses the same key both ways). Never logged.
    @ivar groups: group names the authenticator learned (for the PAD to match).
    """

    accepted: bool
    reason: str
    sharedKey: bytes | None = field(default=None, repr=False)
    groups: tuple[str, ...] = ()

    @classmethod
    def accept(cls, reason: str, sharedKey: bytes | None = None, groups=()) -> AuthResult:
        return cls(True, reason, sharedKey, tuple(groups))

    @classmethod
    def refuse(cls, reason: str) -> AuthResult:
        return cls(False, reason)
