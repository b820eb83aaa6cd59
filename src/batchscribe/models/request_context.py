"""Seed name of the request identity; the home is `batchscribe.identity`."""

from batchscribe.identity import RequestContext

__all__ = ["RequestContext"]
