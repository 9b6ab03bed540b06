"""
The real-client harness, proven with strongSwan on both sides before it is trusted to judge
ikehub: namespaces come and go, a strongSwan responder in the hub namespace serves a strongSwan
client a virtual IP, and a ping from that IP reaches the LAN host only through the tunnel.

The strongSwan-to-strongSwan run is also the datapath baseline ikehub is later compared with.
The parser tests at the end run anywhere; the rest need root and strongSwan
(L{requireRealClients}).
"""

from __future__ import annotations

import ipaddress
import os
import time
from pathlib import Path

import pytest

from tests.harness import (
    HarnessError,
    HubProcess,
    StrongSwan,
    Topology,
    parseKeyLog,
    parseListSas,
    requireRealClients,
)
from tests.harness.netns import listNamespaces
from tests.harness.strongswan import logBlobs, parseViciDump

PSK = "throw-away-selfcheck-psk"

SECRETS = f"""
ike-selfcheck {{
    id-1 = hub.example
    id-2 = client1.example
    secret = "{PSK}"
}}
"""

#: strongSwan as the hub: PSK, a virtual-IP pool, and the LAN behind it.
RESPONDER_CONF = """
connections {
    rw {
        local_addrs = 192.0.2.1
        pools = rwpool
        proposals = aes256gcm16-prfsha256-x25519
        local {
            auth = psk
            id = hub.example
        }
        remote {
            auth = psk
            id = client1.example
        }
        children {
            lan {
                local_ts = 203.0.113.0/24
                esp_proposals = aes256gcm16
            }
        }
    }
}
pools {
    rwpool {
        addrs = 198.51.100.0/24
    }
}
"""

#: A road-warrior client asking for a virtual IP and the LAN.
CLIENT_CONF = """
connections {
    home {
        remote_addrs = 192.0.2.1
        vips = 0.0.0.0
        proposals = aes256gcm16-prfsha256-x25519
        local {
            auth = psk
            id = client1.example
        }
        remote {
            auth = psk
            id = hub.example
        }
        children {
            home {
                remote_ts = 203.0.113.0/24
                esp_proposals = aes256gcm16
            }
        }
    }
}
"""

POOL = ipaddress.ip_network("198.51.100.0/24")


def _pidGone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- namespaces ----------------------------------------------------------------------------------


def test_topologyConnectsClientsToHubButNotToLan() -> None:
    """
    Each client reaches the hub over the shared segment (IPv4 and IPv6), the hub reaches the
    LAN host, and a client cannot reach the LAN host without a tunnel.
    """
    requireRealClients()
    with Topology(clients=2) as net:
        for ns in net.clientNs:
            assert net.ping(ns, net.hubAddress, count=1)
            assert net.ping(ns, net.hubAddress6, count=1)
        assert net.ping(net.hubNs, net.lanHost, count=1)
        assert not net.ping(net.clientNs[0], net.lanHost, count=1, timeout=2)
        forwarding = net.run(net.hubNs, "sysctl", "-n", "net.ipv4.ip_forward")
        assert forwarding.stdout.strip() == "1"


def test_topologyRemovesItsNamespacesEvenWhenTheTestFails() -> None:
    """
    Leaving the Topology by an exception deletes all its namespaces, and their names carry
    this process's pid.
    """
    requireRealClients()
    with pytest.raises(RuntimeError):
        with Topology(clients=1) as net:
            names = [net.hubNs, *net.clientNs, net.lanNs]
            assert set(names) <= set(listNamespaces())
            assert all(str(os.getpid()) in name for name in names)
            raise RuntimeError("test body failed")
    assert not set(names) & set(listNamespaces())


# -- strongSwan on both sides --------------------------------------------------------------------


def test_strongSwanClientReachesLanThroughStrongSwanResponder(tmp_path: Path) -> None:
    """
    The harness baseline: a strongSwan client gets a virtual IP from a strongSwan responder
    (PSK, AES-GCM-256, X25519, libipsec on both sides), pings the LAN host from it through the
    tunnel (both CHILD SAs count the packets), and deletes the IKE SA cleanly; afterwards no
    charon and no namespace is left.
    """
    requireRealClients()
    started = time.monotonic()
    with Topology(clients=1) as net:
        client1 = net.clientNs[0]
        with (
            StrongSwan(
                net.hubNs, tmp_path / "hub", RESPONDER_CONF, secrets=SECRETS, label="hub"
            ) as responder,
            StrongSwan(client1, tmp_path / "client1", CLIENT_CONF, secrets=SECRETS) as client,
        ):
            result = client.initiate("home", "home")
            assert result.returncode == 0, result.stdout + result.stderr + client.log()

            [ike] = client.listSas()
            assert ike["name"] == "home"
            assert ike["state"] == "ESTABLISHED"
            assert (ike["encr-alg"], ike["encr-keysize"]) == ("AES_GCM_16", 256)
            assert (ike["prf-alg"], ike["dh-group"]) == ("PRF_HMAC_SHA2_256", "CURVE_25519")
            assert ike["remote-host"] == net.hubAddress
            [vip] = ike["local-vips"]
            assert ipaddress.ip_address(vip) in POOL
            [child] = ike["child-sas"]
            assert (child["state"], child["mode"], child["protocol"]) == (
                "INSTALLED",
                "TUNNEL",
                "ESP",
            )
            assert child["encap"] == "yes"  # libipsec always reports NAT: ESP in UDP 4500
            assert child["remote-ts"] == ["203.0.113.0/24"]

            assert net.ping(client1, net.lanHost, count=3, source=vip), client.log()

            [child] = client.listSas()[0]["child-sas"]
            assert child["packets-out"] >= 3 and child["packets-in"] >= 3
            [hubIke] = responder.listSas()
            assert hubIke["remote-vips"] == [vip]
            assert hubIke["child-sas"][0]["spi-in"] == child["spi-out"]
            assert hubIke["child-sas"][0]["packets-in"] >= 3

            result = client.terminateIke("home")
            assert result.returncode == 0, result.stdout + result.stderr
            assert client.listSas() == []
            assert responder.listSas() == []
            pids = [client.pid, responder.pid]
        assert all(pid is not None and _pidGone(pid) for pid in pids)
        names = [net.hubNs, *net.clientNs, net.lanNs]
    assert not set(names) & set(listNamespaces())
    # Not asserted: wall-clock; a healthy run takes about 1 s (budget ~10 s).
    print(f"strongSwan-to-strongSwan selfcheck took {time.monotonic() - started:.2f} s")


def test_saveKeysReportsTheSameKeysOnBothSides(tmp_path: Path) -> None:
    """
    With saveKeys, both peers report the CHILD SA's keys and mirrored SPIs from their logs,
    the SPIs are the ones swanctl lists, and stopping writes them to keysPath.
    """
    requireRealClients()
    with Topology(clients=1) as net:
        with (
            StrongSwan(
                net.hubNs,
                tmp_path / "hub",
                RESPONDER_CONF,
                secrets=SECRETS,
                label="hub",
                saveKeys=True,
            ) as responder,
            StrongSwan(
                net.clientNs[0], tmp_path / "client1", CLIENT_CONF, secrets=SECRETS, saveKeys=True
            ) as client,
        ):
            result = client.initiate("home", "home")
            assert result.returncode == 0, result.stdout + client.log()
            [ike] = client.listSas()
            [clientKeys], [hubKeys] = client.keys(), responder.keys()
        assert client.keysPath is not None and client.keysPath.exists()
    assert clientKeys["ike"] == "home|1" and hubKeys["ike"] == "rw|1"
    for name in ("sharedSecret", "skeyseed", "skD", "skEi", "skEr", "skPi", "skPr"):
        assert clientKeys[name] == hubKeys[name], name
    assert len(clientKeys["skEi"]) == 36  # AES-256-GCM key and salt
    [clientChild], [hubChild] = clientKeys["children"], hubKeys["children"]
    assert clientChild["encrI"] == hubChild["encrI"] != clientChild["encrR"]
    assert (clientChild["spiIn"], clientChild["spiOut"]) == (hubChild["spiOut"], hubChild["spiIn"])
    assert clientChild["spiIn"] == ike["child-sas"][0]["spi-in"]


def test_strongSwanStartupFailureIsReportedWithTheReason(tmp_path: Path) -> None:
    """A swanctl.conf charon rejects stops the instance and raises HarnessError naming why."""
    requireRealClients()
    with Topology(clients=1, lan=False) as net:
        broken = "connections {\n    bad {\n        local {\n            auth = nonsense\n"
        broken += "        }\n    }\n}\n"
        with pytest.raises(HarnessError, match="invalid value for: auth"):
            with StrongSwan(net.clientNs[0], tmp_path / "c1", broken):
                pass  # pragma: no cover


def test_hubProcessReportsAHubThatExitsBeforeBinding(tmp_path: Path) -> None:
    """
    HubProcess raises HarnessError quoting the hub's output when twistd exits (here: on a
    config that is not TOML) instead of waiting for its ports.
    """
    requireRealClients()
    with Topology(clients=1, lan=False) as net:
        hub = HubProcess(net.hubNs, tmp_path / "hub", "this is [[ not toml", startTimeout=30)
        with pytest.raises(HarnessError, match="exited"):
            with hub:
                pass  # pragma: no cover
        assert not hub.running


# -- requireRealClients (no root needed) ---------------------------------------------------------


def test_requireRealClientsFailsNamingWhatIsMissing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without root the check fails the test (not skips) and says root is missing."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("IKEHUB_SKIP_REALCLIENT", raising=False)
    with pytest.raises(pytest.fail.Exception, match="root"):
        requireRealClients()


def test_requireRealClientsSkipsWhenAskedTo(monkeypatch: pytest.MonkeyPatch) -> None:
    """With IKEHUB_SKIP_REALCLIENT=1 a machine that cannot run real clients skips instead."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("IKEHUB_SKIP_REALCLIENT", "1")
    with pytest.raises(pytest.skip.Exception, match="root"):
        requireRealClients()


# -- parsers (no root needed) --------------------------------------------------------------------

#: Real `swanctl --list-sas --raw` output from strongSwan 5.9.8 (local-id replaced by a DN to
#: cover identities with spaces).
LIST_SAS_RAW = (
    "list-sa event {home {uniqueid=1 version=2 state=ESTABLISHED local-host=192.0.2.11 "
    "local-port=4500 local-id=C=CH, O=Example Org, CN=client1 remote-host=192.0.2.1 "
    "remote-port=4500 remote-id=hub.example initiator=yes initiator-spi=d9a7aeb62b62b3ec "
    "responder-spi=42dd557480358f6c nat-remote=yes nat-any=yes encr-alg=AES_GCM_16 "
    "encr-keysize=256 prf-alg=PRF_HMAC_SHA2_256 dh-group=CURVE_25519 established=0 "
    "rekey-time=13711 local-vips=[198.51.100.1] child-sas {home-1 {name=home uniqueid=1 "
    "reqid=1 state=INSTALLED mode=TUNNEL protocol=ESP encap=yes spi-in=e07ff1ef "
    "spi-out=22229705 encr-alg=AES_GCM_16 encr-keysize=256 bytes-in=252 packets-in=3 "
    "bytes-out=252 packets-out=3 rekey-time=3413 life-time=3960 install-time=0 "
    "local-ts=[198.51.100.1/32] remote-ts=[203.0.113.0/24 2001:db8:3::/64]}}}}\n"
    "list-sas reply {}\n"
)


def test_parseListSasReadsIkeAndChildSas() -> None:
    """
    parseListSas returns each IKE SA with its name, identities (spaces included), algorithms,
    virtual IPs, and CHILD SAs with counters as ints and SPIs as hex strings.
    """
    [ike] = parseListSas(LIST_SAS_RAW)
    assert ike["name"] == "home"
    assert ike["state"] == "ESTABLISHED"
    assert ike["local-id"] == "C=CH, O=Example Org, CN=client1"
    assert ike["remote-id"] == "hub.example"
    assert (ike["initiator-spi"], ike["responder-spi"]) == ("d9a7aeb62b62b3ec", "42dd557480358f6c")
    assert ike["local-port"] == 4500
    assert ike["local-vips"] == ["198.51.100.1"]
    assert "integ-alg" not in ike
    [child] = ike["child-sas"]
    assert child["name"] == "home"
    assert child["spi-out"] == "22229705"  # all digits, still an SPI string
    assert (child["bytes-in"], child["packets-out"]) == (252, 3)
    assert child["remote-ts"] == ["203.0.113.0/24", "2001:db8:3::/64"]


def test_parseViciDumpRejectsTruncatedOutput() -> None:
    """A dump cut off mid-message raises HarnessError rather than returning half an SA."""
    with pytest.raises(HarnessError):
        parseViciDump(LIST_SAS_RAW.splitlines()[0][:-3])


def test_parseListSasOfNoSas() -> None:
    """With no IKE SAs swanctl prints only the reply, which parses to an empty list."""
    assert parseListSas("list-sas reply {}\n") == []


#: Excerpts of real strongSwan 5.9.8 level-4 logs (a responder, whose IKE SA is "<1>" until
#: IKE_AUTH names it "<rw|1>"), with a line of another thread interleaved into a hex dump.
KEY_LOG = """\
08:41:45.764 06[IKE] <1> shared Diffie Hellman secret => 32 bytes @ 0x7fbcc4002540
08:41:45.764 06[IKE] <1>    0: 1D 6E A9 81 71 27 EF 47 DB 2A C4 B6 D6 46 5C 8A  .n..q'.G.*...F\\.
08:41:45.764 09[NET] received packet: from 192.0.2.11[500] to 192.0.2.1[500]
08:41:45.764 06[IKE] <1>   16: 5A 3F FD 94 D6 DA 30 82 5A B1 F9 87 5F 05 8D 04  Z?....0.Z..._...
08:41:45.764 06[IKE] <1> Sk_ei secret => 36 bytes @ 0x7fbcc400a5b0
08:41:45.764 06[IKE] <1>    0: 0C 4C 26 15 D3 37 43 FB 94 E0 1C D7 83 BD 3A 25  .L&..7C.......:%
08:41:45.764 06[IKE] <1>   16: 79 79 89 77 C7 AB 27 79 02 D5 13 74 AA C3 D1 4B  yy.w..'y...t...K
08:41:45.764 06[IKE] <1>   32: BA F4 B9 88                                      ....
08:41:45.771 01[CHD] <rw|1> encryption initiator key => 36 bytes @ 0x7fbccc002a80
08:41:45.771 01[CHD] <rw|1>    0: 57 D7 E4 B7 09 CB 5E 24 9A 91 72 31 46 BB A6 A9  W.....^$..r1F...
08:41:45.771 01[CHD] <rw|1>   16: 10 3F F3 A8 F2 90 D6 8F DA 96 36 5A 64 0C D0 D7  .?........6Zd...
08:41:45.771 01[CHD] <rw|1>   32: EC 30 A3 36                                      .0.6
08:41:45.771 01[CHD] <rw|1> adding inbound ESP SA
08:41:45.771 01[CHD] <rw|1>   SPI 0x74446e64, src 192.0.2.11 dst 192.0.2.1
08:41:45.771 01[CHD] <rw|1> adding outbound ESP SA
08:41:45.771 01[CHD] <rw|1>   SPI 0xf28644fc, src 192.0.2.1 dst 192.0.2.11
"""


def test_parseKeyLogJoinsHexDumpsPerThreadAndIkeSa() -> None:
    """
    parseKeyLog reassembles hex dumps split by other threads' lines, files the keys of
    "<1>" and "<rw|1>" under one IKE SA, and attaches the CHILD SA's keys and SPIs.
    """
    [record] = parseKeyLog(KEY_LOG)
    assert record["ike"] == "rw|1"
    assert record["sharedSecret"] == bytes.fromhex(
        "1D6EA9817127EF47DB2AC4B6D6465C8A5A3FFD94D6DA30825AB1F9875F058D04"
    )
    assert record["skEi"] == bytes.fromhex(
        "0C4C2615D33743FB94E01CD783BD3A2579798977C7AB277902D51374AAC3D14BBAF4B988"
    )
    [child] = record["children"]
    assert child["encrI"] == bytes.fromhex(
        "57D7E4B709CB5E249A91723146BBA6A9103FF3A8F290D68FDA96365A640CD0D7EC30A336"
    )
    assert (child["spiIn"], child["spiOut"]) == ("74446e64", "f28644fc")
    assert "integI" not in child


def test_logBlobsDropsATruncatedDump() -> None:
    """A hex dump that ends before its announced size is not reported as a (short) key."""
    truncated = "\n".join(KEY_LOG.splitlines()[4:6])
    assert logBlobs(truncated) == []


# -- the committed strongSwan fixtures (no root needed) ------------------------------------------

DATA = Path(__file__).parent / "data"


def test_capturedRequestIsStrongSwansTwoProposalIkeSaInit() -> None:
    """
    strongswan_ike_sa_init_request.bin is an IKEv2 IKE_SA_INIT request (initiator flag,
    message ID 0, no responder SPI) offering AES-GCM-256/SHA-256/X25519 first and
    AES-CBC-256/SHA-256/SHA-256/MODP-2048 second.
    """
    from tests.tools.make_fixtures import PayloadType, ikePayloads

    request = ikePayloads((DATA / "strongswan_ike_sa_init_request.bin").read_bytes())
    assert (request["exchange"], request["flags"], request["messageId"]) == (34, 0x08, 0)
    assert request["spiR"] == bytes(8)
    [sa] = [body for kind, body in request["payloads"] if kind == PayloadType.SA]
    proposals = []
    while sa:
        length, transforms = int.from_bytes(sa[2:4], "big"), []
        offset = 8
        while offset < length:
            transformLength = int.from_bytes(sa[offset + 2 : offset + 4], "big")
            transforms.append(
                (
                    sa[offset + 4],
                    int.from_bytes(sa[offset + 6 : offset + 8], "big"),
                    sa[offset + 8 : offset + transformLength].hex(),
                )
            )
            offset += transformLength
        proposals.append(transforms)
        sa = sa[length:]
    assert proposals == [
        [(1, 20, "800e0100"), (2, 5, ""), (4, 31, "")],
        [(1, 12, "800e0100"), (3, 12, ""), (2, 5, ""), (4, 14, "")],
    ]


def test_capturedResponseAnswersTheCapturedRequest() -> None:
    """
    strongswan_ike_sa_init_response.bin is a strongSwan responder's IKE_SA_INIT response to
    exactly the captured request: same initiator SPI, response flag, a responder SPI.
    """
    from tests.tools.make_fixtures import ikePayloads

    request = ikePayloads((DATA / "strongswan_ike_sa_init_request.bin").read_bytes())
    response = ikePayloads((DATA / "strongswan_ike_sa_init_response.bin").read_bytes())
    assert response["spiI"] == request["spiI"]
    assert response["spiR"] != bytes(8)
    assert (response["exchange"], response["flags"], response["messageId"]) == (34, 0x20, 0)


def test_keyOraclesFollowRfc7296() -> None:
    """
    Every exchange in strongswan_keys.json is internally consistent: SKEYSEED, SK_*, KEYMAT
    and both PSK AUTH values recomputed from its nonces, SPIs, g^ir and messages with
    cryptography's HMAC equal what strongSwan logged (so no field is misfiled), and both
    requested suites are present.
    """
    import json

    from tests.tools.make_fixtures import verifyExchange

    document = json.loads((DATA / "strongswan_keys.json").read_text())
    assert [e["ikeProposal"] for e in document["exchanges"]] == [
        "aes256gcm16-prfsha384-x25519",
        "aes256-sha256-modp2048",
    ]
    for exchange in document["exchanges"]:
        verifyExchange(exchange)
