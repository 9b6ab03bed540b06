"""
Named event counters: every dropped datagram is counted by reason, so an operator can see what an
attacker or a broken peer is doing without the hub logging each packet.
"""

from collections import Counter


class Counters:
    """
    A tally of named events. Reading an unknown name gives 0.
    """

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def increment(self, name: str, amount: int = 1) -> None:
        self._counts[name] += amount

    def __getitem__(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts)


class RateLimiter:
    """
    A token bucket on an injected clock: allows C{rate} events per second with bursts of C{burst}.
    Used for everything an unauthenticated sender can trigger (answers and log lines).
    """

    __slots__ = ("_clock", "_rate", "_burst", "_tokens", "_last")

    def __init__(self, clock, rate: float, burst: float | None = None) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = burst if burst is not None else max(rate, 1.0)
        self._tokens = self._burst
        self._last = clock.seconds()

    def allow(self) -> bool:
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
