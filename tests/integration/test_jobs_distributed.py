"""No job lost across machines (SPEC 10, 14): one API process and two `batchscribe worker`
processes share PostgreSQL and an S3 bucket (the emulator), events go through EventBridge to
SQS. While jobs flow, one worker is SIGKILLed with its children (a machine dying mid-job),
PostgreSQL is restarted once, and S3 is unreachable for a while (the fault proxy refuses).

Afterwards every accepted job ended `completed` or `failed` with a reason, each has its event
in the queue (the matching detail type), and no job was completed twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from batchscribe.infra.emulator import EMULATOR_CREDENTIALS, LocalAWSEmulator
from testkit.aws import EventSink, emulator_client
from testkit.environment import clean_environ
from testkit.faultproxy import FaultProxy
from testkit.postgres import PostgresServer
from testkit.server import ServerProcess
from tests.support.audio import speech_fixture

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

TENANT = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"
JOBS = 14


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "batchscribe", "worker", "--concurrency", "1"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killpg takes its children too
        )


def _submit(client: httpx.Client, path: Path) -> str | None:
    """Submit one recording; its job id, or None when the service refused it (503)."""
    with path.open("rb") as audio:
        answer = client.post(
            "/batch/jobs",
            files={"file": (path.name, audio, "audio/wav")},
            headers={"X-Tenant-ID": TENANT},
        )
    if answer.status_code == 503:
        return None
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


def _finished(client: httpx.Client, ids: list[str]) -> dict[str, dict[str, Any]]:
    states = {}
    for job_id in ids:
        answer = client.get(f"/batch/jobs/{job_id}", headers={"X-Tenant-ID": TENANT})
        if answer.status_code == 200 and answer.json()["status"] in (
            "completed",
            "failed",
            "cancelled",
        ):
            states[job_id] = answer.json()
    return states


def _completions(logs: list[Path]) -> Counter[str]:
    """How many times each job was recorded as completed, from every worker's JSON log."""
    done: Counter[str] = Counter()
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message") == "job finished" and record.get("job_status") == "completed":
                done[str(record.get("interaction_id"))] += 1
    return done


def test_no_job_is_lost_or_completed_twice_when_machines_fail(
    tmp_path: Path, aws_emulator: LocalAWSEmulator, postgres_server: PostgresServer
) -> None:
    if not postgres_server.managed:
        pytest.skip("needs a PostgreSQL of its own to restart (TEST_DATABASE_URL is shared)")
    database_url = postgres_server.create_database()
    bucket = f"chaos-{uuid.uuid4().hex[:8]}"
    emulator_client("s3", aws_emulator.endpoint_url).create_bucket(Bucket=bucket)
    source = f"com.yourapp.chaos.{uuid.uuid4().hex[:8]}"
    sink = EventSink.create(aws_emulator.endpoint_url, source)
    s3_proxy = FaultProxy(aws_emulator.endpoint_url).start()
    env = {
        **clean_environ({}, tmp_path),
        **EMULATOR_CREDENTIALS,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": aws_emulator.endpoint_url,
        "S3_ENDPOINT_URL": s3_proxy.url,
        "EVENT_SOURCE": source,
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "true",
        "BLOB_STORE": f"s3://{bucket}/chaos",
        "JOB_LEASE_SECONDS": "4",
        "JOB_POLL_SECONDS": "0.2",
        "JOB_MAX_ATTEMPTS": "4",
        "LOG_LEVEL": "INFO",
    }
    api = ServerProcess(env, tmp_path / "api.log", args=("--workers", "0"))
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers: list[subprocess.Popen[bytes]] = []
    client = httpx.Client(timeout=60)
    try:
        api.start()
        workers = [_worker(env, log) for log in logs]
        client.base_url = httpx.URL(api.url)
        clip = speech_fixture("wav")
        accepted: list[str] = []
        refused = 0
        for number in range(JOBS):
            if number == 4:
                # A machine dies mid-job: its worker and the worker's children, at once.
                time.sleep(1.5)
                os.killpg(workers[0].pid, signal.SIGKILL)
                workers[0].wait()
            if number == 7:
                postgres_server.restart("immediate")
            if number == 9:
                s3_proxy.set_mode("refuse")
            if number == 11:
                s3_proxy.set_mode("pass")
            job_id = _submit(client, clip)
            if job_id is None:
                refused += 1
            else:
                accepted.append(job_id)
            time.sleep(0.3)
        # The dead machine comes back (as a new worker process) after a while.
        workers[0] = _worker(env, logs[0])
        deadline = time.monotonic() + 240
        states: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline:
            states = _finished(client, accepted)
            if len(states) == len(accepted):
                break
            time.sleep(1)
        assert set(states) == set(accepted), (
            f"unfinished jobs: {sorted(set(accepted) - set(states))}\n{api.log_tail()}"
        )
        by_status = Counter(state["status"] for state in states.values())
        assert set(by_status) <= {"completed", "failed"}
        for state in states.values():
            if state["status"] == "failed":
                assert state["error"]["code"]  # a reason, always
        received = sink.collect(set(accepted), timeout=60)
        missing = set(accepted) - set(received)
        assert missing == set(), f"jobs without their event: {sorted(missing)}"
        completions = _completions([*logs, tmp_path / "api.log"])
        assert max(completions.values(), default=1) == 1, completions
        print(
            f"\njobs: {len(accepted)} accepted, {refused} refused while storage was down, "
            f"{dict(by_status)}; events received {sum(received.values())} "
            f"(duplicates {sum(received.values()) - len(received)})"
        )
        assert by_status["completed"] >= len(accepted) - 2  # failures only with a reason above
    finally:
        client.close()
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
                    worker.wait()
        api.terminate()
        s3_proxy.stop()
        sink.close()
