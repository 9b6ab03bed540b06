"""
An in-memory stand-in for the TUN device, for unit tests and benchmarks of the datapath.

It behaves like L{ikehub.net.tun.TunDevice} as the datapath sees it: written packets are kept
instead of reaching a kernel, and L{MemoryPacketInterface.inject} plays the part of a packet the
kernel routed into the device.  Like the kernel's queue, injected packets wait while the
interface is not reading.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from zope.interface import implementer

from ikehub.interfaces import IPacketInterface


def _discard(packet: bytes) -> None:
    """The receiver until one is set."""


@implementer(IPacketInterface)
class MemoryPacketInterface:
    """
    @ivar written: the packets written, oldest first: a list, or with C{keep} a deque of the
        last C{keep} packets, so a benchmark writing millions of packets stays small.
    @ivar writtenCount: how many packets were ever written, whatever C{keep} discarded.
    @ivar pending: packets injected while not reading, delivered by L{startReading}.
    """

    def __init__(self, name: str = "mem0", mtu: int = 1400, keep: int | None = None) -> None:
        self.name = name
        self.mtu = mtu
        self.written: list[bytes] | deque[bytes] = [] if keep is None else deque(maxlen=keep)
        self.writtenCount = 0
        self.pending: list[bytes] = []
        self.reading = False
        self._receiver: Callable[[bytes], None] = _discard

    def writePacket(self, packet: bytes) -> None:
        self.written.append(packet)
        self.writtenCount += 1

    def setReceiver(self, receiver: Callable[[bytes], None]) -> None:
        self._receiver = receiver

    def startReading(self) -> None:
        self.reading = True
        while self.pending and self.reading:
            self._receiver(self.pending.pop(0))

    def stopReading(self) -> None:
        self.reading = False

    def inject(self, packet: bytes) -> None:
        """
        Simulate C{packet} read from the device: the receiver gets it now if reading, otherwise
        when reading starts.
        """
        if self.reading:
            self._receiver(packet)
        else:
            self.pending.append(packet)
