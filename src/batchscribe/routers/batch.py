"""Seed name of the batch route; the home is `batchscribe.http.routes.batch`."""

from batchscribe.http.routes.batch import process_batch_audio, router

__all__ = ["process_batch_audio", "router"]
