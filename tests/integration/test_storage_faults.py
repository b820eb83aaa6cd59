"""Honest storage (SPEC 11): when the database or the blob store cannot be written, `/readyz`
answers 503 naming the failing component (never a path or error text), uploads get 503
`storage_unavailable` instead of being half-stored, the failure is logged once with its detail
rather than once per probe, and everything works again once the storage does.

The full disk is real: a 3 MB tmpfs mounted by the test (it runs as root in CI; elsewhere the
test is skipped with the reason).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.environment import clean_environ
from testkit.server import ServerProcess
from tests.support.audio import speech_fixture

pytestmark = pytest.mark.slow

TENANT = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB filesystem of its own, so filling it fills nothing else."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the suite as root)")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _server(tmp_path: Path, disk: Path) -> ServerProcess:
    env = {
        **clean_environ({}, tmp_path),
        "DATABASE_URL": f"sqlite:///{disk / 'app.db'}",
        "BLOB_STORE": f"file://{disk / 'blobs'}",
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "WORKERS": "1",
        "MOCK_TENANT_ID": TENANT,
    }
    return ServerProcess(env, tmp_path / "server.log")


def _fill(disk: Path) -> Path:
    """Fill the filesystem to the last byte."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:  # ENOSPC: this size no longer fits; try smaller pieces
                continue
    finally:
        os.close(fd)
    return filler


def _failure_lines(log: Path, component: str) -> list[dict[str, object]]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("component") == component and record.get("level") == "ERROR":
            lines.append(record)
    return lines


def _submit(server: ServerProcess) -> httpx.Response:
    with speech_fixture("wav", short=True).open("rb") as audio:
        return httpx.post(
            server.url + "/batch/jobs", files={"file": ("a.wav", audio, "audio/wav")}, timeout=60
        )


def test_a_full_disk_is_reported_and_refused_honestly_then_recovers(
    tmp_path: Path, small_disk: Path
) -> None:
    with _server(tmp_path, small_disk) as server:
        assert httpx.get(server.url + "/readyz").status_code == 200
        filler = _fill(small_disk)
        probes = [httpx.get(server.url + "/readyz", timeout=30) for _ in range(4)]
        assert {p.status_code for p in probes} == {503}
        body = probes[-1].json()
        assert set(body["failing"]) >= {"database"}
        assert str(small_disk) not in probes[-1].text  # no paths, no error text in public
        answer = _submit(server)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "storage_unavailable"
        assert int(answer.headers["retry-after"]) > 0
        # Logged once with its detail, not once per probe.
        failures = _failure_lines(server.log_path, "database")
        assert len(failures) == 1
        filler.unlink()
        assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200
        accepted = _submit(server)
        assert accepted.status_code == 202
        job_id = accepted.json()["job_id"]
        for _ in range(300):
            state = httpx.get(f"{server.url}/batch/jobs/{job_id}").json()
            if state["status"] == "completed":
                break
            time.sleep(0.2)
        assert state["status"] == "completed"


def test_a_corrupt_database_file_is_named_not_described(tmp_path: Path, small_disk: Path) -> None:
    server = _server(tmp_path, small_disk)
    with server:
        assert httpx.get(server.url + "/readyz").status_code == 200
        database = small_disk / "app.db"
        with database.open("r+b") as db_file:
            db_file.write(uuid.uuid4().bytes * 64)  # the header and the first page, garbage
        probes = [httpx.get(server.url + "/readyz", timeout=30) for _ in range(3)]
        assert {p.status_code for p in probes} == {503}
        assert probes[-1].json()["failing"] == ["database"]
        assert "sqlite" not in probes[-1].text.lower()
        assert str(database) not in probes[-1].text
        assert len(_failure_lines(server.log_path, "database")) == 1
        assert _submit(server).status_code == 503


def test_a_read_only_disk_is_reported_until_it_is_writable_again(
    tmp_path: Path, small_disk: Path
) -> None:
    with _server(tmp_path, small_disk) as server:
        assert httpx.get(server.url + "/readyz").status_code == 200
        # The volume turns read-only under the running service (a bind mount of itself, read
        # only: what the service opens from now on is read-only, as after a remount).
        subprocess.run(["mount", "--bind", str(small_disk), str(small_disk)], check=True)
        subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(small_disk)], check=True, capture_output=True
        )
        try:
            probe = httpx.get(server.url + "/readyz", timeout=30)
            assert probe.status_code == 503
            assert set(probe.json()["failing"]) == {"database", "blob_store"}
            assert _submit(server).status_code == 503
        finally:
            subprocess.run(["umount", str(small_disk)], check=True)
        assert httpx.get(server.url + "/readyz", timeout=30).status_code == 200
        assert _submit(server).status_code == 202
