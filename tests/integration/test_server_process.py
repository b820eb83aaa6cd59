"""The real server process: transcription runs in worker processes (jobs), so the server keeps
answering while it works, admission is bounded (503 + Retry-After), and SIGTERM is graceful."""

from __future__ import annotations

import json
import threading
import wave
from pathlib import Path

import httpx
import pytest

from testkit.server import ServerProcess

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def long_speech_wav(path: Path, repeats: int) -> Path:
    """The speech fixture repeated `repeats` times: long real speech, built at test time."""
    with wave.open(str(FIXTURES / "speech.wav"), "rb") as src:
        params = src.getparams()
        frames = src.readframes(src.getnframes())
    with wave.open(str(path), "wb") as dst:
        dst.setparams(params)
        for _ in range(repeats):
            dst.writeframes(frames)
    return path


def storage_env(tmp_path: Path) -> dict[str, str]:
    """The application database and blob store, in the test's own directory."""
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "BLOB_STORE": f"file://{tmp_path / 'blobs'}",
    }


@pytest.fixture
def server(tmp_path: Path) -> ServerProcess:
    env = {"WORKERS": "1", "MAX_QUEUED": "0", **storage_env(tmp_path)}
    return ServerProcess(env, tmp_path / "server.log")


@pytest.mark.slow
def test_healthz_answers_and_overflow_is_refused_while_transcribing(
    server: ServerProcess, tmp_path: Path
) -> None:
    audio = long_speech_wav(tmp_path / "long.wav", repeats=3)
    results: dict[str, httpx.Response] = {}

    def upload() -> None:
        with audio.open("rb") as fh:
            results["long"] = httpx.post(
                server.url + "/batch/process", files={"file": ("long.wav", fh)}, timeout=300
            )

    with server:
        worker = threading.Thread(target=upload)
        worker.start()
        # Wait until the long request holds the only slot and its job runs on the worker.
        for _ in range(400):
            engine = httpx.get(server.url + "/readyz", timeout=10).json()["engine"]
            if engine["busy"] == 1 and engine["waiting_requests"] == 1:
                break
            threading.Event().wait(0.05)
        health = [httpx.get(server.url + "/healthz", timeout=10) for _ in range(5)]
        busy = httpx.post(
            server.url + "/batch/process",
            files={"file": ("short.wav", (FIXTURES / "speech.wav").read_bytes())},
            timeout=60,
        )
        still_running = worker.is_alive()
        worker.join(timeout=300)

    assert all(r.status_code == 200 and r.json() == {"status": "ok"} for r in health)
    assert still_running, "the long transcription should still be running during the checks"
    assert busy.status_code == 503
    assert busy.json()["error"]["code"] == "overloaded"
    assert int(busy.headers["Retry-After"]) > 0
    assert results["long"].status_code == 200, results["long"].text
    assert results["long"].json()["duration_seconds"] > 3 * 20


@pytest.mark.slow
def test_sigterm_exits_cleanly(server: ServerProcess) -> None:
    server.start()
    # uvicorn shuts down gracefully, then re-raises the signal it caught, as servers should.
    assert server.terminate(timeout=60) in (0, -15)
    log = server.log_path.read_text()
    assert "stopping batchscribe" in log
    assert '"level": "ERROR"' not in log
    # The workers' shared flags are released before that signal ends the process.
    assert "leaked semaphore" not in log


def test_the_port_given_to_serve_is_the_port_in_the_startup_configuration(
    tmp_path: Path,
) -> None:
    """`serve --port` overrides PORT in the configuration the server logs, not only in the
    socket it binds: an operator reading the log sees where it listens."""
    server = ServerProcess({"WORKERS": "1", **storage_env(tmp_path)}, tmp_path / "server.log")
    server.env["PORT"] = str(server.port - 1 if server.port > 1024 else server.port + 1)
    with server:
        assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200
    lines = [json.loads(line) for line in server.log_tail(10_000).splitlines() if line[:1] == "{"]
    (starting,) = [line for line in lines if line["message"] == "starting batchscribe"]
    assert starting["config"]["port"] == server.port
    assert starting["config"]["host"] == "127.0.0.1"
