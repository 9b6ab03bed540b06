"""
The UDP glue sorts what arrives on a hub socket (RFC 3948 section 2): non-ESP marker -> IKE,
a lone 0xFF -> NAT keepalive (absorbed, never answered), anything else on the NAT-T port -> ESP;
on the IKE port plain IKE, unless the first four bytes are a known inbound SPI.
"""

import socket

from twisted.trial.unittest import SynchronousTestCase

from ikehub.esp.sad import SAD
from ikehub.ike.counters import Counters
from ikehub.net.udp import DrainingPort, IKEDatagramProtocol, enlargeBuffers, sendEsp, sendVia

PEER = ("192.0.2.11", 4500)


class FakeEndpoint:
    def __init__(self):
        self.received = []

    def datagramReceived(self, data, peer, path):
        self.received.append((data, peer, path))


class FakeTransport:
    def __init__(self):
        self.written = []
        self.socket = self

    def write(self, data, addr):
        self.written.append((data, addr))

    def sendto(self, data, addr):
        self.written.append((data, addr))


def protocolFor(isNattPort):
    endpoint, sad, counters, esp = FakeEndpoint(), SAD(), Counters(), []
    protocol = IKEDatagramProtocol(
        endpoint, sad, counters, isNattPort, esp=lambda *a: esp.append(a)
    )
    protocol.transport = FakeTransport()
    protocol.startProtocol()
    return protocol, endpoint, sad, counters, esp


class DemultiplexTests(SynchronousTestCase):
    def test_markerFramedIkeOnNattPort(self):
        protocol, endpoint, _, _, esp = protocolFor(True)
        protocol.datagramReceived(b"\x00\x00\x00\x00" + b"IKE", PEER)
        self.assertEqual(endpoint.received, [(b"IKE", PEER, protocol.framedPath)])
        self.assertEqual(esp, [])

    def test_keepaliveIsAbsorbedNeverAnswered(self):
        protocol, endpoint, _, counters, esp = protocolFor(True)
        protocol.datagramReceived(b"\xff", PEER)
        self.assertEqual((endpoint.received, esp, protocol.transport.written), ([], [], []))
        self.assertEqual(counters["nat_keepalive"], 1)

    def test_anythingElseOnNattPortIsEsp(self):
        protocol, endpoint, _, _, esp = protocolFor(True)
        protocol.datagramReceived(b"\x01\x02\x03\x04" + bytes(20), PEER)
        self.assertEqual(len(esp), 1)
        self.assertEqual(endpoint.received, [])

    def test_ikePortTakesPlainIkeAndKnownSpiEsp(self):
        protocol, endpoint, sad, _, esp = protocolFor(False)
        protocol.datagramReceived(b"\x11" * 28, PEER)
        self.assertEqual(endpoint.received, [(b"\x11" * 28, PEER, protocol.plainPath)])
        spi = sad.allocateSpi()
        protocol.datagramReceived(spi + bytes(20), PEER)
        self.assertEqual(len(esp), 1)

    def test_espWithoutDatapathIsCounted(self):
        protocol, _, _, counters, _ = protocolFor(True)
        protocol.esp = None
        protocol.datagramReceived(b"\x01" * 30, PEER)
        self.assertEqual(counters["esp_dropped_no_datapath"], 1)


class SendTests(SynchronousTestCase):
    def test_framedIkeGetsTheMarker(self):
        protocol, *_ = protocolFor(True)
        sendVia(b"IKE", PEER, protocol.framedPath)
        sendVia(b"IKE", PEER, protocol.plainPath)
        self.assertEqual(
            protocol.transport.written, [(b"\x00\x00\x00\x00IKE", PEER), (b"IKE", PEER)]
        )

    def test_espIsNeverFramed(self):
        protocol, *_ = protocolFor(True)
        sendEsp(b"ESP", PEER, protocol.framedPath)
        self.assertEqual(protocol.transport.written, [(b"ESP", PEER)])

    def test_sendFailuresAreCountedNotRaised(self):
        protocol, _, _, counters, _ = protocolFor(True)

        def refuse(*args):
            raise OSError(111, "refused")

        protocol.transport.write = refuse
        protocol.socket = protocol.transport
        protocol.transport.sendto = refuse
        sendVia(b"IKE", PEER, protocol.plainPath)
        sendEsp(b"ESP", PEER, protocol.plainPath)
        self.assertEqual((counters["send_failed"], counters["esp_send_failed"]), (1, 1))


class DrainingPortTests(SynchronousTestCase):
    def test_drainsEveryQueuedDatagramInOneRead(self):
        """
        One reactor wake-up reads every datagram waiting (up to the batch size), on loopback.
        """
        endpoint = FakeEndpoint()
        protocol = IKEDatagramProtocol(endpoint, SAD(), Counters(), True, esp=lambda *a: None)
        port = DrainingPort(0, protocol, "127.0.0.1")
        port.startListening()
        try:
            enlargeBuffers(port.socket, 1 << 20)
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            address = port.socket.getsockname()
            for index in range(50):
                sender.sendto(b"\x00\x00\x00\x00" + bytes([index]) * 30, address)
            sender.close()
            port.doRead()
            self.assertEqual(len(endpoint.received), 50)
            port.doRead()  # nothing left: returns quietly
        finally:
            port.stopListening()

    def test_nattPortSortsInTheReadLoop(self):
        """
        The read loop's ESP shortcut on the NAT-T port keeps the RFC 3948 sorting: marker-framed
        IKE to the endpoint, a keepalive absorbed, everything else to the datapath.
        """
        endpoint, esp, counters = FakeEndpoint(), [], Counters()
        protocol = IKEDatagramProtocol(
            endpoint, SAD(), counters, True, esp=lambda *a: esp.append(a)
        )
        port = DrainingPort(0, protocol, "127.0.0.1")
        port.startListening()
        try:
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            address = port.socket.getsockname()
            sender.sendto(b"\x00\x00\x00\x00IKE-message", address)
            sender.sendto(b"\xff", address)
            sender.sendto(b"\x12\x34\x56\x78" + bytes(24), address)
            sender.close()
            port.doRead()
        finally:
            port.stopListening()
        self.assertEqual([data for data, _, _ in endpoint.received], [b"IKE-message"])
        self.assertEqual(counters["nat_keepalive"], 1)
        self.assertEqual([a[0] for a in esp], [b"\x12\x34\x56\x78" + bytes(24)])
