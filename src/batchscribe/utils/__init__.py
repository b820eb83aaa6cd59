"""Small helpers shared by the HTTP layer."""
