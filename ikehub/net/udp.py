"""
The UDP sockets the hub listens on, as Twisted DatagramProtocols.

One protocol instance per bound (address, port). Each sorts what arrives (RFC 3948 section 2):
four zero bytes (the non-ESP marker) introduce IKE; a single 0xFF byte is a NAT keepalive, absorbed
and never answered; anything else on the NAT-T port is ESP. The IKE port also accepts marker-framed
IKE and ESP, because a peer talking to a responder on a non-standard port sends both there.

L{DrainingPort} replaces Twisted's UDP read loop with a tighter one for the ESP fast path, and
L{sendEsp} writes ESP straight to the socket.
"""

import errno
import socket

from twisted.application.service import Service
from twisted.internet import udp
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from ikehub.wire.constants import NAT_KEEPALIVE, NON_ESP_MARKER

_READ_AGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)

#: Socket buffers for the hub's UDP ports: a burst of ESP from many peers must wait in the kernel
#: while the reactor catches up, not be dropped (the default is ~200 KiB).
SOCKET_BUFFER = 8 << 20


def enlargeBuffers(sock: socket.socket, size: int = SOCKET_BUFFER) -> None:
    """
    Ask for C{size}-byte receive and send buffers; as root beyond net.core.rmem_max/wmem_max.
    """
    for force, plain in (
        (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF),
        (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF),
    ):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force if force is not None else plain, size)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, plain, size)


class IKEDatagramProtocol(DatagramProtocol):
    log = Logger()

    def __init__(self, endpoint, sad, counters, isNattPort: bool, esp=None) -> None:
        self.endpoint = endpoint
        self.sad = sad
        self.counters = counters
        self.isNattPort = isNattPort
        #: Receives ESP datagrams: C{esp(data, peer, path)}; None counts and drops them.
        self.esp = esp
        self.framedPath = (self, True)
        self.plainPath = (self, False)
        self.socket = None

    def startProtocol(self) -> None:
        self.socket = self.transport.socket

    def datagramReceived(self, data: bytes, addr) -> None:
        peer = (addr[0], addr[1])
        if data[:4] == NON_ESP_MARKER:
            self.endpoint.datagramReceived(data[4:], peer, self.framedPath)
        elif data == NAT_KEEPALIVE:
            self.counters.increment("nat_keepalive")
        elif self.isNattPort or data[:4] in self.sad.bySpi:
            if self.esp is None:
                self.counters.increment("esp_dropped_no_datapath")
            else:
                self.esp(data, peer, self.plainPath)
        else:
            self.endpoint.datagramReceived(data, peer, self.plainPath)

    def sendIKE(self, datagram: bytes, peer: tuple[str, int], framed: bool) -> None:
        """
        Send one IKE message to C{peer}, with the non-ESP marker if C{framed}. Written to the
        socket directly, as ESP is: Twisted's C{write} re-validates the address text on every
        call, which costs as much as the system call. C{peer} is an address this socket received
        from (or an initiator's configured peer), and anything the socket refuses, a peer of the
        other address family included, is counted below as Twisted's errors were.
        """
        try:
            self.socket.sendto(NON_ESP_MARKER + datagram if framed else datagram, peer)
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


def sendEsp(packet: bytes, peer: tuple[str, int], path) -> None:
    """
    The datapath's send function: ESP in UDP (never framed) on the socket that reaches the
    peer. Written to the socket directly: Twisted's C{write} re-validates the address on every
    call, which the per-packet path cannot afford.
    """
    protocol = path[0]
    try:
        protocol.socket.sendto(packet, peer)
    except OSError:
        protocol.counters.increment("esp_send_failed")


class DrainingPort(udp.Port):
    """
    A UDP port whose read loop drains up to C{batch} datagrams per reactor wake-up with as little
    Python per datagram as possible (Twisted's loop re-checks the address family and wraps every
    delivery in its own error handling).
    """

    batch = 256

    def doRead(self):
        protocol = self.protocol
        recvfrom = self.socket.recvfrom
        deliver = protocol.datagramReceived
        size = self.maxPacketSize
        # On an IPv4 NAT-T port, ESP (neither marker-framed IKE nor a one-byte keepalive) goes
        # straight to the datapath with the address as received, which is already the (host,
        # port) pair datagramReceived would build; everything else takes the full sorting.
        esp = protocol.esp if protocol.isNattPort and self.addressFamily == socket.AF_INET else None
        path = protocol.plainPath
        for _ in range(self.batch):
            try:
                data, addr = recvfrom(size)
            except OSError as e:
                if e.errno in _READ_AGAIN or e.errno in udp._sockErrReadRefuse:
                    return
                raise
            try:
                if esp is not None and len(data) > 4 and data[:4] != NON_ESP_MARKER:
                    esp(data, addr, path)
                else:
                    deliver(data, addr)
            except Exception:  # noqa: BLE001 - a bug here must not stop the reactor
                protocol.counters.increment("internal_error")
                protocol.log.failure("Error handling a datagram from {peer}", peer=addr[0])


class UDPListener(Service):
    """
    Binds a L{DrainingPort} in C{privilegedStartService}, i.e. before twistd drops privileges,
    so the hub can run as an unprivileged user on ports 500 and 4500.
    """

    def __init__(self, port: int, protocol, interface: str, reactor) -> None:
        self.portNumber = port
        self.protocol = protocol
        self.interface = interface
        self.reactor = reactor
        self.port = None

    def privilegedStartService(self) -> None:
        self.port = DrainingPort(
            self.portNumber, self.protocol, self.interface, reactor=self.reactor
        )
        self.port.startListening()
        enlargeBuffers(self.port.socket)
        super().privilegedStartService()

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
