"""JSON-lines logging on stdout, each record carrying the current interaction id.

Transcript text and credentials must never reach a log: callers log lengths, and the formatter
only serialises the message plus the `extra` fields it is given.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

interaction_id_var: ContextVar[str | None] = ContextVar("interaction_id", default=None)

# Attributes every LogRecord has; anything else came from `extra=` and is logged as a field.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


# uvicorn adds an ANSI-coloured copy of its message; JSON readers do not want it.
_DROPPED = frozenset({"color_message"})


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        interaction_id = getattr(record, "interaction_id", None) or interaction_id_var.get()
        if interaction_id:
            payload["interaction_id"] = interaction_id
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in payload and key not in _DROPPED:
                payload[key] = value
        if record.exc_info:
            payload["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            payload["stack"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Route all logging to stdout as JSON lines. Safe to call more than once."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_batchscribe", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler._batchscribe = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in (
        "botocore",
        "boto3",
        "urllib3",
        "httpx",
        "httpx2",
        "httpcore",
        "openai",
        "werkzeug",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's access log would duplicate our request log line; keep its errors.
    logging.getLogger("uvicorn.access").disabled = True
