"""HTTP routes: thin functions that parse, call a service and map the result."""
