"""
ESP codec benchmark: seal then open, in process, on one core.

Each case seals a tunnel-mode payload with L{ikehub.esp.packet.EspEncryptor} and opens
it with L{ikehub.esp.packet.EspDecryptor} (anti-replay window included), for at least
--seconds of wall-clock time. The figures are what one core can push through the
codec alone; the socket and TUN costs of the real datapath come on top (see DESIGN.md's
budget).

Usage: python benchmarks/esp_codec.py [--seconds 0.5] [--rounds 3] [--esn]
Prints, per transform and payload size: packets/s, Gbit/s of payload, and microseconds
for one seal plus one open, from the best of --rounds timed runs (other processes on a
shared machine only ever make a run slower).

Other benchmarks (C{benchmarks/esp.py}) import L{bestRate} and L{suiteNamed} to print the
same figures next to their own.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ikehub.crypto.proposals import ChildSuite
from ikehub.crypto.transforms import encrAlgorithm, integAlgorithm
from ikehub.esp.packet import EspDecryptor, EspEncryptor
from ikehub.wire.constants import EncrId, IntegId

SIZES = (64, 512, 1400)
TRANSFORMS = (
    ("aes128gcm16", encrAlgorithm(EncrId.AES_GCM_16, 128), None),
    ("aes256gcm16", encrAlgorithm(EncrId.AES_GCM_16, 256), None),
    ("chacha20poly1305", encrAlgorithm(EncrId.CHACHA20_POLY1305), None),
    (
        "aes256-sha256",
        encrAlgorithm(EncrId.AES_CBC, 256),
        integAlgorithm(IntegId.HMAC_SHA2_256_128),
    ),
)
#: Packets per timing round; the clock is read between rounds only.
BATCH = 2000


def runCase(suite: ChildSuite, size: int, seconds: float) -> tuple[int, float]:
    """Seal and open C{size}-byte payloads for at least C{seconds}; (packets, elapsed)."""
    encrKey = os.urandom(suite.encr.keyBytes)
    integKey = os.urandom(suite.integ.keyLength) if suite.integ else b""
    spi = os.urandom(4)
    seal = EspEncryptor(suite, spi, encrKey, integKey).seal
    open_ = EspDecryptor(suite, spi, encrKey, integKey).open
    payload = os.urandom(size)
    sent = 0
    start = time.perf_counter()
    while True:
        for seq in range(sent + 1, sent + 1 + BATCH):
            open_(seal(seq, payload, 4))
        sent += BATCH
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return sent, elapsed


def suiteNamed(name: str, esn: bool = False) -> ChildSuite:
    """The L{ChildSuite} of the transform called C{name} in L{TRANSFORMS}."""
    for candidate, encr, integ in TRANSFORMS:
        if candidate == name:
            return ChildSuite(encr, integ, esn, None)
    raise ValueError(f"unknown transform {name!r}; one of {[t[0] for t in TRANSFORMS]}")


def bestRate(suite: ChildSuite, size: int, seconds: float, rounds: int) -> float:
    """
    Seal+open packets per second for C{size}-byte payloads: the best of C{rounds} runs of
    L{runCase}.
    """
    return max(
        packets / elapsed
        for packets, elapsed in (runCase(suite, size, seconds) for _ in range(rounds))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--esn", action="store_true", help="negotiate ESN")
    args = parser.parse_args()
    print(f"ESP seal+open, one core, {'ESN' if args.esn else 'no ESN'}")
    print(f"{'transform':<18} {'payload':>7} {'packets/s':>11} {'Gbit/s':>7} {'us/pkt':>7}")
    for name, _, _ in TRANSFORMS:
        suite = suiteNamed(name, args.esn)
        for size in SIZES:
            rate = bestRate(suite, size, args.seconds, args.rounds)
            print(
                f"{name:<18} {size:>7} {rate:>11,.0f} {rate * size * 8 / 1e9:>7.2f} "
                f"{1e6 / rate:>7.2f}"
            )


if __name__ == "__main__":
    main()
