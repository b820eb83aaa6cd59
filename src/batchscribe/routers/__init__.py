"""The seed plan's router module, kept importable under its original name; the routes live in
`batchscribe.http.routes`."""
