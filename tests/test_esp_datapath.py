"""
The ESP datapath in memory: two endpoints negotiate CHILD SAs, then inner packets travel
client "TUN" -> ESP -> hub datapath -> hub "TUN" and back, through memory packet interfaces.
Covers routing, hub-and-spoke, the inbound selector check, replay and tampering, the SPD for
unprotected traffic, and lifetimes.
"""

import dataclasses
import ipaddress
import struct

from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from ikehub.crypto.proposals import ChildSuite
from ikehub.crypto.transforms import encrAlgorithm
from ikehub.esp.datapath import SOFT_JITTER, ESPDatapath, innerAddresses
from ikehub.esp.espsa import Lifetime
from ikehub.esp.sad import SAD
from ikehub.ike.child import ChildSA
from ikehub.ike.counters import Counters
from ikehub.net.memorysink import MemoryPacketInterface
from ikehub.policy.spd import SPD, SPDEntry
from ikehub.wire.constants import EncrId
from ikehub.wire.payloads import TrafficSelector

from tests.ikepump import CLIENT, HUB, Pair, clientSpec, makePool, padWith

LAN_HOST = "203.0.113.10"
#: What the hub offers road warriors: the LAN and the other road warriors.
BEHIND_HUB = (ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("198.51.100.0/24"))


def ipv4(source: str, destination: str, payload: bytes = b"x" * 32, protocol: int = 17) -> bytes:
    """
    A minimal IPv4 packet (the datapath reads addresses only; no checksum needed).
    """
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        0,
        0,
        64,
        protocol,
        0,
        ipaddress.ip_address(source).packed,
        ipaddress.ip_address(destination).packed,
    )
    return header + payload


class Wire:
    """
    Carries ESP between the datapaths: C{send} functions record, C{deliver} hands them over.
    """

    def __init__(self):
        self.inFlight = []
        self.sent = []

    def sender(self, host):
        def send(packet, peer, path):
            self.sent.append((host, peer, packet))
            self.inFlight.append((host, peer, packet))

        return send

    def deliver(self, datapaths):
        while self.inFlight:
            host, (destHost, _), packet = self.inFlight.pop(0)
            datapaths[destHost].espReceived(packet, (host, 4500), None)


class DatapathScenario(SynchronousTestCase):
    lifetime = None

    def setUp(self):
        self.pool = makePool()
        self.pair = Pair(pool=self.pool, pad=padWith(self.pool, localTs=BEHIND_HUB))
        if self.lifetime is not None:
            self.pair.hubSad.lifetime = self.lifetime
        self.wire = Wire()
        self.hubTun = MemoryPacketInterface("hub0")
        self.clientTun = MemoryPacketInterface("client0")
        self.hubCounters = Counters()
        self.hubPath = ESPDatapath(
            self.pair.hubSad,
            self.hubTun,
            SPD([]),
            self.pair.clock,
            self.wire.sender(HUB),
            self.hubCounters,
        )
        self.clientPath = ESPDatapath(
            self.pair.clientSad, self.clientTun, SPD([]), self.pair.clock, self.wire.sender(CLIENT)
        )
        self.hubTun.startReading()
        self.clientTun.startReading()
        [self.clientSa], _ = self.pair.connect(clientSpec(remoteTs=BEHIND_HUB))
        self.vip = str(self.clientSa.virtualIps[0][1])
        self.datapaths = {HUB: self.hubPath, CLIENT: self.clientPath}

    def fromClient(self, packet):
        self.clientTun.inject(packet)
        self.wire.deliver(self.datapaths)

    def hubEspSa(self):
        [sa] = list(self.pair.hubSad)
        return sa


class RoutingTests(DatapathScenario):
    def test_clientPacketReachesTheHubsTun(self):
        packet = ipv4(self.vip, LAN_HOST)
        self.fromClient(packet)
        self.assertEqual(self.hubTun.written, [packet])
        sa = self.hubEspSa()
        self.assertEqual((sa.packetsIn, sa.bytesIn), (1, len(packet)))

    def test_replyFromTheLanReachesTheClient(self):
        reply = ipv4(LAN_HOST, self.vip)
        self.hubTun.inject(reply)
        self.wire.deliver(self.datapaths)
        self.assertEqual(self.clientTun.written, [reply])
        self.assertEqual(self.hubEspSa().packetsOut, 1)

    def test_packetForNoPeerGoesToTheSpd(self):
        self.hubTun.inject(ipv4(LAN_HOST, "198.51.100.99"))
        self.assertEqual(self.wire.sent, [])
        self.assertEqual(self.hubCounters["tun_no_child_sa_discard"], 1)

    def test_hubAndSpokeNeverTouchesTheTun(self):
        """
        A packet from one road warrior to another is re-encrypted to the second one's CHILD SA
        directly.
        """
        [other], _ = self.pair.connect(clientSpec(remoteTs=BEHIND_HUB))
        otherVip = str(other.virtualIps[0][1])
        # Both road warriors live on one in-memory host here, so send on the first one's CHILD SA
        # explicitly (its own routing would pick the newest SA for 198.51.100.0/24).
        first = self.pair.clientSad.lookup(self.clientSa.children[0].inboundSpi)
        packet = ipv4(self.vip, otherVip)
        self.clientPath._encryptTo(first, packet, 4, len(packet))
        self.wire.deliver(self.datapaths)
        self.assertEqual(self.hubTun.written, [])
        self.assertEqual(self.clientTun.written, [packet])
        secondOnHub = self.pair.hubSad.lookup(other.children[0].outboundSpi)
        self.assertEqual(secondOnHub.packetsOut, 1)

    def test_innerAddressesRejectsShortPackets(self):
        self.assertIsNone(innerAddresses(b""))
        self.assertIsNone(innerAddresses(b"\x45" + bytes(10)))
        self.assertIsNone(innerAddresses(b"\x60" + bytes(30)))
        self.assertEqual(innerAddresses(ipv4("192.0.2.1", "192.0.2.2"))[0], 4)


class AdversarialTests(DatapathScenario):
    def captured(self):
        packet = ipv4(self.vip, LAN_HOST)
        self.clientTun.inject(packet)
        [(_, _, esp)] = self.wire.inFlight
        return esp

    def test_replayedPacketIsDropped(self):
        esp = self.captured()
        self.wire.deliver(self.datapaths)
        self.hubPath.espReceived(esp, (CLIENT, 4500), None)
        self.assertEqual(len(self.hubTun.written), 1)
        self.assertEqual(self.hubEspSa().drops, {"replay": 1})

    def test_flippedBitsAreDropped(self):
        esp = self.captured()
        self.wire.inFlight.clear()
        for position in (8, 12, len(esp) // 2, len(esp) - 1):
            tampered = bytearray(esp)
            tampered[position] ^= 0x01
            self.hubPath.espReceived(bytes(tampered), (CLIENT, 4500), None)
        self.assertEqual(self.hubTun.written, [])
        self.assertEqual(self.hubEspSa().drops.get("icv"), 4)
        # The genuine packet still gets through afterwards: the window did not move.
        self.hubPath.espReceived(esp, (CLIENT, 4500), None)
        self.assertEqual(len(self.hubTun.written), 1)

    def test_spoofedInnerSourceIsDropped(self):
        """
        A peer cannot speak with another peer's (or any other) address: RFC 4301's inbound
        selector check.
        """
        self.fromClient(ipv4("198.51.100.99", LAN_HOST))
        self.assertEqual(self.hubTun.written, [])
        self.assertEqual(self.hubEspSa().drops, {"selector": 1})
        self.fromClient(ipv4(self.vip, LAN_HOST))
        self.assertEqual(len(self.hubTun.written), 1)

    def test_unknownSpiAndGarbageAreCounted(self):
        for garbage in (b"", b"\x00\x00\x01\x00", b"\xde\xad\xbe\xef" + bytes(40)):
            self.hubPath.espReceived(garbage, (CLIENT, 4500), None)
        self.assertEqual(self.hubCounters["esp_unknown_spi"], 3)

    def test_unknownSpiIsReportedToTheIkeSide(self):
        """
        ESP for an SPI no CHILD SA has is handed (SPI, peer) to C{unknownSpi} after being
        counted; a datagram too short to be ESP is only counted.
        """
        reported = []
        self.hubPath.unknownSpi = lambda spi, peer: reported.append((spi, peer))
        self.hubPath.espReceived(b"\xde\xad\xbe\xef" + bytes(40), (CLIENT, 4500), None)
        self.hubPath.espReceived(b"\x00\x00\x01\x00", (CLIENT, 4500), None)
        self.assertEqual(reported, [(b"\xde\xad\xbe\xef", (CLIENT, 4500))])
        self.assertEqual(self.hubCounters["esp_unknown_spi"], 2)

    def test_truncatedEspIsMalformed(self):
        esp = self.captured()
        self.wire.inFlight.clear()
        self.hubPath.espReceived(esp[:12], (CLIENT, 4500), None)
        self.assertEqual(self.hubEspSa().drops, {"malformed": 1})

    def test_nonIpInnerPacketIsDropped(self):
        self.fromClient(b"\x00" * 40)
        self.assertEqual(self.hubTun.written, [])


class LifetimeTests(DatapathScenario):
    lifetime = Lifetime(hardSeconds=100.0, hardBytes=1000, hardPackets=50)

    def test_softThenHardByteLimit(self):
        events = []
        self.hubPath.lifetimeReached = lambda sa, hard, what: events.append((hard, what))
        packet = ipv4(self.vip, LAN_HOST, b"y" * 80)  # 100 bytes: soft at 900, hard at 1000
        for _ in range(10):
            self.fromClient(packet)
        self.assertEqual(events, [(False, "bytes"), (True, "bytes")])

    def test_hardLimitWithoutListenerRemovesTheSa(self):
        packet = ipv4(self.vip, LAN_HOST, b"y" * 480)
        for _ in range(3):
            self.fromClient(packet)
        self.assertEqual(len(self.pair.hubSad), 0)
        self.assertEqual(len(self.hubTun.written), 2)

    def test_secondsLimitsOnTheSharedTimer(self):
        events = []
        self.hubPath.lifetimeReached = lambda sa, hard, what: events.append((hard, what))
        # The soft limit (90 s) comes up to 10% earlier, by the SA's inbound SPI (jitter).
        spread = int.from_bytes(self.hubEspSa().child.inboundSpi, "big") / 0xFFFFFFFF
        soft = 90 * (1 - SOFT_JITTER * spread)
        self.pair.clock.advance(soft - 0.5)
        self.assertEqual(events, [])
        self.pair.clock.advance(1)
        self.assertEqual(events, [(False, "seconds")])
        self.pair.clock.advance(100 - soft - 1)
        self.assertEqual(events, [(False, "seconds")])
        self.pair.clock.advance(1)
        self.assertEqual(events, [(False, "seconds"), (True, "seconds")])

    def test_softDeadlinesOfManySasSpreadOut(self):
        """
        SAs installed at one moment do not all ask for a rekey in the same second.
        """
        sad = SAD(lifetime=Lifetime(hardSeconds=1000.0))
        clock = task.Clock()
        events = []
        path = ESPDatapath(sad, MemoryPacketInterface("t"), SPD([]), clock, lambda *a: None)
        path.lifetimeReached = lambda sa, hard, what: events.append((clock.seconds(), hard))
        template = self.hubEspSa().child
        for _ in range(200):
            sad.install(dataclasses.replace(template, inboundSpi=sad.allocateSpi()))
        clock.pump([1.0] * 1000)
        softTimes = [when for when, hard in events if not hard]
        self.assertEqual(len(softTimes), 200)
        self.assertGreaterEqual(min(softTimes), 810)
        self.assertLessEqual(max(softTimes), 901)
        self.assertGreater(len(set(int(t) for t in softTimes)), 50)


class SpdTests(DatapathScenario):
    def test_bypassIsCountedSeparately(self):
        self.hubPath.spd = SPD(
            [
                SPDEntry.fromConfig(
                    {"local": "203.0.113.0/24", "remote": "0.0.0.0/0", "action": "bypass"}
                )
            ]
        )
        self.hubTun.inject(ipv4(LAN_HOST, "192.0.2.200"))
        self.assertEqual(self.hubCounters["tun_no_child_sa_bypass"], 1)


class SadTests(SynchronousTestCase):
    def test_spiReservationAndRelease(self):
        sad = SAD()
        spi = sad.allocateSpi()
        self.assertGreaterEqual(int.from_bytes(spi, "big"), 256)
        self.assertIn(spi, sad.bySpi)
        self.assertIsNone(sad.lookup(spi))
        sad.releaseSpi(spi)
        self.assertNotIn(spi, sad.bySpi)


class CreepingClock(task.Clock):
    """
    A clock that moves on by a microsecond each time it is read, as a real one does between
    two reads.
    """

    def seconds(self):
        self.rightNow += 1e-6
        return self.rightNow


def childSa(number: int) -> ChildSA:
    suite = ChildSuite(encrAlgorithm(EncrId.AES_GCM_16, 256), None, False, None)
    selector = TrafficSelector.fromNetwork(
        ipaddress.ip_network(f"10.0.{number >> 8}.{number & 255}")
    )
    return ChildSA(
        inboundSpi=struct.pack("!I", 0x1000 + number),
        outboundSpi=struct.pack("!I", 0x2000 + number),
        suite=suite,
        localTs=(TrafficSelector.fromNetwork(ipaddress.ip_network("203.0.113.0/24")),),
        remoteTs=(selector,),
        peer=("192.0.2.1", 4500),
        path=None,
        ikeSpi=b"\x01" * 8,
        encrIn=bytes(36),
        encrOut=bytes(36),
    )


class LifetimeTimerTests(SynchronousTestCase):
    def setUp(self):
        self.clock = CreepingClock()
        self.armed = []
        callLater = self.clock.callLater

        def countingCallLater(*args, **kwargs):
            self.armed.append(args[0])
            return callLater(*args, **kwargs)

        self.clock.callLater = countingCallLater
        self.sad = SAD(lifetime=Lifetime(hardSeconds=100.0))
        self.path = ESPDatapath(
            self.sad, MemoryPacketInterface("x"), SPD([]), self.clock, lambda *a: None
        )
        self.events = []
        self.path.lifetimeReached = lambda sa, hard, what: self.events.append(
            (sa.child.inboundSpi, hard)
        )

    def test_installsKeepTheTimerArmed(self):
        """
        Every SA's deadlines come after the first SA's, so installing more SAs leaves the one
        shared timer as it is, even though the clock moves while it is armed.
        """
        for number in range(5):
            self.sad.install(childSa(number))
        self.assertEqual(len(self.armed), 1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_anEarlierDeadlineReArmsTheTimer(self):
        first = self.sad.install(childSa(1))
        self.sad.lifetime = Lifetime(hardSeconds=10.0)
        second = self.sad.install(childSa(2))
        self.assertEqual(len(self.armed), 2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(9.5)  # soft limit at 9 s
        self.assertEqual(self.events, [(second.child.inboundSpi, False)])
        self.clock.advance(85)
        self.assertEqual(
            self.events,
            [
                (second.child.inboundSpi, False),
                (second.child.inboundSpi, True),
                (first.child.inboundSpi, False),
            ],
        )


class EspSaTests(SynchronousTestCase):
    def test_selectorRangesOfBothSides(self):
        """
        The peer's selectors (checked per inbound packet and routed to) and ours, as integer
        ranges.
        """
        sa = SAD().install(childSa(7))
        self.assertEqual(sa.remoteRanges, ((4, 0x0A000007, 0x0A000007),))
        self.assertEqual(sa.localRanges, ((4, 0xCB007100, 0xCB0071FF),))
        self.assertTrue(sa.allowsSource(4, 0x0A000007))
        self.assertFalse(sa.allowsSource(4, 0x0A000008))
        self.assertFalse(sa.allowsSource(6, 0x0A000007))
