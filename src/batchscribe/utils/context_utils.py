"""Seed name of identity extraction; the home is `batchscribe.http.identity`."""

from batchscribe.http.identity import get_request_context

__all__ = ["get_request_context"]
