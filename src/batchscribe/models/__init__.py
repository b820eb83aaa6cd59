"""Data models shared across layers: the request identity and the published event."""
