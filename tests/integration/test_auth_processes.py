"""Real server processes with AUTH_MODE=api_key: a key revoked on the command line stops
working on every instance sharing the database, and no key is ever written in clear to the
database file or the logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from testkit.environment import clean_environ
from testkit.server import ServerProcess
from tests.support.fixtures import write_tone

pytestmark = pytest.mark.slow

#: A bound on waiting for what must happen "within seconds"; never a measured speed.
REVOCATION_DEADLINE_S = 60.0


def _env(tmp: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = clean_environ(os.environ, tmp)
    env.update(
        {
            "AUTH_MODE": "api_key",
            "DATABASE_URL": database_url,
            "BLOB_STORE": f"file://{tmp / 'blobs'}",
            "WORKERS": "1",
            **extra,
        }
    )
    return env


def batchscribe(env: dict[str, str], *argv: str) -> str:
    """Run the command line as an operator would; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "batchscribe", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _status(server: ServerProcess, key: str) -> tuple[int, str]:
    response = httpx.get(
        server.url + "/batch/jobs", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    code = response.json()["error"]["code"] if response.status_code >= 400 else ""
    return response.status_code, code


def test_a_revoked_key_stops_working_on_every_instance(postgres_url: str, tmp_path: Path) -> None:
    env = _env(tmp_path, postgres_url)
    batchscribe(env, "migrate")
    tenant = str(uuid.uuid4())
    key = batchscribe(env, "keys", "create", "--tenant", tenant, "--name", "shared").strip()
    servers = [ServerProcess(env, tmp_path / f"server-{n}.log") for n in (1, 2)]
    try:
        for server in servers:
            server.start(require_ready=False)
        for server in servers:  # both instances know the key (and cache it)
            assert _status(server, key) == (200, "")
        assert "revoked" in batchscribe(env, "keys", "revoke", key[:12])
        deadline = time.monotonic() + REVOCATION_DEADLINE_S
        pending = list(servers)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if _status(s, key) != (401, "api_key_revoked")]
            time.sleep(0.5)
        assert pending == [], "an instance still accepts the revoked key"
    finally:
        for server in servers:
            if server.proc is not None and server.proc.poll() is None:
                server.terminate(timeout=60)
    (listed,) = [
        json.loads(line) for line in batchscribe(env, "keys", "list", "--json").splitlines()
    ]
    assert listed["revoked_at"] is not None
    assert listed["last_used_at"] is not None  # written by the instances, in batches


def _files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_keys_are_never_stored_or_logged_in_clear(tmp_path: Path) -> None:
    database = tmp_path / "var" / "app.db"
    env = _env(tmp_path, f"sqlite:///{database}")
    tenant = str(uuid.uuid4())
    key = batchscribe(env, "keys", "create", "--tenant", tenant, "--user", "ops").strip()
    spare = batchscribe(env, "keys", "create", "--tenant", tenant).strip()
    made_up = "bsk_" + "Z" * 43
    tone = write_tone(tmp_path / "tone.wav").read_bytes()
    server = ServerProcess(env, tmp_path / "server.log")
    try:
        server.start(require_ready=False)
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            submitted = client.post("/batch/jobs", files={"file": ("t.wav", tone)}, headers=auth)
            assert submitted.status_code == 202, submitted.text
            assert client.get("/batch/jobs", headers=auth).status_code == 200
            spare_auth = {"Authorization": f"Bearer {spare}"}
            assert client.get("/batch/jobs", headers=spare_auth).status_code == 200
            for wrong in (made_up, spare[:-1], key + "x", f"{key} {key}"):
                bad = client.get("/batch/jobs", headers={"Authorization": f"Bearer {wrong}"})
                assert bad.status_code == 401
            batchscribe(env, "keys", "revoke", spare[:12])
            deadline = time.monotonic() + REVOCATION_DEADLINE_S
            while time.monotonic() < deadline:
                revoked = client.get("/batch/jobs", headers=spare_auth)
                if revoked.status_code == 401:
                    break
                time.sleep(0.5)
            assert revoked.status_code == 401
    finally:
        server.terminate(timeout=60)

    log = server.log_path.read_text(errors="replace")
    identity = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"request identity"' in line
    ]
    assert identity, "the server logged no request identity"
    assert {line["key_prefix"] for line in identity} == {key[:12], spare[:12]}
    assert {line["tenant_id"] for line in identity} == {tenant}
    assert '"authentication failed"' in log
    stored = [path for path in _files_under(tmp_path / "var") if path.name.startswith("app.db")]
    assert stored, "the database file is missing"
    for path in [*stored, server.log_path, *_files_under(tmp_path / "blobs")]:
        content = path.read_bytes()
        for secret in (key, spare, made_up):
            assert secret.encode() not in content, f"{path.name} holds a key in clear"
            assert secret[12:].encode() not in content, f"{path.name} holds part of a key"
