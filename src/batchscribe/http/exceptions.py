"""Errors of the HTTP layer, each mapped to a status and a JSON body in one place (`errors.py`).

    RequestError
    ├── UploadError               400: no `file` field, empty file, unsupported extension
    └── UploadTooLargeError       413: over MAX_UPLOAD_MB, counted while streaming

Pipeline errors (pipeline/exceptions.py) are mapped in the same place: 422 and 503.
"""

from __future__ import annotations


class RequestError(Exception):
    """Base class of errors caused by the request itself or the server's load."""

    code = "bad_request"


class UploadError(RequestError):
    """The upload is missing, empty, or not a kind of file we accept (HTTP 400)."""

    def __init__(self, message: str, code: str = "invalid_upload") -> None:
        super().__init__(message)
        self.code = code


class UploadTooLargeError(RequestError):
    """The body passed the size limit while it was being read (HTTP 413)."""

    code = "file_too_large"
