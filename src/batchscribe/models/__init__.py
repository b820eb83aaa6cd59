"""The seed plan's model modules, kept importable under their original names.

`models.batch_event` re-exports the event schema from `batchscribe.events.schema` (the event's
one home); `models.request_context` re-exports `RequestContext` from `batchscribe.identity`.
"""
