"""`GET /events/{interaction_id}`: the delivery state of one event, for its own tenant only."""

from __future__ import annotations

from fastapi import APIRouter

from batchscribe.http.deps import ContextDep, EventsDep
from batchscribe.http.schemas import ErrorResponse, EventStatusResponse

router = APIRouter(tags=["events"])


@router.get(
    "/events/{interaction_id}",
    response_model=EventStatusResponse,
    summary="Delivery state of one event",
    responses={
        400: {"model": ErrorResponse, "description": "A bad identity header"},
        404: {"model": ErrorResponse, "description": "No such event for this tenant"},
        503: {"model": ErrorResponse, "description": "The outbox cannot be read"},
    },
)
def get_event_status(
    interaction_id: str, context: ContextDep, events: EventsDep
) -> EventStatusResponse:
    """The event's status (pending, sending, sent, held, failed, too_large), attempts and times.

    Only the tenant that made the request sees it (X-Tenant-ID); any other tenant gets 404,
    the same answer as for an unknown id, so ids of other tenants cannot be probed.
    """
    # Sync on purpose: the outbox is SQLite, so FastAPI runs this in its thread pool.
    status = events.event_status(interaction_id[:64], context.tenant_id)
    return EventStatusResponse.model_validate(status)
