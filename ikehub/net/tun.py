"""
The TUN device: where decrypted inner packets meet the kernel, which forwards them to the LAN.

Packets cross the device one C{read} or C{write} each, with no packet information header
(C{IFF_NO_PI}): the first nibble already says IPv4 or IPv6, and four fewer bytes per packet is
less copying.  The descriptor is non-blocking and the reactor watches it; each wake-up drains up
to L{READ_BATCH} packets, because one wake-up per packet would cost more than the read itself.
Nothing is logged or counted per packet beyond integer counters: the datapath budget is about
4.5 microseconds for a TUN read or write.

Configuring the device (MTU, up, addresses, routes) uses the C{ip} command of iproute2 rather
than a netlink library such as pyroute2.  It runs only at start and stop, never per packet, so
its process start-up cost does not matter; iproute2 is present on every machine the hub runs on,
whereas pyroute2 would be a large new dependency with a history of API changes, for a handful of
calls; and when configuration fails, C{ip}'s own one-line complaint ("RTNETLINK answers: File
exists") is what an operator already knows how to read, so L{TunError} quotes it verbatim.

The device is not persistent: closing its descriptor makes the kernel unregister it, and with it
every address and route that pointed at it, so a crashed hub leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
import struct
import subprocess
from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IReadDescriptor
from twisted.logger import Logger
from zope.interface import implementer

from ikehub.crypto.transforms import ENCR_NAMES, INTEG_NAMES
from ikehub.interfaces import IPacketInterface

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

TUN_PATH = "/dev/net/tun"

#: From <linux/if_tun.h>.
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
#: Fail with EBUSY when any device of that name exists, instead of attaching to a persistent
#: TUN someone else left behind (or reporting a non-TUN device as EINVAL).
IFF_TUN_EXCL = 0x8000

#: C{struct ifreq}: a 16-byte name (NUL included) and the flags, padded to 40 bytes.
_IFREQ = struct.Struct("16sH22x")
#: IFNAMSIZ less the terminating NUL.
MAX_NAME_LENGTH = 15

#: Most packets handled per reactor wake-up, so that a flood on the TUN cannot starve the UDP
#: sockets sharing the reactor.
READ_BATCH = 64
#: Larger than any IP packet, so no read is ever truncated whatever MTU an operator sets.
READ_SIZE = 65535

#: Seconds an C{ip} command may take before the start is declared failed.
IP_TIMEOUT = 10.0

# Outer headers of ESP in UDP (RFC 3948): an IPv4 or IPv6 header, the UDP header, and the ESP
# header (SPI and sequence number, RFC 4303 section 2).  ESP data has no non-ESP marker.
IPV4_HEADER = 20
IPV6_HEADER = 40
UDP_HEADER = 8
ESP_HEADER = 8
#: Pad Length and Next Header (RFC 4303 section 2.4).
ESP_TRAILER = 2
#: RFC 4303 section 2.4: the ciphertext ends on a 4-byte boundary even for stream modes.
ESP_ALIGNMENT = 4


class TunError(Exception):
    """
    The TUN device could not be created or configured; the message says what to do about it.
    """


def espInnerMtu(
    linkMtu: int, ipv6Outer: bool, ivLength: int, blockSize: int, icvLength: int
) -> int:
    """
    The largest inner packet that one ESP-in-UDP transform carries in a C{linkMtu} outer packet.

    The outer packet is C{outer IP + UDP + ESP header + IV + ciphertext + ICV}, where the
    ciphertext is the inner packet, 0 or more bytes of padding and the 2-byte trailer, rounded
    up to the block size (at least 4).  So the ciphertext may take whatever the fixed parts leave,
    rounded I{down} to the block size, and the inner packet is that less the trailer.  Worst-case
    padding (block size less one) is only ever needed by packet sizes this rounding excludes,
    so subtracting it as well would waste up to 15 bytes of every full-sized packet.
    """
    align = max(blockSize, ESP_ALIGNMENT)
    outer = IPV6_HEADER if ipv6Outer else IPV4_HEADER
    room = linkMtu - outer - UDP_HEADER - ESP_HEADER - ivLength - icvLength
    return room // align * align - ESP_TRAILER


def _suites() -> list[tuple[int, int, int]]:
    """(ivLength, blockSize, icvLength) of every ESP transform combination the hub implements."""
    suites = set()
    for encr in ENCR_NAMES.values():
        if encr.isAead:
            suites.add((encr.ivLength, encr.blockSize, encr.icvLength))
        else:
            for integ in INTEG_NAMES.values():
                suites.add((encr.ivLength, encr.blockSize, integ.icvLength))
    return sorted(suites)


_ESP_SUITES = _suites()


def mtuFor(linkMtu: int = 1500, ipv6Outer: bool = False) -> int:
    """
    The TUN MTU at which every inner packet fits one outer packet of C{linkMtu}, whichever ESP
    transform a CHILD SA negotiates.

    The worst of the hub's transforms is AES-CBC with HMAC-SHA2-512-256: a 16-byte IV, 16-byte
    blocks and a 32-byte ICV.  Over IPv4 and a 1500-byte link that leaves
    C{1500 - 20 (IPv4) - 8 (UDP) - 8 (ESP header) - 16 (IV) - 32 (ICV) = 1416} bytes of
    ciphertext, 1408 when rounded down to whole blocks, of which the trailer takes 2: 1406.
    Over IPv6 the outer header is 40 bytes: 1396, 1392, 1390.  With AES-GCM alone (8-byte IV,
    16-byte ICV, 4-byte alignment) it would be 1438; strongSwan and Linux pick round figures
    near 1400 for the same reason.  See L{espInnerMtu} for one transform.
    """
    return min(
        espInnerMtu(linkMtu, ipv6Outer, iv, block, icv) for iv, block, icv in _ESP_SUITES
    )


def checkName(name: str) -> None:
    """
    Refuse a name the kernel would reject or reinterpret, before touching the kernel.

    @raise TunError: empty, longer than 15 bytes, or with a character Linux does not allow in
        an interface name (C{/}, C{:}, whitespace), or C{%}, which the kernel would expand.
    """
    if not isinstance(name, str) or not name:
        raise TunError(f"invalid TUN device name {name!r}: give a name such as 'ikehub0' "
                       "in [tun] name")
    encoded = name.encode("utf-8", "replace")
    if len(encoded) > MAX_NAME_LENGTH:
        raise TunError(
            f"TUN device name {name!r} is {len(encoded)} bytes long; Linux interface names are "
            f"at most {MAX_NAME_LENGTH}: choose a shorter name in [tun] name"
        )
    if name in (".", "..") or any(c in "/:%" or c.isspace() or not c.isprintable()
                                  for c in name):
        raise TunError(
            f"TUN device name {name!r} is not a valid interface name (no '/', ':', '%' or "
            "whitespace): choose another name in [tun] name"
        )


def _openTun(name: str) -> int:
    """
    Open C{TUN_PATH} and attach a new TUN device called C{name}; the descriptor is non-blocking
    and close-on-exec, so a C{ip} child never holds the device open.
    """
    try:
        fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            raise TunError(
                f"cannot open {TUN_PATH} ({e.strerror}): load the tun module (modprobe tun) "
                f"or run in a container with {TUN_PATH}"
            ) from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise TunError(
                f"cannot open {TUN_PATH} ({e.strerror}): the hub needs CAP_NET_ADMIN: "
                "run as root or grant the capability"
            ) from None
        raise TunError(f"cannot open {TUN_PATH}: {e.strerror or e}") from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode(), IFF_TUN | IFF_NO_PI | IFF_TUN_EXCL))
    except OSError as e:
        os.close(fd)
        if e.errno == errno.EPERM:
            raise TunError(
                f"cannot create TUN device {name!r}: needs CAP_NET_ADMIN: run as root or grant "
                "the capability"
            ) from None
        if e.errno == errno.EBUSY:
            raise TunError(
                f"a device named {name} exists; choose another name in [tun] name"
            ) from None
        raise TunError(f"cannot create TUN device {name!r}: {e.strerror or e}") from None
    return fd


def _ip(*args: str) -> None:
    """
    Run C{ip ARGS...}.

    @raise TunError: iproute2 is missing, timed out, or failed; the message quotes its stderr.
    """
    argv = ["ip", *args]
    try:
        result = subprocess.run(argv, check=False, capture_output=True, text=True,
                                timeout=IP_TIMEOUT, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise TunError("the ip command (iproute2) is not installed; install iproute2") from None
    except subprocess.TimeoutExpired:
        raise TunError(f"'{' '.join(argv)}' did not finish within {IP_TIMEOUT:g} s") from None
    if result.returncode != 0:
        complaint = (result.stderr or result.stdout).strip() or f"exit status {result.returncode}"
        raise TunError(f"'{' '.join(argv)}' failed: {complaint}")


def _discard(packet: bytes) -> None:
    """The receiver until one is set: packets read are counted and dropped."""


@implementer(IPacketInterface, IReadDescriptor)
class TunDevice:
    """
    An open, configured TUN device, read by the reactor and written by the datapath.

    Build it with L{create}.  The counters are plain integers (cheaper per packet than a
    L{ikehub.ike.counters.Counters}); L{counters} gives them as a dict.

    @ivar name: the interface name.
    @ivar mtu: the MTU it was configured with.
    @ivar ifindex: the kernel's interface index, to tell this device from a later namesake.
    """

    log = Logger()

    def __init__(self, fd: int, name: str, mtu: int, reactor, ifindex: int) -> None:
        self._fd = fd
        self.name = name
        self.mtu = mtu
        self.ifindex = ifindex
        self._reactor = reactor
        self._receiver: Callable[[bytes], None] = _discard
        self.reading = False
        self.packetsRead = 0
        self.packetsWritten = 0
        self.writesDropped = 0
        self.writeErrors = 0
        self.readErrors = 0
        self.receiverErrors = 0

    mtuFor = staticmethod(mtuFor)

    @classmethod
    def create(
        cls,
        name: str,
        mtu: int,
        addresses: Iterable[Interface],
        routes: Iterable[Network],
        reactor,
    ) -> TunDevice:
        """
        Create TUN device C{name}, set its MTU, bring it up, add C{addresses} and route
        C{routes} into it.  It is not read until L{startReading}.

        A route equal to the prefix of one of C{addresses} is skipped: the kernel already added
        it with the address, and adding it again would fail.  (IPv6 addresses are usable at
        once: a TUN device is NOARP, for which the kernel skips duplicate address detection.)

        @param reactor: an C{IReactorFDSet}.
        @raise TunError: the device could not be created or configured; nothing is left behind.
        """
        checkName(name)
        try:
            addresses = [ipaddress.ip_interface(a) for a in addresses]
            routes = [ipaddress.ip_network(r) for r in routes]
        except ValueError as e:
            raise TunError(f"TUN device {name}: {e}") from None
        connected = {a.network for a in addresses}
        routes = [route for route in routes if route not in connected]
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= 65535:
            raise TunError(f"TUN MTU {mtu!r} is out of range: give 68 to 65535 in [tun] mtu "
                           f"({mtuFor()} suits a 1500-byte link)")
        fd = _openTun(name)
        try:
            ifindex = socket.if_nametoindex(name)
            _ip("link", "set", "dev", name, "mtu", str(mtu), "up")
            for address in addresses:
                _ip(f"-{address.version}", "address", "add", str(address), "dev", name)
            for route in routes:
                _ip(f"-{route.version}", "route", "add", str(route), "dev", name)
        except BaseException:
            os.close(fd)
            raise
        device = cls(fd, name, mtu, reactor, ifindex)
        device.log.info(
            "TUN device {tun} up: mtu {mtu}, addresses {addresses}, routes {routes}",
            tun=name,
            mtu=mtu,
            addresses=", ".join(map(str, addresses)) or "none",
            routes=", ".join(map(str, routes)) or "none",
        )
        return device

    # -- IPacketInterface ----------------------------------------------------------------

    def setReceiver(self, receiver: Callable[[bytes], None]) -> None:
        self._receiver = receiver

    def startReading(self) -> None:
        if self._fd >= 0 and not self.reading:
            self.reading = True
            self._reactor.addReader(self)

    def stopReading(self) -> None:
        if self.reading:
            self.reading = False
            self._reactor.removeReader(self)

    def writePacket(self, packet: bytes) -> None:
        """
        Hand one inner packet to the kernel.  A full queue (EAGAIN, ENOBUFS) drops it and counts
        C{writesDropped}; anything else the kernel refuses (a packet that is not IPv4 or IPv6,
        the device down or closed) counts C{writeErrors}.  Nothing is raised.
        """
        try:
            os.write(self._fd, packet)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ENOBUFS):
                self.writesDropped += 1
            else:
                self.writeErrors += 1
        except (TypeError, ValueError):
            self.writeErrors += 1
        else:
            self.packetsWritten += 1

    # -- IReadDescriptor -----------------------------------------------------------------

    def fileno(self) -> int:
        return self._fd

    def logPrefix(self) -> str:
        return f"tun {self.name}"

    def doRead(self):
        """
        Deliver up to L{READ_BATCH} waiting packets to the receiver, then yield to the reactor.

        A receiver that raises loses that packet only; the failure is counted and logged on the
        1st, 2nd, 4th, 8th... occurrence, so a bug cannot flood the log.  A read error other than
        an empty queue means the device is gone; returning it makes the reactor call
        L{connectionLost}.
        """
        fd = self._fd
        receiver = self._receiver
        read = os.read
        count = 0
        try:
            while count < READ_BATCH:
                try:
                    packet = read(fd, READ_SIZE)
                except BlockingIOError:
                    return None
                except OSError as e:
                    self.readErrors += 1
                    return e
                count += 1
                try:
                    receiver(packet)
                except Exception:  # noqa: BLE001 - a datapath bug must not stop the reactor
                    self.receiverErrors += 1
                    errors = self.receiverErrors
                    if errors & (errors - 1) == 0:
                        self.log.failure(
                            "Receiver of TUN {tun} failed ({errors} packets lost so far)",
                            tun=self.name, errors=errors,
                        )
            return None
        finally:
            self.packetsRead += count

    def connectionLost(self, reason) -> None:
        """
        The reactor has stopped watching the descriptor (it failed, or the reactor is shutting
        down): release the device rather than keep a half-dead one.
        """
        self.reading = False
        self.close()

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """
        Stop reading and remove the device, and so its addresses and routes.  Closing the
        descriptor of a non-persistent TUN is what removes it; should the device outlive that
        (another process inherited the descriptor), it is deleted explicitly.  Idempotent.
        """
        if self._fd < 0:
            return
        self.stopReading()
        fd, self._fd = self._fd, -1
        with contextlib.suppress(OSError):
            os.close(fd)
        try:
            stillThere = socket.if_nametoindex(self.name) == self.ifindex
        except OSError:
            stillThere = False
        if stillThere:
            try:
                _ip("link", "delete", "dev", self.name)
            except TunError as e:
                # Twisted's Logger spells it warn.
                self.log.warn(  # noqa: G010
                    "Could not remove TUN {tun}: {error}", tun=self.name, error=str(e)
                )
                return
        self.log.info("TUN device {tun} removed", tun=self.name)

    def counters(self) -> dict[str, int]:
        return {
            "packets_read": self.packetsRead,
            "packets_written": self.packetsWritten,
            "writes_dropped": self.writesDropped,
            "write_errors": self.writeErrors,
            "read_errors": self.readErrors,
            "receiver_errors": self.receiverErrors,
        }
