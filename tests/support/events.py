"""Helpers for event tests: waiting, metrics, faulty clients, direct outbox rows."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError
from prometheus_client import REGISTRY

from batchscribe.events.entry import build_completed_entry
from batchscribe.events.outbox import Outbox, OutboxStatus
from batchscribe.identity import RequestContext

# The top-level fields of the published detail, spelled out here (not read from the model) so a
# field dropped or renamed in the model fails the tests.
DETAIL_FIELDS = frozenset(
    {
        "version",
        "interaction_id",
        "tenant_id",
        "user_id",
        "account_id",
        "timestamp",
        "status",
        "data",
    }
)


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll `predicate` until true or the timeout; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def add_rows(
    outbox: Outbox,
    count: int,
    source: str,
    *,
    tenant_id: str | None = None,
    detail: str | None = None,
    bus: str = "default",
    status: OutboxStatus = OutboxStatus.PENDING,
) -> list[str]:
    """Write `count` valid completed events straight into the outbox (as a worker of another
    process would); `detail` replaces the entry's Detail, `bus` its EventBusName."""
    ids = []
    tenant = tenant_id or str(uuid.uuid4())
    for _ in range(count):
        iid = str(uuid.uuid4())
        built = build_completed_entry(
            RequestContext(tenant, "u", None, iid),
            "SPEAKER_0: hi",
            "Hi.",
            source=source,
            bus_name=bus,
        )
        if detail is not None:
            built = dataclasses.replace(built, entry={**built.entry, "Detail": detail})
        outbox.insert(built, status=status, raw_len=13, cleaned_len=3)
        ids.append(iid)
    return ids


class FaultyClient:
    """Wraps a real `events` client; the first calls misbehave as scripted, then it passes.

    Script items: "throttle" / "internal" (every entry fails with that per-entry code),
    "call-throttle" (the whole call raises ThrottlingException), "network" (connection error).
    Used only for faults the emulator cannot produce.
    """

    def __init__(self, real: Any, script: list[str]) -> None:
        self.real = real
        self.meta = real.meta
        self.script = list(script)
        self.calls: list[int] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        action = self.script.pop(0) if self.script else None
        if action in ("throttle", "internal"):
            code = "ThrottlingException" if action == "throttle" else "InternalFailure"
            return {
                "FailedEntryCount": len(Entries),
                "Entries": [{"ErrorCode": code, "ErrorMessage": "try later"}] * len(Entries),
            }
        if action == "call-throttle":
            raise ClientError(
                {
                    "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "PutEvents",
            )
        if action == "network":
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return dict(self.real.put_events(Entries=Entries))

    def close(self) -> None:
        self.real.close()
