"""Durable delivery of `BatchProcessingCompleted` events: outbox, relay and their runtime.

The request path only writes the outbox (`EventsRuntime.record`); a background relay publishes
rows to EventBridge in batches and retries what can be retried.
"""
