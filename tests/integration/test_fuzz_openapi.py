"""Bad input never breaks the service (SPEC section 10).

1. schemathesis generates requests from the app's own OpenAPI document (valid and invalid
   bodies, parameters and headers) and sends them to a real server process: no 5xx, and every
   response matches its documented status, content type and schema.
2. Header attacks that HTTP clients refuse to send (CR/LF inside `X-User-ID`, NUL, folding,
   bytes that are not UTF-8, a 10 kB value) go over a raw socket: each gets a 4xx JSON error and
   the server stays up.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from batchscribe.config import Settings
from batchscribe.http.app import create_app
from testkit.server import ServerProcess

pytestmark = pytest.mark.slow

IDENTITY_HEADERS = ("X-Tenant-ID", "X-User-ID", "X-Account-ID")


#: The operations that read the caller's identity from the request headers.
IDENTITY_OPERATIONS = (
    ("/batch/process", "post"),
    ("/batch/jobs", "post"),
    ("/batch/jobs", "get"),
    ("/batch/jobs/{job_id}", "get"),
    ("/batch/jobs/{job_id}", "delete"),
    ("/events/{interaction_id}", "get"),
)


def _documented_schema() -> dict[str, Any]:
    """The app's OpenAPI document, with the identity headers of SPEC section 2 declared on the
    operations that read them (the routes read them from the request, so FastAPI does not list
    them) so that schemathesis fuzzes them too."""
    document = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    for path, method in IDENTITY_OPERATIONS:
        operation = document["paths"][path][method]
        declared = {p["name"].lower() for p in operation.get("parameters", [])}
        for name in IDENTITY_HEADERS:
            if name.lower() not in declared:
                operation.setdefault("parameters", []).append(
                    {"name": name, "in": "header", "required": False, "schema": {"type": "string"}}
                )
    return document


schema = schemathesis.openapi.from_dict(_documented_schema())

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("fuzz")
    env = {
        "WORKERS": "1",
        "MAX_QUEUED": "4",
        "MAX_UPLOAD_MB": "1",
        "DATABASE_URL": f"sqlite:///{tmp / 'app.db'}",
        "BLOB_STORE": f"file://{tmp / 'blobs'}",
    }
    with ServerProcess(env, tmp / "server.log") as process:
        yield process


def _interaction_header(ctx: CheckContext, response: Any, case: schemathesis.Case) -> bool:
    """Every answer of `POST /batch/process` carries `X-Interaction-ID` (SPEC section 1)."""
    names = {name.lower() for name in response.headers}
    method = str(response.request.method).upper()
    if (
        case.operation.path == "/batch/process"
        and method == "POST"
        and "x-interaction-id" not in names
    ):
        raise AssertionError("POST /batch/process answered without an X-Interaction-ID header")
    return True


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_openapi_operations_never_5xx_and_match_their_schema(
    case: schemathesis.Case, server: ServerProcess
) -> None:
    case.call_and_validate(
        base_url=server.url,
        checks=CHECKS,
        additional_checks=[_interaction_header],
        timeout=60,
    )


# -- header attacks over a raw socket ---------------------------------------------------------

_BODY = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n'
    b"Content-Type: audio/wav\r\n\r\n"
    b"RIFF\x00\x00\x00\x00WAVE\r\n"
    b"--XyZ--\r\n"
)

HEADER_ATTACKS: dict[str, bytes] = {
    "CR LF inside X-User-ID (response splitting)": b"X-User-ID: alice\r\nSet-Cookie: x=1\r\n\r\n",
    "bare CR inside X-User-ID": b"X-User-ID: alice\rX-Injected: 1\r\n",
    "bare LF inside X-User-ID": b"X-User-ID: alice\nX-Injected: 1\r\n",
    "folded X-User-ID (obs-fold)": b"X-User-ID: alice\r\n X-Injected: 1\r\n",
    "NUL inside X-User-ID": b"X-User-ID: al\x00ice\r\n",
    "DEL inside X-User-ID": b"X-User-ID: al\x7fice\r\n",
    "TAB inside X-User-ID": b"X-User-ID: al\tice\r\n",
    "10 kB X-User-ID": b"X-User-ID: " + b"u" * 10240 + b"\r\n",
    "10 kB X-Tenant-ID": b"X-Tenant-ID: " + b"t" * 10240 + b"\r\n",
    "X-User-ID bytes not UTF-8": b"X-User-ID: \xff\xfe\xfdalice\r\n",
    "X-Tenant-ID bytes not UTF-8": b"X-Tenant-ID: \xc3\x28\r\n",
    "X-Account-ID truncated UTF-8": b"X-Account-ID: acct-\xe2\x82\r\n",
    "header name with a space": b"X-User ID: alice\r\n",
    "U+2028 line separator in X-User-ID": "X-User-ID: al\u2028ice\r\n".encode(),
}


def raw_request(port: int, extra_headers: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one POST /batch/process with `extra_headers` verbatim; return status, headers, body."""
    request = (
        b"POST /batch/process HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=XyZ\r\n"
        + extra_headers
        + b"Content-Length: "
        + str(len(_BODY)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + _BODY
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


@pytest.mark.parametrize("attack", list(HEADER_ATTACKS), ids=list(HEADER_ATTACKS))
def test_header_attack_gets_a_4xx_json_error_and_the_server_stays_up(
    server: ServerProcess, attack: str
) -> None:
    status, headers, body = raw_request(server.port, HEADER_ATTACKS[attack])
    assert 400 <= status < 500, (status, body[:200])
    assert headers.get("content-type") == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] in {"invalid_header", "malformed_request"}
    assert error["message"].endswith(".")
    assert "set-cookie" not in headers
    assert "x-injected" not in headers
    assert server.proc is not None
    assert server.proc.poll() is None
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


def test_log_of_a_bad_header_is_escaped(server: ServerProcess) -> None:
    """A rejected header value never reaches the log raw: each log line stays one JSON line."""
    raw_request(server.port, b"X-Tenant-ID: not-a-uuid\x1b[31mred\r\n")
    for line in Path(server.log_path).read_text(errors="replace").splitlines():
        if line.startswith("{"):
            json.loads(line)
            assert "\x1b" not in line
