"""
Tests for L{ikehub.net.memorysink}: the in-memory packet interface behaves as the datapath
expects of a TUN device.
"""

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from ikehub.interfaces import IPacketInterface
from ikehub.net.memorysink import MemoryPacketInterface


class MemoryPacketInterfaceTests(SynchronousTestCase):
    def test_providesIPacketInterface(self):
        """It provides every method and attribute of IPacketInterface."""
        self.assertTrue(verifyObject(IPacketInterface, MemoryPacketInterface()))

    def test_nameAndMtu(self):
        """Name and MTU are what it was built with."""
        sink = MemoryPacketInterface("ikehub7", 1390)
        self.assertEqual((sink.name, sink.mtu), ("ikehub7", 1390))

    def test_writtenPacketsAreKeptInOrder(self):
        """Written packets are kept, oldest first, and counted."""
        sink = MemoryPacketInterface()
        sink.writePacket(b"one")
        sink.writePacket(b"two")
        self.assertEqual(list(sink.written), [b"one", b"two"])
        self.assertEqual(sink.writtenCount, 2)

    def test_keepBoundsMemoryButCountsEverything(self):
        """With keep=N only the last N packets are kept; writtenCount still counts all."""
        sink = MemoryPacketInterface(keep=3)
        for i in range(10):
            sink.writePacket(bytes([i]))
        self.assertEqual(list(sink.written), [b"\x07", b"\x08", b"\x09"])
        self.assertEqual(sink.writtenCount, 10)

    def test_injectWhileReadingCallsReceiver(self):
        """An injected packet reaches the receiver at once while reading."""
        sink = MemoryPacketInterface()
        got = []
        sink.setReceiver(got.append)
        sink.startReading()
        sink.inject(b"packet")
        self.assertEqual(got, [b"packet"])

    def test_injectBeforeReadingWaitsLikeTheKernelQueue(self):
        """Packets injected while not reading are delivered in order when reading starts."""
        sink = MemoryPacketInterface()
        got = []
        sink.setReceiver(got.append)
        sink.inject(b"a")
        sink.inject(b"b")
        self.assertEqual(got, [])
        sink.startReading()
        self.assertEqual(got, [b"a", b"b"])
        self.assertEqual(sink.pending, [])

    def test_stopReadingHoldsPackets(self):
        """After stopReading, injected packets wait instead of reaching the receiver."""
        sink = MemoryPacketInterface()
        got = []
        sink.setReceiver(got.append)
        sink.startReading()
        sink.stopReading()
        sink.inject(b"later")
        self.assertEqual(got, [])
        self.assertEqual(sink.pending, [b"later"])

    def test_receiverStoppingReadingStopsDelivery(self):
        """A receiver that stops reading while pending packets drain gets no more of them."""
        sink = MemoryPacketInterface()
        got = []

        def receiver(packet):
            got.append(packet)
            sink.stopReading()

        sink.setReceiver(receiver)
        sink.inject(b"a")
        sink.inject(b"b")
        sink.startReading()
        self.assertEqual(got, [b"a"])
        self.assertEqual(sink.pending, [b"b"])

    def test_noReceiverDropsQuietly(self):
        """Reading with no receiver set drops injected packets without an error."""
        sink = MemoryPacketInterface()
        sink.startReading()
        sink.inject(b"nobody listens")
        self.assertEqual(sink.pending, [])
