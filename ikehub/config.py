"""
The hub's configuration: one TOML file, read and validated completely before anything starts.

A concentrator that starts with half a configuration fails later, at a peer, where the cause is
hard to see. So L{loadConfig} checks every key, and reports every problem it finds as
C{FILE: KEY: what is wrong; what to do}, one problem per line ([hub] first, then the pools,
then the peers in order), in a single L{ConfigError}. The shipped example (C{etc/ikehub.toml},
see L{defaultConfigPath}) documents every key.

Relative paths (C{psk_file}, C{save_keys}, C{lease_db}) are relative to the directory of the
configuration file, so a configuration directory can be moved as a whole.

Secrets never appear in messages or reprs: L{PeerConfig.psk} is left out of C{repr}, and an
invalid secret is described by its type and length only.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import math
import os
import re
import stat
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ikehub.crypto.proposals import (
    DEFAULT_ESP_PROPOSALS,
    DEFAULT_IKE_PROPOSALS,
    ProposalSpec,
    ProposalSyntaxError,
    parseProposal,
)
from ikehub.ike.configpayload import normalizeDnsDomain
from ikehub.policy.identities import parseIdentityPattern
from ikehub.policy.pool import DEFAULT_LEASE_TIME, Address, AddressPool
from ikehub.policy.spd import SPD, SPDConfigError
from ikehub.wire.constants import ProtocolId
from ikehub.wire.identity import Identity

__all__ = [
    "ConfigError",
    "HubConfig",
    "PeerConfig",
    "PoolConfig",
    "defaultConfigPath",
    "loadConfig",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The shortest pre-shared key accepted, in bytes.
MIN_PSK_LENGTH = 16
#: A PSK file larger than this is certainly not a PSK file.
MAX_PSK_FILE_SIZE = 65536

DYNAMIC = "dynamic"

#: hub.fragment_size (RFC 7383): the whole IP datagram, like strongSwan's charon.fragment_size.
#: 576 is the datagram every IPv4 host must accept; 65535 is the most UDP carries.
DEFAULT_FRAGMENT_SIZE = 1280
MIN_FRAGMENT_SIZE = 576
MAX_FRAGMENT_SIZE = 65535

_DEFAULT_LOCAL_TS = ("0.0.0.0/0", "::/0")
_AUTH_NAME = re.compile(r"[a-z0-9-]+")
_POOL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

_TOP_KEYS = ("hub", "esp", "tun", "spd", "pools", "peers", "auth")
_ESP_KEYS = ("replay_window", "lifetime", "lifetime_bytes", "lifetime_packets", "require_pfs")
_TUN_KEYS = ("enabled", "name", "mtu", "address", "routes")
_TUN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_HUB_KEYS = (
    "identity",
    "listen",
    "port",
    "natt_port",
    "ike_proposals",
    "esp_proposals",
    "cookie_threshold",
    "cookie_threshold_per_source",
    "block_threshold",
    "half_open_timeout",
    "retransmit_timeout",
    "retransmit_base",
    "retransmit_tries",
    "dpd_delay",
    "ike_rekey_time",
    "fragmentation",
    "fragment_size",
    "save_keys",
    "certificate",
    "private_key",
    "ca",
    "crls",
    "users",
    "lease_db",
    "mobike",
)
_POOL_KEYS = ("addresses", "dns", "lease_time")
_PEER_KEYS = (
    "name",
    "identity",
    "auth",
    "psk",
    "psk_file",
    "pool",
    "local_ts",
    "remote_ts",
    "local_auth",
    "eap_identity",
    "remote_addrs",
    "groups",
    "duplicates",
    "eap_identities",
    "dns_domains",
)
#: What a second IKE SA for an identity that has one does (strongSwan's "unique"): "replace"
#: deletes the old one, "keep" refuses the new one unless it says INITIAL_CONTACT, "never"
#: allows both (several devices per user).
DUPLICATE_POLICIES = ("replace", "keep", "never")
#: How the hub proves itself to a peer: with the peer's PSK, or with its certificate.
#: "eap": EAP-only (RFC 5998), the hub proves itself inside a mutual EAP method.
LOCAL_AUTHS = ("psk", "pubkey", "eap")


class ConfigError(Exception):
    """
    The configuration cannot be used.

    C{str(error)} is every problem found, one per line, each naming the file and the key;
    C{problems} holds the same lines as a tuple.
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or (message,)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """A C{[pools.NAME]} table; L{makePool} builds the live pool from it."""

    name: str
    addresses: str
    first: Address
    last: Address
    dns: tuple[Address, ...] = ()
    #: Seconds a released address stays leased to its last holder (0: no leases).
    leaseTime: float = DEFAULT_LEASE_TIME

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def makePool(self, clock: Any = None, store: Any = None) -> AddressPool:
        """
        The live pool, timing leases on C{clock} and keeping them in C{store} (a
        L{ikehub.policy.leases.LeaseStore}) if given.
        """
        return AddressPool(
            self.name,
            self.first,
            self.last,
            self.dns,
            leaseTime=self.leaseTime,
            clock=clock,
            store=store,
        )


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """
    One C{[[peers]]} entry: who may connect, how they authenticate, what they get.

    C{remoteTs} holds networks and the string C{"dynamic"}: the peer's virtual IP if it has
    a pool, else its own IKE address.
    """

    name: str
    identity: Identity
    auth: str
    psk: bytes | None = field(default=None, repr=False)
    #: The first of C{pools}, or None (what older callers read).
    pool: str | None = None
    localTs: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in _DEFAULT_LOCAL_TS)
    remoteTs: tuple[Network | str, ...] = (DYNAMIC,)
    #: How the hub authenticates to this peer: "psk" or "pubkey" (its certificate).
    localAuth: str = "psk"
    #: EAP methods: begin with an EAP Identity round instead of using IDi.
    eapIdentity: bool = False
    #: Networks the peer's IKE address must lie in (empty: anywhere).
    remoteAddrs: tuple[Network, ...] = ()
    #: Groups (e.g. RADIUS Class) the peer must be in, any of them (empty: no requirement).
    groups: tuple[str, ...] = ()
    #: An EAP method for a second authentication round (RFC 4739), or None.
    secondAuth: str | None = None
    #: What a second IKE SA for the same identity does: one of DUPLICATE_POLICIES.
    duplicates: str = "replace"
    #: Patterns the EAP identity must match (empty: any).
    eapIdentities: tuple = ()
    #: The pools to lend virtual IPs from, in order: C{pool = "v4"} or C{pool = ["v4", "v6"]}.
    #: A client gets one address per family it asks for, from the first pool of that family
    #: that has one free.
    pools: tuple[str, ...] = ()
    #: Split DNS (RFC 8598): the domains the pools' DNS servers resolve, sent as
    #: INTERNAL_DNS_DOMAIN to clients that ask for them; lowercase, without a final dot.
    dnsDomains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # One spelling for callers that know only one pool: pool is pools[0].
        if self.pools and self.pool is None:
            object.__setattr__(self, "pool", self.pools[0])
        elif self.pool is not None and not self.pools:
            object.__setattr__(self, "pools", (self.pool,))


@dataclass(frozen=True, slots=True)
class HubConfig:
    """The validated configuration. C{pools} is a read-only mapping from name to pool."""

    path: str
    identity: Identity
    listen: tuple[str, ...]
    port: int
    nattPort: int
    ikeProposals: tuple[ProposalSpec, ...]
    espProposals: tuple[ProposalSpec, ...]
    cookieThreshold: int
    halfOpenTimeout: float
    retransmitTimeout: float
    retransmitBase: float
    retransmitTries: int
    saveKeys: str | None
    pools: Mapping[str, PoolConfig]
    peers: tuple[PeerConfig, ...]
    esp: "EspConfig" = None  # type: ignore[assignment]
    tun: "TunConfig" = None  # type: ignore[assignment]
    spd: SPD = None  # type: ignore[assignment]
    #: The hub's own certificate chain and key (HubCredentials), or None.
    credentials: Any = None
    #: The CAs (and CRLs) peer certificates are checked against (TrustStore), or None.
    trust: Any = None
    #: The local user database of the EAP methods (UserDatabase), or None.
    users: Any = None
    #: Each authenticator plugin's own C{[auth.NAME]} table, read-only.
    authOptions: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: The SQLite file that keeps address leases across restarts (absolute), or None.
    leaseDb: str | None = None
    #: Seconds of silence before a liveness check (dead peer detection); 0 = none.
    dpdDelay: float = 30.0
    #: Seconds after which the hub rekeys an IKE SA itself; 0 = never.
    ikeRekeyTime: float = 14400.0
    #: Half-open IKE SAs from one address beyond which it must return cookies.
    cookieThresholdPerSource: int = 10
    #: Half-open IKE SAs from one address beyond which its IKE_SA_INIT requests are dropped.
    blockThreshold: int = 100
    #: Offer MOBIKE (RFC 4555) to initiators that announce it.
    mobike: bool = True
    #: Answer IKEV2_FRAGMENTATION_SUPPORTED (RFC 7383) to initiators that offer it.
    fragmentation: bool = True
    #: The largest IP datagram an IKE message may fill before it is sent in fragments.
    fragmentSize: int = 1280


@dataclass(frozen=True, slots=True)
class EspConfig:
    """The datapath's per-SA settings: anti-replay window and CHILD SA lifetimes (0 = none)."""

    replayWindow: int = 1024
    lifetime: float = 14400.0
    lifetimeBytes: int = 0
    lifetimePackets: int = 0
    #: Refuse CHILD SA rekeys without perfect forward secrecy (a KE payload).
    requirePfs: bool = False


@dataclass(frozen=True, slots=True)
class TunConfig:
    """The TUN device the hub creates for traffic to and from the networks behind it."""

    enabled: bool = True
    name: str = "ikehub0"
    #: 0: computed from the ESP-in-UDP overhead of the worst transform (ikehub.net.tun.mtuFor).
    mtu: int = 0
    address: Any = None
    routes: tuple = ()


def _sameKey(a: Any, b: Any) -> bool:
    from cryptography.hazmat.primitives import serialization

    form = serialization.PublicFormat.SubjectPublicKeyInfo
    return a.public_bytes(serialization.Encoding.DER, form) == b.public_bytes(
        serialization.Encoding.DER, form
    )


def defaultConfigPath() -> str:
    """
    Where the shipped example configuration is: installed under
    C{<prefix>/share/ikehub/ikehub.toml}, or C{etc/ikehub.toml} beside the package in a
    source tree or an editable install.
    """
    installed = os.path.join(sys.prefix, "share", "ikehub", "ikehub.toml")
    if os.path.isfile(installed):
        return installed
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(here), "etc", "ikehub.toml")


def loadConfig(path: str) -> HubConfig:
    """
    Read and validate the configuration file at C{path}.

    @raise ConfigError: listing every problem found, one per line.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: TOML syntax error: {e}; fix the syntax there") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the file is not UTF-8 text; save it as UTF-8") from None
    except OSError as e:
        raise ConfigError(
            f"{path}: cannot read the configuration file: {e.strerror or e}; check the path "
            f"and its permissions (an example is {defaultConfigPath()})"
        ) from None
    return _Validator(path).validate(document)


# -- validation ------------------------------------------------------------------------------


class _Invalid:
    """Marks a value already reported as a problem, so nothing downstream reports it again."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
_MISSING: Any = object()


def _describe(value: object) -> str:
    """What a TOML value is, for messages; never the value itself for anything long."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 60 else "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def valueKind(value: object) -> str:
    """What a TOML value is, without its content (values may be secrets)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _networkHint(text: str) -> str:
    try:
        return f" (did you mean {ipaddress.ip_network(text, strict=False)}?)"
    except ValueError:
        return ""


class _Validator:
    def __init__(self, path: str) -> None:
        self.path = path
        self.directory = os.path.dirname(os.path.abspath(path))
        self.problems: list[str] = []
        #: Each valid pool's DNS servers, for the peers' dns_domains.
        self._poolDns: dict[str, tuple] = {}

    def problem(self, key: str, text: str) -> None:
        self.problems.append(f"{self.path}: {key}: {text}" if key else f"{self.path}: {text}")

    def resolve(self, value: str) -> str:
        return os.path.normpath(os.path.join(self.directory, os.path.expanduser(value)))

    # -- generic checks -------------------------------------------------------------------

    def checkKeys(self, table: dict, allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key in allowed:
                continue
            dotted = f"{where}.{key}" if where else key
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.problem(
                dotted, f"unknown key{hint}; the keys allowed here are: " + ", ".join(allowed)
            )

    def table(self, container: dict, key: str, where: str, required: bool = False) -> Any:
        value = container.get(key, _MISSING)
        if value is _MISSING:
            if required:
                self.problem(where, f"missing; add a [{where}] table")
                return INVALID
            return {}
        if not isinstance(value, dict):
            self.problem(where, f"expected a table ([{where}]), got {_describe(value)}")
            return INVALID
        return value

    def string(
        self, table: dict, key: str, where: str, default: Any = _MISSING, secret: bool = False
    ) -> Any:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.problem(f"{where}.{key}", "missing; this key is required")
                return INVALID
            return default
        if not isinstance(value, str):
            got = valueKind(value) if secret else _describe(value)
            self.problem(f"{where}.{key}", f"expected a string in quotes, got {got}")
            return INVALID
        return value

    def stringList(self, table: dict, key: str, where: str, default: Any, example: str) -> Any:
        value = table.get(key, _MISSING)
        dotted = f"{where}.{key}"
        if value is _MISSING:
            return default
        if not isinstance(value, list):
            self.problem(
                dotted,
                f"expected a list of strings (for example {key} = {example}), "
                f"got {_describe(value)}",
            )
            return INVALID
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.problem(
                    f"{dotted}[{index}]", f"expected a string in quotes, got {_describe(item)}"
                )
                return INVALID
        if not value:
            self.problem(dotted, f"the list is empty; give at least one (for example {example})")
            return INVALID
        return value

    def integer(
        self,
        table: dict,
        key: str,
        where: str,
        default: int,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = table.get(key, _MISSING)
        dotted = f"{where}.{key}"
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(
                dotted, f"expected a whole number (like {key} = {default}), got {_describe(value)}"
            )
            return INVALID
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            if maximum is None:
                self.problem(dotted, f"{value} is too small; use a number >= {minimum}")
            else:
                self.problem(dotted, f"{value} is out of range; use {minimum}..{maximum}")
            return INVALID
        return value

    def number(
        self, table: dict, key: str, where: str, default: float, minimum: float, inclusive: bool
    ) -> Any:
        value = table.get(key, _MISSING)
        dotted = f"{where}.{key}"
        if value is _MISSING:
            return float(default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(
                dotted, f"expected a number (like {key} = {default}), got {_describe(value)}"
            )
            return INVALID
        if not math.isfinite(value):
            self.problem(dotted, f"{value} is not a finite number; use a number like {default}")
            return INVALID
        if value < minimum or (value == minimum and not inclusive):
            bound = ">=" if inclusive else ">"
            self.problem(dotted, f"{value} is too small; use a number {bound} {minimum}")
            return INVALID
        return float(value)

    def boolean(self, table: dict, key: str, where: str, default: bool) -> Any:
        value = table.get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(
                f"{where}.{key}",
                f"expected true or false (without quotes), got {_describe(value)}",
            )
            return INVALID
        return value

    def identity(self, table: dict, key: str, where: str, ranges: bool = False) -> Any:
        """
        An identity in strongSwan's syntax; with C{ranges} (PAD entries) also an address
        network or range of identities.
        """
        text = self.string(table, key, where)
        if text is INVALID:
            return INVALID
        try:
            return parseIdentityPattern(text) if ranges else Identity.fromString(text)
        except ValueError as e:
            self.problem(f"{where}.{key}", f"{e}")
            return INVALID

    # -- sections -------------------------------------------------------------------------

    def validate(self, document: dict) -> HubConfig:
        self.checkKeys(document, _TOP_KEYS, "")
        hubTable = self.table(document, "hub", "hub", required=True)
        hub = self.hub(hubTable) if hubTable is not INVALID else None
        poolsTable = self.table(document, "pools", "pools")
        pools = self.pools(poolsTable) if poolsTable is not INVALID else {}
        poolNames = set(poolsTable) if poolsTable is not INVALID else set()
        peers = self.peers(document.get("peers", []), poolNames)
        espTable = self.table(document, "esp", "esp")
        esp = self.esp(espTable) if espTable is not INVALID else INVALID
        tunTable = self.table(document, "tun", "tun")
        tun = self.tun(tunTable) if tunTable is not INVALID else INVALID
        spd = self.spd(document.get("spd", []))
        authOptions = self.authOptions(document.get("auth", {}))
        if hub is not None:
            self.checkCredentialUse(hub, peers)
        if self.problems or hub is None:
            raise ConfigError("\n".join(self.problems), tuple(self.problems))
        return HubConfig(
            path=self.path,
            pools=MappingProxyType(pools),
            peers=tuple(peers),
            esp=esp,
            tun=tun,
            spd=spd,
            authOptions=authOptions,
            **hub,
        )

    def esp(self, table: dict) -> Any:
        where = "esp"
        self.checkKeys(table, _ESP_KEYS, where)
        values = dict(
            replayWindow=self.integer(table, "replay_window", where, 1024, 32, 1 << 16),
            lifetime=self.number(table, "lifetime", where, 14400, 0, inclusive=True),
            lifetimeBytes=self.integer(table, "lifetime_bytes", where, 0, 0),
            lifetimePackets=self.integer(table, "lifetime_packets", where, 0, 0),
            requirePfs=self.boolean(table, "require_pfs", where, False),
        )
        if any(value is INVALID for value in values.values()):
            return INVALID
        return EspConfig(**values)

    def tun(self, table: dict) -> Any:
        where = "tun"
        self.checkKeys(table, _TUN_KEYS, where)
        enabled = self.boolean(table, "enabled", where, True)
        name = self.string(table, "name", where, "ikehub0")
        if name is not INVALID and not _TUN_NAME.fullmatch(name):
            self.problem(
                "tun.name",
                f"{name!r} is not an interface name; use 1-15 letters, digits, '_', '.' or '-'",
            )
            name = INVALID
        mtu = self.integer(table, "mtu", where, 0, 0, 65535)
        if mtu not in (INVALID, 0) and mtu < 576:
            self.problem("tun.mtu", f"{mtu} is too small; use 0 (automatic) or at least 576")
            mtu = INVALID
        address: Any = None
        text = self.string(table, "address", where, "")
        if text is INVALID:
            address = INVALID
        elif text:
            try:
                address = ipaddress.ip_interface(text)
            except ValueError as e:
                self.problem(
                    "tun.address",
                    f"{text!r} is not an address with a prefix like 198.51.100.1/24: {e}",
                )
                address = INVALID
        routes: Any = ()
        if table.get("routes", []) != []:  # an empty list is fine here: no extra routes
            routes = self.selectors(table, "routes", where, [], allowDynamic=False)
        values = (enabled, name, mtu, address, routes)
        if any(value is INVALID for value in values):
            return INVALID
        return TunConfig(*values)

    def spd(self, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem("spd", "expected [[spd]] tables, one per policy entry")
            return INVALID
        try:
            return SPD.fromConfig(value)
        except SPDConfigError as e:
            self.problem("spd", f"{e}")
            return INVALID

    def hub(self, table: dict) -> dict[str, Any] | None:
        where = "hub"
        self.checkKeys(table, _HUB_KEYS, where)
        values: dict[str, Any] = {}
        identity = self.identity(table, "identity", where)
        if identity is not INVALID and identity.hasWildcards:
            self.problem(
                "hub.identity",
                f"{identity} contains a wildcard; the hub's own identity must be exact",
            )
            identity = INVALID
        values["identity"] = identity
        values["listen"] = self.listen(table)
        values["port"] = self.integer(table, "port", where, 500, 1, 65535)
        values["nattPort"] = self.integer(table, "natt_port", where, 4500, 1, 65535)
        if values["port"] is not INVALID and values["port"] == values["nattPort"]:
            self.problem(
                "hub.natt_port",
                f"equals hub.port ({values['port']}); NAT-T needs its own port (usually 4500)",
            )
        values["ikeProposals"] = self.proposals(
            table, "ike_proposals", ProtocolId.IKE, DEFAULT_IKE_PROPOSALS
        )
        values["espProposals"] = self.proposals(
            table, "esp_proposals", ProtocolId.ESP, DEFAULT_ESP_PROPOSALS
        )
        values["cookieThreshold"] = self.integer(table, "cookie_threshold", where, 1000, 0)
        values.update(self.sourceThresholds(table))
        values["halfOpenTimeout"] = self.number(
            table, "half_open_timeout", where, 30, 0, inclusive=False
        )
        values["retransmitTimeout"] = self.number(
            table, "retransmit_timeout", where, 2.0, 0, inclusive=False
        )
        values["retransmitBase"] = self.number(
            table, "retransmit_base", where, 1.8, 1, inclusive=True
        )
        values["retransmitTries"] = self.integer(table, "retransmit_tries", where, 5, 0)
        values["dpdDelay"] = self.number(table, "dpd_delay", where, 30, 0, inclusive=True)
        values["ikeRekeyTime"] = self.number(
            table, "ike_rekey_time", where, 14400, 0, inclusive=True
        )
        values["mobike"] = self.boolean(table, "mobike", where, True)
        values["fragmentation"] = self.boolean(table, "fragmentation", where, True)
        values["fragmentSize"] = self.fragmentSize(table)
        values["saveKeys"] = self.saveKeys(table)
        values["leaseDb"] = self.leaseDb(table)
        values.update(self.credentials(table))
        if any(value is INVALID for value in values.values()):
            return None
        return values

    def sourceThresholds(self, table: dict) -> dict[str, Any]:
        """
        The per-source limits on half-open IKE SAs: cookies first, then blocking. A source
        must be asked for cookies before it is blocked, or a client behind a busy NAT would be
        dropped where a cookie round trip would have let it in.
        """
        perSource = self.integer(table, "cookie_threshold_per_source", "hub", 10, 0)
        block = self.integer(table, "block_threshold", "hub", 100, 1)
        if perSource is not INVALID and block is not INVALID and block <= perSource:
            self.problem(
                "hub.block_threshold",
                f"{block} is not above hub.cookie_threshold_per_source ({perSource}); an "
                "address must be asked for cookies before it is blocked: raise block_threshold "
                "or lower cookie_threshold_per_source",
            )
            block = INVALID
        return {"cookieThresholdPerSource": perSource, "blockThreshold": block}
    def fragmentSize(self, table: dict) -> Any:
        """
        C{hub.fragment_size}: whole IP datagrams, at least the 576 bytes every IPv4 path
        carries (RFC 7383 section 2.5.1), at most what UDP can.
        """
        value = table.get("fragment_size", _MISSING)
        if value is _MISSING:
            return DEFAULT_FRAGMENT_SIZE
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(
                "hub.fragment_size",
                f"expected a whole number of bytes (like fragment_size = 1280), got "
                f"{_describe(value)}",
            )
            return INVALID
        if not MIN_FRAGMENT_SIZE <= value <= MAX_FRAGMENT_SIZE:
            self.problem(
                "hub.fragment_size",
                f"{value} is out of range; use {MIN_FRAGMENT_SIZE}..{MAX_FRAGMENT_SIZE} bytes "
                "(the whole IP datagram, e.g. 1280; RFC 7383 needs at least 576)",
            )
            return INVALID
        return value

    # -- certificates, CAs and users --------------------------------------------------------

    def credentials(self, table: dict) -> dict[str, Any]:
        """
        The hub's certificate and key, the CAs for peers' certificates and the EAP user
        database: read now, so that a wrong file stops the hub at start, named.
        """
        from ikehub.auth.certs import CertificateError, TrustStore
        from ikehub.auth.credentials import (
            CredentialError,
            HubCredentials,
            loadCAs,
            loadCertificateChain,
            loadCRLs,
            loadPrivateKey,
        )

        values: dict[str, Any] = {"credentials": None, "trust": None, "users": None}
        certificate = self.string(table, "certificate", "hub", "")
        privateKey = self.string(table, "private_key", "hub", "")
        if certificate is INVALID or privateKey is INVALID:
            values["credentials"] = INVALID
        elif bool(certificate) != bool(privateKey):
            missing = "private_key" if certificate else "certificate"
            self.problem(
                f"hub.{missing}",
                "missing; the hub's certificate and its private key go together: set both "
                "hub.certificate (PEM chain, end entity first) and hub.private_key",
            )
            values["credentials"] = INVALID
        elif certificate:
            try:
                chain = loadCertificateChain(self.resolve(certificate))
            except CredentialError as e:
                self.problem("hub.certificate", f"{e}")
                chain = None
            try:
                key = loadPrivateKey(self.resolve(privateKey))
            except CredentialError as e:
                self.problem("hub.private_key", f"{e}")
                key = None
            if chain is None or key is None:
                values["credentials"] = INVALID
            elif not _sameKey(chain[0].public_key(), key.public_key()):
                self.problem(
                    "hub.private_key",
                    f"is not the key of the certificate in {certificate}; point both at the "
                    "same key pair",
                )
                values["credentials"] = INVALID
            else:
                values["credentials"] = HubCredentials(chain, key)
        cas = self.pathList(table, "ca")
        crls = self.pathList(table, "crls")
        if cas is INVALID or crls is INVALID:
            values["trust"] = INVALID
        elif crls and not cas:
            self.problem("hub.crls", "CRLs need the CAs they belong to; set hub.ca too")
            values["trust"] = INVALID
        elif cas:
            try:
                caCerts = loadCAs(cas)
            except CredentialError as e:
                self.problem("hub.ca", f"{e}")
                caCerts = None
            try:
                crlList = loadCRLs(crls)
            except CredentialError as e:
                self.problem("hub.crls", f"{e}")
                crlList = None
            if caCerts is None or crlList is None:
                values["trust"] = INVALID
            else:
                try:
                    values["trust"] = TrustStore(caCerts, crlList)
                except CertificateError as e:
                    self.problem("hub.ca", f"{e}")
                    values["trust"] = INVALID
        users = self.string(table, "users", "hub", "")
        if users is INVALID:
            values["users"] = INVALID
        elif users:
            from ikehub.auth.users import UserDatabaseError, loadUsers

            try:
                values["users"] = loadUsers(self.resolve(users))
            except UserDatabaseError as e:
                self.problems.extend(e.problems)
                values["users"] = INVALID
        return values

    def pathList(self, table: dict, key: str) -> Any:
        """A string or a list of strings naming files or directories, resolved."""
        value = table.get(key, [])
        if isinstance(value, str):
            value = [value]
        texts = self.stringList({key: value}, key, "hub", [], f'["{key}/"]') if value else []
        if texts is INVALID:
            return INVALID
        return [self.resolve(text) for text in texts]

    def checkCredentialUse(self, hub: dict[str, Any], peers: list[PeerConfig]) -> None:
        """
        Peers that need the hub's certificate, or CAs to check theirs, when none are set.
        """
        for index, peer in enumerate(peers):
            if peer.localAuth == "pubkey" and hub.get("credentials") is None:
                self.problem(
                    f"peers[{index}]",
                    f"the hub authenticates to {peer.name!r} with its certificate "
                    f'(local_auth = "pubkey", the default with auth = {peer.auth!r}); set '
                    'hub.certificate and hub.private_key, or use local_auth = "psk"',
                )
            if peer.auth == "pubkey" and hub.get("trust") is None:
                self.problem(
                    f"peers[{index}].auth",
                    '"pubkey" checks peer certificates against trusted CAs; set hub.ca to '
                    "the CA certificates (files or directories)",
                )

    def authOptions(self, value: Any) -> Mapping[str, Mapping[str, Any]]:
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            self.problem(
                "auth",
                'expected one table per authenticator, like [auth."eap-radius"]; got '
                f"{_describe(value)}",
            )
            return MappingProxyType({})
        for name in value:
            if not _AUTH_NAME.fullmatch(name):
                self.problem(
                    f"auth.{name}",
                    "is not an authenticator name; use lowercase "
                    'letters, digits and "-", like [auth."eap-radius"]',
                )
        return MappingProxyType({k: MappingProxyType(v) for k, v in value.items()})

    def listen(self, table: dict) -> Any:
        values = self.stringList(table, "listen", "hub", ["0.0.0.0"], '["0.0.0.0"]')
        if values is INVALID:
            return INVALID
        addresses: list[str] = []
        for index, text in enumerate(values):
            try:
                address = str(ipaddress.ip_address(text.strip()))
            except ValueError:
                self.problem(
                    f"hub.listen[{index}]",
                    f"{text!r} is not an IPv4 or IPv6 address; use an address of this host, "
                    'or "0.0.0.0" / "::" for all',
                )
                return INVALID
            if address in addresses:
                self.problem(f"hub.listen[{index}]", f"{address} is listed twice; remove one")
                return INVALID
            addresses.append(address)
        return tuple(addresses)

    def proposals(self, table: dict, key: str, protocolId: int, defaults: tuple[str, ...]) -> Any:
        example = (
            '["aes256gcm16-prfsha384-x25519"]'
            if protocolId == ProtocolId.IKE
            else '["aes256gcm16"]'
        )
        texts = self.stringList(table, key, "hub", list(defaults), example)
        if texts is INVALID:
            return INVALID
        specs = []
        for index, text in enumerate(texts):
            try:
                specs.append(parseProposal(text, protocolId))
            except (ProposalSyntaxError, ValueError) as e:
                self.problem(f"hub.{key}[{index}]", f"{e}")
                return INVALID
        return tuple(specs)

    def saveKeys(self, table: dict) -> Any:
        value = self.string(table, "save_keys", "hub", "")
        if value is INVALID:
            return INVALID
        if not value:
            return None
        resolved = self.resolve(value)
        if not os.path.isdir(os.path.dirname(resolved)):
            self.problem(
                "hub.save_keys",
                f"the directory of {resolved} does not exist; create it, or set "
                'save_keys = "" to turn key logging off',
            )
            return INVALID
        return resolved

    def leaseDb(self, table: dict) -> Any:
        """
        C{hub.lease_db}: checked now without creating anything, so that a path the hub cannot
        use stops it before it starts; the service opens it.
        """
        value = self.string(table, "lease_db", "hub", "")
        if value is INVALID:
            return INVALID
        if not value.strip():
            return None
        from ikehub.policy.leases import LeaseStoreError, checkLeaseDb

        resolved = self.resolve(value.strip())
        try:
            checkLeaseDb(resolved)
        except LeaseStoreError as e:
            self.problem("hub.lease_db", f'{e}; or set lease_db = "" to keep leases in memory')
            return INVALID
        return resolved

    def pools(self, table: dict) -> dict[str, PoolConfig]:
        pools: dict[str, PoolConfig] = {}
        seen: list[AddressPool] = []
        for name, body in table.items():
            where = f"pools.{name}"
            if not _POOL_NAME.fullmatch(name):
                self.problem(
                    where,
                    "a pool name is letters, digits, '_', '.' and '-', starting with a letter "
                    "or digit; rename it",
                )
                continue
            if not isinstance(body, dict):
                self.problem(
                    where,
                    f"expected a table ([{where}] with addresses = ...), got {_describe(body)}",
                )
                continue
            self.checkKeys(body, _POOL_KEYS, where)
            addresses = self.string(body, "addresses", where)
            dnsTexts = self.stringList(body, "dns", where, [], '["192.0.2.53"]')
            leaseTime = self.number(
                body, "lease_time", where, int(DEFAULT_LEASE_TIME), 0, inclusive=True
            )
            if addresses is INVALID or dnsTexts is INVALID or leaseTime is INVALID:
                continue
            dns = []
            for index, text in enumerate(dnsTexts):
                try:
                    dns.append(ipaddress.ip_address(text.strip()))
                except ValueError:
                    self.problem(
                        f"{where}.dns[{index}]", f"{text!r} is not an IPv4 or IPv6 address"
                    )
            try:
                pool = AddressPool.fromString(name, addresses, dns)
            except ValueError as e:
                self.problem(
                    f"{where}.addresses",
                    f"{e}; write a range like 198.51.100.10-198.51.100.200 or a network "
                    "like 198.51.100.0/24",
                )
                continue
            overlapping = [other for other in seen if pool.overlaps(other)]
            seen.append(pool)
            if overlapping:
                other = overlapping[0]
                self.problem(
                    f"{where}.addresses",
                    f"{addresses} overlaps pools.{other.name} ({other.first}-{other.last}); "
                    "pools must not share addresses",
                )
            elif len(dns) == len(dnsTexts):
                self._poolDns[name] = tuple(dns)
                pools[name] = PoolConfig(
                    name, addresses, pool.first, pool.last, tuple(dns), leaseTime
                )
        return pools

    def peers(self, value: Any, poolNames: set[str]) -> list[PeerConfig]:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.problem(
                "peers",
                f"expected [[peers]] tables, got {_describe(value)}; start each peer with a "
                "[[peers]] line",
            )
            return []
        peers: list[PeerConfig] = []
        names: dict[str, int] = {}
        for index, table in enumerate(value):
            peer = self.peer(index, table, poolNames, names)
            if peer is not None:
                peers.append(peer)
        return peers

    def peer(
        self, index: int, table: dict, poolNames: set[str], names: dict[str, int]
    ) -> PeerConfig | None:
        where = f"peers[{index}]"
        self.checkKeys(table, _PEER_KEYS, where)
        name = self.string(table, "name", where, f"peer{index}")
        if name is not INVALID:
            if not name.strip():
                self.problem(f"{where}.name", "is empty; give the peer a name for the logs")
                name = INVALID
            elif name in names:
                self.problem(
                    f"{where}.name",
                    f"{name!r} is already the name of peers[{names[name]}]; peer names must "
                    "be unique",
                )
                name = INVALID
            else:
                names[name] = index
        identity = self.identity(table, "identity", where, ranges=True)
        auth, secondAuth = self.authRounds(table, where)
        psk = self.secret(table, where, auth)
        pools = self.peerPools(table, where, poolNames)
        dnsDomains = self.dnsDomains(table, where, pools)
        localTs = self.selectors(table, "local_ts", where, list(_DEFAULT_LOCAL_TS), False)
        remoteTs = self.selectors(table, "remote_ts", where, [DYNAMIC], True)
        localAuth = self.string(table, "local_auth", where, "psk" if auth == "psk" else "pubkey")
        if localAuth is not INVALID and localAuth not in LOCAL_AUTHS:
            self.problem(
                f"{where}.local_auth",
                f"{localAuth!r} is not how the hub can authenticate; use "
                '"pubkey" (the hub\'s certificate), "psk", or "eap" (EAP-only, RFC 5998)',
            )
            localAuth = INVALID
        if localAuth == "psk" and auth is not INVALID and auth.startswith("eap-"):
            self.problem(
                f"{where}.local_auth",
                f'"psk" needs the peer\'s pre-shared key, and this peer uses {auth!r}; '
                'use local_auth = "pubkey"',
            )
            localAuth = INVALID
        if localAuth == "eap" and auth is not INVALID and not auth.startswith("eap-"):
            self.problem(
                f"{where}.local_auth",
                f'"eap" (EAP-only) needs an EAP method as auth, not {auth!r}',
            )
            localAuth = INVALID
        eapIdentity = self.boolean(table, "eap_identity", where, False)
        remoteAddrs: Any = ()
        if "remote_addrs" in table:
            remoteAddrs = self.selectors(table, "remote_addrs", where, [], allowDynamic=False)
        groups = ()
        if "groups" in table:
            groups = self.stringList(table, "groups", where, [], '["staff"]')
            groups = tuple(groups) if groups is not INVALID else INVALID
        eapIdentities: Any = ()
        if "eap_identities" in table:
            texts = self.stringList(table, "eap_identities", where, [], '["*@example.com"]')
            eapIdentities = INVALID if texts is INVALID else []
            for position, text in enumerate(texts if texts is not INVALID else ()):
                try:
                    eapIdentities.append(parseIdentityPattern(text))
                except ValueError as e:
                    self.problem(f"{where}.eap_identities[{position}]", f"{e}")
                    eapIdentities = INVALID
                    break
            if eapIdentities is not INVALID:
                eapIdentities = tuple(eapIdentities)
        duplicates = self.string(table, "duplicates", where, "replace")
        if duplicates is not INVALID and duplicates not in DUPLICATE_POLICIES:
            self.problem(
                f"{where}.duplicates",
                f"{duplicates!r} is not a policy; use \"replace\" (a new IKE SA deletes the "
                'old one), "keep" (refuse the new one) or "never" (allow several devices)',
            )
            duplicates = INVALID
        values = (
            name,
            identity,
            auth,
            psk,
            None,
            localTs,
            remoteTs,
            localAuth,
            eapIdentity,
            remoteAddrs,
            groups,
            secondAuth,
            duplicates,
            eapIdentities,
            pools,
            dnsDomains,
        )
        if any(v is INVALID for v in values):
            return None
        return PeerConfig(*values)

    def peerPools(self, table: dict, where: str, poolNames: set[str]) -> Any:
        """
        C{pool = "NAME"} or C{pool = ["v4", "v6"]} (strongSwan's C{pools = a, b}): the pools
        a client of this peer gets its virtual IPs from, tried in order within each family.
        """
        value = table.get("pool", _MISSING)
        dotted = f"{where}.pool"
        if value is _MISSING:
            return ()
        if isinstance(value, str):
            names = [value]
        elif not isinstance(value, list):
            self.problem(
                dotted,
                f'expected a string in quotes (pool = "roadwarriors") or a list of them '
                f'(pool = ["v4", "v6"]), got {_describe(value)}',
            )
            return INVALID
        else:
            names = self.stringList(table, "pool", where, [], '["v4", "v6"]')
            if names is INVALID:
                return INVALID
        known = ", ".join(sorted(poolNames)) if poolNames else "none are defined"
        for index, name in enumerate(names):
            key = dotted if isinstance(value, str) else f"{dotted}[{index}]"
            if name not in poolNames:
                self.problem(
                    key, f"unknown pool {name!r}; define [pools.{name}] or use one of: {known}"
                )
                return INVALID
            if name in names[:index]:
                self.problem(key, f"pool {name!r} is listed twice; name each pool once")
                return INVALID
        return tuple(names)

    def dnsDomains(self, table: dict, where: str, pools: Any) -> Any:
        """
        C{dns_domains = ["corp.example.com"]}: split DNS (RFC 8598). The domains go out only
        with the DNS servers that resolve them, so the peer's pools must announce some.
        """
        if "dns_domains" not in table:
            return ()
        texts = self.stringList(table, "dns_domains", where, [], '["corp.example.com"]')
        if texts is INVALID:
            return INVALID
        domains: list[str] = []
        for index, text in enumerate(texts):
            key = f"{where}.dns_domains[{index}]"
            try:
                domain = normalizeDnsDomain(text)
            except ValueError as e:
                self.problem(key, str(e))
                return INVALID
            if domain in domains:
                self.problem(key, f"{domain!r} is listed twice; name each domain once")
                return INVALID
            domains.append(domain)
        if pools is not INVALID and all(name in self._poolDns for name in pools):
            if not any(self._poolDns[name] for name in pools):
                fix = (
                    f'add dns = ["192.0.2.53"] to [pools.{pools[0]}]'
                    if pools
                    else "give the peer a pool (pool = ...) whose dns lists them"
                )
                self.problem(
                    f"{where}.dns_domains",
                    "split DNS names the DNS servers that resolve these domains, and this "
                    f"peer's pools announce none; {fix}",
                )
                return INVALID
        return tuple(domains)

    def authRounds(self, table: dict, where: str) -> tuple[Any, Any]:
        """
        C{auth = "NAME"}, or two rounds (RFC 4739) as C{auth = ["pubkey", "eap-mschapv2"]}:
        the first round, then an EAP method. Returns (first, second or None).
        """
        value = table.get("auth", _MISSING)
        if isinstance(value, list):
            if len(value) != 2 or not all(isinstance(v, str) for v in value):
                self.problem(
                    f"{where}.auth",
                    "a list gives two authentication rounds (RFC 4739): the first, then an "
                    'EAP method, like auth = ["pubkey", "eap-mschapv2"]',
                )
                return INVALID, INVALID
            names = value
        else:
            first = self.string(table, "auth", where)
            if first is INVALID:
                return INVALID, INVALID
            names = [first]
        for index, name in enumerate(names):
            key = f"{where}.auth" if len(names) == 1 else f"{where}.auth[{index}]"
            if not _AUTH_NAME.fullmatch(name):
                self.problem(
                    key,
                    f"{name!r} is not an authenticator name; use lowercase letters, digits and "
                    '"-", for example auth = "psk"',
                )
                return INVALID, INVALID
        if len(names) == 2 and names[0].startswith("eap-"):
            self.problem(
                f"{where}.auth[0]",
                f"{names[0]!r}: the first of two rounds is a certificate or key (pubkey, psk, "
                "a plugin), then the EAP method",
            )
            return INVALID, INVALID
        if len(names) == 2 and not names[1].startswith("eap-"):
            self.problem(
                f"{where}.auth[1]",
                f"{names[1]!r}: the second round must be an EAP method (eap-...), as clients "
                "use it: a certificate, then the user's password",
            )
            return INVALID, INVALID
        return names[0], (names[1] if len(names) == 2 else None)

    def selectors(
        self, table: dict, key: str, where: str, default: list[str], allowDynamic: bool
    ) -> Any:
        example = '["dynamic"]' if allowDynamic else '["192.0.2.0/24"]'
        texts = self.stringList(table, key, where, default, example)
        if texts is INVALID:
            return INVALID
        result: list[Network | str] = []
        for index, text in enumerate(texts):
            if allowDynamic and text.strip() == DYNAMIC:
                result.append(DYNAMIC)
                continue
            try:
                result.append(ipaddress.ip_network(text.strip(), strict=True))
            except ValueError as e:
                what = '"dynamic" or a network' if allowDynamic else "a network"
                self.problem(
                    f"{where}.{key}[{index}]",
                    f"{text!r} is not {what} like 192.0.2.0/24: {e}{_networkHint(text.strip())}",
                )
                return INVALID
        return tuple(result)

    # -- secrets --------------------------------------------------------------------------

    def secret(self, table: dict, where: str, auth: Any) -> Any:
        hasPsk = "psk" in table
        hasFile = "psk_file" in table
        if auth is INVALID:
            return INVALID
        if auth != "psk":
            for key in ("psk", "psk_file"):
                if key in table:
                    self.problem(
                        f"{where}.{key}",
                        f'is only used with auth = "psk" (this peer uses {auth!r}); remove it',
                    )
                    return INVALID
            return None
        if hasPsk and hasFile:
            self.problem(where, "set either psk or psk_file, not both")
            return INVALID
        if not hasPsk and not hasFile:
            self.problem(
                where,
                'auth = "psk" needs a pre-shared key: set psk = "..." or '
                'psk_file = "/etc/ikehub/<name>.psk" (for example from: openssl rand -base64 24)',
            )
            return INVALID
        if hasPsk:
            text = self.string(table, "psk", where, secret=True)
            if text is INVALID:
                return INVALID
            return self.checkPsk(f"{where}.psk", text.encode("utf-8"), "the pre-shared key")
        pathText = self.string(table, "psk_file", where)
        if pathText is INVALID:
            return INVALID
        if not pathText:
            self.problem(f"{where}.psk_file", "is empty; give the path of the key file")
            return INVALID
        data = self.readSecretFile(f"{where}.psk_file", self.resolve(pathText))
        if data is INVALID:
            return INVALID
        return self.checkPsk(f"{where}.psk_file", data, f"the pre-shared key in {pathText}")

    def checkPsk(self, key: str, raw: bytes, what: str) -> Any:
        """
        Decode strongSwan's C{0x} (hex) and C{0s} (base64) notations and enforce the length.
        """
        try:
            if raw[:2] == b"0x":
                secret = binascii.unhexlify(b"".join(raw[2:].split()))
            elif raw[:2] == b"0s":
                secret = base64.b64decode(b"".join(raw[2:].split()), validate=True)
            else:
                secret = raw
        except (binascii.Error, ValueError):
            notation = "hex" if raw[:2] == b"0x" else "base64"
            self.problem(
                key,
                f"{what} starts with {raw[:2].decode()} but is not valid {notation}; fix the "
                "encoding, or drop the prefix to use the text itself",
            )
            return INVALID
        if len(secret) < MIN_PSK_LENGTH:
            self.problem(
                key,
                f"{what} is {len(secret)} bytes; use at least {MIN_PSK_LENGTH} random bytes "
                "(for example: openssl rand -base64 24)",
            )
            return INVALID
        return secret

    def readSecretFile(self, key: str, path: str) -> Any:
        try:
            with open(path, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode):
                    self.problem(key, f"{path} is not a regular file; point it at the key file")
                    return INVALID
                mode = stat.S_IMODE(info.st_mode)
                if mode & 0o077:
                    self.problem(
                        key,
                        f"{path} is accessible by group or others (mode {mode:04o}); "
                        f"run: chmod 600 {path}",
                    )
                    return INVALID
                data = f.read(MAX_PSK_FILE_SIZE + 1)
        except FileNotFoundError:
            self.problem(
                key,
                f"{path} does not exist; create it (for example: openssl rand -base64 24 > "
                f"{path}; chmod 600 {path})",
            )
            return INVALID
        except IsADirectoryError:
            self.problem(key, f"{path} is a directory; point it at the key file")
            return INVALID
        except OSError as e:
            self.problem(
                key,
                f"cannot read {path}: {e.strerror or e}; make it readable by the user "
                "ikehub runs as",
            )
            return INVALID
        if len(data) > MAX_PSK_FILE_SIZE:
            self.problem(key, f"{path} is larger than {MAX_PSK_FILE_SIZE} bytes; is it the key?")
            return INVALID
        return data.rstrip(b"\r\n")
