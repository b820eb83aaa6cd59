"""The attack corpus (SPEC sections 10 and 11): hostile and broken clients against a real server
process, each refused the way the limits table says while an honest upload sent meanwhile is
still transcribed (200).

The servers run with small limits set through the environment (1 MB bodies, 2 s header and
idle timeouts, 8 s per body) so every case is bounded in bytes and seconds. Slow clients send
their next byte every half second: more often than any timeout, so only the limits of the whole
head or the whole body can stop them.
"""

from __future__ import annotations

import itertools
import json
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from testkit.server import ServerProcess
from tests.support.attacks import (
    BOUNDARY,
    HonestUpload,
    SlowClient,
    SlowFleet,
    closing_boundary,
    connect,
    multipart_head,
    request_head,
    stream_until_refused,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPEECH = (FIXTURES / "speech_short.wav").read_bytes()
SLOTS = 3  # WORKERS=1 + MAX_QUEUED=2
HEADER_TIMEOUT = 2.0
IDLE_TIMEOUT = 2.0
BODY_TIMEOUT = 8.0
TRICKLE = 0.5  # seconds between two bytes of a slow client


def corpus_env(tmp: Path, **overrides: str) -> dict[str, str]:
    env = {
        "WORKERS": "1",
        "MAX_QUEUED": str(SLOTS - 1),
        "MAX_UPLOAD_MB": "1",
        "HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT),
        "UPLOAD_IDLE_TIMEOUT_SECONDS": str(IDLE_TIMEOUT),
        "UPLOAD_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
        "MAX_CONCURRENT_UPLOADS": "8",
        "DATABASE_URL": f"sqlite:///{tmp / 'app.db'}",
        "BLOB_STORE": f"file://{tmp / 'blobs'}",
        "UPLOAD_DIR": str(tmp / "uploads"),
    }
    return {**env, **overrides}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("corpus")
    with ServerProcess(corpus_env(tmp), tmp / "server.log") as process:
        yield process


def upload_dir(server: ServerProcess) -> Path:
    return Path(server.env["UPLOAD_DIR"])


def assert_transcribed(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["raw_transcript"].startswith("SPEAKER_0:")


def error_code(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


# -- request heads ---------------------------------------------------------------------------


@pytest.mark.slow
def test_trickled_heads_are_closed_while_honest_uploads_are_served(
    server: ServerProcess,
) -> None:
    # More connections than transcription slots and than MAX_CONCURRENT_UPLOADS (8).
    never_ending = b"POST /batch/process HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000
    clients = [
        SlowClient.open(server.port, never_ending[:10], never_ending[10:]) for _ in range(12)
    ]
    with SlowFleet(clients, interval=TRICKLE, give_up=15 * HEADER_TIMEOUT) as fleet:
        honest = HonestUpload(server.url, SPEECH).start()
        assert_transcribed(honest.response())
    for client in fleet.wait():
        assert client.closed, "a connection trickling its head must be closed"
        assert client.response.status is None  # closed without an answer
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


@pytest.mark.slow
def test_an_oversize_header_and_a_header_flood_are_431_with_bounded_memory(
    server: ServerProcess, record_property: pytest.RecordProperty
) -> None:
    assert server.proc is not None
    process = psutil.Process(server.proc.pid)
    before = process.memory_info().rss
    peak = before
    sampling = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not sampling.is_set():
            peak = max(peak, process.memory_info().rss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    honest = HonestUpload(server.url, SPEECH).start()

    # One header of up to 150 MB, in 64 kB pieces: the server refuses it after 16 kB.
    sock = connect(server.port)
    sock.sendall(b"POST /batch/process HTTP/1.1\r\nHost: x\r\nX-Big: ")
    big_sent, big = stream_until_refused(
        sock, itertools.repeat(b"a" * 65536), max_bytes=150 * 1024 * 1024
    )
    sock.close()
    # 100,000 small headers (1.3 MB).
    sock = connect(server.port)
    flood = b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))
    pieces = (flood[i : i + 65536] for i in range(0, len(flood), 65536))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    flood_sent, flooded = stream_until_refused(sock, pieces, max_bytes=len(flood))
    sock.close()

    assert_transcribed(honest.response())
    sampling.set()
    sampler.join()
    after = process.memory_info().rss
    mib = 1024 * 1024
    figures = {
        "rss_before_mib": round(before / mib, 1),
        "rss_peak_mib": round(peak / mib, 1),
        "rss_after_mib": round(after / mib, 1),
        "big_header_bytes_sent": big_sent,
        "flood_bytes_sent": flood_sent,
    }
    for name, value in figures.items():
        record_property(name, value)
    print("header attack figures:", figures)

    for answer in (big, flooded):
        assert answer.status == 431
        assert answer.headers["content-type"] == "application/json"
        assert error_code(answer.body) == "headers_too_large"
    # The server stopped reading: most of the 150 MB was never sent.
    assert big_sent < 32 * mib
    # Nothing of the attack was buffered: the process did not grow by what was sent
    # (an unbounded parser grew by 280 MB for one such header).
    assert peak - before < 32 * mib


# -- request bodies --------------------------------------------------------------------------


def slow_body(server: ServerProcess, trickle: bool) -> SlowClient:
    """A well-formed upload whose body then trickles one byte per tick, or stalls."""
    body_start = multipart_head() + SPEECH[:1000]
    opening = request_head(server.port, len(multipart_head()) + len(SPEECH) + 64) + body_start
    return SlowClient.open(server.port, opening, SPEECH[1000:], step=1 if trickle else 0)


@pytest.mark.slow
def test_slow_bodies_are_cut_by_the_body_timeouts(server: ServerProcess) -> None:
    stalled = [slow_body(server, trickle=False) for _ in range(2)]
    trickling = [slow_body(server, trickle=True) for _ in range(SLOTS)]
    with SlowFleet(stalled + trickling, interval=TRICKLE, give_up=4 * BODY_TIMEOUT) as fleet:
        fleet.wait()

    answers = [client.response for client in stalled + trickling]
    assert all(client.closed for client in stalled + trickling), "every slow body is cut"
    timed_out = [a for a in answers if a.status == 408]
    # The server took every slow upload it admitted as far as the timeouts, and said why.
    assert len(timed_out) >= SLOTS
    for client in stalled:
        if client.response.status == 408:
            assert b"No data arrived" in client.response.body
    for client in trickling:
        if client.response.status == 408:
            assert b"took longer than" in client.response.body
    for answer in answers:
        assert answer.status in (408, 503), answer
        if answer.status == 408:
            assert error_code(answer.body) == "upload_timeout"
            assert answer.headers["connection"] == "close"
        else:  # refused at once while the others held the engine slots
            assert int(answer.headers["retry-after"]) > 0
    # What they held is free again, and nothing of them is left on disk.
    honest = HonestUpload(server.url, SPEECH).start()
    assert_transcribed(honest.response())
    assert list(upload_dir(server).iterdir()) == []


@pytest.mark.slow
def test_an_honest_upload_is_served_while_slow_bodies_outnumber_the_slots(
    server: ServerProcess,
) -> None:
    clients = [slow_body(server, trickle=True) for _ in range(SLOTS + 1)]
    with SlowFleet(clients, interval=TRICKLE, give_up=4 * BODY_TIMEOUT):
        time.sleep(2 * TRICKLE)  # they are all in the middle of their bodies
        honest = HonestUpload(server.url, SPEECH).start()
        assert_transcribed(honest.response())


def test_bytes_after_the_closing_boundary_count_against_the_limit(server: ServerProcess) -> None:
    honest = HonestUpload(server.url, SPEECH).start()
    form = multipart_head() + SPEECH + closing_boundary()
    # A valid small upload followed by up to 8 MB of epilogue (the limit is 1 MB), chunked so
    # that no Content-Length announces it.
    sock = connect(server.port)
    sock.sendall(request_head(server.port, None, b"Transfer-Encoding: chunked\r\n"))

    def chunked() -> Iterator[bytes]:
        yield b"%x\r\n%s\r\n" % (len(form), form)
        for _ in range(128):
            yield b"%x\r\n%s\r\n" % (65536, b"x" * 65536)

    sent, answer = stream_until_refused(sock, chunked(), max_bytes=9 * 1024 * 1024)
    sock.close()
    assert answer.status == 413
    assert error_code(answer.body) == "file_too_large"
    assert answer.headers["connection"] == "close"
    assert sent < 8 * 1024 * 1024, "the server stops reading at the limit"
    assert_transcribed(honest.response())
    # A few bytes of epilogue within the limit are fine.
    small = httpx.post(
        server.url + "/batch/process",
        content=form + b"\r\n" * 8,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=120,
    )
    assert_transcribed(small)


@pytest.mark.parametrize(
    ("extra_name", "code"), [("x", "unknown_field"), ("file", "duplicate_field")]
)
def test_extra_form_parts_are_refused_at_the_first_one(
    server: ServerProcess, extra_name: str, code: str
) -> None:
    honest = HonestUpload(server.url, SPEECH).start()
    sock = connect(server.port)
    sock.sendall(request_head(server.port, None, b"Transfer-Encoding: chunked\r\n"))

    def parts() -> Iterator[bytes]:
        first = multipart_head() + SPEECH + b"\r\n"
        yield b"%x\r\n%s\r\n" % (len(first), first)
        for i in range(3000):  # 3,000 parts of 60 kB (180 MB) if nothing stopped them
            part = multipart_head(f"part{i}.wav", extra_name) + b"p" * 60_000 + b"\r\n"
            yield b"%x\r\n%s\r\n" % (len(part), part)

    sent, answer = stream_until_refused(sock, parts(), max_bytes=200 * 1024 * 1024)
    sock.close()
    assert answer.status == 400
    assert error_code(answer.body) == code
    if code == "unknown_field":  # the answer names the fields this endpoint accepts
        assert (
            "Send only: `file`, `language`, `response_format`."
            in json.loads(answer.body)["error"]["message"]
        )
    assert sent < 8 * 1024 * 1024
    assert_transcribed(honest.response())


# -- identity and origin ---------------------------------------------------------------------


@pytest.mark.parametrize("header", ["X-Tenant-ID", "X-User-ID", "X-Account-ID"])
def test_identity_headers_sent_twice_are_400(server: ServerProcess, header: str) -> None:
    honest = HonestUpload(server.url, SPEECH).start()
    response = httpx.post(
        server.url + "/batch/process",
        files={"file": ("speech.wav", SPEECH, "audio/wav")},
        headers=[
            (header, "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"),
            (header, "0b5f8a59-5c1e-4a43-8f7a-0f3c4e0f1b2d"),
        ],
        timeout=60,
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_header",
        "message": f"Header {header} was sent more than once. Send it once.",
    }
    assert response.headers["x-interaction-id"]
    assert_transcribed(honest.response())


def test_a_post_from_another_site_is_403_and_the_own_page_still_works(
    server: ServerProcess,
) -> None:
    honest = HonestUpload(server.url, SPEECH).start()  # no Origin, like curl
    files = {"file": ("speech.wav", SPEECH, "audio/wav")}
    evil = httpx.post(
        server.url + "/batch/process",
        files=files,
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        timeout=60,
    )
    assert evil.status_code == 403
    assert evil.json()["error"]["code"] == "cross_origin_forbidden"
    # The service's own page posts with its own origin.
    assert httpx.get(server.url + "/", timeout=10).status_code == 200
    own = httpx.post(
        server.url + "/batch/process", files=files, headers={"Origin": server.url}, timeout=120
    )
    assert_transcribed(own)
    assert_transcribed(honest.response())


# -- the server's own storage ----------------------------------------------------------------


@pytest.mark.slow
def test_a_server_killed_mid_upload_leaves_no_temp_file_after_restart(tmp_path: Path) -> None:
    env = corpus_env(tmp_path, UPLOAD_IDLE_TIMEOUT_SECONDS="120", UPLOAD_TIMEOUT_SECONDS="120")
    uploads = tmp_path / "uploads"
    first = ServerProcess(env, tmp_path / "first.log").start()
    try:
        client = slow_body(first, trickle=False)
        for _ in range(100):
            if any(uploads.iterdir()):
                break
            time.sleep(0.1)
        left = list(uploads.iterdir())
        assert len(left) == 1, "the upload is being written to its temporary file"
    finally:
        first.kill()  # SIGKILL, like a container being killed mid-upload
    client.sock.close()
    assert left[0].exists(), "a killed server cannot clean up after itself"

    with ServerProcess(env, tmp_path / "second.log") as second:
        assert not left[0].exists(), "the next start removed the leftover"
        assert_transcribed(HonestUpload(second.url, SPEECH).start().response())
    assert list(uploads.iterdir()) == []


@pytest.mark.slow
def test_an_upload_the_disk_cannot_hold_is_503_storage_unavailable(tmp_path: Path) -> None:
    with ServerProcess(corpus_env(tmp_path, MAX_UPLOAD_MB="16"), tmp_path / "s.log") as server:
        assert server.proc is not None
        # Writes past 2 MB fail in the server process (EFBIG), as they would on a full disk.
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (2 * 1024 * 1024,) * 2)
        honest = HonestUpload(server.url, SPEECH).start()
        big = SPEECH + b"\x00" * (4 * 1024 * 1024)
        response = httpx.post(
            server.url + "/batch/process",
            files={"file": ("long.wav", big, "audio/wav")},
            timeout=60,
        )
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "storage_unavailable"
        assert str(tmp_path) not in error["message"]
        assert int(response.headers["retry-after"]) > 0
        assert_transcribed(honest.response())
        assert list(upload_dir(server).iterdir()) == []
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
