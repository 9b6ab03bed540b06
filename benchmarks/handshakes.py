"""
Handshake benchmark: how many IKE SAs (with their first CHILD SA) the hub sets up per second, and
what each costs the responder in CPU.

A real hub process (C{twistd -n ikehub}) listens on loopback; separate initiator processes
run ikehub's own sans-IO initiator over real UDP sockets with a bounded number of handshakes in
flight. The responder's CPU time comes from /proc before and after the run, so it counts
everything the hub process did: parsing, crypto, Python around it, logging, the reactor.

Usage: python benchmarks/handshakes.py [--sas 3000] [--initiators 1] [--window 64] [--scenario NAME]
Prints IKE SAs per second, responder CPU microseconds per SA and p50/p99 setup latency.
Scenarios: a pre-shared key, ECDSA P-256 certificates both ways, and EAP-MSCHAPv2 with the hub's
certificate; the driver writes the certificates, keys and user database into its temporary
directory, where the hub and the initiators load them.
With --in-memory it instead times the responder per exchange through the tests' in-memory
harness, for attribution.
"""

import argparse
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HUB_HOST = "127.0.0.1"
TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
PSK = "benchmark-pre-shared-key-0123456789"
EAP_PASSWORD = "benchmark-eap-password"
#: name: (IKE proposal, ESP proposal, how the initiator authenticates).
SCENARIOS = {
    "psk-x25519-gcm": ("aes256gcm16-prfsha256-x25519", "aes256gcm16", "psk"),
    "ecdsa-ecp256-gcm": ("aes256gcm16-prfsha256-ecp256", "aes256gcm16", "pubkey"),
    "eap-mschapv2-x25519-gcm": ("aes256gcm16-prfsha256-x25519", "aes256gcm16", "eap-mschapv2"),
}

HUB_CONFIG = """
[hub]
identity = "hub.example.com"
listen = ["{host}"]
port = {port}
natt_port = {nattPort}
ike_proposals = ["{ike}"]
esp_proposals = ["{esp}"]
cookie_threshold = 100000
# Every initiator process sends from 127.0.0.1: one source with a full window in flight.
cookie_threshold_per_source = 100000
block_threshold = 100001

{credentials}
[[peers]]
name = "bench"
identity = "bench@example.com"
auth = "{auth}"
{psk}local_ts = ["203.0.113.0/24"]
remote_ts = ["dynamic"]
# Every initiator claims the same identity: let their IKE SAs live side by side.
duplicates = "never"
"""

#: The [hub] keys for the certificate scenarios, after the others of the table.
HUB_CREDENTIALS = """certificate = "{tmp}/hub.pem"
private_key = "{tmp}/hub.key"
ca = ["{tmp}/ca.pem"]
"""

USERS = """[[users]]
name = "bench@example.com"
password = "{password}"
"""


def writeCredentials(tmp: Path, auth: str) -> str:
    """
    A CA (ECDSA P-256), the hub's certificate (hub.example.com) and the initiators'
    (bench@example.com) with their keys as PEM files in C{tmp}, valid from yesterday for 30
    days, and for EAP the user database; returns the [hub] lines that name them.
    """
    if auth == "psk":
        return ""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.pki import dn, issue, writePem

    now = datetime.datetime.now(datetime.UTC)
    validity = dict(
        notBefore=now - datetime.timedelta(days=1), notAfter=now + datetime.timedelta(days=30)
    )
    caKey = ec.generate_private_key(ec.SECP256R1())
    ca = issue(dn("bench CA"), caKey, dn("bench CA"), caKey, ca=True, **validity)
    for name, san in (
        ("hub", x509.DNSName("hub.example.com")),
        ("client", x509.RFC822Name("bench@example.com")),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(dn(name), key, ca.subject, caKey, san=[san], **validity)
        writePem(tmp / f"{name}.pem", cert)
        writePem(tmp / f"{name}.key", key, mode=0o600)
    writePem(tmp / "ca.pem", ca)
    lines = HUB_CREDENTIALS.format(tmp=tmp)
    if auth == "eap-mschapv2":
        users = tmp / "users.toml"
        users.write_text(USERS.format(password=EAP_PASSWORD))
        users.chmod(0o600)
        lines += f'users = "{users}"\n'
    return lines


def freePort() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HUB_HOST, 0))
        return s.getsockname()[1]


def cpuSeconds(pid: int) -> tuple[float, float]:
    """
    (user, system) CPU seconds of a process so far. System time matters here: on loopback the
    kernel delivers each datagram to the receiver in the sender's context.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def waitForPort(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-uln"], capture_output=True, text=True).stdout
        if f"{HUB_HOST}:{port} " in out:
            return
        time.sleep(0.1)
    raise SystemExit(f"hub did not bind {HUB_HOST}:{port} within {timeout}s")


def callgrindControl(action: str, pid: int) -> None:
    subprocess.run(["callgrind_control", action, str(pid)], check=True, capture_output=True)


def callgrindDump(pid: int, directory: Path, keep: str) -> int:
    """
    Dump the hub's callgrind counters since the last zeroing and return the instructions they
    hold; the dump is copied to C{keep} unless that is C{"-"}.
    """
    before = set(directory.glob("callgrind.out*"))
    callgrindControl("--dump", pid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(directory.glob("callgrind.out*")) - before
        if new:
            dump = new.pop()
            time.sleep(0.5)  # let callgrind finish writing the file
            for line in dump.read_text().splitlines():
                if line.startswith(("summary:", "totals:")):
                    break
            else:
                time.sleep(1)
                continue
            if keep != "-":
                shutil.copyfile(dump, keep)
            return int(line.split()[1])
        time.sleep(0.2)
    raise SystemExit("callgrind did not dump its counters")


def runInitiator(args) -> None:
    """
    One initiator process: C{args.count} handshakes, at most C{args.window} in flight.
    """
    from twisted.internet import reactor

    from ikehub.crypto.proposals import parseProposal
    from ikehub.esp.sad import SAD
    from ikehub.ike.endpoint import IKEEndpoint
    from ikehub.ike.initiator import InitiatorSpec
    from ikehub.ike.settings import IKESettings
    from ikehub.net.udp import IKEDatagramProtocol, sendVia
    from ikehub.policy.pad import PAD
    from ikehub.wire.constants import ProtocolId
    from ikehub.wire.identity import Identity

    ike, esp, auth = SCENARIOS[args.scenario]
    how: dict = {"psk": PSK.encode()}
    if auth != "psk":
        from ikehub.auth.certs import TrustStore
        from ikehub.auth.credentials import (
            HubCredentials,
            loadCAs,
            loadCertificateChain,
            loadPrivateKey,
        )

        tmp = Path(args.credentials)
        how = {"trust": TrustStore(loadCAs([str(tmp / "ca.pem")]))}
        if auth == "pubkey":
            how["credentials"] = HubCredentials(
                loadCertificateChain(tmp / "client.pem"), loadPrivateKey(tmp / "client.key")
            )
        else:
            how["eapPassword"] = EAP_PASSWORD
    ikeProposals = (parseProposal(ike, ProtocolId.IKE),)
    espProposals = (parseProposal(esp, ProtocolId.ESP),)
    identity = Identity.fromString("bench@example.com")
    settings = IKESettings(identity, ikeProposals, espProposals, retransmitTimeout=5.0)
    sad = SAD()
    endpoint = IKEEndpoint(settings, PAD([]), sad, reactor, sendVia)
    protocol = IKEDatagramProtocol(endpoint, sad, endpoint.counters, isNattPort=False)
    reactor.listenUDP(0, protocol, interface=HUB_HOST)
    endpoint.floatPath = protocol.framedPath
    spec = InitiatorSpec(
        identity=identity,
        **how,
        ikeProposals=ikeProposals,
        espProposals=espProposals,
        remoteIdentity=Identity.fromString("hub.example.com"),
        localTs=(ipaddress.ip_network("127.0.0.1/32"),),
        remoteTs=(ipaddress.ip_network("203.0.113.0/24"),),
        remoteNattPort=args.natt_port,
    )
    latencies: list[float] = []
    failures: list[str] = []
    state = {"started": 0, "finished": 0}

    def startOne() -> None:
        if state["started"] >= args.count:
            return
        state["started"] += 1
        began = time.perf_counter()
        d = endpoint.initiate(spec, (HUB_HOST, args.port), protocol.plainPath)

        def done(result):
            if isinstance(result, Exception) or hasattr(result, "getErrorMessage"):
                failures.append(str(getattr(result, "value", result)))
            else:
                latencies.append(time.perf_counter() - began)
                if result.children:
                    for child in result.children:
                        sad.remove(child)
                endpoint.removeSa(result, "benchmark done")
            state["finished"] += 1
            if state["finished"] >= args.count:
                reactor.stop()
            else:
                startOne()

        d.addBoth(done)

    began = time.perf_counter()
    for _ in range(min(args.window, args.count)):
        startOne()
    reactor.run()
    elapsed = time.perf_counter() - began
    json.dump(
        {
            "latencies": latencies,
            "failures": failures[:5],
            "failed": len(failures),
            "elapsed": elapsed,
        },
        sys.stdout,
    )


def runInMemory(args) -> None:
    """
    The responder's CPU per exchange without sockets, reactor or log files: the in-memory
    harness of the tests (C{tests/ikepump.py}), timing only the hub's C{datagramReceived} in
    thread CPU time, so that other processes on the machine disturb it least. For attributing
    the handshake's own cost; the socket benchmark is the one that counts.
    """
    import gc
    import ipaddress

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ikehub.crypto.proposals import parseProposal
    from ikehub.policy.pool import AddressPool
    from ikehub.wire.constants import ExchangeType, ProtocolId
    from ikehub.wire.identity import Identity
    from tests.ikepump import HUB, Pair, clientSpec, hubSettings, padWith

    ike, esp, auth = SCENARIOS[args.scenario]
    if auth != "psk":
        raise SystemExit(f"--in-memory covers the pre-shared-key scenario only, not {auth}")
    ikeProposals = (parseProposal(ike, ProtocolId.IKE),)
    espProposals = (parseProposal(esp, ProtocolId.ESP),)
    pool = AddressPool.fromString("bench", "10.0.0.0/16", (ipaddress.ip_address("192.0.2.53"),))
    pair = Pair(
        settings=hubSettings(
            ikeProposals=ikeProposals,
            espProposals=espProposals,
            cookieThreshold=10**9,
            cookieThresholdPerSource=10**9,
            blockThreshold=10**9 + 1,
        ),
        pad=padWith(pool),
        pool=pool,
        clientSettings=hubSettings(
            identity=Identity.fromString("alice@example.com"),
            ikeProposals=ikeProposals,
            espProposals=espProposals,
        ),
    )
    spec = clientSpec(ikeProposals=ikeProposals, espProposals=espProposals)
    spent = {ExchangeType.IKE_SA_INIT: 0.0, ExchangeType.IKE_AUTH: 0.0}
    receive = pair.hub.datagramReceived
    clock = time.thread_time

    def timed(data, peer, path):
        began = clock()
        receive(data, peer, path)
        if data[18] in spent:
            spent[data[18]] += clock() - began

    pair.net.endpoints[HUB] = type("TimedHub", (), {"datagramReceived": staticmethod(timed)})
    for _ in range(50):  # warm-up: imports and first-time caches
        pair.connect(spec)
    for exchange in spent:
        spent[exchange] = 0.0
    gc.collect()
    for _ in range(args.sas):
        results, failures = pair.connect(spec)
        if failures:
            raise SystemExit(f"handshake failed: {failures[0]}")
        sa = results[0]
        for child in sa.children:
            pair.clientSad.remove(child)
        pair.client.removeSa(sa, "benchmark done")
        pair.net.log.clear()
    init, auth = (spent[e] / args.sas * 1e6 for e in spent)
    print(f"scenario                  {args.scenario} ({ike} / ESP {esp}), in memory")
    print(
        f"responder CPU per SA      {init + auth:,.0f} us = "
        f"IKE_SA_INIT {init:,.0f} + IKE_AUTH {auth:,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--sas", type=int, default=3000, help="IKE SAs to set up in total")
    parser.add_argument("--initiators", type=int, default=1, help="initiator processes")
    parser.add_argument("--window", type=int, default=64, help="handshakes in flight per initiator")
    parser.add_argument("--scenario", default="psk-x25519-gcm", choices=sorted(SCENARIOS))
    parser.add_argument("--profile-hub", metavar="FILE", help="save a cProfile of the hub to FILE")
    parser.add_argument(
        "--callgrind",
        nargs="?",
        const="-",
        metavar="FILE",
        help="run the hub under valgrind's callgrind and print instructions per SA (repeatable "
        "on a busy machine); with FILE, keep the profile there for callgrind_annotate",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=100,
        help="with --callgrind, handshakes before the counters are zeroed",
    )
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="time the responder per exchange in memory (no sockets, reactor or log file)",
    )
    parser.add_argument("--role", default="driver", choices=["driver", "initiator"])
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--natt-port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--credentials", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "initiator":
        return runInitiator(args)
    if args.in_memory:
        return runInMemory(args)

    ike, esp, auth = SCENARIOS[args.scenario]
    port, nattPort = freePort(), freePort()
    repo = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(repo))
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "hub.toml"
        config.write_text(
            HUB_CONFIG.format(
                host=HUB_HOST,
                port=port,
                nattPort=nattPort,
                ike=ike,
                esp=esp,
                auth=auth,
                psk=f'psk = "{PSK}"\n' if auth == "psk" else "",
                credentials=writeCredentials(Path(tmp), auth),
            )
        )
        hub = subprocess.Popen(
            (
                [
                    "valgrind",
                    "--tool=callgrind",
                    "--quiet",
                    f"--callgrind-out-file={tmp}/callgrind.out",
                ]
                if args.callgrind
                else []
            )
            + [
                sys.executable,
                "-c",
                TWISTD,
                "-n",
                "--pidfile=",
                "--logfile",
                str(Path(tmp) / "hub.log"),
            ]
            + (
                ["--profile", args.profile_hub, "--profiler", "cprofile", "--savestats"]
                if args.profile_hub
                else []
            )
            + ["ikehub", "--config", str(config)],
            env=env,
        )

        started: list[subprocess.Popen] = []

        def initiator(count: int) -> subprocess.Popen:
            started.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--role",
                        "initiator",
                        "--scenario",
                        args.scenario,
                        "--count",
                        str(count),
                        "--window",
                        str(args.window),
                        "--port",
                        str(port),
                        "--natt-port",
                        str(nattPort),
                        "--credentials",
                        tmp,
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            return started[-1]

        try:
            waitForPort(nattPort, timeout=120.0 if args.callgrind else 15.0)
            if args.callgrind:
                # First handshakes pay for imports and first-time caches; keep them out.
                initiator(args.warmup).communicate(timeout=600)
                callgrindControl("--zero", hub.pid)
            cpuBefore = cpuSeconds(hub.pid)
            wallBefore = time.perf_counter()
            share = args.sas // args.initiators
            initiators = [initiator(share) for _ in range(args.initiators)]
            results = [json.loads(p.communicate(timeout=600)[0]) for p in initiators]
            wall = time.perf_counter() - wallBefore
            cpuAfter = cpuSeconds(hub.pid)
            user, system = cpuAfter[0] - cpuBefore[0], cpuAfter[1] - cpuBefore[1]
            cpu = user + system
            if args.callgrind:
                instructions = callgrindDump(hub.pid, Path(tmp), args.callgrind)
        finally:
            # Initiators still running (the hub died, or this script was interrupted) would
            # otherwise wait for their retransmissions to give up.
            for process in started:
                if process.poll() is None:
                    process.kill()
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(timeout=15)
            except subprocess.TimeoutExpired:
                hub.kill()
    latencies = sorted(x for r in results for x in r["latencies"])
    failed = sum(r["failed"] for r in results)
    done = len(latencies)
    if not done:
        raise SystemExit(f"no IKE SA was established; failures: {[r['failures'] for r in results]}")
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"scenario                  {args.scenario} ({ike} / ESP {esp}, auth {auth})")
    print(
        f"IKE SAs established       {done} ({failed} failed) "
        f"by {args.initiators} initiator process(es)"
    )
    print(
        f"IKE SAs per second        {done / wall:,.0f} "
        "(wall clock, limited by the initiators on this machine)"
    )
    print(
        f"responder CPU per SA      {cpu / done * 1e6:,.0f} us = {user / done * 1e6:,.0f} user + "
        f"{system / done * 1e6:,.0f} system  (=> {done / cpu:,.0f} SAs/s per responder core)"
    )
    print(f"setup latency p50 / p99   {p50:.2f} ms / {p99:.2f} ms")
    if args.callgrind:
        print(
            f"responder instructions    {instructions / done / 1e6:.3f} M per SA "
            "(callgrind, warm-up excluded; the CPU figures above are inflated by valgrind)"
        )
        if args.callgrind != "-":
            print(f"callgrind profile         {args.callgrind}")


if __name__ == "__main__":
    main()
