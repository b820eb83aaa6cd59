"""Errors of the HTTP layer, each mapped to a status and a JSON body in one place (`errors.py`).

    RequestError
    ├── UploadError               400: no `file` field, empty file, unsupported extension,
    │                                  unknown or repeated form field, too many parts
    ├── ParameterError            400: an unknown query parameter, a bad `response_format`
    ├── ResultNotReadyError       409: a transcript format asked of a job that did not complete
    ├── ResultGoneError           410: ... of a job whose result was deleted (RETENTION_DAYS)
    ├── ModelNotFoundError        404: GET /v1/models/{model} of a model this server lacks
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
    """The upload is missing, empty, or not a kind of file or form we accept (HTTP 400).

    `param` names the form field at fault when there is one (OpenAI's error body shows it).
    """

    def __init__(
        self, message: str, code: str = "invalid_upload", *, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


class ParameterError(RequestError):
    """A query parameter or form value the endpoint does not accept (HTTP 400); the message
    names the accepted ones."""

    def __init__(self, message: str, code: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


class ResultNotReadyError(RequestError):
    """A transcript format (`?format=srt`) was asked of a job that has not completed (HTTP 409);
    the message says its status."""

    code = "result_not_ready"


class ResultGoneError(RequestError):
    """The job completed, but its result was deleted after RETENTION_DAYS (HTTP 410)."""

    code = "result_deleted"


class ModelNotFoundError(RequestError):
    """`GET /v1/models/{model}` named a model this server does not list (HTTP 404)."""

    code = "model_not_found"
    param = "model"


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
