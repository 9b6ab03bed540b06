"""
The hub restarts under a real strongSwan 5.9.8 client (RFC 7296 sections 1.5, 2.4, 2.21.4).

The client's tunnel is up and carries a ping; the hub process goes away (SIGKILL, as in a crash,
or SIGTERM, a clean stop) and is started again with the same configuration. Its leases
live in `lease_db`, everything else is forgotten. The client notices through dead peer detection
(its INFORMATIONAL requests now name an IKE SA the hub does not have, which the hub answers with
INVALID_IKE_SPI), re-establishes with INITIAL_CONTACT, gets the same virtual IP back from the
lease store, and the ping works again. Short DPD and retransmission settings on the client keep
each case to a few seconds.

Also here: ESP for an SPI the hub does not have, from a peer it has an IKE SA with, is reported
to that peer with INVALID_SPI (RFC 7296 section 1.5).
"""

import os
import re
import signal
import sqlite3

import pytest

from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.realclient import (
    clientConfig,
    clientSecrets,
    hubConfig,
    hubCounters,
    onlyIkeSa,
    waitFor,
)

#: The client gives a silent peer about 1 + 1.2 + 1.44 seconds.
CLIENT_RETRANSMITS = "retransmit_timeout = 1\nretransmit_base = 1.2\nretransmit_tries = 2\n"


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("rs")


def restartingClient(closeAction: str = "none") -> str:
    """
    The usual client, with DPD every 2 s that restarts the tunnel when the hub is gone, and
    C{closeAction} when the hub deletes the IKE SA; it keeps trying to connect (keyingtries
    0 is forever) rather than give up after one round of retransmissions.
    """
    text = clientConfig().replace(
        "        vips = 0.0.0.0\n",
        "        vips = 0.0.0.0\n        dpd_delay = 2s\n        keyingtries = 0\n",
        1,
    )
    return text.replace(
        "                esp_proposals = aes256gcm16\n",
        "                esp_proposals = aes256gcm16\n"
        "                dpd_action = restart\n"
        f"                close_action = {closeAction}\n",
        1,
    )


def leasedTo(database, identity: str) -> list[str]:
    """The addresses the lease store has lent to C{identity} (read while the hub runs)."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT address FROM leases WHERE identity = ? AND released IS NULL", (identity,)
            ).fetchall()
    except sqlite3.Error:
        return []
    return [address for (address,) in rows]


def established(client) -> dict | None:
    sas = client.listSas()
    if len(sas) == 1 and sas[0]["state"] == "ESTABLISHED" and sas[0]["child-sas"]:
        return sas[0]
    return None


def pingThroughTunnel(net, vip) -> bool:
    return net.ping(net.clientNs[0], net.lanHost, source=vip)


@pytest.mark.parametrize("how", ["crash", "clean"])
def test_clientComesBackWithItsAddressAfterAHubRestart(workdir, how):
    requireRealClients()
    database = workdir / "leases.sqlite"
    config = hubConfig(hubExtra=f'lease_db = "{database}"')
    # After a clean stop the hub's Delete tells the client at once; it comes back by itself
    # (close_action) and keeps trying until the hub listens again.
    closeAction = "restart" if how == "clean" else "none"
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
        StrongSwan(
            net.clientNs[0],
            workdir / "c1",
            restartingClient(closeAction),
            secrets=clientSecrets(),
            extraCharonConf=CLIENT_RETRANSMITS,
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        before = onlyIkeSa(client)
        [vip] = before["local-vips"]
        assert pingThroughTunnel(net, vip), client.log()
        # The lease reaches the disk within the store's flush interval.
        assert waitFor(lambda: leasedTo(database, "alice@example.com") == [vip]), hub.log()

        if how == "crash":
            os.kill(hub.pid, signal.SIGKILL)
        hub.stop()
        firstLog = hub.log()
        hub.start()

        again = waitFor(
            lambda: (sa := established(client)) and sa["uniqueid"] != before["uniqueid"] and sa,
            timeout=30,
        )
        assert again, client.log() + hub.log()
        assert again["local-vips"] == [vip], (again, hub.log())
        assert pingThroughTunnel(net, vip), client.log()
        log = client.log()
        hub.stop()
        counters = hubCounters(hub)

    assert "IKE SA with 192.0.2.11:4500 (alice@example.com) established" in firstLog
    if how == "clean":
        # The stopping hub deleted the IKE SA, and refused the client's immediate comeback
        # rather than begin an IKE SA it would not live to finish.
        assert "deleted: deleted by the hub" in firstLog, firstLog
        assert "received DELETE for IKE_SA home[1]" in log, log
        assert "drop_shutting_down=" in firstLog, firstLog
    else:
        assert "IKE counters at stop" not in firstLog, "SIGKILL gives the hub no last word"
    # The IKE SA that came back said the client holds no other with the hub (RFC 7296
    # section 2.4), and the hub gave it the address the lease store kept for alice (above).
    lastAuth = re.findall(r"generating IKE_AUTH request 1 \[ (.*) \]", log)[-1]
    assert lastAuth.startswith("IDi N(INIT_CONTACT)"), lastAuth
    assert counters["ike_sa_established"] == 1, counters
    if how == "crash":
        # DPD met the new hub, which knew nothing of the old IKE SA and answered
        # INVALID_IKE_SPI (outside any SA, rate-limited)...
        assert 1 <= counters["sent_invalid_ike_spi"] <= counters["drop_unknown_spi"], counters
        # ...which strongSwan 5.9.8 does not act on: it cannot decrypt an unprotected answer
        # and restarts only when its DPD retransmissions run out.
        assert "received unencrypted informational" in log, log
        assert "giving up after 2 retransmits" in log, log


def spoofedEsp(ns: str, source: tuple[str, int], destination: tuple[str, int], spi: bytes):
    """
    Send one ESP-in-UDP datagram with SPI C{spi} from C{source} (the client's own IKE address
    and NAT-T port, which its charon holds, hence a raw socket) inside namespace C{ns}.
    """
    import socket
    import struct

    from tests.harness.netns import insideNamespace

    payload = spi + struct.pack("!I", 1) + os.urandom(40)
    udp = struct.pack("!HHHH", source[1], destination[1], 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0x4000,
        64,
        socket.IPPROTO_UDP,
        0,  # the kernel fills in the checksum
        socket.inet_aton(source[0]),
        socket.inet_aton(destination[0]),
    )
    with insideNamespace(ns):
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        raw.sendto(ip + udp, (destination[0], 0))
    finally:
        raw.close()


def test_espForAnUnknownSpiIsReportedOnTheIkeSa(workdir):
    """
    ESP from the client's address and port for an SPI the hub has no CHILD SA for: the hub
    tells the client with INVALID_SPI in an INFORMATIONAL on their IKE SA (RFC 7296 section
    1.5). strongSwan 5.9.8 answers it like a liveness check and changes nothing: its IKE SA
    and CHILD SA stay up and keep carrying traffic.
    """
    requireRealClients()
    with (
        Topology() as net,
        HubProcess(net.hubNs, workdir / "hub", hubConfig()) as hub,
        StrongSwan(
            net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()
        ) as client,
    ):
        assert client.initiate("home").returncode == 0, client.log()
        [vip] = onlyIkeSa(client)["local-vips"]
        for _ in range(3):
            spoofedEsp(
                net.clientNs[0], ("192.0.2.11", 4500), ("192.0.2.1", 4500), b"\x0b\xad\x51\x11"
            )
        assert waitFor(lambda: "parsed INFORMATIONAL request 0 [ N(INVAL_SPI) ]" in client.log()), (
            client.log() + hub.log()
        )
        assert waitFor(lambda: "generating INFORMATIONAL response 0 [ ]" in client.log())
        sa = onlyIkeSa(client)
        assert sa["state"] == "ESTABLISHED" and sa["child-sas"], sa
        assert pingThroughTunnel(net, vip), client.log()
        hub.stop()
        counters = hubCounters(hub)
    assert counters["esp_unknown_spi"] == 3, counters
    assert counters["sent_invalid_spi"] == 1, counters
    assert counters["invalid_spi_rate_limited"] == 2, counters
