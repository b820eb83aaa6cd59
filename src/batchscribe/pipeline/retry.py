"""The one retry policy of the hosted engines (Deepgram, OpenAI-compatible transcription and
LLM cleaning), built on tenacity.

An engine says what one attempt is and raises `RetryableProblem` for a failure worth another
try (429, 5xx, a network error); `RetryPolicy` decides how often and how long to wait:
`retries` more attempts (2 by default), exponential backoff from `first_delay` with up to one
`first_delay` of random jitter, raised to the server's `Retry-After` when it asks for longer,
and never more than `max_delay` between two attempts (the client is waiting for its HTTP
response meanwhile). Each retry logs one warning with the attempt number, the problem and the
delay; when every attempt failed, the engine's `exhausted` callback builds the error raised.
Tests make the delays tiny by passing a policy with small `first_delay` and `max_delay`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

_T = TypeVar("_T")

DEFAULT_RETRIES = 2
DEFAULT_FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 10.0
#: The hint given to the client when the server sent no `Retry-After` ("try in a minute").
DEFAULT_RETRY_AFTER_SECONDS = 60


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


class RetryableProblem(Exception):
    """Raised by one attempt to ask the policy for another try.

    `problem` is a short description for the log and the final error (`HTTP 503`, `timeout`);
    `retry_after` is the server's `Retry-After` in seconds, when it sent one.
    """

    def __init__(self, problem: str, retry_after: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


#: Builds the error raised when every attempt failed: (last problem, attempts, Retry-After).
Exhausted = Callable[[str, int, int | None], Exception]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a hosted engine retries; see the module docstring."""

    retries: int = DEFAULT_RETRIES
    first_delay: float = DEFAULT_FIRST_DELAY_SECONDS
    max_delay: float = MAX_DELAY_SECONDS

    def __post_init__(self) -> None:
        if self.retries < 0 or self.first_delay < 0 or self.max_delay < self.first_delay:
            raise ValueError("retries >= 0 and 0 <= first_delay <= max_delay")

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exponential = tenacity.wait_exponential(
            multiplier=self.first_delay, max=self.max_delay
        ) + tenacity.wait_random(0, self.first_delay)
        delay = float(exponential(state))
        problem = state.outcome.exception() if state.outcome is not None else None
        if isinstance(problem, RetryableProblem) and problem.retry_after is not None:
            delay = max(delay, float(problem.retry_after))
        return min(delay, self.max_delay)

    def _options(self, logger: logging.Logger, message: str, exhausted: Exhausted) -> Any:
        def log_retry(state: tenacity.RetryCallState) -> None:
            problem = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            logger.warning(
                message,
                extra={
                    "attempt": state.attempt_number + 1,
                    "problem": getattr(problem, "problem", type(problem).__name__),
                    "delay_s": round(delay, 3),
                },
            )

        def give_up(state: tenacity.RetryCallState) -> Any:
            problem = state.outcome.exception() if state.outcome is not None else None
            assert isinstance(problem, RetryableProblem)
            hint = problem.retry_after
            raise exhausted(
                problem.problem,
                state.attempt_number,
                hint if hint is not None else DEFAULT_RETRY_AFTER_SECONDS,
            ) from problem

        return {
            "stop": tenacity.stop_after_attempt(self.attempts),
            "wait": self._wait,
            "retry": tenacity.retry_if_exception_type(RetryableProblem),
            "before_sleep": log_retry,
            "retry_error_callback": give_up,
        }

    def call(
        self,
        attempt: Callable[[], _T],
        *,
        exhausted: Exhausted,
        logger: logging.Logger,
        message: str,
    ) -> _T:
        """Run `attempt` until it returns, raises something other than `RetryableProblem`, or
        the attempts run out (then `exhausted(...)` is raised). `message` is the retry log's."""
        retrying = tenacity.Retrying(**self._options(logger, message, exhausted))
        result: _T = retrying(attempt)
        return result

    async def call_async(
        self,
        attempt: Callable[[], Awaitable[_T]],
        *,
        exhausted: Exhausted,
        logger: logging.Logger,
        message: str,
    ) -> _T:
        """`call` for a coroutine function; waits with `asyncio.sleep` (cancellable)."""

        async def one_attempt() -> _T:
            # A coroutine function, so tenacity awaits it (a lambda returning a coroutine is not).
            return await attempt()

        retrying = tenacity.AsyncRetrying(**self._options(logger, message, exhausted))
        result: _T = await retrying(one_attempt)
        return result
