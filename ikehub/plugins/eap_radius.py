"""
The C{eap-radius} EAP method: EAP pass-through to RADIUS servers (RFC 3579).

Configuration (the method's C{[auth.eap-radius]} table)::

    [auth.eap-radius]
    timeout = 3                 # seconds before a retransmission (default 3)
    retries = 2                 # retransmissions before failing over (default 2)
    nas_identifier = "ikehub"   # NAS-Identifier (default "ikehub")

    [[auth.eap-radius.servers]]
    address = "192.0.2.10"      # an IP address
    port = 1812                 # default 1812
    secret_file = "radius.secret"   # owner-only (chmod 600), or: secret = "..."

The method is mutual: the RADIUS server runs the EAP method and hands the MSK back in
MS-MPPE-Recv-Key and MS-MPPE-Send-Key.

Built with a reactor (the hub under twistd), the method binds its UDP sockets at once, so a
host that cannot is reported at start. Built without one (C{ikehub check}), it only checks
its options: no socket is bound and no reactor is imported until a first request, which a
check never makes. This module stays cheap to import; the RADIUS code
is imported in C{build()}.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Mapping
from typing import Any

from twisted.plugin import IPlugin
from zope.interface import implementer

from ikehub.auth.plugin import PluginConfigError, PluginContext
from ikehub.interfaces import IEAPMethodPlugin

__all__ = ["EAPRadiusPlugin", "eapRadius"]

#: RFC 2865 section 3: the secret SHOULD be at least 16 octets.
MIN_SECRET_LENGTH = 16
MAX_SECRET_FILE_SIZE = 65536
_OPTIONS = frozenset(("servers", "timeout", "retries", "nas_identifier"))
_SERVER_KEYS = frozenset(("address", "port", "secret", "secret_file"))


@implementer(IPlugin, IEAPMethodPlugin)
class EAPRadiusPlugin:
    """Relays EAP to RADIUS servers; see the module docstring for the options."""

    name = "eap-radius"
    mutual = True

    def build(self, context: PluginContext) -> Any:
        from twisted.internet.error import CannotListenError

        from ikehub.auth.radius import RADIUSEAPMethod, listen

        options = _Options(context)
        if context.reactor is None:
            # Built without a reactor (ikehub check): validate, but bind nothing and import
            # no reactor; the sockets are bound on the first request, should one come.
            client, sockets = listen(
                None,
                context.clock,
                options.servers,
                timeout=options.timeout,
                retries=options.retries,
                lazy=True,
            )
            return RADIUSEAPMethod(
                context.name or self.name,
                client,
                nasIdentifier=options.nasIdentifier,
                sockets=sockets,
            )
        reactor = context.reactor
        clock = context.clock if context.clock is not None else reactor
        try:
            client, ports = listen(
                reactor,
                clock,
                options.servers,
                timeout=options.timeout,
                retries=options.retries,
            )
        except (CannotListenError, OSError) as e:
            raise PluginConfigError(
                "servers",
                f"cannot open a UDP socket to talk to the RADIUS servers ({e}); check that "
                "the host has an address of each server's family",
            ) from None
        return RADIUSEAPMethod(
            context.name or self.name,
            client,
            nasIdentifier=options.nasIdentifier,
            ports=ports,
        )


class _Options:
    """C{context.options}, checked; raises L{PluginConfigError} on the first problem."""

    def __init__(self, context: PluginContext) -> None:
        from ikehub.auth.radius import RADIUSServer

        self.context = context
        options = context.options
        if not isinstance(options, Mapping):
            raise PluginConfigError("", "the eap-radius options must be a table")
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise PluginConfigError(
                unknown[0],
                f"unknown option; eap-radius knows {', '.join(sorted(_OPTIONS))}",
            )
        self.timeout = self._number("timeout", options.get("timeout", 3), 0.1, 60)
        retries = options.get("retries", 2)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise PluginConfigError(
                "retries", f"must be a whole number from 0 to 10, not {retries!r}"
            )
        self.retries = retries
        nas = options.get("nas_identifier", "ikehub")
        if not isinstance(nas, str) or not nas or len(nas.encode("utf-8")) > 253:
            raise PluginConfigError(
                "nas_identifier", 'must be text of 1 to 253 octets, like "vpn-hub-1"'
            )
        self.nasIdentifier = nas

        servers = options.get("servers")
        if servers is None:
            raise PluginConfigError(
                "servers",
                "eap-radius needs at least one server: add [[auth.eap-radius.servers]] with "
                "address and secret_file",
            )
        if isinstance(servers, Mapping) or not isinstance(servers, list | tuple) or not servers:
            raise PluginConfigError(
                "servers",
                "must be a non-empty list of tables ([[auth.eap-radius.servers]]), each with "
                "address and secret or secret_file",
            )
        self.servers = []
        seen = set()
        for i, entry in enumerate(servers):
            server = RADIUSServer(**self._server(f"servers[{i}]", entry))
            if server.key in seen:
                raise PluginConfigError(
                    f"servers[{i}]", f"{server} is listed twice; remove one of the entries"
                )
            seen.add(server.key)
            self.servers.append(server)

    @staticmethod
    def _number(key: str, value: Any, low: float, high: float) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise PluginConfigError(key, f"must be a number of seconds from {low} to {high}")
        return float(value)

    def _server(self, where: str, entry: Any) -> dict[str, Any]:
        if not isinstance(entry, Mapping):
            raise PluginConfigError(where, "must be a table with address and secret_file")
        unknown = sorted(set(entry) - _SERVER_KEYS)
        if unknown:
            raise PluginConfigError(
                f"{where}.{unknown[0]}",
                f"unknown server option; a server has {', '.join(sorted(_SERVER_KEYS))}",
            )
        address = entry.get("address")
        if not isinstance(address, str):
            raise PluginConfigError(f"{where}.address", "give the server's IP address as text")
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise PluginConfigError(
                f"{where}.address",
                f"{address!r} is not an IP address; give the RADIUS server's address "
                "(host names are not resolved)",
            ) from None
        port = entry.get("port", 1812)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise PluginConfigError(
                f"{where}.port", f"must be a port number 1..65535, not {port!r}"
            )
        if ("secret" in entry) == ("secret_file" in entry):
            raise PluginConfigError(
                where, "give exactly one of secret and secret_file (a chmod 600 file)"
            )
        if "secret" in entry:
            key = f"{where}.secret"
            value = entry["secret"]
            if not isinstance(value, str):
                raise PluginConfigError(key, "must be text")
            secret = value.encode("utf-8")
        else:
            key = f"{where}.secret_file"
            value = entry["secret_file"]
            if not isinstance(value, str) or not value:
                raise PluginConfigError(key, "must be the path of a file holding the secret")
            secret = self._readSecretFile(key, self.context.resolve(value))
        if len(secret) < MIN_SECRET_LENGTH:
            raise PluginConfigError(
                key,
                f"the RADIUS secret is {len(secret)} octets; use at least {MIN_SECRET_LENGTH} "
                "random characters on both the hub and the server "
                "(for example: openssl rand -base64 24)",
            )
        return {"address": str(parsed), "port": port, "secret": secret}

    @staticmethod
    def _readSecretFile(key: str, path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise PluginConfigError(key, f"{path} is not a regular file")
                mode = stat.S_IMODE(info.st_mode)
                if mode & 0o077:
                    raise PluginConfigError(
                        key,
                        f"{path} is accessible by group or others (mode {mode:04o}); "
                        f"run: chmod 600 {path}",
                    )
                data = f.read(MAX_SECRET_FILE_SIZE + 1)
        except FileNotFoundError:
            raise PluginConfigError(
                key, f"{path} does not exist; create it with the secret and chmod 600 it"
            ) from None
        except IsADirectoryError:
            raise PluginConfigError(key, f"{path} is a directory; point it at the file") from None
        except OSError as e:
            raise PluginConfigError(
                key,
                f"cannot read {path}: {e.strerror or e}; make it readable by the user ikehub "
                "runs as",
            ) from None
        if len(data) > MAX_SECRET_FILE_SIZE:
            raise PluginConfigError(key, f"{path} is larger than {MAX_SECRET_FILE_SIZE} bytes")
        return data.rstrip(b"\r\n")


#: The plugin object C{getPlugins(IEAPMethodPlugin, ikehub.plugins)} finds.
eapRadius = EAPRadiusPlugin()
