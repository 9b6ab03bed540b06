"""
IKE fragmentation (RFC 7383) with real strongSwan 5.9.8 clients in network namespaces.

  - A client with an RSA-4096 certificate and a small C{charon.fragment_size} sends its
    IKE_AUTH in eight or more SKF fragments; the hub reassembles it, the SA is established and
    a ping crosses the tunnel. Meanwhile a sniffer in the client's namespace reads the IKE SA's
    SPIs from the hub's IKE_SA_INIT response and injects forged fragments of the IKE_AUTH
    request (right SPIs and message ID, garbage content): the hub drops and counts each one and
    the exchange still succeeds.
  - A hub whose certificate chain (end entity and intermediate CA, RSA-4096) makes its
    IKE_AUTH response larger than its C{fragment_size}: it is sent in fragments, which the
    client reassembles.
  - Windows' case: a client with C{charon.fragment_size = 626} whose IKE_AUTH request (an
    RSA-4096 certificate with four RSA-4096 intermediate CAs, a CERTREQ naming 86 CAs: about
    9.7 KB) goes out in more than 16 fragments; the hub, trusting only the root, reassembles
    it, builds the path through the intermediates it received, and the SA carries a ping.
"""

import datetime
import ipaddress
import os
import re
import socket
import struct
import threading

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.harness.netns import insideNamespace
from tests.realclient import (
    LAN_HOST,
    POOL,
    StrongSwanPki,
    certificateFiles,
    onlyIkeSa,
    roadWarriorClient,
    roadWarriorHub,
    waitFor,
)

HUB_ADDRESS = "192.0.2.1"
IKE_SA_INIT, IKE_AUTH = 34, 35
SKF = 53
_IKE_HEADER = struct.Struct("!8s8sBBBBII")

CLIENT_CONFIG = roadWarriorClient(
    {"local": "auth = pubkey\ncerts = client.pem\nid = alice@example.com"},
    proposals="aes256gcm16-prfsha256-ecp256",
).replace("        vips = 0.0.0.0\n", "        vips = 0.0.0.0\n        fragmentation = yes\n")


def hubConfig(fragmentSize: int = 1280) -> str:
    return roadWarriorHub(
        'name = "certificates"\nidentity = "*@example.com"\nauth = "pubkey"',
        hub=(
            'certificate = "hub.pem"\nprivate_key = "hub.key"\nca = "ca.pem"\n'
            f"fragmentation = true\nfragment_size = {fragmentSize}"
        ),
    )


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("frag")


class IkeSniffer:
    """
    An AF_PACKET socket in the client's namespace, read by a thread: it notes every IKE
    datagram on the wire (UDP 500 and 4500, non-ESP marker stripped) and, when it sees the
    hub's IKE_SA_INIT response, and again when it sees the client's first IKE_AUTH fragment,
    sends C{forge(spiI, spiR)} datagrams to the hub's NAT-T port at once: before the client's
    IKE_AUTH fragments, and among them (or, if the hub is quicker, just after them).
    """

    def __init__(self, ns: str, forge) -> None:
        self.forge = forge
        self.seen: list[tuple[str, str, bytes]] = []
        self.injected: list[bytes] = []
        self.triggered: set[str] = set()
        self._stop = threading.Event()
        with insideNamespace(ns):
            # ETH_P_ALL: a socket for one protocol is not shown outgoing frames.
            self._raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._raw.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *excInfo) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._raw.close()
        self._udp.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._raw.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            ike = self._ike(frame[14:]) if frame[12:14] == b"\x08\x00" else None
            if ike is None:
                continue
            self.seen.append(ike)
            source, destination, message = ike
            if message in self.injected:
                continue
            if source == HUB_ADDRESS and message[18] == IKE_SA_INIT and message[19] & 0x20:
                event = "init"
            elif source != HUB_ADDRESS and message[18] == IKE_AUTH and message[16] == SKF:
                event = "auth"
            else:
                continue
            if event in self.triggered:
                continue
            self.triggered.add(event)
            for datagram in self.forge(message[0:8], message[8:16]):
                self._udp.sendto(b"\x00\x00\x00\x00" + datagram, (HUB_ADDRESS, 4500))
                self.injected.append(datagram)

    @staticmethod
    def _ike(packet: bytes):
        if len(packet) < 28 or packet[9] != 17:
            return None
        headerLength = (packet[0] & 0x0F) * 4
        source = socket.inet_ntoa(packet[12:16])
        destination = socket.inet_ntoa(packet[16:20])
        sport, dport = struct.unpack_from("!HH", packet, headerLength)
        payload = packet[headerLength + 8 :]
        if 4500 in (sport, dport):
            if payload[:4] != b"\x00\x00\x00\x00":
                return None  # ESP or a keepalive
            payload = payload[4:]
        elif 500 not in (sport, dport):
            return None
        if len(payload) < 28:
            return None
        return source, destination, payload

    def authFragments(self, source: str) -> list[bytes]:
        """The IKE_AUTH SKF datagrams C{source} sent (not counting what we injected)."""
        return [
            message
            for sender, _, message in self.seen
            if sender == source
            and message[18] == IKE_AUTH
            and message[16] == SKF
            and message not in self.injected
        ]


def forgedFragments(spiI: bytes, spiR: bytes) -> list[bytes]:
    """
    Three IKE_AUTH request fragments of the new IKE SA (message ID 1), each claiming to be
    fragment 1 of 60 with random content where the IV, ciphertext and tag would be.

    Fragment 1 of a total larger than the client's is verified (and fails) whenever it
    arrives: before the genuine fragments, among them (a larger total must be verified
    before it may restart the reassembly), or after the request was answered (RFC 7383
    section 2.6.1: fragment 1 of an answered request is verified before we resend). So each
    one shows as exactly one fragment_integrity drop, however the race goes.
    """
    forged = []
    for _ in range(3):
        body = os.urandom(300)
        length = 28 + 4 + 4 + len(body)
        header = _IKE_HEADER.pack(spiI, spiR, SKF, 0x20, IKE_AUTH, 0x08, 1, length)
        forged.append(header + struct.pack("!BBHHH", IKE_AUTH, 0, 8 + len(body), 1, 60) + body)
    return forged


def test_fragmentedIkeAuthFromRsa4096ClientWithForgedFragments(workdir):
    """
    strongSwan with an RSA-4096 certificate and charon.fragment_size = 340 sends its IKE_AUTH
    in 8 or more fragments; forged fragments injected with the SA's SPIs (three before the
    client's IKE_AUTH, three as its first fragment passes) are dropped and counted by the hub
    (fragment_integrity); the hub reassembles the genuine ones, the SA is
    established and a ping crosses the tunnel.
    """
    requireRealClients()
    pki = StrongSwanPki(workdir / "hub", "rsa", size=4096)
    pki.issue("hub", "hub.example.com", "--flag", "serverAuth")
    cert, key = pki.issue("alice", "alice@example.com", "--flag", "clientAuth")
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            CLIENT_CONFIG,
            files=certificateFiles(pki, cert, key),
            extraCharonConf="    fragment_size = 340\n",
        ) as client,
        IkeSniffer(net.clientNs[0], forgedFragments) as sniffer,
    ):
        assert client.initiate("home").returncode == 0, client.log() + hub.log()
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED", sa
        [vip] = sa["local-vips"]
        assert ipaddress.ip_address(vip) in POOL
        assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=vip), client.log()

        # A retransmission (on a loaded machine) repeats the same bytes: count each once.
        sent = list(dict.fromkeys(sniffer.authFragments(net.clientAddresses[0])))
        assert len(sent) >= 8, len(sent)
        assert all(len(d) + 4 + 8 + 20 <= 340 for d in sent)
        assert sniffer.triggered == {"init", "auth"} and len(sniffer.injected) == 6
        log = hub.log()
        match = re.search(
            r"Reassembled IKE_AUTH request 1 from \S+ from (\d+) fragments "
            r"\((\d) forged or corrupt fragments dropped\)",
            log,
        )
        assert match, log
        assert int(match.group(1)) == len(sent)
        # Each forged fragment failed verification and was counted (and logged as a drop);
        # those that arrived during the reassembly are also in its line.
        assert waitFor(lambda: hub.log().count(": fragment_integrity") == 6), hub.log()
        assert 0 <= int(match.group(2)) <= 3
        clientLog = client.log()
        assert re.search(r"splitting IKE message .* into \d+ fragments", clientLog), clientLog


def test_hubsLargeChainIsSentInFragments(workdir):
    """
    The hub's certificate chain (hub certificate and an intermediate CA, RSA-4096) makes its
    IKE_AUTH response larger than fragment_size = 576: the hub sends it in SKF fragments, the
    client reassembles them, verifies the chain and establishes.
    """
    requireRealClients()
    pki = StrongSwanPki(workdir / "hub", "rsa", size=4096)
    intermediate = pki.issue("intermediate", "intermediate.example.com", "--ca")
    hubCert, hubKey = pki.issue(
        "hub", "hub.example.com", "--flag", "serverAuth", issuer=intermediate
    )
    # hub.pem is the chain the hub sends: its certificate, then the intermediate.
    hubCert.write_bytes(hubCert.read_bytes() + intermediate[0].read_bytes())
    cert, key = pki.issue("alice", "alice@example.com", "--flag", "clientAuth")
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig(576)) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            CLIENT_CONFIG,
            files=certificateFiles(pki, cert, key),
            logLevels={"enc": 2, "net": 2},
        ) as client,
        IkeSniffer(net.clientNs[0], lambda spiI, spiR: []) as sniffer,
    ):
        assert client.initiate("home").returncode == 0, client.log() + hub.log()
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED", sa
        assert sa["remote-id"] == "hub.example.com"
        [vip] = sa["local-vips"]
        assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=vip), client.log()

        sent = list(dict.fromkeys(sniffer.authFragments(HUB_ADDRESS)))
        assert len(sent) >= 8 and all(len(d) + 4 + 8 + 20 <= 576 for d in sent), len(sent)
        match = re.search(r"Sending IKE_AUTH response to \S+ in (\d+) fragments", hub.log())
        assert match and int(match.group(1)) == len(sent), hub.log()
        clientLog = client.log()
        # charon's threads may take the fragments in any order; one of them completes it.
        assert re.search(
            rf"received fragment #\d+ of {len(sent)}, reassembled fragmented IKE message",
            clientLog,
        ), clientLog
        # The client checked the chain through the intermediate the hub sent.
        assert "authentication of 'hub.example.com' with RSA" in clientLog, clientLog


#: The largest datagram (IP header included) Windows sends IKE in: its IKE_AUTH request goes
#: out in fragments of this size, and with a certificate chain in more than 16 of them.
WINDOWS_FRAGMENT_SIZE = 626
_PACKET = re.compile(r"sending packet: from \S+ to \S+ \((\d+) bytes\)")
_SPLIT = re.compile(r"splitting IKE message \((\d+) bytes\) into (\d+) fragments")


def unrelatedRoots(count: int) -> dict[str, bytes]:
    """
    C{count} self-signed ECDSA root CAs for the client's x509ca, as a machine's trust store
    holds dozens of roots it never needs here. strongSwan names every CA it trusts in the
    CERTREQ of its IKE_AUTH request (20 octets each), as Windows does with its roots.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    roots = {}
    for i in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "unrelated roots"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Unrelated Root CA {i}"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        roots[f"x509ca/unrelated{i}.pem"] = cert.public_bytes(serialization.Encoding.PEM)
    return roots


def test_windowsSizedIkeAuthInMoreThanSixteenFragments(workdir):
    """
    Windows sends its IKE_AUTH request in 626-byte datagrams, and with a certificate chain in
    more than 16 of them. A strongSwan client with C{charon.fragment_size = 626} does the
    same: its RSA-4096 certificate comes with four RSA-4096 intermediate CAs (which it sends
    as CERT payloads because it finds them in x509/ on the way to the self-signed root), and
    its CERTREQ names 80 further roots it trusts. The hub, which trusts only the root,
    reassembles the request from more than 16 fragments, builds the path through the
    intermediates it received, and the SA carries a ping.
    """
    requireRealClients()
    clientPki = StrongSwanPki(
        workdir / "clientpki", "rsa", size=4096, caName="ikehub test client root CA"
    )
    intermediates = [f"intermediate{i}" for i in range(1, 5)]
    clientPki.generateKeys(*intermediates, "alice")
    issuer = None
    files = {}
    for name in intermediates:
        issuer = clientPki.issue(name, f"{name}.example.com", "--ca", issuer=issuer)
        files[f"x509/{name}.pem"] = issuer[0].read_bytes()
    cert, key = clientPki.issue("alice", "alice@example.com", "--flag", "clientAuth", issuer=issuer)
    hubPki = StrongSwanPki(workdir / "hub", "ecdsa", caName="ikehub test hub CA")
    hubPki.issue("hub", "hub.example.com", "--flag", "serverAuth")
    # The hub trusts the clients' root and nothing else: the intermediates must come from
    # the client's CERT payloads.
    (workdir / "hub" / "clients-root.pem").write_bytes(clientPki.caCert.read_bytes())
    files.update(
        {
            "x509ca/hub-ca.pem": hubPki.caCert.read_bytes(),
            "x509ca/clients-root.pem": clientPki.caCert.read_bytes(),
            "x509/client.pem": cert.read_bytes(),
            "private/client.key": key.read_bytes(),
            **unrelatedRoots(80),
        }
    )
    config = roadWarriorHub(
        'name = "certificates"\nidentity = "*@example.com"\nauth = "pubkey"',
        hub=(
            'certificate = "hub.pem"\nprivate_key = "hub.key"\nca = "clients-root.pem"\n'
            "fragmentation = true"
        ),
    )
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            CLIENT_CONFIG,
            files=files,
            extraCharonConf=f"    fragment_size = {WINDOWS_FRAGMENT_SIZE}\n",
        ) as client,
        IkeSniffer(net.clientNs[0], lambda spiI, spiR: []) as sniffer,
    ):
        assert client.initiate("home").returncode == 0, client.log() + hub.log()
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED", sa
        [vip] = sa["local-vips"]
        assert ipaddress.ip_address(vip) in POOL
        assert net.ping(net.clientNs[0], LAN_HOST, count=3, source=vip), client.log()

        clientLog = client.log()
        # strongSwan sent the whole chain below the root, nearest first.
        assert "sending end entity cert" in clientLog, clientLog
        sentIssuers = re.findall(r'sending issuer cert "[^"]*CN=(\S+)"', clientLog)
        assert sentIssuers == [f"{n}.example.com" for n in reversed(intermediates)], clientLog
        # Its CERTREQ names every CA it holds: the 80 unrelated roots, the hub's CA, the
        # clients' root and the four intermediates.
        assert clientLog.count("sending cert request for") == 86, clientLog
        [(size, count)] = [(int(s), int(c)) for s, c in _SPLIT.findall(clientLog)]
        assert count > 16 and size > 9000, (size, count)
        # Every IKE datagram the client sent fits in 626 bytes with its IP and UDP headers
        # and, on port 4500, the non-ESP marker (charon logs the IKE message's size).
        sizes = [int(s) for s in _PACKET.findall(clientLog)]
        assert len(sizes) >= count + 1, clientLog
        assert max(sizes) + 20 + 8 + 4 <= WINDOWS_FRAGMENT_SIZE, sizes

        # On the wire: the fragments the hub got are the ones the client logged.
        sent = list(dict.fromkeys(sniffer.authFragments(net.clientAddresses[0])))
        assert len(sent) == count, len(sent)
        assert all(len(d) + 20 + 8 + 4 <= WINDOWS_FRAGMENT_SIZE for d in sent)
        log = hub.log()
        match = re.search(
            r"Reassembled IKE_AUTH request 1 from (\S+) from (\d+) fragments "
            r"\(0 forged or corrupt fragments dropped\)",
            log,
        )
        assert match and int(match.group(2)) == count, log
        assert match.group(1) == f"{net.clientAddresses[0]}:4500", log
        assert "(alice@example.com) established" in log, log
