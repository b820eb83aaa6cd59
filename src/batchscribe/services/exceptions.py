"""Errors of the service layer (what the routes call), mapped to HTTP in `http/errors.py`.

ServiceError
├── StorageUnavailableError    the database or the blob store cannot take the upload now
│                              (HTTP 503 `storage_unavailable`, Retry-After: try again)
└── ClientGoneError            the client of a synchronous request disconnected; its job
                               was cancelled and nobody is left to answer
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class of the service layer's errors."""


class StorageUnavailableError(ServiceError):
    """The upload could not be recorded (database or blob store down, full or read-only)."""

    retry_after = 10

    def __init__(self) -> None:
        super().__init__(
            "The service cannot store uploads right now (its storage is unavailable). Nothing "
            "was lost; send the upload again in a little while."
        )


class ClientGoneError(ServiceError):
    """The client disconnected while its synchronous request was being processed."""
