"""Who made a request, and the id that follows it through logs, the response and the event."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Identity of one `/batch/process` request.

    `tenant_id` and `interaction_id` are always UUID v4 strings; `account_id` may be None.
    """

    tenant_id: str
    user_id: str
    account_id: str | None
    interaction_id: str
