"""Errors of the HTTP layer, each mapped to a status and a JSON body in one place (`errors.py`).

    RequestError
    ├── UploadError               400: no `file` field, empty file, unsupported extension,
    │                                  unknown or repeated form field, too many parts
    ├── UploadTooLargeError       413: body over MAX_UPLOAD_MB, counted while streaming
    ├── UploadTimeoutError        408: body stalled (UPLOAD_IDLE_TIMEOUT_SECONDS) or too slow
    │                                  (UPLOAD_TIMEOUT_SECONDS)
    ├── TooManyUploadsError       503: MAX_CONCURRENT_UPLOADS uploads already being read
    └── UploadStorageError        503: the upload cannot be written (disk full, unwritable)

Pipeline errors (pipeline/exceptions.py) are mapped in the same place: 422 and 503.
"""

from __future__ import annotations


class RequestError(Exception):
    """Base class of errors caused by the request itself or the server's load."""

    code = "bad_request"


class UploadError(RequestError):
    """The upload is missing, empty, or not a kind of file or form we accept (HTTP 400)."""

    def __init__(self, message: str, code: str = "invalid_upload") -> None:
        super().__init__(message)
        self.code = code


class UploadTooLargeError(RequestError):
    """The body passed the size limit while it was being read (HTTP 413)."""

    code = "file_too_large"


class UploadTimeoutError(RequestError):
    """The body stopped arriving, or arrived too slowly to finish in time (HTTP 408)."""

    code = "upload_timeout"


class TooManyUploadsError(RequestError):
    """This process is already reading as many uploads as it allows (HTTP 503)."""

    code = "too_many_uploads"
    retry_after = 10


class UploadStorageError(RequestError):
    """The upload could not be written to the upload directory (HTTP 503). Its text, which
    names the path and the OS error, is for the log; the client gets a fixed sentence."""

    code = "storage_unavailable"
    retry_after = 30
