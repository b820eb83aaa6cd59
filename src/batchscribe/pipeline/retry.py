"""Retry timing shared by the hosted engines (Deepgram, OpenAI-compatible servers).

Each engine retries overload answers (429, 5xx) and network failures a fixed number of times;
these helpers decide how long to wait between attempts.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

_T = TypeVar("_T")

DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_SECONDS = 1.0
# Never wait longer than this between two attempts, whatever the server's Retry-After says: the
# client is waiting for its HTTP response meanwhile.
MAX_BACKOFF_SECONDS = 10.0


def parse_retry_after(headers: Mapping[str, str]) -> int | None:
    """Whole seconds from a `Retry-After` header given in seconds (dates are ignored)."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds < 0:
        return None
    return int(seconds + 0.999)


def backoff_delay(attempt: int, base_seconds: float, retry_after: int | None = None) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first retry).

    Exponential (`base`, `2 * base`, ...) with up to 25 % jitter so parallel clients spread
    out; a server's `Retry-After` is honoured when it asks for longer, up to a cap.
    """
    delay = base_seconds * (2.0**attempt) * (1 + random.uniform(0, 0.25))
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return min(delay, MAX_BACKOFF_SECONDS)


class RetryableProblem(Exception):
    """Raised by one attempt to ask `RetryLoop.run` for another try.

    `problem` is a short description for the log and the final error (`HTTP 503`, `timeout`);
    `retry_after` is the server's `Retry-After` in seconds, when it sent one.
    """

    def __init__(self, problem: str, retry_after: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryLoop:
    """How one engine retries: `retries` extra attempts, `backoff_delay` from `backoff_seconds`
    between them (`sleep` is injectable so tests do not wait), each retry logged as a warning
    under `retry_message`. One loop, shared so each engine only says what one attempt is."""

    retries: int
    backoff_seconds: float
    sleep: Callable[[float], None]
    logger: logging.Logger
    retry_message: str

    def run(
        self,
        attempt: Callable[[], _T],
        exhausted: Callable[[str, int, int | None], Exception],
    ) -> _T:
        """Run `attempt` up to `retries + 1` times and return its first result.

        `attempt` raises `RetryableProblem` for a failure worth another try (overload,
        network); any other exception ends the loop at once. Each retry's warning carries the
        attempt number, the previous problem and the delay. When every attempt failed,
        `exhausted(last_problem, attempts, retry_after)` builds the error raised.
        """
        attempts = self.retries + 1
        last_problem = ""
        retry_after: int | None = None
        for number in range(attempts):
            if number:
                delay = backoff_delay(number - 1, self.backoff_seconds, retry_after)
                self.logger.warning(
                    self.retry_message,
                    extra={
                        "attempt": number + 1,
                        "problem": last_problem,
                        "delay_s": round(delay, 3),
                    },
                )
                self.sleep(delay)
            try:
                return attempt()
            except RetryableProblem as problem:
                last_problem, retry_after = problem.problem, problem.retry_after
        raise exhausted(last_problem, attempts, retry_after)
