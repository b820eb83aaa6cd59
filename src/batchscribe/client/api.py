"""A small client of batchscribe's jobs API (httpx), for `batchscribe transcribe`.

It speaks to a server over HTTP only, like any other client: submit a recording with an
`Idempotency-Key`, follow the job, fetch its transcript in a format. Overload answers (429, 503)
and network failures are retried with a growing delay that honours `Retry-After` (capped), a
bounded number of times; every other refusal comes back as `ApiError` with the server's code
and sentence.
"""

from __future__ import annotations

import mimetypes
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import httpx

#: Overload answers and network failures: attempts before giving up on one request.
ATTEMPTS = 8
FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0


class ApiError(Exception):
    """The server refused a request (or could not be reached): `code` and its sentence."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Accepted:
    """The answer to a submission: the job and whether an Idempotency-Key named it."""

    job_id: str
    tenant_id: str
    status: str
    replayed: bool


class _CountingReader:
    """A file that reports how many bytes were read from it, for an upload's progress bar.

    `fileno`, `seek` and `tell` go to the real file, so httpx still sends a Content-Length.
    """

    def __init__(self, file: IO[bytes], on_read: Callable[[int], None]) -> None:
        self._file = file
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        if data:
            self._on_read(len(data))
        return data

    def fileno(self) -> int:
        return self._file.fileno()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        detail = body["error"]
        message, code = str(detail.get("message") or ""), str(detail.get("code") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        message, code = "", ""
    return ApiError(
        message or f"The server answered HTTP {response.status_code}.",
        status=response.status_code,
        code=code,
    )


def _retry_after(response: httpx.Response | None, delay: float) -> float:
    if response is not None:
        value = response.headers.get("Retry-After", "")
        if value.isdigit():
            return min(float(value), MAX_DELAY_SECONDS)
    return delay


class JobsClient:
    """The jobs API of one server (`url`), with an API key when the server wants one.

    `tenant` is sent as `X-Tenant-ID` (servers without API keys take the tenant from it);
    without one, each job is followed with the tenant the server gave it.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        tenant: str | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if tenant:
            headers["X-Tenant-ID"] = tenant
        self._http = client or httpx.Client(
            base_url=url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(60.0, connect=10.0),
        )
        if client is not None:
            self._http.headers.update(headers)
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def _request(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        """`send()` until it is not an overload answer or a network failure (bounded)."""
        delay = FIRST_DELAY_SECONDS
        for attempt in range(1, ATTEMPTS + 1):
            response: httpx.Response | None = None
            try:
                response = send()
            except httpx.TransportError as exc:
                if attempt == ATTEMPTS:
                    raise ApiError(
                        f"Cannot reach the server ({type(exc).__name__}). Check --url and that "
                        "batchscribe is running, then run the command again."
                    ) from exc
            else:
                if response.status_code not in (429, 502, 503, 504) or attempt == ATTEMPTS:
                    return response
            self._sleep(_retry_after(response, delay))
            delay = min(delay * 2, MAX_DELAY_SECONDS)
        raise AssertionError("unreachable")  # pragma: no cover

    def submit(
        self,
        path: Path,
        *,
        idempotency_key: str,
        language: str | None = None,
        on_upload: Callable[[int], None] | None = None,
    ) -> Accepted:
        """`POST /batch/jobs` with the file streamed from disk; each attempt re-reads it."""
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = {"language": language} if language else {}

        def send() -> httpx.Response:
            with path.open("rb") as raw:
                # httpx reads any object with read(); IO[bytes] is what its types say.
                file = cast(IO[bytes], _CountingReader(raw, on_upload)) if on_upload else raw
                return self._http.post(
                    "/batch/jobs",
                    files={"file": (path.name, file, content_type)},
                    data=data,
                    headers={"Idempotency-Key": idempotency_key},
                    timeout=httpx.Timeout(60.0, connect=10.0, write=300.0),
                )

        response = self._request(send)
        if response.status_code not in (200, 202):
            raise _error(response)
        body = response.json()
        return Accepted(
            job_id=str(body["job_id"]),
            tenant_id=str(body.get("tenant_id") or ""),
            status=str(body.get("status") or ""),
            replayed=response.headers.get("Idempotent-Replayed") == "true",
        )

    def job(self, job_id: str, tenant: str | None = None) -> Mapping[str, Any]:
        """`GET /batch/jobs/{job_id}`: the job's state, progress and (once completed) result."""
        response = self._request(
            lambda: self._http.get(f"/batch/jobs/{job_id}", headers=_tenant(tenant))
        )
        if response.status_code != 200:
            raise _error(response)
        body: Mapping[str, Any] = response.json()
        return body

    def transcript(self, job_id: str, fmt: str, tenant: str | None = None) -> str:
        """A completed job's transcript in `fmt` (text, srt, vtt, verbose_json)."""
        response = self._request(
            lambda: self._http.get(
                f"/batch/jobs/{job_id}", params={"format": fmt}, headers=_tenant(tenant)
            )
        )
        if response.status_code != 200:
            raise _error(response)
        return response.text


def _tenant(tenant: str | None) -> dict[str, str]:
    return {"X-Tenant-ID": tenant} if tenant else {}
