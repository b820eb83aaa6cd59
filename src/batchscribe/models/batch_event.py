"""Seed name of the event schema; the home is `batchscribe.events.schema`."""

from batchscribe.events.schema import (
    DETAIL_TYPE,
    SCHEMA_VERSION,
    BatchProcessingCompletedEvent,
    EventData,
)

__all__ = ["DETAIL_TYPE", "SCHEMA_VERSION", "BatchProcessingCompletedEvent", "EventData"]
