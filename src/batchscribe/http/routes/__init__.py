"""HTTP routes. Thin: parse, call a service, map the result."""
