"""
The UDP sockets the hub listens on, as Twisted DatagramProtocols.

One protocol instance per bound (address, port). Each sorts what arrives (RFC 3948 section 2):
four zero bytes (the non-ESP marker) introduce IKE; a single 0xFF byte is a NAT keepalive, absorbed
and never answered; anything else on the NAT-T port is ESP. The IKE port also accepts marker-framed
IKE and ESP, because a peer talking to a responder on a non-standard port sends both there.
"""

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from ikehub.wire.constants import NAT_KEEPALIVE, NON_ESP_MARKER


class IKEDatagramProtocol(DatagramProtocol):
    log = Logger()

    def __init__(self, endpoint, sad, counters, isNattPort: bool, esp=None) -> None:
        self.endpoint = endpoint
        self.sad = sad
        self.counters = counters
        self.isNattPort = isNattPort
        #: Receives ESP datagrams: C{esp(data, peer, protocol)}; None counts and drops them.
        self.esp = esp
        self.framedPath = (self, True)
        self.plainPath = (self, False)

    def datagramReceived(self, data: bytes, addr) -> None:
        peer = (addr[0], addr[1])
        if data[:4] == NON_ESP_MARKER:
            self.endpoint.datagramReceived(data[4:], peer, self.framedPath)
        elif data == NAT_KEEPALIVE:
            self.counters.increment("nat_keepalive")
        elif self.isNattPort or self.sad.lookup(data[:4]) is not None:
            if self.esp is None:
                self.counters.increment("esp_dropped_no_datapath")
            else:
                self.esp(data, peer, self)
        else:
            self.endpoint.datagramReceived(data, peer, self.plainPath)

    def sendIKE(self, datagram: bytes, peer: tuple[str, int], framed: bool) -> None:
        try:
            self.transport.write(NON_ESP_MARKER + datagram if framed else datagram, peer)
        except Exception as e:
            # An unreachable peer or a full socket buffer costs this datagram, never the reactor.
            self.counters.increment("send_failed")
            self.log.debug("Could not send to {peer}: {error}", peer=peer[0], error=str(e))


def sendVia(datagram: bytes, peer: tuple[str, int], path) -> None:
    """
    The endpoint's send function: C{path} is the (protocol, framed) pair a request arrived by.
    """
    protocol, framed = path
    protocol.sendIKE(datagram, peer, framed)
