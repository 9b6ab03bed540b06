"""
An in-memory network for IKE endpoints on a L{task.Clock}: no sockets, full control over loss,
duplication and reordering.

Each endpoint lives at a host; a path is simply the local port a datagram used, so a datagram sent
by host A from port 500 to (B, 4500) arrives at B from (A, 500) on path 4500.
"""

import ipaddress

from twisted.internet.task import Clock

from ikehub.crypto.proposals import parseProposal
from ikehub.esp.sad import SAD
from ikehub.ike.endpoint import IKEEndpoint
from ikehub.ike.initiator import InitiatorSpec
from ikehub.ike.settings import IKESettings
from ikehub.policy.pad import PAD, PADEntry
from ikehub.policy.pool import AddressPool
from ikehub.wire.constants import ProtocolId
from ikehub.wire.identity import Identity

HUB = "192.0.2.1"
CLIENT = "192.0.2.11"
PSK = b"an example key of at least 16 bytes"


class MemoryNetwork:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.endpoints: dict[str, IKEEndpoint] = {}
        #: Datagrams in flight: (source host, source port, destination (host, port), bytes).
        self.inFlight: list[tuple[str, int, tuple[str, int], bytes]] = []
        #: Every datagram ever sent, for inspection.
        self.log: list[tuple[str, int, tuple[str, int], bytes]] = []
        #: A function deciding to drop a datagram: (source host, destination, bytes) -> bool.
        self.dropIf = None

    def sender(self, host: str):
        def send(datagram: bytes, peer: tuple[str, int], path) -> None:
            record = (host, path, peer, datagram)
            self.log.append(record)
            if self.dropIf is not None and self.dropIf(host, peer, datagram):
                return
            self.inFlight.append(record)

        return send

    def attach(self, host: str, endpoint: IKEEndpoint) -> None:
        self.endpoints[host] = endpoint

    def pump(self, limit: int = 1000) -> int:
        """
        Deliver datagrams until none are in flight; returns how many were delivered.
        """
        delivered = 0
        while self.inFlight and delivered < limit:
            host, port, (destHost, destPort), datagram = self.inFlight.pop(0)
            destination = self.endpoints.get(destHost)
            if destination is not None:
                destination.datagramReceived(datagram, (host, port), destPort)
            delivered += 1
        return delivered

    def inject(self, destHost: str, datagram: bytes, source=(CLIENT, 500), path=500) -> None:
        self.endpoints[destHost].datagramReceived(datagram, source, path)


def ikeProposals(*texts):
    return tuple(parseProposal(t, ProtocolId.IKE) for t in texts)


def espProposals(*texts):
    return tuple(parseProposal(t, ProtocolId.ESP) for t in texts)


def hubSettings(**overrides) -> IKESettings:
    values = dict(
        identity=Identity.fromString("hub.example.com"),
        ikeProposals=ikeProposals("aes256gcm16-prfsha384-x25519-ecp256", "aes256-sha256-modp2048"),
        espProposals=espProposals("aes256gcm16", "aes128-sha256"),
        cookieThreshold=100,
        halfOpenTimeout=30.0,
        retransmitTimeout=2.0,
        retransmitBase=1.8,
        retransmitTries=3,
    )
    values.update(overrides)
    return IKESettings(**values)


def padWith(
    pool=None,
    identity="alice@example.com",
    psk=PSK,
    remoteTs=("dynamic",),
    localTs=None,
    duplicates="never",
):
    """
    One PSK entry. Its duplicates policy is "never" because the in-memory tests connect the
    same identity many times; the policy's own tests choose theirs.
    """
    return PAD(
        [
            PADEntry(
                name="roadwarriors",
                identity=Identity.fromString(identity),
                auth="psk",
                psk=psk,
                pool=pool,
                localTs=localTs or (ipaddress.ip_network("203.0.113.0/24"),),
                remoteTs=remoteTs,
                duplicates=duplicates,
            )
        ]
    )


def makePool(text="198.51.100.10-198.51.100.20", dns=("192.0.2.53",)):
    return AddressPool.fromString("rw", text, tuple(ipaddress.ip_address(d) for d in dns))


def clientSpec(**overrides) -> InitiatorSpec:
    values = dict(
        identity=Identity.fromString("alice@example.com"),
        psk=PSK,
        ikeProposals=ikeProposals("aes256gcm16-prfsha384-x25519"),
        espProposals=espProposals("aes256gcm16"),
        requestVirtualIp=True,
        localTs=(ipaddress.ip_network("0.0.0.0/0"),),
        remoteTs=(ipaddress.ip_network("203.0.113.0/24"),),
    )
    values.update(overrides)
    return InitiatorSpec(**values)


class Pair:
    """
    A hub (responder) and a client (initiator) on one in-memory network.
    """

    def __init__(self, settings=None, pad=None, pool=None, clientSettings=None) -> None:
        self.clock = Clock()
        self.net = MemoryNetwork(self.clock)
        self.pool = pool if pool is not None else makePool()
        self.hubSad = SAD()
        self.hub = IKEEndpoint(
            settings or hubSettings(),
            pad or padWith(self.pool),
            self.hubSad,
            self.clock,
            self.net.sender(HUB),
            floatPath=4500,
        )
        self.clientSad = SAD()
        self.client = IKEEndpoint(
            clientSettings or hubSettings(identity=Identity.fromString("alice@example.com")),
            PAD([]),
            self.clientSad,
            self.clock,
            self.net.sender(CLIENT),
            floatPath=4500,
        )
        self.net.attach(HUB, self.hub)
        self.net.attach(CLIENT, self.client)
        self.hub.start()

    def connect(self, spec=None):
        """
        Initiate from the client and pump until quiet; returns (result list, failure list).
        """
        results, failures = [], []
        d = self.client.initiate(spec or clientSpec(), (HUB, 500), 500)
        d.addCallbacks(results.append, failures.append)
        self.net.pump()
        return results, failures
