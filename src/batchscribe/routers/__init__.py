"""HTTP routes: thin handlers that parse a request, call a service and map the result."""
