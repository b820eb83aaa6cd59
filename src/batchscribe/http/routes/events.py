"""`GET /events/{interaction_id}`: the delivery state of one event, for its own tenant only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from batchscribe.events.exceptions import OutboxError
from batchscribe.http.errors import error_response
from batchscribe.http.identity import get_request_context

router = APIRouter(tags=["events"])


@router.get(
    "/events/{interaction_id}",
    summary="Delivery state of one event",
    responses={
        404: {"description": "No such event for this tenant"},
        503: {"description": "The outbox cannot be read"},
    },
)
def get_event_status(interaction_id: str, request: Request) -> Any:
    """The event's status (queued/pending, sent, held, failed, too_large), attempts and times.

    Only the tenant that made the request sees it (X-Tenant-ID); any other tenant gets 404,
    the same answer as for an unknown id, so ids of other tenants cannot be probed.
    """
    context = get_request_context(request)
    runtime = request.app.state.events
    try:
        status = runtime.event_status(interaction_id[:64], context.tenant_id)
    except OutboxError:
        return error_response(
            request,
            503,
            "outbox_unavailable",
            "The event store cannot be read right now; try again shortly.",
        )
    if status is None:
        return error_response(
            request,
            404,
            "event_not_found",
            "No event with this interaction id for your tenant. Check the id and the "
            "X-Tenant-ID header you sent with the upload.",
        )
    return status
