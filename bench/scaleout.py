"""P6 (the job path against the synchronous path) and P7 (scale-out over separate worker
processes), SPEC section 9.

P6: 100 short clips through `POST /batch/jobs` (submitted back to back, completion read from the
jobs' own `finished_at`) against the same clips through `POST /batch/process` (as many
concurrent clients as cores), on one server with a worker per core; once on SQLite, once on
PostgreSQL. The two sides alternate in halves (process, jobs, jobs, process) so a drift of the
machine's load hits both alike.

P7: one API process (`serve --workers 0`) and two `batchscribe worker` processes on PostgreSQL
and an S3 bucket in the emulator, against the bare engine in two processes, on the same 20 s
clip; alternated bare, jobs, jobs, bare.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from batchscribe.infra.emulator import EMULATOR_CREDENTIALS, LocalAWSEmulator
from bench import audio
from bench.bare import BareEngines
from bench.harness import Upload, start_server, upload
from testkit.aws import emulator_client
from testkit.postgres import PostgresServer

CORES = os.cpu_count() or 1
TENANT = "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03"
P6_CLIPS = 100
P7_CLIPS_PER_BLOCK = 8
P7_CLIP_SECONDS = 20.0


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _jobs_run(url: str, clip: Path, count: int, log: Callable[[str], None]) -> dict[str, float]:
    """Submit `count` jobs back to back; wait until all completed; audio seconds per second from
    the first submission to the last `finished_at`."""
    headers = {"X-Tenant-ID": TENANT}
    with httpx.Client(base_url=url, timeout=120, headers=headers) as client:
        started = time.time()
        ids = []
        for _ in range(count):
            with clip.open("rb") as fh:
                answer = client.post("/batch/jobs", files={"file": (clip.name, fh, "audio/wav")})
            if answer.status_code != 202:
                raise RuntimeError(f"job submission failed: {answer.status_code} {answer.text}")
            ids.append(answer.json()["job_id"])
        pending = set(ids)
        views: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 3600
        while pending and time.monotonic() < deadline:
            time.sleep(0.5)
            page = client.get("/batch/jobs", params={"limit": 100}).json()["jobs"]
            for view in page:
                if view["job_id"] in pending and view["status"] in ("completed", "failed"):
                    if view["status"] != "completed":
                        raise RuntimeError(f"a job failed: {view['error']}")
                    pending.discard(view["job_id"])
                    views[view["job_id"]] = view
        if pending:
            raise RuntimeError(f"{len(pending)} jobs did not finish")
    finished = max(_epoch(view["finished_at"]) for view in views.values())
    seconds = sum(float(view["duration_seconds"]) for view in views.values())
    wall = finished - started
    log(f"  jobs: {count} clips, {seconds:.0f} audio s in {wall:.1f} s")
    return {"audio_seconds": seconds, "wall_seconds": wall}


def _process_run(url: str, clip: Path, count: int, log: Callable[[str], None]) -> dict[str, float]:
    """`count` synchronous requests from CORES concurrent clients."""
    per_client = [count // CORES + (1 if i < count % CORES else 0) for i in range(CORES)]

    def one(n: int) -> list[Upload]:
        with httpx.Client(headers={"X-Tenant-ID": TENANT}) as client:
            return [upload(client, url, clip) for _ in range(n)]

    started = time.time()
    with ThreadPoolExecutor(CORES) as pool:
        uploads = [u for batch in pool.map(one, per_client) for u in batch]
    wall = time.time() - started
    bad = [u.status for u in uploads if u.status != 200]
    if bad:
        raise RuntimeError(f"synchronous requests failed: {sorted(set(bad))}")
    seconds = sum(u.audio_seconds for u in uploads)
    log(f"  process: {count} clips, {seconds:.0f} audio s in {wall:.1f} s")
    return {"audio_seconds": seconds, "wall_seconds": wall}


def _throughput(blocks: list[dict[str, float]]) -> float:
    return sum(b["audio_seconds"] for b in blocks) / sum(b["wall_seconds"] for b in blocks)


def p6_job_path(tmp: Path, postgres: PostgresServer, log: Callable[[str], None]) -> dict[str, Any]:
    clip = audio.SHORT_SPEECH
    half = P6_CLIPS // 2
    databases = {
        "sqlite": f"sqlite:///{tmp / 'p6.db'}",
        "postgresql": postgres.create_database(),
    }
    out: dict[str, Any] = {}
    for name, url in databases.items():
        log(f"P6 on {name}: {P6_CLIPS} clips each way, in halves process/jobs/jobs/process")
        server = start_server(
            f"p6-{name}", tmp, {"WORKERS": str(CORES), "DATABASE_URL": url, "AUTO_MIGRATE": "true"}
        )
        blocks: dict[str, list[dict[str, float]]] = {"process": [], "jobs": []}
        try:
            _process_run(server.url, clip, CORES, log)  # warm-up
            for side in ("process", "jobs", "jobs", "process"):
                run = _process_run if side == "process" else _jobs_run
                blocks[side].append(run(server.url, clip, half, log))
        finally:
            server.terminate()
        tp = {side: _throughput(runs) for side, runs in blocks.items()}
        ratio = tp["jobs"] / tp["process"]
        out[name] = {
            "ratio": round(ratio, 3),
            "jobs_audio_seconds_per_second": round(tp["jobs"], 3),
            "process_audio_seconds_per_second": round(tp["process"], 3),
            "blocks": blocks,
        }
    worst = min(result["ratio"] for result in out.values())
    return {
        "ratio": worst,
        "target": ">= 0.9 on SQLite and on PostgreSQL",
        "met": all(result["ratio"] >= 0.9 for result in out.values()),
        "clips_per_side": P6_CLIPS,
        "clip": clip.name,
        "workers": CORES,
        **out,
    }


@contextmanager
def _workers(env: dict[str, str], tmp: Path, count: int) -> Iterator[list[int]]:
    """`count` separate `batchscribe worker` processes (one worker each); their pids."""
    procs = []
    try:
        for n in range(count):
            log = (tmp / f"p7-worker-{n}.log").open("ab")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "batchscribe", "worker", "--concurrency", "1"],
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        time.sleep(3)  # engines load
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def p7_scale_out(
    tmp: Path,
    postgres: PostgresServer,
    emulator: LocalAWSEmulator,
    log: Callable[[str], None],
) -> dict[str, Any]:
    clip = audio.build_wav(tmp / "p7.wav", P7_CLIP_SECONDS)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    emulator_client("s3", emulator.endpoint_url).create_bucket(Bucket=bucket)
    env = {
        **EMULATOR_CREDENTIALS,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "DATABASE_URL": postgres.create_database(),
        "AUTO_MIGRATE": "true",
        "BLOB_STORE": f"s3://{bucket}/p7",
        "EVENT_SOURCE": f"com.yourapp.bench.{uuid.uuid4().hex[:8]}",
        "JOB_POLL_SECONDS": "0.5",
    }
    blocks: dict[str, list[dict[str, float]]] = {"bare": [], "scale_out": []}
    server = start_server("p7-api", tmp, env, args=("--workers", "0"))
    try:
        with _workers(env, tmp, 2), BareEngines(clip, 2) as bare:
            for side in ("bare", "scale_out", "scale_out", "bare"):
                log(f"P7 block: {side}")
                if side == "bare":
                    result = bare.run(P7_CLIPS_PER_BLOCK // 2)
                    blocks["bare"].append(
                        {
                            "audio_seconds": float(result["audio_seconds"]),
                            "wall_seconds": float(result["wall_seconds"]),
                        }
                    )
                else:
                    blocks["scale_out"].append(_jobs_run(server.url, clip, P7_CLIPS_PER_BLOCK, log))
    finally:
        server.terminate()
    tp = {side: _throughput(runs) for side, runs in blocks.items()}
    ratio = tp["scale_out"] / tp["bare"]
    return {
        "ratio": round(ratio, 3),
        "target": ">= 0.85",
        "met": ratio >= 0.85,
        "scale_out_audio_seconds_per_second": round(tp["scale_out"], 3),
        "bare_audio_seconds_per_second": round(tp["bare"], 3),
        "workers": "API (--workers 0) + 2 x `batchscribe worker --concurrency 1`",
        "storage": "PostgreSQL + S3 (emulator)",
        "clip_seconds": P7_CLIP_SECONDS,
        "blocks": blocks,
    }
