"""The real entry points, as a deployer starts them: a bad configuration value stops each one
with one line per bad variable on stderr and exit code 2, never a traceback (SPEC section 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.environment import clean_environ

ROOT = Path(__file__).resolve().parents[2]

ENTRY_POINTS = {
    "batchscribe serve": ["-m", "batchscribe", "serve"],
    "batchscribe serve --port": ["-m", "batchscribe", "serve", "--port", "9001"],
    "batchscribe outbox status": ["-m", "batchscribe", "outbox", "status"],
    "batchscribe provision": ["-m", "batchscribe", "provision", "--dry-run"],
    "make run": ["-m", "batchscribe.infra.local"],
    "scripts/setup_aws_infra.py": [str(ROOT / "scripts" / "setup_aws_infra.py"), "--dry-run"],
    "scripts/verify_event_flow.py": [str(ROOT / "scripts" / "verify_event_flow.py")],
}

DEEPGRAM_WITHOUT_KEY = (
    "DEEPGRAM_API_KEY: required by TRANSCRIBER=deepgram; set it, or use TRANSCRIBER=sphinx"
)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env={**clean_environ(os.environ, cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", list(ENTRY_POINTS), ids=list(ENTRY_POINTS))
def test_a_bad_engine_setting_stops_every_entry_point_with_one_line(
    name: str, tmp_path: Path
) -> None:
    result = run(ENTRY_POINTS[name], {"TRANSCRIBER": "deepgram"}, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.splitlines() == [DEEPGRAM_WITHOUT_KEY]


def test_every_bad_variable_is_named_on_its_own_line(tmp_path: Path) -> None:
    result = run(
        ["-m", "batchscribe", "serve"], {"PORT": "abc", "TRANSCRIBER": "deepgram"}, tmp_path
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.splitlines() == [
        "PORT: 'abc' is not a valid integer (1-65535)",
        DEEPGRAM_WITHOUT_KEY,
    ]


def test_a_bad_port_in_the_environment_is_reported_by_make_run(tmp_path: Path) -> None:
    result = run(["-m", "batchscribe.infra.local"], {"PORT": "abc"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["PORT: 'abc' is not a valid integer (1-65535)"]
    assert not (tmp_path / "var").exists()  # nothing was started or created
