"""
Tests for L{ikehub.net.tun}: a real TUN device in a throw-away network namespace carries packets
both ways (the kernel routes a UDP datagram into it, and answers a ping written into it), start-up
errors read as instructions, and the read loop and write path never raise into the reactor.

Namespace tests need root; they enter the namespace with setns(2) on the test's own thread, so the
device, its C{ip} commands and the test's sockets all live there, and leave it afterwards.  The
read-loop tests use a datagram socket pair in place of the device and run anywhere.  The MTU
arithmetic is checked against an independent brute-force model of the ESP packet size.
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import itertools
import os
import select
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

from twisted.internet.interfaces import IReadDescriptor
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from ikehub.interfaces import IPacketInterface
from tests.harness.netns import insideNamespace
from ikehub.net import tun as tunModule
from ikehub.net.tun import (
    READ_BATCH,
    TunDevice,
    TunError,
    checkName,
    espInnerMtu,
    mtuFor,
)

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = os.geteuid() == 0
NOT_ROOT_REASON = "TUN tests create network namespaces and devices, which needs root"

_sequence = itertools.count()

TUN_ADDRESS = ipaddress.ip_interface("198.51.100.1/24")
TUN_ADDRESS6 = ipaddress.ip_interface("2001:db8:7::1/64")
PEER = "198.51.100.7"
PEER6 = "2001:db8:7::7"
ROUTED = ipaddress.ip_network("192.0.2.0/24")


# -- test-side packet building (the checksums here are test code) ----------------------------


def internetChecksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmpEcho(src: str, dst: str, ident: int, seq: int, payload: bytes) -> bytes:
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    icmp = icmp[:2] + struct.pack("!H", internetChecksum(icmp)) + icmp[4:]
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(icmp),
        0x1234,
        0,
        64,
        1,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    header = header[:10] + struct.pack("!H", internetChecksum(header)) + header[12:]
    return header + icmp


def icmp6Echo(src: str, dst: str, ident: int, seq: int, payload: bytes) -> bytes:
    srcb = ipaddress.IPv6Address(src).packed
    dstb = ipaddress.IPv6Address(dst).packed
    icmp = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload
    pseudo = srcb + dstb + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", internetChecksum(pseudo + icmp)) + icmp[4:]
    return struct.pack("!IHBB", 0x60000000, len(icmp), 58, 64) + srcb + dstb + icmp


def parseIpv4(packet: bytes) -> tuple[str, str, int, bytes] | None:
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    headerLength = (packet[0] & 15) * 4
    return (
        socket.inet_ntoa(packet[12:16]),
        socket.inet_ntoa(packet[16:20]),
        packet[9],
        packet[headerLength:],
    )


# -- namespaces ---------------------------------------------------------------------------


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if check and result.returncode:
        raise AssertionError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


class FakeReactor:
    """Records what an IReactorFDSet is asked to watch."""

    def __init__(self) -> None:
        self.readers: list = []

    def addReader(self, reader) -> None:
        self.readers.append(reader)

    def removeReader(self, reader) -> None:
        self.readers.remove(reader)


def readUntil(device: TunDevice, wanted, timeout: float = 3.0) -> bytes:
    """
    Drive the device like a reactor would (wait for readability, then doRead) until a packet
    satisfying C{wanted} arrives.  Other packets (IPv6 router solicitations...) are skipped.
    """
    got: list[bytes] = []
    device.setReceiver(got.append)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for packet in got:
            if wanted(packet):
                return packet
        got.clear()
        readable, _, _ = select.select([device], [], [], max(0.0, deadline - time.monotonic()))
        if readable:
            device.doRead()
    raise AssertionError("the expected packet never came out of the TUN device")


class NamespaceTestCase(SynchronousTestCase):
    """Each test runs inside a fresh namespace C{ikt<pid>x<n>}, deleted afterwards."""

    if not IS_ROOT:
        skip = NOT_ROOT_REASON

    def setUp(self) -> None:
        self.ns = f"ikt{os.getpid()}x{next(_sequence)}"
        ip("netns", "add", self.ns)
        self.addCleanup(ip, "netns", "del", self.ns, check=False)
        entered = insideNamespace(self.ns)
        entered.__enter__()
        self.addCleanup(entered.__exit__, None, None, None)
        self.reactor = FakeReactor()

    def createDevice(
        self, name: str = "ikehub0", mtu: int = 1400, addresses=(TUN_ADDRESS,), routes=(ROUTED,)
    ) -> TunDevice:
        device = TunDevice.create(name, mtu, list(addresses), list(routes), self.reactor)
        self.addCleanup(device.close)
        return device


class TunDeviceTests(NamespaceTestCase):
    def test_providesInterfaces(self):
        """A TUN device is both an IPacketInterface and a reactor IReadDescriptor."""
        device = self.createDevice()
        self.assertTrue(verifyObject(IPacketInterface, device))
        self.assertTrue(verifyObject(IReadDescriptor, device))
        self.assertEqual((device.name, device.mtu), ("ikehub0", 1400))
        self.assertIn("ikehub0", device.logPrefix())

    def test_createConfiguresMtuUpAddressesAndRoutes(self):
        """The device is up with the MTU, addresses and routes given."""
        self.createDevice(addresses=(TUN_ADDRESS, TUN_ADDRESS6))
        link = ip("-o", "link", "show", "dev", "ikehub0").stdout
        self.assertIn("mtu 1400", link)
        self.assertIn(",UP", link)
        addresses = ip("-o", "address", "show", "dev", "ikehub0").stdout
        self.assertIn("198.51.100.1/24", addresses)
        self.assertIn("2001:db8:7::1/64", addresses)
        self.assertIn("192.0.2.0/24 dev ikehub0", ip("route", "show").stdout)

    def test_routeEqualToAnAddressPrefixIsAccepted(self):
        """
        Routing the address's own prefix (which the kernel already routes) is not an error, and
        an IPv6 address is usable at once, not tentative.
        """
        self.createDevice(
            addresses=(TUN_ADDRESS, TUN_ADDRESS6),
            routes=(TUN_ADDRESS.network, TUN_ADDRESS6.network, ROUTED),
        )
        self.assertIn("198.51.100.0/24 dev ikehub0", ip("route", "show").stdout)
        self.assertIn("2001:db8:7::/64 dev ikehub0", ip("-6", "route", "show").stdout)
        self.assertNotIn("tentative", ip("-6", "address", "show", "dev", "ikehub0").stdout)

    def test_packetRoutedIntoTheDeviceIsRead(self):
        """A UDP datagram sent to an address routed into the TUN comes out of doRead."""
        device = self.createDevice()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"to the tunnel", (PEER, 9))
            packet = readUntil(device, lambda p: (parseIpv4(p) or ("",))[0] == "198.51.100.1")
        src, dst, protocol, udp = parseIpv4(packet)
        self.assertEqual((src, dst, protocol), ("198.51.100.1", PEER, 17))
        self.assertEqual(struct.unpack("!H", udp[2:4])[0], 9)
        self.assertEqual(udp[8:], b"to the tunnel")
        self.assertGreaterEqual(device.packetsRead, 1)

    def test_extraRouteLeadsIntoTheDevice(self):
        """A packet to a network given in routes (not the address's own prefix) is read too."""
        device = self.createDevice()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"routed", ("192.0.2.9", 4000))
            packet = readUntil(device, lambda p: (parseIpv4(p) or ("", ""))[1] == "192.0.2.9")
        self.assertEqual(parseIpv4(packet)[3][8:], b"routed")

    def test_pingWrittenIntoTheDeviceIsAnswered(self):
        """An ICMP echo request written to the TUN reaches the kernel, whose reply comes back."""
        device = self.createDevice()
        device.writePacket(icmpEcho(PEER, "198.51.100.1", 0x4242, 7, b"ikehub ping"))
        self.assertEqual(device.packetsWritten, 1)

        def isReply(packet):
            parsed = parseIpv4(packet)
            return parsed is not None and parsed[2] == 1 and parsed[3][:1] == b"\0"

        src, dst, _, icmp = parseIpv4(readUntil(device, isReply))
        self.assertEqual((src, dst), ("198.51.100.1", PEER))
        self.assertEqual(struct.unpack("!HH", icmp[4:8]), (0x4242, 7))
        self.assertEqual(icmp[8:], b"ikehub ping")

    def test_ipv6PingWrittenIntoTheDeviceIsAnswered(self):
        """The same over IPv6: an ICMPv6 echo request to the device's address is answered."""
        device = self.createDevice(addresses=(TUN_ADDRESS, TUN_ADDRESS6))
        device.writePacket(icmp6Echo(PEER6, "2001:db8:7::1", 0x4243, 9, b"ikehub ping6"))

        def isReply(packet):
            return (
                len(packet) > 48 and packet[0] >> 4 == 6 and packet[6] == 58 and packet[40] == 129
            )

        reply = readUntil(device, isReply)
        self.assertEqual(reply[24:40], ipaddress.IPv6Address(PEER6).packed)
        self.assertEqual(struct.unpack("!HH", reply[44:48]), (0x4243, 9))
        self.assertEqual(reply[48:], b"ikehub ping6")

    def test_startAndStopReadingUseTheReactor(self):
        """startReading adds the device as a reactor reader, once; stopReading removes it."""
        device = self.createDevice()
        device.startReading()
        device.startReading()
        self.assertEqual(self.reactor.readers, [device])
        device.stopReading()
        self.assertEqual(self.reactor.readers, [])

    def test_realReactorDeliversPackets(self):
        """Watched by a real epoll reactor, the device hands routed packets to its receiver."""
        from twisted.internet.epollreactor import EPollReactor

        reactor = EPollReactor()
        self.addCleanup(lambda: [r.connectionLost(None) for r in reactor.removeAll()])
        device = TunDevice.create("ikehub0", 1400, [TUN_ADDRESS], [], reactor)
        self.addCleanup(device.close)
        got: list[bytes] = []
        device.setReceiver(got.append)
        device.startReading()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"via the reactor", (PEER, 9))
            deadline = time.monotonic() + 3
            while not any(p.endswith(b"via the reactor") for p in got):
                self.assertLess(time.monotonic(), deadline, "reactor never delivered")
                reactor.iterate(0.1)
        device.stopReading()
        self.assertNotIn(device, reactor.getReaders())

    def test_closeRemovesDeviceAndRoutes(self):
        """close() removes the device and its routes; closing twice is harmless."""
        device = self.createDevice()
        device.startReading()
        device.close()
        self.assertEqual(self.reactor.readers, [])
        self.assertNotEqual(ip("link", "show", "dev", "ikehub0", check=False).returncode, 0)
        self.assertEqual(ip("route", "show", str(ROUTED)).stdout.strip(), "")
        self.assertEqual(ip("route", "show", "198.51.100.0/24").stdout.strip(), "")
        device.close()
        self.assertEqual(device.fileno(), -1)

    def test_closeRemovesDeviceEvenIfDescriptorWasInherited(self):
        """
        If another descriptor still holds the TUN open (say a forked child), close() deletes the
        device explicitly instead of leaving it behind.
        """
        device = self.createDevice()
        held = os.dup(device.fileno())
        self.addCleanup(os.close, held)
        device.close()
        self.assertNotEqual(ip("link", "show", "dev", "ikehub0", check=False).returncode, 0)

    def test_writeAfterCloseIsCountedNotRaised(self):
        """Writing to a closed device counts an error and never reuses the old descriptor."""
        device = self.createDevice()
        device.close()
        device.writePacket(icmpEcho(PEER, "198.51.100.1", 1, 1, b""))
        self.assertEqual((device.packetsWritten, device.writeErrors), (0, 1))

    def test_writeOfNonIpIsCountedNotRaised(self):
        """The kernel refuses a packet that is neither IPv4 nor IPv6; the write counts an error."""
        device = self.createDevice()
        device.writePacket(b"\x00" * 28)
        self.assertEqual(device.writeErrors, 1)
        self.assertEqual(device.counters()["write_errors"], 1)

    def test_connectionLostReleasesTheDevice(self):
        """When the reactor gives the descriptor up, the device is released."""
        device = self.createDevice()
        device.connectionLost(Failure(ConnectionError("reactor shutting down")))
        self.assertEqual(device.fileno(), -1)
        self.assertNotEqual(ip("link", "show", "dev", "ikehub0", check=False).returncode, 0)


class TunStartErrorTests(NamespaceTestCase):
    def test_nameInUse(self):
        """A second device of the same name fails, saying the name exists and where to change it."""
        self.createDevice()
        with self.assertRaises(TunError) as caught:
            TunDevice.create("ikehub0", 1400, [], [], self.reactor)
        self.assertEqual(
            str(caught.exception),
            "a device named ikehub0 exists; choose another name in [tun] name",
        )

    def test_nameOfNonTunDeviceInUse(self):
        """A name taken by another kind of device (loopback) fails the same way."""
        with self.assertRaises(TunError) as caught:
            TunDevice.create("lo", 1400, [], [], self.reactor)
        self.assertIn("a device named lo exists", str(caught.exception))

    def test_nameTooLong(self):
        """A 16-character name is refused before the kernel is asked, naming the 15 limit."""
        with self.assertRaises(TunError) as caught:
            TunDevice.create("ikehub0123456789", 1400, [], [], self.reactor)
        self.assertIn("at most 15", str(caught.exception))
        self.assertIn("ikehub0123456789", str(caught.exception))
        self.assertNotEqual(ip("link", "show", "dev", "ikehub012345678", check=False).returncode, 0)

    def test_ipFailureQuotesStderrAndLeavesNothing(self):
        """
        A route that already exists makes ip fail; the error quotes ip's complaint, and the
        half-configured device is gone.
        """
        ip("link", "set", "dev", "lo", "up")
        ip("route", "add", str(ROUTED), "dev", "lo")
        with self.assertRaises(TunError) as caught:
            TunDevice.create("ikehub0", 1400, [TUN_ADDRESS], [ROUTED], self.reactor)
        message = str(caught.exception)
        self.assertIn("route add 192.0.2.0/24 dev ikehub0", message)
        self.assertIn("File exists", message)
        self.assertNotEqual(ip("link", "show", "dev", "ikehub0", check=False).returncode, 0)

    def test_withoutCapNetAdmin(self):
        """Without CAP_NET_ADMIN, creating the device fails with the capability named."""

        def dropNetAdmin():
            prctl = ctypes.CDLL(None, use_errno=True).prctl
            if prctl(24, 12, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, CAP_NET_ADMIN
                os._exit(99)

        code = (
            "from ikehub.net.tun import TunDevice, TunError\n"
            "try:\n    TunDevice.create('ikehub0', 1400, [], [], None)\n"
            "except TunError as e:\n    print(e)\n"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            preexec_fn=dropNetAdmin,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("needs CAP_NET_ADMIN: run as root or grant the capability", result.stdout)

    def test_missingTunDevice(self):
        """Without /dev/net/tun the error says to load the module or provide the device."""
        self.patch(tunModule, "TUN_PATH", "/nonexistent/net/tun")
        with self.assertRaises(TunError) as caught:
            TunDevice.create("ikehub0", 1400, [], [], self.reactor)
        self.assertIn("load the tun module", str(caught.exception))
        self.assertIn("run in a container with /nonexistent/net/tun", str(caught.exception))

    def test_badMtu(self):
        """An MTU below IPv4's minimum of 68 is refused with a suggestion."""
        with self.assertRaises(TunError) as caught:
            TunDevice.create("ikehub0", 20, [], [], self.reactor)
        self.assertIn("mtu", str(caught.exception).lower())


class NameCheckTests(SynchronousTestCase):
    def test_namesTheKernelWouldRejectAreRefused(self):
        """Empty, too long, or with '/', ':', '%' or whitespace: TunError, nothing else."""
        for name in ("", "a" * 16, "ike/hub", "ike:0", "ike%d", "ike hub", ".", ".."):
            with self.assertRaises(TunError, msg=name):
                checkName(name)

    def test_fifteenCharactersAreFine(self):
        """The longest name Linux allows passes."""
        checkName("a" * 15)


class SocketBackedDevice:
    """A TunDevice over one end of a datagram socket pair, which keeps packet boundaries."""

    @staticmethod
    def make(testCase: SynchronousTestCase) -> tuple[TunDevice, socket.socket]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.setblocking(False)
        theirs.setblocking(False)
        testCase.addCleanup(theirs.close)
        device = TunDevice(ours.detach(), "test0", 1400, FakeReactor(), ifindex=-1)
        testCase.addCleanup(device.close)
        return device, theirs


class ReadLoopTests(SynchronousTestCase):
    def test_doReadDrainsAtMostOneBatch(self):
        """One doRead delivers at most READ_BATCH packets, in order; the next call the rest."""
        device, peer = SocketBackedDevice.make(self)
        for i in range(READ_BATCH + 10):
            peer.send(i.to_bytes(2, "big"))
        got: list[bytes] = []
        device.setReceiver(got.append)
        self.assertIsNone(device.doRead())
        self.assertEqual(len(got), READ_BATCH)
        self.assertIsNone(device.doRead())
        self.assertEqual([int.from_bytes(p, "big") for p in got], list(range(READ_BATCH + 10)))
        self.assertEqual(device.packetsRead, READ_BATCH + 10)

    def test_doReadOnEmptyQueueReturnsQuietly(self):
        """With nothing to read, doRead returns None without delivering anything."""
        device, _ = SocketBackedDevice.make(self)
        got: list[bytes] = []
        device.setReceiver(got.append)
        self.assertIsNone(device.doRead())
        self.assertEqual(got, [])

    def test_receiverErrorsAreContainedCountedAndRateLimited(self):
        """
        A receiver that raises loses only that packet: doRead goes on and returns normally, every
        failure is counted, and only the 1st, 2nd and 4th of five are logged.
        """
        device, peer = SocketBackedDevice.make(self)
        for i in range(5):
            peer.send(bytes([i]))
        seen: list[bytes] = []

        def receiver(packet):
            seen.append(packet)
            raise ValueError("datapath bug")

        device.setReceiver(receiver)
        self.assertIsNone(device.doRead())
        self.assertEqual(len(seen), 5)
        self.assertEqual(device.receiverErrors, 5)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 3)

    def test_readErrorIsReturnedToTheReactor(self):
        """A read error other than an empty queue is returned (not raised) for connectionLost."""
        unreadable = os.open("/dev/null", os.O_WRONLY)
        device = TunDevice(unreadable, "test0", 1400, FakeReactor(), ifindex=-1)
        self.addCleanup(device.close)
        result = device.doRead()
        self.assertIsInstance(result, OSError)
        self.assertEqual(result.errno, errno.EBADF)
        self.assertEqual(device.readErrors, 1)

    def test_fullQueueDropsAndCounts(self):
        """A write that would block is dropped and counted, never raised."""
        device, _ = SocketBackedDevice.make(self)
        for _ in range(100000):
            device.writePacket(b"x" * 1400)
            if device.writesDropped:
                break
        self.assertEqual(device.writesDropped, 1)
        self.assertEqual(device.writeErrors, 0)
        self.assertGreater(device.packetsWritten, 0)

    def test_unwritableObjectIsCountedNotRaised(self):
        """Even a non-bytes argument is counted as a write error, not raised."""
        device, _ = SocketBackedDevice.make(self)
        device.writePacket(None)  # type: ignore[arg-type]
        self.assertEqual(device.writeErrors, 1)


class MtuTests(SynchronousTestCase):
    """
    The inner MTU against a brute-force model: the ESP-in-UDP packet for an inner packet of P
    bytes is outer IP + UDP 8 + ESP 8 + IV + (P + 2 rounded up to the block, at least 4) + ICV
    (RFC 4303 section 2, RFC 3948).
    """

    SUITES = (
        ("AES-CBC + HMAC-SHA2-512-256", 16, 16, 32),
        ("AES-CBC + HMAC-SHA2-256-128", 16, 16, 16),
        ("AES-CBC + HMAC-SHA1-96", 16, 16, 12),
        ("AES-GCM-16", 8, 4, 16),
        ("ChaCha20-Poly1305", 8, 4, 16),
    )

    @staticmethod
    def outerSize(inner: int, ipv6: bool, iv: int, block: int, icv: int) -> int:
        ciphertext = inner + 2
        while ciphertext % block:
            ciphertext += 1
        return (40 if ipv6 else 20) + 8 + 8 + iv + ciphertext + icv

    def test_espInnerMtuIsTheLargestFittingInnerPacket(self):
        """For each transform, the MTU fits and one byte more would not."""
        for name, iv, block, icv in self.SUITES:
            for link in (576, 1280, 1400, 1492, 1500, 9000):
                for ipv6 in (False, True):
                    mtu = espInnerMtu(link, ipv6, iv, 1 if block == 4 else block, icv)
                    self.assertLessEqual(self.outerSize(mtu, ipv6, iv, block, icv), link, name)
                    self.assertGreater(self.outerSize(mtu + 1, ipv6, iv, block, icv), link, name)

    def test_mtuForTakesTheWorstTransform(self):
        """mtuFor is the smallest of the transforms' inner MTUs, so every SA fits."""
        for link in (1280, 1500, 9000):
            for ipv6 in (False, True):
                worst = min(
                    max(p for p in range(link) if self.outerSize(p, ipv6, iv, block, icv) <= link)
                    for _, iv, block, icv in self.SUITES
                )
                self.assertEqual(mtuFor(link, ipv6), worst)

    def test_defaultsAreAnIpv4EthernetLink(self):
        """
        1500-byte IPv4 link, AES-CBC with a 32-byte ICV: 1500-20-8-8-16-32 = 1416 bytes of
        ciphertext, 1408 in whole blocks, less the 2-byte trailer.
        """
        self.assertEqual(mtuFor(), (1500 - 20 - 8 - 8 - 16 - 32) // 16 * 16 - 2)
        self.assertEqual(mtuFor(ipv6Outer=True), (1500 - 40 - 8 - 8 - 16 - 32) // 16 * 16 - 2)
        self.assertEqual(TunDevice.mtuFor(1500), mtuFor(1500))
