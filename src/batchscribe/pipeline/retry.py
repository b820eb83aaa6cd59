"""Retry timing shared by the hosted engines (Deepgram, OpenAI-compatible servers).

Each engine retries overload answers (429, 5xx) and network failures a fixed number of times;
these helpers decide how long to wait between attempts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

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
