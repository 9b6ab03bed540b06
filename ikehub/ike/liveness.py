"""
Dead peer detection and the hub's own IKE SA rekeys (RFC 7296 sections 2.4 and 2.8), on one timer.

A peer that has sent nothing for C{dpdDelay} seconds (no IKE message and no ESP packet on any of
its CHILD SAs) is sent an empty INFORMATIONAL request. It is retransmitted with the usual backoff,
and a peer that never answers is declared dead: its IKE SA, CHILD SAs and address leases go (the
retransmission code in the endpoint does that for any unanswered request). ESP counts as life, so
a busy tunnel costs no IKE traffic at all.

One periodic sweep over the established IKE SAs serves every peer, rather than a timer per SA:
tens of thousands of SAs cost one pass every few seconds, and the handshake path arms nothing.
The same sweep starts the hub's own IKE SA rekeys once an SA's rekey time (with jitter, read from
its SPI) has come.
"""

from ikehub.ike.sa import IKESA, IKEState
from ikehub.wire.constants import ExchangeType

#: The longest gap between two sweeps, in seconds.
MAX_SWEEP_INTERVAL = 5.0
#: The largest fraction by which an IKE SA's rekey time is shortened (jitter).
REKEY_JITTER = 0.1


class LivenessChecks:
    """
    Mixed into L{ikehub.ike.endpoint.IKEEndpoint}.
    """

    _livenessCall = None

    def _sweepInterval(self) -> float | None:
        settings = self.settings
        wanted = [t for t in (settings.dpdDelay, settings.ikeRekeyTime) if t > 0]
        if not wanted:
            return None
        return max(0.2, min(MAX_SWEEP_INTERVAL, min(wanted) / 3))

    def startLiveness(self) -> None:
        interval = self._sweepInterval()
        if interval is not None and self._livenessCall is None:
            self._livenessCall = self.clock.callLater(interval, self._livenessSweep)

    def stopLiveness(self) -> None:
        call = self._livenessCall
        if call is not None and call.active():
            call.cancel()
        self._livenessCall = None

    def _livenessSweep(self) -> None:
        self._livenessCall = None
        now = self.clock.seconds()
        dpdDelay = self.settings.dpdDelay
        rekeyTime = self.settings.ikeRekeyTime
        for sa in list(self.sas.values()):
            if sa.state is not IKEState.ESTABLISHED:
                continue
            if rekeyTime > 0:
                if sa.rekeyAt is None:
                    spread = int.from_bytes(sa.localSpi[:4], "big") / 0xFFFFFFFF
                    sa.rekeyAt = sa.createdAt + rekeyTime * (1.0 - REKEY_JITTER * spread)
                if now >= sa.rekeyAt and sa.ikeRekey is None:
                    # Should this attempt fail, the next comes a minute or two later.
                    sa.rekeyAt = now + self._retryDelay(sa.localSpi) * 6
                    self.rekeyIkeSa(sa)
                    continue
            if dpdDelay > 0 and sa.pending is None:
                self._checkLiveness(sa, now, dpdDelay)
        self.startLiveness()

    def _espPacketsIn(self, sa: IKESA) -> int:
        total = 0
        bySpi = self.sad.bySpi
        for child in sa.children:
            espSa = bySpi.get(child.inboundSpi)
            if espSa is not None:
                total += espSa.packetsIn
        return total

    def _checkLiveness(self, sa: IKESA, now: float, dpdDelay: float) -> None:
        seen = self._espPacketsIn(sa)
        if seen != sa.espSeen:
            sa.espSeen = seen
            sa.lastHeard = now
            return
        if now - sa.lastHeard < dpdDelay:
            return
        self.counters.increment("dpd_sent")
        self.sendRequest(sa, ExchangeType.INFORMATIONAL, [], _alive)


def _alive(sa, header, payloads, data, peer, path) -> None:
    """The peer answered a liveness check; the endpoint noted when it heard from it."""
