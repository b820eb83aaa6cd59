"""What the HTTP layer needs from the event machinery, as a small interface.

The durable outbox runtime implements it; `DisabledEvents` stands in when no outbox is
configured (for example in unit tests of the HTTP layer).
"""

from __future__ import annotations

from typing import Any, Protocol

from batchscribe.models.request_context import RequestContext


class EventRecorder(Protocol):
    """Stores the completion event of a request for delivery; never raises."""

    def record(
        self, context: RequestContext, raw_transcript: str, cleaned_transcript: str
    ) -> dict[str, Any]: ...

    def readiness(self) -> dict[str, Any]: ...

    def event_status(self, interaction_id: str, tenant_id: str) -> dict[str, Any] | None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class DisabledEvents:
    """An EventRecorder that stores nothing and says so."""

    def record(
        self, context: RequestContext, raw_transcript: str, cleaned_transcript: str
    ) -> dict[str, Any]:
        return {"status": "disabled", "reason": "event publishing is not configured"}

    def readiness(self) -> dict[str, Any]:
        return {"ok": True, "publisher": "disabled"}

    def event_status(self, interaction_id: str, tenant_id: str) -> dict[str, Any] | None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None
