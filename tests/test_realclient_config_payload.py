"""
The configuration payload with real strongSwan 5.9.8 clients (kernel-libipsec) in network
namespaces: dual stack from two pools with pings over IPv4 and IPv6 through the tunnel, split
include (TSr narrowed to local_ts), what strongSwan asks for and receives in CP, and pool
exhaustion (INTERNAL_ADDRESS_FAILURE).

The LAN namespace gets an IPv6 address here (2001:db8:2::10/64, default route via the hub's
2001:db8:2::1), in this file only, so the shared topology stays as other tests know it.
"""

import ipaddress
import re

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import HUB_PSK, clientConfig, clientSecrets, onlyIkeSa, waitFor

LAN4_HOST = "203.0.113.10"
LAN6 = "2001:db8:2::/64"
LAN6_HUB = "2001:db8:2::1"
LAN6_HOST = "2001:db8:2::10"
POOL4 = ipaddress.ip_network("198.51.100.0/24")
POOL6 = ipaddress.ip_network("2001:db8:100::/112")


def hubConfig(pools: str = '["v4", "v6"]', v4: str = "198.51.100.10-198.51.100.200") -> str:
    return f"""
[hub]
identity = "hub.example.com"
listen = ["192.0.2.1"]

[pools.v4]
addresses = "{v4}"
dns = ["192.0.2.53"]
lease_time = 0

[pools.v6]
addresses = "{POOL6}"
dns = ["2001:db8:1::53"]

[[peers]]
name = "roadwarriors"
identity = "*@example.com"
auth = "psk"
psk = "{HUB_PSK}"
pool = {pools}
local_ts = ["203.0.113.0/24", "{LAN6}"]
dns_domains = ["corp.example.com", "lab.example.net"]
"""


def withLan6(net: Topology) -> None:
    """Give the LAN namespace and the hub's LAN side IPv6 addresses (this file only)."""
    net.run(net.hubNs, "ip", "addr", "add", f"{LAN6_HUB}/64", "dev", "lan0", "nodad", check=True)
    net.run(net.lanNs, "ip", "addr", "add", f"{LAN6_HOST}/64", "dev", "eth0", "nodad", check=True)
    net.run(net.lanNs, "ip", "-6", "route", "add", "default", "via", LAN6_HUB, check=True)


def client(
    net, workdir, index=0, identity="alice@example.com", vips="0.0.0.0, ::", remoteTs=None
) -> StrongSwan:
    text = clientConfig(
        identity=identity, vips=vips, remoteTs=remoteTs or f"203.0.113.0/24, {LAN6}"
    )
    return StrongSwan(
        net.clientNs[index],
        workdir / f"c{index + 1}",
        text,
        secrets=clientSecrets(identity),
        label=f"client{index + 1}",
    )


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cp")


def cpRequestOf(log: str) -> str:
    """The attributes strongSwan put in its CFG_REQUEST, from the logged IKE_AUTH request."""
    match = re.search(r"generating IKE_AUTH request \d+ \[[^\]]*CPRQ\(([^)]*)\)", log)
    assert match, log
    return match.group(1)


def test_dualStackPingsOverIpv4AndIpv6(workdir):
    """
    vips = 0.0.0.0, :: gets one address from each pool; both families reach the LAN host
    through the tunnel (the client has no other route to 203.0.113.0/24 or 2001:db8:2::/64).
    """
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        client(net, workdir) as alice,
    ):
        withLan6(net)
        result = alice.initiate("home")
        assert result.returncode == 0, alice.log() + hub.log()
        sa = onlyIkeSa(alice)
        vips = [ipaddress.ip_address(v) for v in sa["local-vips"]]
        vip4 = next(v for v in vips if v.version == 4)
        vip6 = next(v for v in vips if v.version == 6)
        assert vip4 in POOL4 and vip6 in POOL6, vips
        [child] = sa["child-sas"]
        assert sorted(child["local-ts"]) == sorted([f"{vip4}/32", f"{vip6}/128"]), child
        assert sorted(child["remote-ts"]) == sorted(["203.0.113.0/24", LAN6]), child
        assert net.ping(net.clientNs[0], LAN4_HOST, source=str(vip4)), alice.log()
        assert net.ping(net.clientNs[0], LAN6_HOST, source=str(vip6)), alice.log() + hub.log()
        resolv = alice.resolvPath.read_text()
        assert "nameserver 192.0.2.53" in resolv and "nameserver 2001:db8:1::53" in resolv
        assert "ADDR6" in cpRequestOf(alice.log())
        # The kernel sends the IPv6 pool into the hub's TUN device.
        routes6 = net.run(net.hubNs, "ip", "-6", "route", "show", "dev", "ikehub0").stdout
        assert "2001:db8:100::" in routes6, routes6
        assert alice.terminateIke("home").returncode == 0
        assert waitFor(lambda: "deleted by the peer" in hub.log()), hub.log()


def test_splitIncludeAndWhatStrongSwanAsksFor(workdir):
    """
    The client asks for everything (remote_ts = 0.0.0.0/0, ::/0) and gets the entry's local_ts.
    strongSwan 5.9.8 does not put INTERNAL_IP4_SUBNET or INTERNAL_DNS_DOMAIN in its request (its
    CPRQ lists addresses and DNS servers only), so the hub sends neither: the narrowed TSr is
    what carries split include to it, and our own initiator's tests carry split DNS and
    INTERNAL_IP4/IP6_SUBNET (tests/test_ike_config_payload.py).
    """
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        client(net, workdir, remoteTs="0.0.0.0/0, ::/0") as alice,
    ):
        withLan6(net)
        assert alice.initiate("home").returncode == 0, alice.log() + hub.log()
        [child] = onlyIkeSa(alice)["child-sas"]
        assert sorted(child["remote-ts"]) == sorted(["203.0.113.0/24", LAN6]), child
        requested = cpRequestOf(alice.log())
        assert "SUBNET" not in requested and "DOMAIN" not in requested, requested
        assert net.ping(net.clientNs[0], LAN4_HOST), alice.log()


def test_poolExhaustion(workdir):
    """
    A pool of one IPv4 address (and no IPv6 pool for the peer): the second client gets
    INTERNAL_ADDRESS_FAILURE and no CHILD SA, the first keeps working, and once the first has
    gone the second gets the address.
    """
    requireRealClients()
    config = hubConfig(pools='"v4"', v4="198.51.100.10")
    with (
        Topology(clients=2) as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        client(net, workdir, 0, vips="0.0.0.0", remoteTs="203.0.113.0/24") as alice,
        client(
            net, workdir, 1, "bob@example.com", vips="0.0.0.0", remoteTs="203.0.113.0/24"
        ) as bob,
    ):
        assert alice.initiate("home").returncode == 0, alice.log()
        assert onlyIkeSa(alice)["local-vips"] == ["198.51.100.10"]

        refused = bob.initiate("home")
        assert refused.returncode != 0, refused.stdout
        assert "INTERNAL_ADDRESS_FAILURE" in bob.log(), bob.log()
        assert waitFor(lambda: "pool v4 is exhausted" in hub.log()), hub.log()
        assert "INTERNAL_ADDRESS_FAILURE" in hub.log()
        # strongSwan keeps the IKE SA without a CHILD SA or virtual IP ("failed to establish
        # CHILD_SA, keeping IKE_SA"), as RFC 7296 3.15.4 intends.
        [bobSa] = bob.listSas()
        assert bobSa["state"] == "ESTABLISHED", bobSa
        assert bobSa["child-sas"] == [] and not bobSa.get("local-vips"), bobSa
        assert "keeping IKE_SA" in bob.log()

        # The first client is untouched.
        assert net.ping(net.clientNs[0], LAN4_HOST, source="198.51.100.10"), alice.log()

        # The first client leaves; the second tries again with a new IKE SA and gets the address.
        assert alice.terminateIke("home").returncode == 0
        assert bob.terminateIke("home").returncode == 0
        assert waitFor(lambda: not bob.listSas())
        assert bob.initiate("home").returncode == 0, bob.log() + hub.log()
        assert onlyIkeSa(bob)["local-vips"] == ["198.51.100.10"]
        assert net.ping(net.clientNs[1], LAN4_HOST, source="198.51.100.10"), bob.log()
