"""
Rekey benchmark: what a CREATE_CHILD_SA costs the hub as responder, per kind of rekey.

Runs in one process through the tests' in-memory harness (tests/ikepump.py): an established
IKE SA with its CHILD SA, then N rekeys by the client, each followed by the client's Delete of
the old SA, as strongSwan does. Only the hub's time is counted (its datagramReceived calls), so
the client's own crypto does not inflate the figure.

Usage: python benchmarks/rekeys.py [--rekeys 2000]
Prints, per kind, rekeys per second of hub CPU and microseconds per rekey (the CREATE_CHILD_SA
and the INFORMATIONAL Delete together).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from ikehub.ike.endpoint import IKEEndpoint  # noqa: E402
from tests.ikepump import HUB, Pair, espProposals, hubSettings  # noqa: E402

KINDS = {
    "child-no-pfs": ("aes256gcm16", None),
    "child-pfs-x25519": ("aes256gcm16-x25519", 31),
    "child-pfs-modp2048": ("aes256gcm16-modp2048", 14),
    "ike-x25519": ("aes256gcm16", "ike"),
}


def timedHub(pair: Pair) -> list:
    """Wrap the hub's datagramReceived so that the time spent in it is added up."""
    spent = [0.0]
    hub = pair.hub
    original = IKEEndpoint.datagramReceived

    def timed(data, peer, path):
        start = time.perf_counter()
        original(hub, data, peer, path)
        spent[0] += time.perf_counter() - start

    hub.datagramReceived = timed
    pair.net.attach(HUB, hub)
    return spent


def run(kind: str, rekeys: int) -> float:
    esp, group = KINDS[kind]
    proposals = espProposals(esp)
    pair = Pair(
        settings=hubSettings(espProposals=proposals, dpdDelay=0.0, ikeRekeyTime=0.0),
        clientSettings=hubSettings(espProposals=proposals, dpdDelay=0.0, ikeRekeyTime=0.0),
    )
    [sa], failures = pair.connect()
    if failures:
        raise SystemExit(f"no IKE SA: {failures[0]}")
    spent = timedHub(pair)
    client = pair.client
    for _ in range(rekeys):
        current = next(s for s in client.sas.values() if s.state.name == "ESTABLISHED")
        if group == "ike":
            client.rekeyIkeSa(current)
        else:
            [child] = current.children
            client._sendChildRekey(current, child, group, retried=False)
        pair.net.pump()
    hubSas = list(pair.hub.sas.values())
    if len(hubSas) != 1 or len(hubSas[0].children) != 1:
        raise SystemExit(f"{kind}: the hub holds {len(hubSas)} IKE SAs after the rekeys")
    return spent[0] / rekeys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rekeys", type=int, default=2000)
    parser.add_argument("--kind", choices=sorted(KINDS), action="append")
    options = parser.parse_args()
    for kind in options.kind or KINDS:
        perRekey = run(kind, options.rekeys)
        print(
            f"{kind:20s} {1 / perRekey:9.0f} rekeys/s of hub CPU   "
            f"{perRekey * 1e6:7.1f} µs per rekey (request + Delete)"
        )


if __name__ == "__main__":
    main()
