"""
Cookies (RFC 7296 section 2.6) and the per-source thresholds with a real strongSwan 5.9.8
client: a second client namespace floods the hub with bare IKE_SA_INIT requests, made by
ikehub's own initiator and sent from a socket in that namespace, which leave half-open IKE SAs
behind; then strongSwan connects from the first namespace.

Judged from strongSwan's log and `swanctl --list-sas`, a ping through the tunnel, and the
counters the hub logs when it stops.
"""

import socket

import pytest
from twisted.internet.task import Clock

from ikehub.esp.sad import SAD
from ikehub.ike.endpoint import IKEEndpoint
from ikehub.policy.pad import PAD
from ikehub.wire.constants import ExchangeType, NotifyType
from ikehub.wire.message import Message
from ikehub.wire.payloads import NotifyPayload, SAPayload
from tests.harness import HubProcess, StrongSwan, Topology, requireRealClients
from tests.harness.netns import insideNamespace
from tests.ikepump import clientSpec, hubSettings
from tests.realclient import clientConfig, clientSecrets, hubConfig, hubCounters, onlyIkeSa

HUB = ("192.0.2.1", 500)


@pytest.fixture
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("ck")


class InitFlood:
    """
    Bare IKE_SA_INIT requests to the hub from a UDP socket in namespace C{ns}: each one,
    answered, leaves a half-open IKE SA on the hub, because IKE_AUTH never follows. A COOKIE
    answer is followed (ikehub's initiator adds the cookie in front and sends again), anything
    else is only classified.
    """

    def __init__(self, ns: str) -> None:
        with insideNamespace(ns):
            self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("0.0.0.0", 0))
        self.socket.settimeout(2.0)
        self.outgoing: list[bytes] = []
        self.endpoint = IKEEndpoint(
            hubSettings(), PAD([]), SAD(), Clock(), lambda d, peer, path: self.outgoing.append(d)
        )

    def close(self) -> None:
        self.socket.close()

    def _exchange(self) -> str:
        """Send what the initiator queued; 'accepted', 'cookie', or 'silence' (no answer)."""
        [request] = self.outgoing
        self.outgoing.clear()
        self.socket.sendto(request, HUB)
        try:
            answer, _ = self.socket.recvfrom(65535)
        except TimeoutError:
            return "silence"
        message = Message.fromBytes(answer)
        assert message.header.exchangeType == ExchangeType.IKE_SA_INIT
        if any(type(p) is SAPayload for p in message.payloads):
            return "accepted"
        [notify] = message.payloads
        assert type(notify) is NotifyPayload and notify.notifyType == NotifyType.COOKIE, notify
        # Our initiator answers the cookie with the same request, the cookie in front.
        self.endpoint.datagramReceived(answer, HUB, None)
        return "cookie"

    def open(self) -> list[str]:
        """
        One new half-open attempt; the hub's answers in order, e.g. ['accepted'] or
        ['cookie', 'accepted'] or ['cookie', 'silence'].
        """
        d = self.endpoint.initiate(clientSpec(), HUB, None)
        d.addErrback(lambda failure: None)
        answers = [self._exchange()]
        if answers[0] == "cookie":
            answers.append(self._exchange())
        for sa in list(self.endpoint.sas.values()):
            self.endpoint.removeSa(sa, "only the half-open SA on the hub was wanted")
        return answers


def connectAndPing(net, client, hub) -> None:
    result = client.initiate("home")
    assert result.returncode == 0, client.log() + hub.log()
    sa = onlyIkeSa(client)
    assert sa["state"] == "ESTABLISHED", sa
    [vip] = sa["local-vips"]
    assert net.ping(net.clientNs[0], net.lanHost, source=vip), client.log()


def test_aClientIsChallengedAboveTheGlobalThresholdAndEstablishes(workdir):
    """
    With five half-open IKE SAs (from another address) the hub is at its cookie_threshold:
    strongSwan's IKE_SA_INIT is answered with a COOKIE, it retries with the cookie, and the
    tunnel carries a ping.
    """
    requireRealClients()
    config = hubConfig(
        hubExtra="cookie_threshold = 5\ncookie_threshold_per_source = 100\nblock_threshold = 101"
    )
    with (
        Topology(clients=2) as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
    ):
        flood = InitFlood(net.clientNs[1])
        try:
            assert [flood.open() for _ in range(5)] == [["accepted"]] * 5
            # The flooder itself is now challenged too, and let in with its cookie.
            assert flood.open() == ["cookie", "accepted"]
        finally:
            flood.close()
        with StrongSwan(
            net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()
        ) as client:
            connectAndPing(net, client, hub)
            log = client.log()
        hub.stop()
        counters = hubCounters(hub)
    assert "received COOKIE notify" in log, log
    # strongSwan repeats its request with the cookie as the first payload.
    assert "generating IKE_SA_INIT request 0 [ N(COOKIE) SA KE No" in log, log
    assert counters["sent_cookie"] == 2, counters
    assert counters["cookie_accepted"] == 2, counters
    assert counters["ike_sa_established"] == 1, counters


def test_theBusySourceIsChallengedAndBlockedWhileAnotherIsNot(workdir):
    """
    Per-source thresholds: the flooding address is asked for cookies after three half-open
    SAs and ignored after six, while strongSwan from another address establishes without a
    cookie and pings.
    """
    requireRealClients()
    config = hubConfig(hubExtra="cookie_threshold_per_source = 3\nblock_threshold = 6")
    with (
        Topology(clients=2) as net,
        HubProcess(net.hubNs, workdir / "hub", config) as hub,
    ):
        flood = InitFlood(net.clientNs[1])
        try:
            answers = [flood.open() for _ in range(7)]
        finally:
            flood.close()
        assert answers == [["accepted"]] * 3 + [["cookie", "accepted"]] * 3 + [["silence"]], (
            answers
        )
        with StrongSwan(
            net.clientNs[0], workdir / "c1", clientConfig(), secrets=clientSecrets()
        ) as client:
            connectAndPing(net, client, hub)
            log = client.log()
        hub.stop()
        counters = hubCounters(hub)
    assert "COOKIE" not in log, log
    assert counters["sent_cookie"] == 3, counters
    assert counters["drop_blocked_source"] == 1, counters
    assert counters["ike_sa_established"] == 1, counters
    assert counters["cookie_missing"] == 3 and "cookie_refused" not in counters, counters

