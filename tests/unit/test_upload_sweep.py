"""Temporary uploads left by a server killed mid-upload are removed at the next start, and
nothing else is: not another running server's uploads, not files that are not ours."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from batchscribe.http.upload import prepare_upload_dir, sweep_leftover_uploads


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _aged(path: Path, seconds: float = 3600) -> Path:
    path.write_bytes(b"RIFF partial upload")
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def test_leftovers_of_dead_servers_are_removed_and_nothing_else(tmp_path: Path) -> None:
    dead = _aged(tmp_path / f"batchscribe-{_dead_pid()}-k2j4h5g6.upload")
    older_version = _aged(tmp_path / "batchscribe-a1b2c3d4.upload")
    # A server still running (this test process stands in for it) may be receiving this one.
    live = _aged(tmp_path / f"batchscribe-{os.getppid()}-abcdefgh.upload")
    not_ours = [
        _aged(tmp_path / "meeting.wav"),
        _aged(tmp_path / "batchscribe-notes.txt"),
        _aged(tmp_path / "other-123-abc.upload"),
    ]
    fresh = tmp_path / f"batchscribe-{_dead_pid()}-zzzzzzzz.upload"
    fresh.write_bytes(b"written after this start")
    started = time.time() - 60

    assert sweep_leftover_uploads(tmp_path, started_at=started) == 2

    assert not dead.exists()
    assert not older_version.exists()
    assert live.exists()
    assert fresh.exists()
    assert all(path.exists() for path in not_ours)


def test_startup_creates_a_missing_upload_dir_and_sweeps_it(tmp_path: Path) -> None:
    directory = tmp_path / "uploads" / "spool"
    prepare_upload_dir(directory)
    assert directory.is_dir()
    leftover = _aged(directory / f"batchscribe-{_dead_pid()}-q1w2e3r4.upload")
    prepare_upload_dir(directory)
    assert not leftover.exists()


def test_an_unreadable_upload_dir_is_reported_not_raised(tmp_path: Path) -> None:
    assert sweep_leftover_uploads(tmp_path / "missing") == 0
