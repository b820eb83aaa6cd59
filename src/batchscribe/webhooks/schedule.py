"""When a webhook delivery is attempted again, and when it stops.

A delivery is a schedule stored in the database (each row's `next_attempt_at` and `give_up_at`,
kept across restarts), not a request retry: every attempt is one POST. The default schedule
(`CALLBACK_RETRY_DELAYS`, `CALLBACK_RETRY_WINDOW_SECONDS`) spaces attempts out as the receiver
stays down, and makes the last one at the end of the 24-hour window:

    attempt  1    2    3     4           5            6            7
    after    0 s  5 s  35 s  2 min 35 s  12 min 35 s  42 min 35 s  1 h 42 min
    attempt  8           9           10           11           12
    after    3 h 42 min  7 h 42 min  13 h 42 min  21 h 42 min  24 h

Each delay gets +/-10 % jitter so deliveries that failed together (a receiver's outage) do not
all come back in the same second. A receiver's `Retry-After` (429, 503) pushes the next
attempt later, up to an hour, never earlier. After the attempt at the end of the window fails,
the delivery is `failed`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DEFAULT_DELAYS: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 21600, 28800)
DEFAULT_WINDOW_SECONDS = 86400.0
#: A receiver's Retry-After is honoured up to this many seconds.
MAX_RETRY_AFTER_SECONDS = 3600.0


@dataclass(frozen=True)
class RetrySchedule:
    """Delays between attempts (the last one repeats) and the window retries stay within."""

    delays: tuple[float, ...] = DEFAULT_DELAYS
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not self.delays or any(delay <= 0 for delay in self.delays):
            raise ValueError("a retry schedule needs at least one delay, each above 0")
        if self.window_seconds <= 0:
            raise ValueError("the retry window must be above 0")

    def next_attempt_at(
        self,
        failed_attempts: int,
        now: float,
        give_up_at: float,
        retry_after: float | None = None,
    ) -> float | None:
        """When to try again after `failed_attempts` (1-based) attempts failed, or None when the
        window is over. An attempt that would fall after `give_up_at` happens at `give_up_at`."""
        if now >= give_up_at:
            return None
        delay = self.delays[min(max(failed_attempts, 1), len(self.delays)) - 1]
        delay *= random.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return min(now + delay, give_up_at)

    def planned_offsets(self) -> list[float]:
        """Seconds from the first attempt to each attempt, without jitter (the documented
        schedule; every attempt failing)."""
        offsets = [0.0]
        while offsets[-1] < self.window_seconds:
            delay = self.delays[min(len(offsets), len(self.delays)) - 1]
            offsets.append(min(offsets[-1] + delay, self.window_seconds))
        return offsets
