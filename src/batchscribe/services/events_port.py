"""What the HTTP layer needs from the event machinery, as a small interface.

`batchscribe.events.runtime.EventsRuntime` implements it; tests of the HTTP layer inject
stand-ins.
"""

from __future__ import annotations

from typing import Any, Protocol

from batchscribe.identity import RequestContext


class EventRecorder(Protocol):
    """Stores the completion event of a request for delivery; never raises."""

    def record(
        self, context: RequestContext, raw_transcript: str, cleaned_transcript: str
    ) -> dict[str, Any]: ...

    def readiness(self) -> dict[str, Any]: ...

    def event_status(self, interaction_id: str, tenant_id: str) -> dict[str, Any]:
        """The delivery state of one event of this tenant; raises `EventNotFoundError` when
        there is none (another tenant's included) and `OutboxError` when it cannot be read."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...
