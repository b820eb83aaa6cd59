"""Measurement helpers: servers in child processes, timed uploads, RSS sampling, percentiles."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from testkit.environment import clean_environ
from testkit.server import ServerProcess


def scrub_environment(tmp: Path) -> None:
    """The bench must never reach a real AWS account or read a developer's `.env`."""
    clean = clean_environ(os.environ, tmp)
    os.environ.clear()
    os.environ.update(clean)
    os.chdir(tmp)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class Upload:
    """One timed POST /batch/process."""

    status: int
    seconds: float
    audio_seconds: float = 0.0
    event_status: str | None = None
    started: float = 0.0
    error: str | None = None  # the error code of a refused upload


def upload(client: httpx.Client, url: str, path: Path, timeout: float = 1800) -> Upload:
    started = time.perf_counter()
    with path.open("rb") as fh:
        response = client.post(
            url + "/batch/process",
            files={"file": (path.name, fh, "application/octet-stream")},
            timeout=timeout,
        )
    elapsed = time.perf_counter() - started
    result = Upload(response.status_code, elapsed, started=started)
    if response.status_code == 200:
        body = response.json()
        result.audio_seconds = float(body["duration_seconds"])
        result.event_status = body["event"].get("status")
    else:
        try:
            result.error = str(response.json().get("error"))
        except ValueError:
            result.error = response.text[:200]
    return result


#: The tenant the bench's job clients name (`AUTH_MODE=none`): without one, every request
#: would get a tenant of its own and could not read its job back.
BENCH_TENANT = "5b0c1f8e-2d4a-4c6b-9e7f-1a2b3c4d5e6f"


def job_turnaround(url: str, path: Path, timeout: float = 3600) -> tuple[float, dict[str, Any]]:
    """Submit `path` to `POST /batch/jobs`; seconds until it is `completed` (polled every
    0.2 s), and the job as `GET /batch/jobs/{id}` shows it. Raises if it ends otherwise."""
    headers = {"X-Tenant-ID": BENCH_TENANT}
    with httpx.Client(base_url=url, timeout=120, headers=headers) as client:
        started = time.perf_counter()
        with path.open("rb") as fh:
            response = client.post("/batch/jobs", files={"file": (path.name, fh, "audio/flac")})
        response.raise_for_status()
        job_id = response.json()["job_id"]
        while time.perf_counter() - started < timeout:
            response = client.get(f"/batch/jobs/{job_id}")
            response.raise_for_status()
            job: dict[str, Any] = response.json()
            if job["status"] in ("completed", "failed", "cancelled"):
                elapsed = time.perf_counter() - started
                if job["status"] != "completed":
                    raise RuntimeError(f"job {job_id} ended {job['status']}: {job.get('error')}")
                return elapsed, job
            time.sleep(0.2)
    raise RuntimeError(f"job {job_id} did not finish in {timeout:.0f} s")


def start_server(
    name: str, tmp: Path, env: dict[str, str], args: tuple[str, ...] = ()
) -> ServerProcess:
    """`batchscribe serve` with its own SQLite database and blob directory under `tmp` (unless
    `env` names others)."""
    base = {
        "DATABASE_URL": f"sqlite:///{tmp / f'{name}.db'}",
        "BLOB_STORE": f"file://{tmp / f'{name}-blobs'}",
        "LOG_LEVEL": "INFO",
    }
    return ServerProcess({**base, **env}, tmp / f"{name}.log", args=args).start(timeout=180)


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_rss(pid: int) -> int:
    total = 0
    for proc in process_tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def tree_pids(pid: int) -> list[int]:
    return [proc.pid for proc in process_tree(pid)]


def high_water_marks(pid: int) -> dict[str, int]:
    """VmHWM (the kernel's peak RSS) of each process in the tree, by `name[pid]`."""
    marks: dict[str, int] = {}
    for proc in process_tree(pid):
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            name = " ".join(proc.cmdline()[-2:])[-40:]
        except (OSError, psutil.Error):
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                marks[f"{proc.pid}:{name}"] = int(line.split()[1]) * 1024
    return marks


@dataclass
class RssSampler:
    """Samples the summed RSS of a process tree every `interval` seconds in a thread."""

    pid: int
    interval: float = 0.05
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(tree_rss(self.pid))
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("batchscribe", "pocketsphinx", "av", "fastapi", "uvicorn", "moto", "boto3"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, memory, OS, Python, versions, load, commit."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": _package_versions(),
        "git_commit": commit or None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
