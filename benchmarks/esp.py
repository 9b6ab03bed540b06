"""
ESP datapath benchmark: what a packet costs the hub, in process, end to end through UDP 4500
and TUN, and compared with strongSwan.

(a) In process: seal+open per second of L{esp_codec} (the codec alone, one core).

(b) End to end, in the harness's namespaces (client ns 192.0.2.0/24 <-> hub ns <-> LAN ns
    203.0.113.0/24), with the hub as a real process (C{twistd -n ikehub}) and its TUN device:
    - inbound: a generator process in the client namespace sets up an IKE SA and CHILD SA with
      ikehub's own initiator over a real UDP socket (asking for a virtual IP), seals inner UDP
      packets (virtual IP -> 203.0.113.10:9) with L{EspEncryptor} under the CHILD SA's outbound
      keys before the clock starts, then sends them to the hub's NAT-T port, paced at the rate
      a short unpaced probe showed the hub keeps up with. The hub decrypts and writes them to
      TUN; the kernel forwards them to the LAN host, where a UDP socket bound to port 9 is
      never read: the LAN kernel counts every datagram that reaches it (InDatagrams +
      RcvbufErrors), so counting costs no CPU the hub would compete with.
    - outbound: a sender in the LAN namespace sends UDP to the virtual IP; the hub reads TUN,
      seals and sends ESP to the generator, which counts what arrives (and opens a sample).
    The hub's CPU time (utime + stime from /proc) over each paced run, divided by the packets
    delivered, is its cost per packet; 1 / that is the packets per second one core would do.
    Kernel work done in the hub's system calls (forwarding after a TUN write, delivery to the
    receiving socket after a sendto) is in its stime; work deferred to ksoftirqd is not.

(c) iperf3 (TCP, both directions) from a real strongSwan client (kernel-libipsec, userspace ESP)
    in the client namespace to an iperf3 server on the LAN host: (i) through ikehub, (ii)
    through a strongSwan responder in the hub namespace (as in tests/test_harness_selfcheck.py),
    with the CPU each process used, to show which end is the bottleneck.

Usage: python benchmarks/esp.py [--parts abc] [--esp aes128gcm16] [--seconds 3]
                                [--iperf-seconds 5] [--profile-hub FILE]
Needs root, strongSwan and iperf3 (see .ci/run); (a) alone runs anywhere.
With --profile-hub the hub runs under cProfile during (b) (its figures are then inflated)
and the functions that take the most time per packet are printed.
"""

import argparse
import functools
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# benchmarks/ is on the path as this script's directory.
from esp_codec import bestRate, suiteNamed  # noqa: E402

SIZES = (64, 512, 1400)
LAN_HOST = "203.0.113.10"
HUB_ADDRESS = "192.0.2.1"
SINK_PORT = 9
IPERF_PORT = 5201
GENERATOR_IDENTITY = "bench@example.com"
#: Most packets one end-to-end run sends (and the generator keeps sealed in memory).
MAX_PACKETS = 200_000
#: The issue's target for (b): packets per second per hub core at 1400 bytes.
TARGET_PPS = 90_000
#: Seconds of the unpaced run that finds the rate the hub keeps up with.
PROBE_SECONDS = 1.0
#: Paced runs send at this fraction of the rate the unpaced probe delivered.
PACE = 0.9
#: A run is over when the receiving side's count has not moved for this long.
SETTLE_SECONDS = 0.3
#: Every wait on a helper process ends after this many seconds at most.
HELPER_TIMEOUT = 60.0

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")


# -- helpers run in the namespaces ------------------------------------------------------------


def checksum(header: bytes) -> int:
    """The Internet checksum (RFC 1071) of an IPv4 header; the kernel drops a wrong one."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def innerUdpPacket(source: str, destination: str, port: int, size: int) -> bytes:
    """A C{size}-byte IPv4 packet carrying UDP to C{destination}:C{port} (no UDP checksum)."""
    payloadLength = size - _IPV4.size - _UDP.size
    src, dst = socket.inet_aton(source), socket.inet_aton(destination)
    header = _IPV4.pack(0x45, 0, size, 0, 0x4000, 64, socket.IPPROTO_UDP, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    udp = _UDP.pack(40000, port, _UDP.size + payloadLength, 0)
    return header + udp + bytes(payloadLength)


def reply(**fields) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def commands():
    """The driver's commands, one JSON object per line on stdin, until it closes stdin."""
    for line in sys.stdin:
        if line.strip():
            yield json.loads(line)


def pacedSend(sendto, address, packets, rate: float, seconds: float) -> tuple[int, float]:
    """
    C{sendto(packet, address)} for each of C{packets}, at C{rate} per second (0: as fast as
    possible), for at most C{seconds}; (sent, elapsed). The clock is read once per batch of 32.
    """
    start = time.perf_counter()
    deadline = start + seconds
    sent = 0
    total = len(packets)
    while sent < total:
        batchEnd = min(sent + 32, total)
        for i in range(sent, batchEnd):
            sendto(packets[i], address)
        sent = batchEnd
        now = time.perf_counter()
        if now >= deadline:
            break
        if rate:
            ahead = start + sent / rate - now
            if ahead > 0:
                time.sleep(ahead)
    return sent, time.perf_counter() - start


def runGenerator(args) -> None:
    """
    The client side of (b): an IKE SA and CHILD SA with the hub, then the driver's commands:
    C{prepare} (seal) and C{go} (send) an inbound run, C{receive} and C{collect} around an
    outbound one, C{quit} (delete the IKE SA).
    """
    import ipaddress

    from twisted.internet import reactor

    from ikehub.crypto.proposals import parseProposal
    from ikehub.esp.packet import EspDecryptor, EspDropped, EspEncryptor
    from ikehub.esp.sad import SAD
    from ikehub.ike.endpoint import IKEEndpoint
    from ikehub.ike.initiator import InitiatorSpec
    from ikehub.ike.settings import IKESettings
    from ikehub.net.udp import IKEDatagramProtocol, enlargeBuffers, sendVia
    from ikehub.policy.pad import PAD
    from ikehub.wire.constants import ProtocolId
    from ikehub.wire.identity import Identity

    ikeProposals = (parseProposal("aes256gcm16-prfsha256-x25519", ProtocolId.IKE),)
    espProposals = (parseProposal(args.esp, ProtocolId.ESP),)
    identity = Identity.fromString(GENERATOR_IDENTITY)
    settings = IKESettings(identity, ikeProposals, espProposals, retransmitTimeout=2.0)
    sad = SAD()
    endpoint = IKEEndpoint(settings, PAD([]), sad, reactor, sendVia)
    protocol = IKEDatagramProtocol(endpoint, sad, endpoint.counters, isNattPort=False)
    port = reactor.listenUDP(0, protocol, interface=args.local)
    enlargeBuffers(port.socket)
    endpoint.floatPath = protocol.framedPath
    spec = InitiatorSpec(
        identity=identity,
        psk=args.psk.encode(),
        ikeProposals=ikeProposals,
        espProposals=espProposals,
        remoteIdentity=Identity.fromString("hub.example.com"),
        requestVirtualIp=True,
        remoteTs=(ipaddress.ip_network("203.0.113.0/24"),),
    )
    state: dict = {"nextSeq": 1, "packets": []}

    def established(sa) -> None:
        if not sa.children or not sa.virtualIps:
            reply(error=f"IKE SA up but no CHILD SA or virtual IP: {sa.children} {sa.virtualIps}")
            reactor.stop()
            return
        child = sa.children[0]
        state.update(sa=sa, child=child, vip=str(sa.virtualIps[0][1]))
        state["encryptor"] = EspEncryptor(
            child.suite, child.outboundSpi, child.encrOut, child.integOut
        )
        reply(
            vip=state["vip"],
            hub=list(child.peer),
            spiIn=child.inboundSpi.hex(),
            spiOut=child.outboundSpi.hex(),
            suite=child.suite.encr.name,
        )
        reactor.callLater(0, nextCommand)

    def failed(failure) -> None:
        reply(error=f"IKE SA setup failed: {failure.getErrorMessage()}")
        reactor.stop()

    def prepare(size: int, count: int) -> None:
        inner = innerUdpPacket(state["vip"], LAN_HOST, SINK_PORT, size)
        seal = state["encryptor"].seal
        first = state["nextSeq"]
        began = time.perf_counter()
        state["packets"] = [seal(seq, inner, 4) for seq in range(first, first + count)]
        state["nextSeq"] = first + count
        reply(prepared=count, sealSeconds=time.perf_counter() - began)

    def go(rate: float, seconds: float) -> None:
        sock = port.socket
        hub = tuple(state["child"].peer)
        sock.setblocking(True)
        try:
            sent, elapsed = pacedSend(sock.sendto, hub, state["packets"], rate, seconds)
        finally:
            sock.setblocking(False)
        state["packets"] = []
        reply(sent=sent, seconds=elapsed)

    def receive() -> None:
        """
        Stop reading the socket and shrink its buffer: from now on the kernel counts (and
        drops) what the hub sends, and nobody here is woken per packet.
        """
        sock = port.socket
        while True:
            try:
                sock.recv(65536)
            except BlockingIOError:
                break
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        reply(receiving=True)

    def collect() -> None:
        """Open what the kernel kept of the run (its first packets) and restore the buffer."""
        child = state["child"]
        opener = EspDecryptor(child.suite, child.inboundSpi, child.encrIn, child.integIn)
        sock = port.socket
        read = verified = 0
        while True:
            try:
                packet = sock.recv(65536)
            except BlockingIOError:
                break
            read += 1
            try:
                opener.open(packet)
                verified += 1
            except EspDropped:
                pass
        enlargeBuffers(sock)
        reply(read=read, verified=verified)

    def nextCommand() -> None:
        line = sys.stdin.readline()
        if not line:
            reactor.stop()
            return
        command = json.loads(line)
        name = command.pop("cmd")
        if name == "quit":
            endpoint.deleteIkeSa(state["sa"])
            reply(bye=True)
            reactor.callLater(0.5, reactor.stop)
            return
        {"prepare": prepare, "go": go, "receive": receive, "collect": collect}[name](**command)
        # Back to the reactor for a turn, so IKE traffic is not left waiting.
        reactor.callLater(0, nextCommand)

    def giveUp() -> None:
        if "sa" not in state:
            reply(error=f"no IKE SA with the hub within {HELPER_TIMEOUT:g} s")
            reactor.stop()

    endpoint.initiate(spec, (args.hub, 500), protocol.plainPath).addCallbacks(established, failed)
    reactor.callLater(HELPER_TIMEOUT, giveUp)
    reactor.run()


def runLan(args) -> None:
    """
    The LAN host of (b): a sink socket on port 9 that is never read (the kernel counts), and a
    paced UDP sender towards the virtual IP.
    """
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    sink.bind((LAN_HOST, SINK_PORT))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sender.bind((LAN_HOST, 0))
    reply(ready=True)
    for command in commands():
        if command["cmd"] == "quit":
            break
        destination = (command["dest"], SINK_PORT)
        payload = bytes(command["size"] - _IPV4.size - _UDP.size)
        packets = [payload] * command["count"]
        sent, elapsed = pacedSend(
            sender.sendto, destination, packets, command["rate"], command["seconds"]
        )
        reply(sent=sent, seconds=elapsed)
    sink.close()


# -- the driver ---------------------------------------------------------------------------------


class Helper:
    """
    A helper process in a namespace, spoken to in JSON lines; every read has a timeout and the
    process is ended by its PID.
    """

    def __init__(self, argv: list[str], errorPath: Path, name: str) -> None:
        self.name = name
        self.errorPath = errorPath
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(errorPath, "wb") as errors:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=env,
                start_new_session=True,
            )
        self.pid = self.process.pid
        self._buffer = b""

    def send(self, **command) -> None:
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        self.process.stdin.flush()

    def receive(self, timeout: float = HELPER_TIMEOUT) -> dict:
        """The helper's next reply."""
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name} did not answer within {timeout:g} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"{self.name} exited:\n{self.errors()}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name}: {answer['error']}\n{self.errors()}")
        return answer

    def request(self, timeout: float = HELPER_TIMEOUT, **command) -> dict:
        self.send(**command)
        return self.receive(timeout)

    def errors(self) -> str:
        return self.errorPath.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        process = self.process
        if process.poll() is None:
            try:
                process.stdin.close()
            except OSError:
                pass
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.kill(self.pid, signal.SIGKILL)
                    process.wait(timeout=5)


def cpuTimes(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process so far, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def cpuSeconds(pid: int) -> float:
    """
    CPU time of a process so far: the sum over its threads of schedstat's nanosecond run time
    (stat's utime + stime only count in 1/100 s); stat where schedstat is missing.
    """
    total = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        for task in tasks:
            try:
                total += int(Path(task, "schedstat").read_text().split()[0])
            except FileNotFoundError:
                pass  # a thread that just ended
    except (OSError, ValueError, IndexError):
        return sum(cpuTimes(pid))
    return total / 1e9


def machineBusy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    fields = list(map(int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]))
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    # guest time is already counted in user.
    total = sum(fields[:8])
    return (total - idle) / ticks, total / ticks


def udpCounters(pid: int) -> dict[str, int]:
    """The Udp: line of /proc/net/snmp in the network namespace of process C{pid}."""
    lines = [
        line.split()
        for line in Path(f"/proc/{pid}/net/snmp").read_text().splitlines()
        if line.startswith("Udp:")
    ]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]), strict=True))


def transmitDrops(pid: int, device: str) -> int:
    """
    Packets the kernel could not queue for transmission on C{device} in C{pid}'s namespace;
    for a TUN device, those the reader (the hub) was too slow to take.
    """
    for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == device:
            return int(rest.split()[11])
    return 0


def delivered(pid: int) -> int:
    """
    UDP datagrams that reached a socket in C{pid}'s namespace: those read (InDatagrams counts
    them when read) and those dropped for a full buffer.
    """
    counters = udpCounters(pid)
    return counters["InDatagrams"] + counters["RcvbufErrors"]


class Snapshot:
    """The counters a run is judged by, read at once."""

    def __init__(self, hubPid: int, lanPid: int, clientPid: int) -> None:
        self.time = time.perf_counter()
        self.user, self.system = cpuTimes(hubPid)
        self.cpu = cpuSeconds(hubPid)
        self.lan = delivered(lanPid)
        self.client = delivered(clientPid)
        self.hubSocketDrops = udpCounters(hubPid)["RcvbufErrors"]
        self.tunDrops = transmitDrops(hubPid, "ikehub0")


def settle(pid: int, began: float) -> tuple[int, float]:
    """
    Wait until the count of L{delivered} in C{pid}'s namespace stops moving; (count, time of
    its last change).
    """
    count, changed = delivered(pid), time.perf_counter()
    while time.perf_counter() - changed < SETTLE_SECONDS:
        time.sleep(0.02)
        now = delivered(pid)
        if now != count:
            count, changed = now, time.perf_counter()
        if changed - began > HELPER_TIMEOUT:
            break
    return count, changed


def inboundRun(
    generator: Helper, hubPid: int, lanPid: int, size: int, rate: float, seconds: float
) -> dict:
    """
    One inbound run: the generator seals its packets, then (clock on) sends them at C{rate}
    (0: unpaced); the hub's CPU and the LAN's count are read before and after.
    """
    count = MAX_PACKETS if not rate else min(MAX_PACKETS, int(rate * seconds))
    generator.request(cmd="prepare", size=size, count=count, timeout=120)
    before = Snapshot(hubPid, lanPid, generator.pid)
    sent = generator.request(cmd="go", rate=rate, seconds=seconds, timeout=seconds + 30)
    count, lastChange = settle(lanPid, before.time)
    after = Snapshot(hubPid, lanPid, generator.pid)
    count -= before.lan
    return {
        "sent": sent["sent"],
        "delivered": count,
        "wallRate": count / max(lastChange - before.time, 1e-6),
        "cpu": after.cpu - before.cpu,
        "user": after.user - before.user,
        "wall": lastChange - before.time,
        "queueDrops": after.hubSocketDrops - before.hubSocketDrops,
    }


def outboundRun(
    generator: Helper, lan: Helper, hubPid: int, vip: str, size: int, rate: float, seconds: float
) -> dict:
    """One outbound run: the LAN host sends to the virtual IP, the generator counts ESP."""
    count = MAX_PACKETS if not rate else min(MAX_PACKETS, int(rate * seconds))
    generator.request(cmd="receive")
    before = Snapshot(hubPid, lan.pid, generator.pid)
    sent = lan.request(
        cmd="send",
        dest=vip,
        size=size,
        rate=rate,
        seconds=seconds,
        count=count,
        timeout=seconds + 30,
    )
    _, lastChange = settle(generator.pid, before.time)
    sample = generator.request(cmd="collect")
    after = Snapshot(hubPid, lan.pid, generator.pid)
    if not sample["verified"]:
        raise RuntimeError(f"the generator could not open the ESP the hub sent: {sample}")
    count = after.client - before.client
    return {
        "sent": sent["sent"],
        "delivered": count,
        "wallRate": count / max(lastChange - before.time, 1e-6),
        "cpu": after.cpu - before.cpu,
        "user": after.user - before.user,
        "wall": lastChange - before.time,
        "queueDrops": after.tunDrops - before.tunDrops,
    }


def perPacket(run: dict) -> float:
    """Hub CPU microseconds per delivered packet."""
    return run["cpu"] / run["delivered"] * 1e6 if run["delivered"] else float("inf")


def measure(direction: str, size: int, args, runOnce) -> dict:
    """
    Probe the rate the hub keeps up with (unpaced), then C{args.repeats} runs paced at
    L{PACE} of it; prints the run with the least hub CPU per packet (a shared machine only
    ever makes a run dearer) and the spread.
    """
    probe = runOnce(0, PROBE_SECONDS)
    if not probe["delivered"]:
        raise RuntimeError(f"{direction} {size} B: nothing got through the hub: {probe}")
    rate = probe["wallRate"] * PACE
    runs = [runOnce(rate, args.seconds) for _ in range(args.repeats)]
    best = min(runs, key=perPacket)
    spread = sorted(perPacket(run) for run in runs)
    row = printRun(direction, size, rate, best, spread)
    row["delivered"] = sum(run["delivered"] for run in [probe, *runs])
    return row


def printRun(direction: str, size: int, rate: float, run: dict, spread: list[float]) -> dict:
    delivered = run["delivered"]
    perPacketUs = perPacket(run)
    perCore = 1e6 / perPacketUs if delivered and run["cpu"] else float("inf")
    print(
        f"{direction:<9}{size:>6} {run['sent']:>9,} {delivered:>9,} {run['wallRate']:>10,.0f} "
        f"{run['sent'] - delivered:>7,} {run['queueDrops']:>6,} {perPacketUs:>7.2f} "
        f"{run['user'] / max(delivered, 1) * 1e6:>6.2f} {perCore:>9,.0f} "
        f"{perCore * size * 8 / 1e9:>7.2f} {run['cpu'] / run['wall'] * 100:>5.0f}%  "
        f"{'/'.join(f'{us:.1f}' for us in spread):<15} {rate:>9,.0f}",
        flush=True,
    )
    return {"direction": direction, "size": size, "usPerPacket": perPacketUs, "ppsPerCore": perCore}


def patchedTwistd(profilePath: str | None):
    """
    The twistd launcher line of the harness, with cProfile flags when profiling. (The harness
    has no option for extra twistd arguments; its launcher is a module constant.)
    """
    from tests.harness import hub as hubModule

    original = hubModule.TWISTD
    if profilePath:
        flags = ["--profile", profilePath, "--profiler", "cprofile", "--savestats"]
        hubModule.TWISTD = f"import sys; sys.argv[1:1] = {flags!r}; {original}"
    return hubModule, original


def partB(args, workdir: Path) -> list[dict]:
    from tests.harness import HubProcess, Topology
    from tests.harness.netns import netnsExec
    from tests.realclient import HUB_PSK, hubConfig

    print(
        f"\n(b) end to end: UDP 4500 -> hub -> TUN -> LAN and back, ESP {args.esp}; "
        f"hub CPU from /proc over each paced run"
    )
    results = []
    hubModule, original = patchedTwistd(args.profile_hub)
    generator = lan = None
    try:
        with Topology(clients=1) as net, HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub:
            generator = Helper(
                netnsExec(
                    net.clientNs[0],
                    sys.executable,
                    __file__,
                    "--role",
                    "generator",
                    "--esp",
                    args.esp,
                    "--hub",
                    HUB_ADDRESS,
                    "--local",
                    net.clientAddresses[0],
                    "--psk",
                    HUB_PSK,
                ),
                workdir / "generator.err",
                "generator",
            )
            lan = Helper(
                netnsExec(net.lanNs, sys.executable, __file__, "--role", "lan"),
                workdir / "lan.err",
                "LAN helper",
            )
            lan.receive(timeout=15)
            sa = generator.receive(timeout=30)
            print(
                f"CHILD SA {sa['suite']}, SPIs {sa['spiIn']}/{sa['spiOut']}, virtual IP "
                f"{sa['vip']}; hub pid {hub.pid}"
            )
            print(
                f"{'direction':<9}{'size':>6} {'sent':>9} {'delivered':>9} {'pkts/s':>10} "
                f"{'lost':>7} {'in-q':>6} {'hub us':>7} {'user':>6} {'pps/core':>9} "
                f"{'Gb/core':>7} {'hub':>6}  {'hub us, runs':<15} {'paced at':>9}"
            )
            for size in args.sizes:
                results.append(
                    measure(
                        "inbound",
                        size,
                        args,
                        functools.partial(inboundRun, generator, hub.pid, lan.pid, size),
                    )
                )
            for size in args.sizes:
                results.append(
                    measure(
                        "outbound",
                        size,
                        args,
                        functools.partial(outboundRun, generator, lan, hub.pid, sa["vip"], size),
                    )
                )
            generator.request(cmd="quit", timeout=10)
            lan.send(cmd="quit")
            generator.stop()
            lan.stop()
            hub.stop()
            counters = hubCounters(hub.log(), sa["spiOut"])
            if counters:
                inbound, outbound = (
                    sum(r["delivered"] for r in results if r["direction"] == d)
                    for d in ("inbound", "outbound")
                )
                print(
                    f"the hub's own count for the CHILD SA (logged at delete): {counters[0]:,} "
                    f"packets in, {counters[1]:,} out; delivered over all runs and probes: "
                    f"{inbound:,} to the LAN, {outbound:,} to the generator"
                )
            else:
                print("hub log has no CHILD SA removal line:\n" + hub.log()[-2000:])
    finally:
        hubModule.TWISTD = original
        for helper in (generator, lan):
            if helper is not None:
                helper.stop()
    print(
        "hub us: hub CPU (user+system) per delivered packet, user: its user-space part; "
        "pps/core = 1e6 / hub us; "
        "Gb/core: inner bytes at that rate; pkts/s: delivered per wall-clock second; "
        "lost: sent - delivered; in-q: of those, dropped at the hub's input queue (its UDP "
        "socket buffer inbound, the TUN queue outbound); hub: share of one core it used"
    )
    if args.profile_hub:
        printProfile(args.profile_hub, results)
    return results


def hubCounters(log: str, spi: str) -> tuple[int, int] | None:
    import re

    match = re.search(
        rf"CHILD SA {spi}/\w+ removed: (\d+) packets \(\d+ bytes\) in, "
        rf"(\d+) packets \(\d+ bytes\) out",
        log,
    )
    return (int(match.group(1)), int(match.group(2))) if match else None


def printProfile(path: str, results: list[dict]) -> None:
    """
    The hub's functions by own time, as microseconds per call and as a share of the time the
    hub was busy (waiting in epoll is idle). cProfile adds a fixed cost to every call, so small
    Python functions look dearer than they are; C calls (system calls, AES-GCM) are timed as
    they ran.
    """
    import pstats

    if not Path(path).exists():
        print(f"no profile was written to {path}")
        return
    stats = pstats.Stats(path).stats
    rows = []
    for (filename, line, name), (_, calls, own, _, _) in stats.items():
        label = name if filename == "~" else f"{Path(filename).name}:{line}({name})"
        rows.append((own, calls, label))
    idle = sum(own for own, _, label in rows if "poll' of 'select.epoll" in label)
    busy = sum(own for own, _, _ in rows) - idle
    print(f"\nhub profile ({path}): {busy:.2f} s busy, {idle:.2f} s waiting in epoll")
    print(f"{'own s':>7} {'calls':>9} {'us/call':>8} {'busy':>6}  function")
    for own, calls, label in sorted(rows, reverse=True)[:25]:
        if "poll' of 'select.epoll" in label:
            continue
        print(
            f"{own:>7.2f} {calls:>9,} {own / max(calls, 1) * 1e6:>8.2f} "
            f"{own / busy * 100:>5.1f}%  {label}"
        )


def runIperf(net, vip: str, reverse: bool, seconds: int, pids: dict[str, int]) -> dict:
    """One iperf3 TCP run from the client's virtual IP to the LAN host; CPU used by C{pids}."""
    from tests.harness.netns import netnsExec

    server = subprocess.Popen(
        netnsExec(net.lanNs, "iperf3", "-s", "-1", "-B", LAN_HOST, "-p", str(IPERF_PORT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while f"{LAN_HOST}:{IPERF_PORT}" not in net.run(net.lanNs, "ss", "-Hltn").stdout:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("iperf3 server did not start")
            time.sleep(0.05)
        before = {name: cpuSeconds(pid) for name, pid in pids.items()}
        machineBefore = machineBusy()
        began = time.perf_counter()
        argv = [
            "iperf3",
            "-c",
            LAN_HOST,
            "-p",
            str(IPERF_PORT),
            "-B",
            vip,
            "-t",
            str(seconds),
            "-J",
            "--connect-timeout",
            "5000",
        ] + (["-R"] if reverse else [])
        result = net.run(net.clientNs[0], *argv, timeout=seconds + 30)
        wall = time.perf_counter() - began
        cpu = {name: (cpuSeconds(pid) - before[name]) / wall for name, pid in pids.items()}
        machineAfter = machineBusy()
        cpu["machine"] = (
            (machineAfter[0] - machineBefore[0])
            / (machineAfter[1] - machineBefore[1])
            * os.cpu_count()
        )
        report = json.loads(result.stdout)
        if "error" in report:
            raise RuntimeError(f"iperf3: {report['error']}")
        end = report["end"]
        return {
            "bps": end["sum_received"]["bits_per_second"],
            "retransmits": end["sum_sent"].get("retransmits", 0),
            "cpu": cpu,
        }
    finally:
        if server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(server.pid, signal.SIGKILL)
                server.wait(timeout=5)


def printIperf(label: str, reverse: bool, run: dict) -> None:
    cpu = ", ".join(f"{name} {share * 100:.0f}%" for name, share in run["cpu"].items())
    direction = "LAN -> client" if reverse else "client -> LAN"
    print(
        f"{label:<20} {direction:<14} {run['bps'] / 1e6:>7.1f} Mbit/s  "
        f"retr {run['retransmits']:>6}  CPU: {cpu}; {bottleneck(run['cpu'])}",
        flush=True,
    )


def bottleneck(cpu: dict[str, float]) -> str:
    """Which process, if any, held the run back, judged from the CPU it used."""
    saturated = [name for name, share in cpu.items() if name != "machine" and share >= 0.9]
    if saturated:
        return " and ".join(saturated) + " at a full core"
    if cpu["machine"] >= 0.9 * os.cpu_count():
        return "every core busy (both IPsec ends, iperf3 and TCP share them)"
    return "no CPU limit reached"


def iperfViaIkehub(args, workdir: Path):
    """(i): a strongSwan client through ikehub; yields (reverse, run)."""
    from tests.harness import HubProcess, StrongSwan, Topology
    from tests.realclient import clientConfig, clientSecrets, hubConfig

    with (
        Topology(clients=1) as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "client1",
            clientConfig(proposals="aes256gcm16-prfsha256-x25519", espProposals="aes256gcm16"),
            secrets=clientSecrets(),
        ) as client,
    ):
        result = client.initiate("home")
        if result.returncode != 0:
            raise RuntimeError(f"strongSwan client could not connect to ikehub:\n{client.log()}")
        [vip] = client.listSas()[0]["local-vips"]
        for reverse in (False, True):
            yield (
                reverse,
                runIperf(
                    net,
                    vip,
                    reverse,
                    args.iperf_seconds,
                    {"ikehub": hub.pid, "client charon": client.pid},
                ),
            )


def iperfViaStrongSwan(args, workdir: Path):
    """(ii): the same client through a strongSwan responder, as in the harness selfcheck."""
    from tests.harness import StrongSwan, Topology
    from tests.test_harness_selfcheck import CLIENT_CONF, RESPONDER_CONF, SECRETS

    with (
        Topology(clients=1) as net,
        StrongSwan(
            net.hubNs, workdir / "hub", RESPONDER_CONF, secrets=SECRETS, label="hub"
        ) as responder,
        StrongSwan(net.clientNs[0], workdir / "client1", CLIENT_CONF, secrets=SECRETS) as client,
    ):
        result = client.initiate("home", "home")
        if result.returncode != 0:
            raise RuntimeError(
                f"strongSwan client could not connect to strongSwan:\n{client.log()}"
            )
        [vip] = client.listSas()[0]["local-vips"]
        for reverse in (False, True):
            yield (
                reverse,
                runIperf(
                    net,
                    vip,
                    reverse,
                    args.iperf_seconds,
                    {"hub charon": responder.pid, "client charon": client.pid},
                ),
            )


def partC(args, workdir: Path) -> None:
    print(
        f"\n(c) iperf3 TCP, {args.iperf_seconds} s each way, {args.iperf_rounds} round(s); "
        f"strongSwan 5.9.8 client (kernel-libipsec), IKE aes256gcm16-prfsha256-x25519, "
        f"ESP aes256gcm16"
    )
    rates: dict[tuple[str, bool], list[float]] = {}
    for number in range(args.iperf_rounds):
        for key, label, setup in (
            ("ikehub", "(i) via ikehub", iperfViaIkehub),
            ("strongswan", "(ii) via strongSwan", iperfViaStrongSwan),
        ):
            for reverse, run in setup(args, workdir / f"c{number}-{key}"):
                rates.setdefault((key, reverse), []).append(run["bps"])
                printIperf(label, reverse, run)
    for reverse in (False, True):
        direction = "LAN -> client" if reverse else "client -> LAN"
        ikehub, strongswan = max(rates["ikehub", reverse]), max(rates["strongswan", reverse])
        print(
            f"ratio ikehub / strongSwan, {direction} (best runs): {ikehub / 1e6:.0f} / "
            f"{strongswan / 1e6:.0f} Mbit/s = {ikehub / strongswan:.2f}"
        )
    print(
        f"CPU: share of one core over the run (charon's libipsec uses several threads, so it "
        f"can pass 100%); machine: all {os.cpu_count()} cores together, iperf3 and the "
        f"kernel's TCP included (at most {os.cpu_count() * 100}%)"
    )


def partA(args) -> None:
    print(
        f"(a) in process: seal+open on one core (benchmarks/esp_codec.py), best of "
        f"{args.rounds} x {args.codec_seconds} s"
    )
    print(f"{'transform':<14}{'size':>6} {'packets/s':>11} {'Gbit/s':>7} {'us/pkt':>7}")
    for name in ("aes128gcm16", "aes256gcm16"):
        suite = suiteNamed(name)
        for size in args.sizes:
            rate = bestRate(suite, size, args.codec_seconds, args.rounds)
            print(
                f"{name:<14}{size:>6} {rate:>11,.0f} {rate * size * 8 / 1e9:>7.2f} "
                f"{1e6 / rate:>7.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="abc", help="which of a, b, c to run")
    parser.add_argument(
        "--esp",
        default="aes128gcm16",
        choices=["aes128gcm16", "aes256gcm16"],
        help="ESP transform for (b)",
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=list(SIZES),
        help="inner packet sizes, e.g. 64,512,1400",
    )
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="length of each paced run in (b)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="paced runs per case in (b)")
    parser.add_argument("--codec-seconds", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iperf-seconds", type=int, default=5)
    parser.add_argument(
        "--iperf-rounds",
        type=int,
        default=2,
        help="times (c) runs each setup; the best run of each is compared",
    )
    parser.add_argument(
        "--profile-hub",
        metavar="FILE",
        help="run the hub under cProfile in (b) and print where its time goes",
    )
    parser.add_argument(
        "--role", default="driver", choices=["driver", "generator", "lan"], help=argparse.SUPPRESS
    )
    parser.add_argument("--hub", help=argparse.SUPPRESS)
    parser.add_argument("--local", help=argparse.SUPPRESS)
    parser.add_argument("--psk", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "generator":
        return runGenerator(args)
    if args.role == "lan":
        return runLan(args)
    if args.profile_hub:
        args.profile_hub = str(Path(args.profile_hub).absolute())
    started = time.monotonic()
    if "a" in args.parts:
        partA(args)
    if "b" in args.parts or "c" in args.parts:
        from tests.harness import missingRequirements

        missing = missingRequirements()
        if missing:
            raise SystemExit("(b) and (c) need: " + "; ".join(missing))
    with tempfile.TemporaryDirectory(prefix="espbench") as tmp:
        workdir = Path(tmp)
        if "b" in args.parts:
            results = partB(args, workdir)
            at1400 = [r for r in results if r["size"] == 1400]
            for r in at1400:
                verdict = "meets" if r["ppsPerCore"] >= TARGET_PPS else "falls short of"
                print(
                    f"{r['direction']} at 1400 B: {r['ppsPerCore']:,.0f} packets/s per core "
                    f"{verdict} the target of {TARGET_PPS:,}"
                )
        if "c" in args.parts:
            if not any(Path(p, "iperf3").exists() for p in os.environ["PATH"].split(":")):
                raise SystemExit("(c) needs iperf3: apt-get install iperf3")
            partC(args, workdir)
    print(f"\ntotal {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
