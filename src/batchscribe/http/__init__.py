"""The HTTP layer: app factory, dependencies, upload streaming, error mapping."""
