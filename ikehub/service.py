"""
The hub as a Twisted service: configuration in, listening sockets and an IKE endpoint out.

This is where the layers meet: the PAD and pools from the configuration, the SAD, the sans-IO
IKE endpoint on the reactor's clock, and one UDP listener per configured address and port.
"""

import os

from twisted.application import internet
from twisted.application.service import MultiService
from twisted.logger import Logger

from ikehub.config import HubConfig
from ikehub.esp.sad import SAD
from ikehub.ike.endpoint import IKEEndpoint
from ikehub.ike.keylog import wiresharkKeyLine
from ikehub.ike.settings import IKESettings
from ikehub.net.udp import IKEDatagramProtocol, sendVia
from ikehub.policy.pad import PAD
from ikehub.policy.pool import AddressPool


def settingsFromConfig(config: HubConfig) -> IKESettings:
    return IKESettings(
        identity=config.identity,
        ikeProposals=config.ikeProposals,
        espProposals=config.espProposals,
        cookieThreshold=config.cookieThreshold,
        halfOpenTimeout=config.halfOpenTimeout,
        retransmitTimeout=config.retransmitTimeout,
        retransmitBase=config.retransmitBase,
        retransmitTries=config.retransmitTries,
        forceEncap=config.forceEncap,
    )


class IKEHubService(MultiService):
    log = Logger()

    def __init__(self, config: HubConfig, reactor) -> None:
        super().__init__()
        self.config = config
        self.pools = {
            name: AddressPool(name, pool.first, pool.last, pool.dns)
            for name, pool in config.pools.items()
        }
        self.sad = SAD()
        self.endpoint = IKEEndpoint(
            settingsFromConfig(config),
            PAD.fromConfig(config.peers, self.pools),
            self.sad,
            reactor,
            sendVia,
        )
        self.protocols: list[IKEDatagramProtocol] = []
        for address in config.listen:
            for port, isNattPort in ((config.port, False), (config.nattPort, True)):
                protocol = IKEDatagramProtocol(
                    self.endpoint, self.sad, self.endpoint.counters, isNattPort
                )
                self.protocols.append(protocol)
                internet.UDPServer(port, protocol, interface=address).setServiceParent(self)
        natt = next(p for p in self.protocols if p.isNattPort)
        self.endpoint.floatPath = natt.framedPath
        self._keyLog = None

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

    def startService(self) -> None:
        super().startService()
        if self.config.saveKeys:
            self._openKeyLog(self.config.saveKeys)
        self.endpoint.start()
        self.log.info(
            "ikehub {identity} listening on {listen} ports {port}/{nattPort} ({peers} PAD entries)",
            identity=str(self.config.identity),
            listen=", ".join(self.config.listen),
            port=self.config.port,
            nattPort=self.config.nattPort,
            peers=len(self.config.peers),
        )

    def stopService(self):
        """
        Delete every IKE SA with the peers before closing the sockets, so that clients learn at
        once that the hub went away.
        """
        stopChildren = super().stopService

        def closeSockets(_):
            self.endpoint.stop()
            if self._keyLog is not None:
                self._keyLog.close()
                self._keyLog = None
            return stopChildren()

        return self.endpoint.shutdown().addCallback(closeSockets)
