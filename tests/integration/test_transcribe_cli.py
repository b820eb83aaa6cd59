"""`batchscribe transcribe` against a running server (SPEC 15): several files and a bad one, in a
terminal (progress bars) and in a log (one line per state), outputs written, the exit code, the
summary table, and a re-run that reuses the jobs instead of transcribing again."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import srt
import webvtt

from testkit.environment import clean_environ
from testkit.server import ServerProcess

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TENANT = "0d7c3f6e-2b1a-4c5d-8e9f-a1b2c3d4e5f6"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("transcribe-cli")
    env = clean_environ(os.environ, tmp)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp / 'app.db'}",
            "BLOB_STORE": f"file://{tmp / 'blobs'}",
            "WORKERS": "2",
        }
    )
    process = ServerProcess(env, tmp / "server.log")
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        process.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield process
    finally:
        process.terminate(timeout=30)


@pytest.fixture
def recordings(tmp_path: Path) -> list[Path]:
    """Two recordings and a text file named like one."""
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(FIXTURES / "speech_short.wav", folder / "standup.wav")
    shutil.copy(FIXTURES / "speech_short.mp3", folder / "retro.mp3")
    (folder / "notes.mp3").write_text("These are meeting notes, not a recording.\n" * 20)
    return [folder / "standup.wav", folder / "retro.mp3", folder / "notes.mp3"]


def _env(tmp: Path) -> dict[str, str]:
    env = clean_environ(os.environ, tmp)
    env.update({"COLUMNS": "160", "LINES": "40", "TERM": "xterm-256color"})
    env.pop("NO_COLOR", None)
    return env


def run_in_terminal(argv: list[str], cwd: Path, timeout: float = 180) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as its stdout and stderr, as in a shell; its exit
    code and everything it drew, escape sequences removed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchscribe", *argv],
        cwd=cwd,
        env=_env(cwd),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    data = os.read(leader, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


def _tenant_jobs(server: ServerProcess) -> list[dict[str, object]]:
    response = httpx.get(
        f"{server.url}/batch/jobs", params={"limit": 100}, headers={"X-Tenant-ID": TENANT}
    )
    assert response.status_code == 200, response.text
    jobs: list[dict[str, object]] = response.json()["jobs"]
    return jobs


def test_a_folder_of_recordings_with_a_bad_one_in_a_terminal_then_again(
    server: ServerProcess, recordings: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "subtitles"
    argv = [
        "transcribe",
        *(str(p) for p in recordings),
        "--url",
        server.url,
        "--tenant",
        TENANT,
        "--format",
        "srt",
        "--out",
        str(out),
    ]
    code, screen = run_in_terminal(argv, tmp_path)

    assert code == 1, screen  # one file failed
    # A progress bar per file while it ran, then the summary table.
    for name in ("standup.wav", "retro.mp3", "notes.mp3"):
        assert name in screen
    assert "100%" in screen
    assert re.search(r"\b(hashing|uploading|queued|transcribing)\b", screen), screen
    assert "failed: The file is not audio we can decode" in screen
    assert "2 of 3 files transcribed, 1 failed." in screen
    # The outputs are subtitles with the speaker in every cue; the bad file wrote nothing.
    assert sorted(p.name for p in out.iterdir()) == ["retro.srt", "standup.srt"]
    for path in out.iterdir():
        cues = list(srt.parse(path.read_text()))
        assert cues
        assert all(cue.content.startswith("SPEAKER_0: ") for cue in cues)
    jobs = _tenant_jobs(server)
    assert len(jobs) == 2
    assert all(job["status"] == "completed" for job in jobs)

    # Again, as WebVTT: the same jobs are reused (nothing is transcribed twice).
    code, screen = run_in_terminal([*argv[:-4], "--format", "vtt", "--out", str(out)], tmp_path)
    assert code == 1, screen
    assert screen.count("done (reused)") == 2
    assert len(_tenant_jobs(server)) == 2
    captions = list(webvtt.read(str(out / "standup.vtt")))
    assert captions
    assert captions[0].voice == "SPEAKER_0"


def test_in_a_log_each_change_of_state_is_a_line_and_all_good_exits_0(
    server: ServerProcess, recordings: list[Path], tmp_path: Path
) -> None:
    tenant = str(uuid.uuid4())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "batchscribe",
            "transcribe",
            str(recordings[0]),
            "--url",
            server.url,
            "--tenant",
            tenant,
            "--out",
            str(tmp_path / "text"),
        ],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "standup.wav: hashing" in lines
    assert "standup.wav: uploading" in lines
    assert any(line.startswith("standup.wav: done -> ") for line in lines)
    assert "1 of 1 files transcribed." in done.stdout
    assert (tmp_path / "text" / "standup.txt").read_text().startswith("SPEAKER_0: ")


def test_two_inputs_that_would_write_one_output_are_refused_before_anything_is_sent(
    server: ServerProcess, recordings: list[Path], tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = shutil.copy(recordings[0], other / recordings[0].name)
    done = subprocess.run(
        [sys.executable, "-m", "batchscribe", "transcribe", str(recordings[0]), str(twin),
         "--url", server.url],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "would both be written to" in done.stderr
