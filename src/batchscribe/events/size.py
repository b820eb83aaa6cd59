"""The EventBridge entry size rule, computed the way AWS documents it.

AWS counts the UTF-8 bytes of `Source`, `DetailType`, `Detail` and each `Resources` string, plus
14 bytes when `Time` is set; `EventBusName` and `TraceHeader` do not count. PutEvents refuses an
entry over 256 KiB, so an event over `EVENT_MAX_BYTES` is never sent blindly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EVENT_MAX_BYTES = 262144
TIME_FIELD_BYTES = 14


def _utf8_len(value: Any) -> int:
    return len(str(value).encode("utf-8")) if value is not None else 0


def entry_size(entry: Mapping[str, Any]) -> int:
    """Size in bytes of one PutEvents entry as AWS computes it."""
    size = sum(_utf8_len(entry.get(key)) for key in ("Source", "DetailType", "Detail"))
    size += sum(_utf8_len(resource) for resource in entry.get("Resources") or ())
    if entry.get("Time") is not None:
        size += TIME_FIELD_BYTES
    return size
