"""
What address leases cost per handshake: AddressPool.acquire() + release() with leases kept in
memory only, with the SQLite lease store (batched writes, the way the hub runs it), and, for
comparison, with a commit after every change (what writing on the hot path would cost).

    python benchmarks/leases.py [--ops 20000] [--identities 5000] [--repeats 5]

Every figure is the best of --repeats runs, in microseconds per acquire+release pair. The
batched figure is split into the time the handshake sees (the pool calls) and the time of the
flushes, which the hub runs from a timer once per second: here after every 1000 pairs, about what
a hub setting up 1000 SAs per second does.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from twisted.internet.task import Clock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ikehub.policy.leases import LeaseStore  # noqa: E402
from ikehub.policy.pool import AddressPool  # noqa: E402

PER_FLUSH = 1000


def run(mode: str, ops: int, identities: int, directory: str) -> tuple[float, float, int]:
    """
    One run; returns (seconds in pool calls, seconds in flushes, commits).
    """
    clock = Clock()
    store = None
    if mode != "memory":
        path = os.path.join(directory, f"{mode}-{time.monotonic_ns()}.sqlite")
        store = LeaseStore.open(path, clock, flushInterval=1.0)
    pool = AddressPool.fromString("bench", "10.0.0.0/16", clock=clock, store=store)
    names = [f"user{i}@example.com" for i in range(identities)]
    perf = time.perf_counter
    inPool = inFlush = 0.0
    for start in range(0, ops, PER_FLUSH):
        batch = names_for(names, start, min(PER_FLUSH, ops - start))
        t0 = perf()
        if mode == "commit-each":
            for name in batch:
                address = pool.acquire(name)
                store.flush()
                pool.release(address)
                store.flush()
        else:
            for name in batch:
                pool.release(pool.acquire(name))
        t1 = perf()
        clock.advance(1.0)  # the once-a-second flush
        inPool += t1 - t0
        inFlush += perf() - t1
    commits = store.commits if store is not None else 0
    if store is not None:
        store.close()
    return inPool, inFlush, commits


def names_for(names: list[str], start: int, count: int) -> list[str]:
    return [names[(start + i) % len(names)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=20000, help="acquire+release pairs per run")
    parser.add_argument("--identities", type=int, default=5000, help="distinct identities")
    parser.add_argument("--repeats", type=int, default=5, help="runs; the best is reported")
    args = parser.parse_args()
    print(
        f"{args.ops} acquire+release pairs, {args.identities} identities cycling through a /16, "
        f"best of {args.repeats}; microseconds per pair"
    )
    print(f"{'mode':<34} {'pool calls':>10} {'flushes':>9} {'total':>9} {'commits':>8}")
    with tempfile.TemporaryDirectory() as directory:
        for mode, label in (
            ("memory", "in memory (no lease_db)"),
            ("batched", "lease_db, batched (the hub's way)"),
            ("commit-each", "lease_db, a commit per change"),
        ):
            ops = args.ops if mode != "commit-each" else min(args.ops, 4000)
            best = None
            for _ in range(args.repeats):
                inPool, inFlush, commits = run(mode, ops, args.identities, directory)
                if best is None or inPool + inFlush < best[0] + best[1]:
                    best = (inPool, inFlush, commits)
            inPool, inFlush, commits = best
            scale = 1e6 / ops
            print(
                f"{label:<34} {inPool * scale:>10.2f} {inFlush * scale:>9.2f} "
                f"{(inPool + inFlush) * scale:>9.2f} {commits:>8}"
                + (f"   ({ops} pairs)" if ops != args.ops else "")
            )


if __name__ == "__main__":
    main()
