"""
The hub as a Twisted service: configuration in, listening sockets and an IKE endpoint out.

This is where the layers meet: the PAD and pools from the configuration, the SAD, the sans-IO
IKE endpoint on the reactor's clock, and one UDP listener per configured address and port.
"""

import gc
import ipaddress
import os

from twisted.application.service import MultiService
from twisted.logger import Logger

from ikehub.config import ConfigError, HubConfig
from ikehub.esp.datapath import ESPDatapath
from ikehub.esp.espsa import UNLIMITED, Lifetime
from ikehub.esp.sad import SAD
from ikehub.ike.endpoint import IKEEndpoint
from ikehub.ike.keylog import wiresharkKeyLine
from ikehub.ike.settings import IKESettings
from ikehub.net.memorysink import MemoryPacketInterface
from ikehub.net.tun import TunDevice, TunError, mtuFor
from ikehub.net.udp import IKEDatagramProtocol, UDPListener, sendEsp, sendVia
from ikehub.policy.pad import PAD
from ikehub.policy.leases import LeaseStore, LeaseStoreError
from ikehub.policy.pool import AddressPool


#: Allocations between two passes of the cyclic garbage collector over young objects (Python's
#: default is 700); see L{IKEHubService.startService}.
GC_YOUNG_THRESHOLD = 20000


def settingsFromConfig(config: HubConfig) -> IKESettings:
    return IKESettings(
        identity=config.identity,
        ikeProposals=config.ikeProposals,
        espProposals=config.espProposals,
        cookieThreshold=config.cookieThreshold,
        cookieThresholdPerSource=config.cookieThresholdPerSource,
        blockThreshold=config.blockThreshold,
        halfOpenTimeout=config.halfOpenTimeout,
        retransmitTimeout=config.retransmitTimeout,
        retransmitBase=config.retransmitBase,
        retransmitTries=config.retransmitTries,
        dpdDelay=config.dpdDelay,
        ikeRekeyTime=config.ikeRekeyTime,
        requirePfs=config.esp.requirePfs if config.esp is not None else False,
        mobike=config.mobike,
        fragmentation=config.fragmentation,
        fragmentSize=config.fragmentSize,
    )


def buildPools(config: HubConfig, clock) -> tuple[dict[str, AddressPool], LeaseStore | None]:
    """
    The live pools, timing leases on C{clock}, and the lease store they share (None without
    C{hub.lease_db}), opened now: its leases are read into the pools.

    @raise ConfigError: naming C{hub.lease_db} when the store cannot be opened or created.
    """
    store = None
    if config.leaseDb is not None:
        try:
            store = LeaseStore.open(config.leaseDb, clock)
        except LeaseStoreError as e:
            raise ConfigError(
                f'{config.path}: hub.lease_db: {e}; or set lease_db = "" to keep leases in '
                "memory"
            ) from None
    pools = {name: pool.makePool(clock, store) for name, pool in config.pools.items()}
    return pools, store


class IKEHubService(MultiService):
    log = Logger()

    def __init__(self, config: HubConfig, reactor, auth=None) -> None:
        super().__init__()
        if auth is None:
            from ikehub.auth.registry import buildRegistry

            auth = buildRegistry(config, reactor)
        self.config = config
        self.reactor = reactor
        try:
            self.pools, self.leaseStore = buildPools(config, reactor)
        except ConfigError as e:
            # Like [tun]: one line naming the file and key, not a traceback.
            raise SystemExit(f"ikehub: {e}")
        if self.leaseStore is not None:
            self.log.info(
                "address leases are kept in {path} ({leases} running)",
                path=self.leaseStore.path,
                leases=sum(pool.leases for pool in self.pools.values()),
            )
        esp = config.esp
        self.sad = SAD(
            esp.replayWindow,
            Lifetime(
                hardSeconds=esp.lifetime or UNLIMITED,
                hardBytes=esp.lifetimeBytes or UNLIMITED,
                hardPackets=esp.lifetimePackets or UNLIMITED,
            ),
        )
        self.endpoint = IKEEndpoint(
            settingsFromConfig(config),
            PAD.fromConfig(config.peers, self.pools),
            self.sad,
            reactor,
            sendVia,
            auth=auth,
        )
        self.protocols: list[IKEDatagramProtocol] = []
        for address in config.listen:
            for port, isNattPort in ((config.port, False), (config.nattPort, True)):
                protocol = IKEDatagramProtocol(
                    self.endpoint, self.sad, self.endpoint.counters, isNattPort
                )
                self.protocols.append(protocol)
                UDPListener(port, protocol, address, reactor).setServiceParent(self)
        natt = next(p for p in self.protocols if p.isNattPort)
        self.endpoint.floatPath = natt.framedPath
        self.packetInterface = None
        self.datapath = None
        self._keyLog = None

    # -- the datapath -----------------------------------------------------------------------

    def tunRoutes(self) -> list:
        """
        What the kernel must send into the hub: every pool, the configured routes, and the
        networks static peers may use as their own side.
        """
        routes = []
        for pool in self.config.pools.values():
            routes.extend(ipaddress.summarize_address_range(pool.first, pool.last))
        routes.extend(self.config.tun.routes)
        for peer in self.config.peers:
            routes.extend(ts for ts in peer.remoteTs if ts != "dynamic")
        return list(dict.fromkeys(routes))

    def _startDatapath(self) -> None:
        tun = self.config.tun
        if tun.enabled:
            try:
                self.packetInterface = TunDevice.create(
                    tun.name,
                    tun.mtu or mtuFor(),
                    [tun.address] if tun.address is not None else [],
                    self.tunRoutes(),
                    self.reactor,
                )
            except TunError as e:
                raise SystemExit(f"ikehub: {self.config.path}: [tun]: {e}")
            self._warnIfNotForwarding()
        else:
            # No kernel side: traffic between peers still flows, the rest is counted and dropped.
            self.packetInterface = MemoryPacketInterface("none", keep=0)
        self.datapath = ESPDatapath(
            self.sad, self.packetInterface, self.config.spd, self.reactor, sendEsp,
            self.endpoint.counters,
        )
        self.datapath.lifetimeReached = self._lifetimeReached
        self.datapath.unknownSpi = self.endpoint.espUnknownSpi
        for protocol in self.protocols:
            protocol.esp = self.datapath.espReceived
        self.packetInterface.startReading()

    def _warnIfNotForwarding(self) -> None:
        try:
            with open("/proc/sys/net/ipv4/ip_forward") as f:
                forwarding = f.read().strip() == "1"
        except OSError:
            return
        if not forwarding:
            self.log.warn(
                "net.ipv4.ip_forward is 0: the kernel will not forward tunnel traffic to the "
                "networks behind the hub; enable it with: sysctl -w net.ipv4.ip_forward=1"
            )

    def _lifetimeReached(self, espSa, hard: bool, what: str) -> None:
        child = espSa.child
        if hard:
            self.log.info(
                "CHILD SA {spi_in} reached its hard lifetime ({what}); deleting it",
                what=what,
                **espSa.counters(),
            )
            self.endpoint.deleteChildSa(child)
        else:
            self.log.info(
                "CHILD SA {spi_in} reached its soft lifetime ({what}); rekeying it",
                spi_in=child.inboundSpi.hex(),
                what=what,
            )
            self.endpoint.rekeyChildSa(child)

    # -- lifecycle --------------------------------------------------------------------------

    def _openKeyLog(self, path: str) -> None:
        """
        C{save_keys}: append every IKE SA's keys to C{path} (mode 0600) for Wireshark.
        """
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._keyLog = os.fdopen(fd, "a", buffering=1)

        def record(sa) -> None:
            self._keyLog.write(wiresharkKeyLine(sa))

        self.endpoint.keysDerived = record
        self.log.warn(
            "save_keys is on: IKE keys are written to {path}; anyone who can read it can decrypt "
            "IKE traffic. Turn it off outside debugging.",
            path=path,
        )

    def privilegedStartService(self) -> None:
        # The TUN device and ports 500/4500 need privileges twistd may drop after this.
        self._startDatapath()
        super().privilegedStartService()

    def startService(self) -> None:
        super().startService()
        if self.config.saveKeys:
            self._openKeyLog(self.config.saveKeys)
        self.endpoint.start()
        # Everything built so far (Twisted, cryptography, the configuration, the PAD) lives as
        # long as the process. Freezing it keeps the cyclic collector from scanning it again and
        # again: about 2 % of the hub's CPU per IKE SA. And the collector runs less often: a
        # handshake allocates about a thousand containers, freed by reference counting, so at
        # Python's default of every 700 allocations its young-generation passes find next to
        # nothing (another 0.7 %). Cycles, rare here (failures with tracebacks), wait a little
        # longer: at most the last GC_YOUNG_THRESHOLD allocations' worth.
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        self.log.info(
            "ikehub {identity} listening on {listen} ports {port}/{nattPort} ({peers} PAD "
            "entries, packets via {interface})",
            identity=str(self.config.identity),
            listen=", ".join(self.config.listen),
            port=self.config.port,
            nattPort=self.config.nattPort,
            peers=len(self.config.peers),
            interface=self.packetInterface.name if self.packetInterface else None,
        )

    def _logCounters(self) -> None:
        """
        One line with every IKE and datapath counter (cookies sent, drops by reason,
        INVALID_IKE_SPI answers...), so what a hub saw is on record when it stops.
        """
        counts = self.endpoint.counters.snapshot()
        self.log.info(
            "IKE counters at stop: {counters}",
            event="counters",
            counters=" ".join(f"{name}={counts[name]}" for name in sorted(counts)),
        )

    def stopService(self):
        """
        Delete every IKE SA with the peers before closing the sockets, so that clients learn at
        once that the hub went away.
        """
        stopChildren = super().stopService

        def closeEverything(_):
            self.endpoint.stop()
            self._logCounters()
            # Every SA is gone, so every lease is released: write them all, then close.
            if self.leaseStore is not None:
                self.leaseStore.close()
            if self._keyLog is not None:
                self._keyLog.close()
                self._keyLog = None
            if self.packetInterface is not None:
                self.packetInterface.stopReading()
                close = getattr(self.packetInterface, "close", None)
                if close is not None:
                    close()
            return stopChildren()

        return self.endpoint.shutdown().addCallback(closeEverything)
