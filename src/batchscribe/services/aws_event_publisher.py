"""Seed name of the publisher; the home is `batchscribe.events.publisher`."""

from batchscribe.events.publisher import AWSEventPublisher

__all__ = ["AWSEventPublisher"]
