"""Every domain error gets its status, code and headers from one table, by type."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from batchscribe.events.exceptions import EventNotFoundError, OutboxError
from batchscribe.http.errors import install_error_handlers
from batchscribe.http.exceptions import (
    TooManyUploadsError,
    UploadError,
    UploadStorageError,
    UploadTimeoutError,
    UploadTooLargeError,
)
from batchscribe.http.identity import InvalidHeaderError
from batchscribe.pipeline.exceptions import (
    EngineUnavailableError,
    InvalidAudioError,
    OverloadedError,
    TranscriptionError,
)


class QueueFullError(OverloadedError):
    """A new kind of overload, named differently: still an overload."""


CASES: dict[str, tuple[Exception, int, str, dict[str, str]]] = {
    "upload": (UploadError("Send a file.", code="missing_file"), 400, "missing_file", {}),
    "too large": (UploadTooLargeError("Too big."), 413, "file_too_large", {"connection": "close"}),
    "stalled body": (
        UploadTimeoutError("Stalled."),
        408,
        "upload_timeout",
        {"connection": "close"},
    ),
    "too many uploads": (
        TooManyUploadsError("Busy."),
        503,
        "too_many_uploads",
        {"retry-after": "10"},
    ),
    "header": (InvalidHeaderError("X-User-ID", "is too long"), 400, "invalid_header", {}),
    "audio": (InvalidAudioError("Not audio."), 422, "invalid_audio", {}),
    "engine failed": (
        TranscriptionError("Failed."),
        503,
        "transcription_failed",
        {"retry-after": "10"},
    ),
    "engine down": (
        EngineUnavailableError("Down.", retry_after=30),
        503,
        "engine_unavailable",
        {"retry-after": "30"},
    ),
    "overloaded": (
        OverloadedError("Busy.", retry_after=7),
        503,
        "overloaded",
        {"retry-after": "7"},
    ),
    "subclass of overloaded": (
        QueueFullError("Busy.", retry_after=5),
        503,
        "overloaded",
        {"retry-after": "5"},
    ),
    "event not found": (EventNotFoundError("x"), 404, "event_not_found", {}),
}


def _client(exc: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_error_gets_its_status_code_and_headers(case: str) -> None:
    exc, status, code, headers = CASES[case]
    response = _client(exc).get("/boom")
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": str(exc)}}
    for name, value in headers.items():
        assert response.headers[name] == value


def test_an_outbox_failure_is_503_without_paths_or_database_text() -> None:
    exc = OutboxError("Cannot read the outbox at /srv/secret/outbox.db: disk I/O error")
    response = _client(exc).get("/boom")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "outbox_unavailable"
    assert "/srv" not in error["message"]
    assert "disk I/O" not in error["message"]
    assert error["message"].endswith(".")


def test_a_full_upload_disk_is_503_storage_unavailable_without_paths() -> None:
    exc = UploadStorageError("cannot write an upload in /srv/uploads: [28] No space left")
    response = _client(exc).get("/boom")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    error = response.json()["error"]
    assert error["code"] == "storage_unavailable"
    assert "/srv" not in error["message"]
    assert "again" in error["message"]


def test_an_unmapped_error_is_a_generic_500() -> None:
    response = _client(RuntimeError("a bug with /srv/path")).get("/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "/srv" not in response.text
