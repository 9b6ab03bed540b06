"""
Record the strongSwan oracle fixtures in tests/data/ from real strongSwan 5.9.8 runs in
throw-away network namespaces.  Run once, as root, and commit what it writes:

    python tests/tools/make_fixtures.py [--out tests/data]

Every run draws new SPIs, nonces and DH keys, so the outputs change each time; tests must read
the values from the files, never repeat them.  The keys come from a throw-away run and protect
nothing.

strongswan_ike_sa_init_request.bin
    The first IKE_SA_INIT request a stock strongSwan client (proposals
    C{aes256gcm16-prfsha256-x25519, aes256-sha256-modp2048}, PSK) sends to 192.0.2.1:500, as a
    plain UDP socket in the hub namespace received it: the IKE header onward, no UDP header, no
    non-ESP marker.

strongswan_ike_sa_init_response.bin
    A stock strongSwan responder's answer to exactly that request (replayed to it from
    192.0.2.11:500), so the two files form one exchange.

strongswan_keys.json
    Key-derivation oracles from two strongSwan-to-strongSwan exchanges, read from both peers'
    level-4 logs (which must agree) and their IKE_SA_INIT packets.  All byte strings are lower
    case hex; C{""} stands for "not used" (e.g. SK_ai with an AEAD cipher)::

        {
          "comment": "...", "generator": "tests/tools/make_fixtures.py",
          "strongswan": "5.9.8",
          "exchanges": [{
            "name": "aes256gcm16-prfsha384-x25519 / esp aes256gcm16",
            "ikeProposal": "aes256gcm16-prfsha384-x25519", "espProposal": "aes256gcm16",
            "ike": {"encr": {"id": 20, "name": "AES_GCM_16", "keyLength": 256},
                    "prf": {"id": 6, "name": "PRF_HMAC_SHA2_384"},
                    "integ": null,                 # or {"id": 12, "name": "HMAC_SHA2_256_128"}
                    "ke": {"id": 31, "name": "CURVE_25519"}},
            "spiI": "<8 bytes>", "spiR": "<8 bytes>",   # IKE SPIs
            "ni": "...", "nr": "...",                   # Nonce payload data
            "keI": "...", "keR": "...",                 # KE payload data after group, reserved
            "sharedSecret": "...",                      # g^ir
            "skeyseed": "...", "skD": "...", "skAi": "...", "skAr": "...",
            "skEi": "...", "skEr": "...", "skPi": "...", "skPr": "...",
            "child": {                                  # the CHILD SA made in IKE_AUTH (no PFS)
              "encr": {"id": 20, "name": "AES_GCM_16", "keyLength": 256}, "integ": null,
              "esn": false,
              "spiI": "<4 bytes>",                      # chosen by the initiator (inbound there)
              "spiR": "<4 bytes>",                      # chosen by the responder
              "encrItoR": "...", "integItoR": "...",    # KEYMAT in RFC 7296 2.17 order
              "encrRtoI": "...", "integRtoI": "..."},
            "auth": {"method": "psk", "psk": "<text>",
                     "idI": "...", "idR": "...",        # ID payload bodies (type, 3 reserved, data)
                     "signedOctetsI": "...", "signedOctetsR": "...",  # RFC 7296 2.15
                     "authI": "...", "authR": "..."},   # AUTH payload data (after method, reserved)
            "ikeSaInitRequest": "...", "ikeSaInitResponse": "..."   # whole messages
          }, ...]
        }

    Key lengths are in bits, as in the Key Length transform attribute.  For AES-GCM the
    encryption keys (SK_e*, KEYMAT encr) carry the 4-byte salt after the key (RFC 5282, RFC
    4106), so a 256-bit key is 36 bytes.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from cryptography.hazmat.primitives import hashes, hmac  # noqa: E402

from ikehub.wire.constants import (  # noqa: E402
    EncrId,
    ExchangeType,
    IntegId,
    KeGroup,
    PayloadType,
    PrfId,
    TransformAttributeType,
    TransformType,
)
from tests.harness import StrongSwan, Topology, missingRequirements  # noqa: E402
from tests.harness.hub import boundUdpPorts  # noqa: E402
from tests.harness.netns import HarnessError, netnsExec, runCommand  # noqa: E402
from tests.harness.strongswan import KEY_LOG_LEVELS, logBlobs, parseKeyLog  # noqa: E402

PSK = "throw-away-fixture-psk"
CAPTURE_PROPOSALS = "aes256gcm16-prfsha256-x25519, aes256-sha256-modp2048"
EXCHANGES = (
    ("aes256gcm16-prfsha384-x25519", "aes256gcm16"),
    ("aes256-sha256-modp2048", "aes128-sha256"),
)

SECRETS = f"""
ike-fixture {{
    id-1 = hub.example
    id-2 = client1.example
    secret = "{PSK}"
}}
"""


def responderConf(proposals: str, espProposals: str) -> str:
    # The client takes a virtual IP: libipsec refuses a CHILD SA whose remote traffic selector
    # covers the peer's own IKE address (kernel-libipsec.allow_peer_ts = no).
    return f"""
connections {{
    rw {{
        local_addrs = 192.0.2.1
        pools = rwpool
        proposals = {proposals}
        local {{
            auth = psk
            id = hub.example
        }}
        remote {{
            auth = psk
            id = client1.example
        }}
        children {{
            lan {{
                local_ts = 203.0.113.0/24
                esp_proposals = {espProposals}
            }}
        }}
    }}
}}
pools {{
    rwpool {{
        addrs = 198.51.100.0/24
    }}
}}
"""


def clientConf(proposals: str, espProposals: str) -> str:
    return f"""
connections {{
    home {{
        remote_addrs = 192.0.2.1
        vips = 0.0.0.0
        proposals = {proposals}
        local {{
            auth = psk
            id = client1.example
        }}
        remote {{
            auth = psk
            id = hub.example
        }}
        children {{
            home {{
                remote_ts = 203.0.113.0/24
                esp_proposals = {espProposals}
            }}
        }}
    }}
}}
"""


# -- a minimal IKE_SA_INIT reader, to check captures and pick out nonces, KE data, transforms ---


def ikePayloads(message: bytes) -> dict[str, Any]:
    """Header fields and the unencrypted payloads of an IKE message (RFC 7296 3.1, 3.2)."""
    if len(message) < 28:
        raise ValueError("shorter than an IKE header")
    spiI, spiR, nextPayload, version, exchange, flags, messageId, length = struct.unpack(
        "!8s8sBBBBII", message[:28]
    )
    if length != len(message) or version != 0x20:
        raise ValueError(f"not an IKEv2 message (length {length}, version {version:#x})")
    payloads: list[tuple[int, bytes]] = []
    offset = 28
    while nextPayload != PayloadType.NONE:
        following, _critical, payloadLength = struct.unpack("!BBH", message[offset : offset + 4])
        if payloadLength < 4 or offset + payloadLength > len(message):
            raise ValueError("payload runs past the message")
        payloads.append((nextPayload, message[offset + 4 : offset + payloadLength]))
        offset += payloadLength
        nextPayload = following
    return {
        "spiI": spiI,
        "spiR": spiR,
        "exchange": exchange,
        "flags": flags,
        "messageId": messageId,
        "payloads": payloads,
    }


def onlyPayload(parsed: dict[str, Any], kind: PayloadType) -> bytes:
    [body] = [body for payloadType, body in parsed["payloads"] if payloadType == kind]
    return body


def chosenTransforms(saBody: bytes) -> dict[int, tuple[int, int | None]]:
    """Transform type -> (id, key length) of the single proposal in a responder's SA payload."""
    proposalLength, transformCount = struct.unpack("!2xH3xB", saBody[:8])[0:2]
    spiSize = saBody[6]
    offset = 8 + spiSize
    chosen: dict[int, tuple[int, int | None]] = {}
    for _ in range(transformCount):
        length, transformType, transformId = struct.unpack("!2xHBxH", saBody[offset : offset + 8])
        keyLength = None
        attributes = saBody[offset + 8 : offset + length]
        while len(attributes) >= 4:
            attributeType, value = struct.unpack("!HH", attributes[:4])
            if attributeType == 0x8000 | TransformAttributeType.KEY_LENGTH:
                keyLength = value
            attributes = attributes[4:]
        chosen[transformType] = (transformId, keyLength)
        offset += length
    if offset != proposalLength:
        raise ValueError("proposal length does not match its transforms")
    return chosen


def isIkeSaInit(message: bytes, response: bool) -> bool:
    try:
        parsed = ikePayloads(message)
    except (ValueError, struct.error):
        return False
    return (
        parsed["exchange"] == ExchangeType.IKE_SA_INIT
        and parsed["messageId"] == 0
        and bool(parsed["flags"] & 0x20) == response
    )


# -- strongSwan's algorithm names and IANA's numbers ---------------------------------------------


def transform(kind: type, name: str, keyLength: int | None = None) -> dict[str, Any]:
    """The IANA number for a strongSwan algorithm name, e.g. PRF_HMAC_SHA2_384 -> 6."""
    candidates = [name, name.removeprefix("PRF_"), name.replace("CURVE_", "CURVE")]
    for candidate in candidates:
        if candidate in kind.__members__:
            entry: dict[str, Any] = {"id": int(kind[candidate]), "name": name}
            if keyLength is not None:
                entry["keyLength"] = keyLength
            return entry
    raise SystemExit(f"no {kind.__name__} for strongSwan's {name!r}; extend constants.py")


# -- checking the record against RFC 7296 before it is written ----------------------------------

PRF_HASHES = {
    PrfId.HMAC_SHA1: hashes.SHA1,
    PrfId.HMAC_SHA2_256: hashes.SHA256,
    PrfId.HMAC_SHA2_384: hashes.SHA384,
    PrfId.HMAC_SHA2_512: hashes.SHA512,
}
INTEG_KEY_BYTES = {
    IntegId.HMAC_SHA1_96: 20,
    IntegId.HMAC_SHA2_256_128: 32,
    IntegId.HMAC_SHA2_384_192: 48,
    IntegId.HMAC_SHA2_512_256: 64,
}
#: Ciphers whose keys carry a 4-byte salt (RFC 4106, RFC 5282, RFC 7634).
SALTED = {EncrId.AES_GCM_8, EncrId.AES_GCM_12, EncrId.AES_GCM_16, EncrId.CHACHA20_POLY1305}


def prf(prfId: int, key: bytes, data: bytes) -> bytes:
    mac = hmac.HMAC(key, PRF_HASHES[PrfId(prfId)]())
    mac.update(data)
    return mac.finalize()


def prfPlus(prfId: int, key: bytes, seed: bytes, length: int) -> bytes:
    """RFC 7296 2.13: T1 | T2 | ... with Tn = prf(K, Tn-1 | S | n)."""
    stream, block, counter = b"", b"", 1
    while len(stream) < length:
        block = prf(prfId, key, block + seed + bytes([counter]))
        stream += block
        counter += 1
    return stream[:length]


def keyBytes(transformEntry: dict[str, Any] | None, integ: bool = False) -> int:
    if transformEntry is None:
        return 0
    if integ:
        return INTEG_KEY_BYTES[IntegId(transformEntry["id"])]
    salt = 4 if transformEntry["id"] in SALTED else 0
    return transformEntry["keyLength"] // 8 + salt


def verifyExchange(exchange: dict[str, Any]) -> None:
    """
    Recompute SKEYSEED, SK_*, KEYMAT and both PSK AUTH values (RFC 7296 2.13-2.17, 2.15)
    from the recorded inputs with C{cryptography}'s HMAC, so that a field filed under the
    wrong name (initiator for responder, a nonce from the wrong packet) is never written.
    """
    x = {
        k: bytes.fromhex(v)
        for k, v in exchange.items()
        if isinstance(v, str) and k not in ("name", "ikeProposal", "espProposal", "strongswan")
    }
    ike, child, auth = exchange["ike"], exchange["child"], exchange["auth"]
    prfId = ike["prf"]["id"]
    nonces = x["ni"] + x["nr"]

    def check(name: str, expected: bytes, actual: bytes) -> None:
        if expected != actual:
            raise HarnessError(f"{exchange['name']}: recorded {name} does not follow RFC 7296")

    skeyseed = prf(prfId, nonces, x["sharedSecret"])
    check("SKEYSEED", skeyseed, x["skeyseed"])
    prfBytes = len(skeyseed)
    sizes = [
        ("skD", prfBytes),
        ("skAi", keyBytes(ike["integ"], True)),
        ("skAr", keyBytes(ike["integ"], True)),
        ("skEi", keyBytes(ike["encr"])),
        ("skEr", keyBytes(ike["encr"])),
        ("skPi", prfBytes),
        ("skPr", prfBytes),
    ]
    stream = prfPlus(
        prfId, skeyseed, nonces + x["spiI"] + x["spiR"], sum(size for _, size in sizes)
    )
    for name, size in sizes:
        check(name, stream[:size], x[name])
        stream = stream[size:]
    encrSize, integSize = keyBytes(child["encr"]), keyBytes(child["integ"], True)
    keymat = prfPlus(prfId, x["skD"], nonces, 2 * (encrSize + integSize))
    for name, size in (
        ("encrItoR", encrSize),
        ("integItoR", integSize),
        ("encrRtoI", encrSize),
        ("integRtoI", integSize),
    ):
        check(f"KEYMAT {name}", keymat[:size], bytes.fromhex(child[name]))
        keymat = keymat[size:]
    request, response = x["ikeSaInitRequest"], x["ikeSaInitResponse"]
    psk = auth["psk"].encode()
    for side, message, nonce, skP in (
        ("I", request, x["nr"], x["skPi"]),
        ("R", response, x["ni"], x["skPr"]),
    ):
        octets = message + nonce + prf(prfId, skP, bytes.fromhex(auth[f"id{side}"]))
        check(f"signedOctets{side}", octets, bytes.fromhex(auth[f"signedOctets{side}"]))
        expected = prf(prfId, prf(prfId, psk, b"Key Pad for IKEv2"), octets)
        check(f"auth{side}", expected, bytes.fromhex(auth[f"auth{side}"]))


# -- the runs -----------------------------------------------------------------------------------

LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(float(sys.argv[4]))
data, peer = s.recvfrom(65535)
open(sys.argv[3], "wb").write(data)
"""

REPLAY = """
import socket, sys
request = open(sys.argv[3], "rb").read()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 500))
s.settimeout(2.0)
for attempt in range(3):
    s.sendto(request, (sys.argv[2], 500))
    try:
        data, peer = s.recvfrom(65535)
    except TimeoutError:
        continue
    open(sys.argv[4], "wb").write(data)
    break
else:
    sys.exit("no answer")
"""


def captureIkeSaInit(work: Path) -> tuple[bytes, bytes]:
    """The stock client's first IKE_SA_INIT request and a stock responder's answer to it."""
    requestPath, responsePath = work / "request.bin", work / "response.bin"
    with Topology(clients=1, lan=False) as net:
        client1 = net.clientNs[0]
        listener = subprocess.Popen(
            netnsExec(
                net.hubNs,
                sys.executable,
                "-c",
                LISTEN,
                net.hubAddress,
                "500",
                str(requestPath),
                "15",
            )
        )
        try:
            deadline = time.monotonic() + 10
            while 500 not in boundUdpPorts(net.hubNs):
                if time.monotonic() > deadline or listener.poll() is not None:
                    raise HarnessError("capture socket did not bind 192.0.2.1:500")
                time.sleep(0.05)
            with StrongSwan(
                client1,
                work / "capture-client",
                clientConf(CAPTURE_PROPOSALS, "aes256gcm16"),
                secrets=SECRETS,
            ) as client:
                client.initiate("home", "home", timeout=1)
                if listener.wait(timeout=15) != 0:
                    raise HarnessError("capture socket received nothing")
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait(timeout=5)
        request = requestPath.read_bytes()
        with StrongSwan(
            net.hubNs,
            work / "capture-responder",
            responderConf(CAPTURE_PROPOSALS, "aes256gcm16"),
            secrets=SECRETS,
            label="hub",
        ):
            runCommand(
                netnsExec(
                    client1,
                    sys.executable,
                    "-c",
                    REPLAY,
                    net.clientAddresses[0],
                    net.hubAddress,
                    str(requestPath),
                    str(responsePath),
                ),
                timeout=15,
            )
        response = responsePath.read_bytes()
    if not isIkeSaInit(request, response=False) or not isIkeSaInit(response, response=True):
        raise HarnessError("captured datagrams are not an IKE_SA_INIT request and response")
    if ikePayloads(request)["spiI"] != ikePayloads(response)["spiI"]:
        raise HarnessError("response answers a different IKE SA")
    return request, response


def firstReceived(log: str, response: bool) -> bytes:
    for group, _sa, label, data in logBlobs(log):
        if group == "NET" and label == "received packet" and isIkeSaInit(data, response):
            return data
    raise HarnessError("no IKE_SA_INIT in the log's packet dumps (net = 4?)")


def blobsLabelled(log: str, label: str) -> list[bytes]:
    return [data for _group, _sa, blobLabel, data in logBlobs(log) if blobLabel == label]


def recordExchange(work: Path, proposals: str, espProposals: str) -> dict[str, Any]:
    """One strongSwan-to-strongSwan exchange, with every secret both sides logged."""
    levels = dict(KEY_LOG_LEVELS, net=4)
    # The LAN gives the responder an address inside its local_ts: charon installs its route to
    # the client with that source address and fails the CHILD SA if it has none.
    with Topology(clients=1, lan=True) as net:
        with (
            StrongSwan(
                net.hubNs,
                work / "responder",
                responderConf(proposals, espProposals),
                secrets=SECRETS,
                label="hub",
                logLevels=levels,
            ) as responder,
            StrongSwan(
                net.clientNs[0],
                work / "initiator",
                clientConf(proposals, espProposals),
                secrets=SECRETS,
                logLevels=levels,
            ) as initiator,
        ):
            result = initiator.initiate("home", "home")
            if result.returncode != 0:
                raise HarnessError(f"exchange {proposals} failed:\n{result.stdout}")
            [ike] = initiator.listSas()
            initiatorLog, responderLog = initiator.log(), responder.log()
            initiator.terminateIke("home")

    [keys] = parseKeyLog(initiatorLog)
    [responderKeys] = parseKeyLog(responderLog)
    for name in ("sharedSecret", "skeyseed", "skD", "skEi", "skEr", "skPi", "skPr"):
        if keys.get(name) != responderKeys.get(name):
            raise HarnessError(f"initiator and responder logged different {name}")
    [child] = keys["children"]
    [responderChild] = responderKeys["children"]
    for name in ("encrI", "encrR", "integI", "integR"):
        if child.get(name) != responderChild.get(name):
            raise HarnessError(f"initiator and responder logged different child {name}")
    if (child["spiIn"], child["spiOut"]) != (responderChild["spiOut"], responderChild["spiIn"]):
        raise HarnessError("CHILD SA SPIs do not pair up")

    request = firstReceived(responderLog, response=False)
    response = firstReceived(initiatorLog, response=True)
    parsedRequest, parsedResponse = ikePayloads(request), ikePayloads(response)
    spiI, spiR = parsedResponse["spiI"], parsedResponse["spiR"]
    if (spiI.hex(), spiR.hex()) != (ike["initiator-spi"], ike["responder-spi"]):
        raise HarnessError("IKE SPIs in the packets differ from swanctl's")

    integName = ike.get("integ-alg")
    ikeAlgorithms = {
        "encr": transform(EncrId, ike["encr-alg"], ike.get("encr-keysize")),
        "prf": transform(PrfId, ike["prf-alg"]),
        "integ": transform(IntegId, integName, ike.get("integ-keysize")) if integName else None,
        "ke": transform(KeGroup, ike["dh-group"]),
    }
    chosen = chosenTransforms(onlyPayload(parsedResponse, PayloadType.SA))
    if (
        chosen.get(TransformType.ENCR)
        != (ikeAlgorithms["encr"]["id"], ikeAlgorithms["encr"].get("keyLength"))
        or chosen[TransformType.PRF][0] != ikeAlgorithms["prf"]["id"]
        or chosen[TransformType.KE][0] != ikeAlgorithms["ke"]["id"]
        or (chosen.get(TransformType.INTEG, (None,))[0] != (ikeAlgorithms["integ"] or {}).get("id"))
    ):
        raise HarnessError(
            f"swanctl's algorithm names map to other numbers than the response's"
            f" SA payload carries: {chosen} vs {ikeAlgorithms}"
        )

    [childSa] = ike["child-sas"]
    childIntegName = childSa.get("integ-alg")
    idPayloads = blobsLabelled(initiatorLog, "IDx'")
    octets = blobsLabelled(initiatorLog, "octets = message + nonce + prf(Sk_px, IDx')")
    auths = blobsLabelled(initiatorLog, "AUTH = prf(prf(secret, keypad), octets)")
    if len(idPayloads) != 2 or len(octets) != 2 or len(auths) != 2:
        raise HarnessError("expected the initiator's and the responder's AUTH in the log")

    def hexOf(value: bytes | None) -> str:
        return value.hex() if value else ""

    return {
        "strongswan": strongSwanVersion(initiatorLog),
        "name": f"{proposals} / esp {espProposals}",
        "ikeProposal": proposals,
        "espProposal": espProposals,
        "ike": ikeAlgorithms,
        "spiI": spiI.hex(),
        "spiR": spiR.hex(),
        "ni": onlyPayload(parsedRequest, PayloadType.NONCE).hex(),
        "nr": onlyPayload(parsedResponse, PayloadType.NONCE).hex(),
        "keI": onlyPayload(parsedRequest, PayloadType.KE)[4:].hex(),
        "keR": onlyPayload(parsedResponse, PayloadType.KE)[4:].hex(),
        **{
            name: hexOf(keys.get(name))
            for name in (
                "sharedSecret",
                "skeyseed",
                "skD",
                "skAi",
                "skAr",
                "skEi",
                "skEr",
                "skPi",
                "skPr",
            )
        },
        "child": {
            "encr": transform(EncrId, childSa["encr-alg"], childSa.get("encr-keysize")),
            "integ": (
                transform(IntegId, childIntegName, childSa.get("integ-keysize"))
                if childIntegName
                else None
            ),
            "esn": childSa.get("esn") == "1",
            "spiI": childSa["spi-in"],
            "spiR": childSa["spi-out"],
            "encrItoR": hexOf(child.get("encrI")),
            "integItoR": hexOf(child.get("integI")),
            "encrRtoI": hexOf(child.get("encrR")),
            "integRtoI": hexOf(child.get("integR")),
        },
        "auth": {
            "method": "psk",
            "psk": PSK,
            "idI": idPayloads[0].hex(),
            "idR": idPayloads[1].hex(),
            "signedOctetsI": octets[0].hex(),
            "signedOctetsR": octets[1].hex(),
            "authI": auths[0].hex(),
            "authR": auths[1].hex(),
        },
        "ikeSaInitRequest": request.hex(),
        "ikeSaInitResponse": response.hex(),
    }


def strongSwanVersion(log: str) -> str:
    """The version charon announces first thing in its log."""
    match = re.search(r"Starting IKE charon daemon \(strongSwan (\S+),", log)
    return match.group(1) if match else "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "tests" / "data")
    options = parser.parse_args(argv)
    missing = missingRequirements()
    if missing:
        raise SystemExit("make_fixtures.py needs: " + "; ".join(missing))
    options.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ikehub-fixtures-") as tmp:
        work = Path(tmp)
        request, response = captureIkeSaInit(work / "capture")
        exchanges = [
            recordExchange(work / f"exchange{i}", proposals, esp)
            for i, (proposals, esp) in enumerate(EXCHANGES)
        ]
    for exchange in exchanges:
        verifyExchange(exchange)
    version = exchanges[0].pop("strongswan")
    for exchange in exchanges[1:]:
        exchange.pop("strongswan")
    (options.out / "strongswan_ike_sa_init_request.bin").write_bytes(request)
    (options.out / "strongswan_ike_sa_init_response.bin").write_bytes(response)
    document = {
        "comment": "Key-derivation oracles from real strongSwan-to-strongSwan exchanges (a "
        "throw-away test run; these keys protect nothing). Format: see the "
        "docstring of tests/tools/make_fixtures.py.",
        "generator": "tests/tools/make_fixtures.py",
        "strongswan": version,
        "exchanges": exchanges,
    }
    (options.out / "strongswan_keys.json").write_text(json.dumps(document, indent=2) + "\n")
    print(
        f"wrote {len(request)}-byte request, {len(response)}-byte response and "
        f"{len(exchanges)} exchanges to {options.out}"
    )


if __name__ == "__main__":
    main()
