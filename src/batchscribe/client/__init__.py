"""Clients of a running batchscribe over HTTP: `batchscribe transcribe` and the small jobs API
client it uses. Nothing here imports the server's own packages."""
