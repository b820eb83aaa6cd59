"""`batchscribe transcribe FILE... [--url URL] [--api-key KEY] [--format F] [--out DIR]`.

Sends every file through the jobs API of a running batchscribe (`POST /batch/jobs`, then
`GET /batch/jobs/{id}` until it ends, then `?format=`), a few at a time, with a progress bar per
file (hashing, uploading, queued, transcribing), and writes `NAME.EXT` into `--out` (the current
directory by default): `.txt` for text, `.srt`, `.vtt`, `.json` for json (the job's result) and
`.verbose.json` for verbose_json. A summary table ends the run; the exit code is 0 when every
file was transcribed, 1 when any failed, 2 for a usage error (two inputs that would write the
same output, for instance).

Resumable: each file is submitted with `Idempotency-Key: transcribe-<SHA-256 of the file>`
(plus the language, when one is given), so running the command again with the same files, within
the 24 hours the server remembers keys, picks up the same jobs (finished ones are only fetched)
instead of transcribing again. A job that failed or was cancelled is submitted again under a key
that names it, so a re-run retries it once per run, and a third run still reuses the retry.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from batchscribe.client.api import JobsClient

FORMATS = ("text", "srt", "vtt", "json", "verbose_json")
EXTENSIONS = {
    "text": ".txt",
    "srt": ".srt",
    "vtt": ".vtt",
    "json": ".json",
    "verbose_json": ".verbose.json",
}
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_PARALLEL = 4
POLL_FIRST_SECONDS = 0.5
POLL_MAX_SECONDS = 3.0
HASH_CHUNK_BYTES = 1024 * 1024
#: How many times one run resubmits a file whose job failed or was cancelled earlier.
MAX_RESUBMITS = 2
#: The process umask, read once before any thread starts (reading it means setting it).
_UMASK = [0o022]


@dataclass
class Outcome:
    """What became of one input file."""

    path: Path
    output: Path
    ok: bool = False
    job_id: str = ""
    reused: bool = False
    detail: str = ""
    duration_seconds: float | None = None


@dataclass
class _Run:
    """Everything the per-file workers share."""

    client: JobsClient
    fmt: str
    language: str | None
    progress: Progress
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


def register(sub: Any) -> None:
    """Add `transcribe` to the `batchscribe` command's subparsers."""
    parser = sub.add_parser(
        "transcribe",
        help="transcribe audio files through a running batchscribe (jobs API)",
        description=(
            "Submit each FILE to a batchscribe server's jobs API, follow it with a progress bar, "
            "and write NAME.EXT (txt, srt, vtt, json or verbose.json) into --out. Running it "
            "again with the same files reuses their jobs (Idempotency-Key: the file's SHA-256). "
            "Exit code 0 when every file was transcribed, 1 when any failed, 2 for a usage "
            "error."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", type=Path, help="audio files")
    parser.add_argument(
        "--url",
        default=os.environ.get("BATCHSCRIBE_URL", DEFAULT_URL),
        help=f"the server (default BATCHSCRIBE_URL or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("BATCHSCRIBE_API_KEY"),
        help="API key, when the server needs one (default BATCHSCRIBE_API_KEY)",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="what to write: text (default), srt, vtt, json (the full result) or verbose_json",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("."), help="directory to write into (default: .)"
    )
    parser.add_argument("--language", help="BCP-47 language of the recordings, e.g. en")
    parser.add_argument(
        "--tenant",
        default=os.environ.get("BATCHSCRIBE_TENANT"),
        help="X-Tenant-ID for servers without API keys (default BATCHSCRIBE_TENANT); give the "
        "same one on a re-run to reuse its jobs",
    )
    parser.add_argument(
        "--parallel",
        type=_parallel,
        default=DEFAULT_PARALLEL,
        help=f"files in flight at once (default {DEFAULT_PARALLEL})",
    )
    parser.set_defaults(func=main)


def _parallel(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 32:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of files from 1 to 32")
    return value


def output_path(path: Path, fmt: str, out: Path) -> Path:
    """`meeting.mp3` -> `<out>/meeting.srt` (`.txt` for text, `.verbose.json`...)."""
    return out / f"{path.stem}{EXTENSIONS[fmt]}"


def idempotency_key(sha256: str, language: str | None) -> str:
    return f"transcribe-{sha256}" + (f"-{language}" if language else "")


def _collisions(files: Sequence[Path], fmt: str, out: Path) -> list[str]:
    seen: dict[Path, Path] = {}
    problems = []
    for path in files:
        target = output_path(path, fmt, out)
        if target in seen:
            problems.append(f"{seen[target]} and {path} would both be written to {target}")
        seen.setdefault(target, path)
    return problems


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from batchscribe.client.api import JobsClient

    errors = Console(stderr=True)
    _UMASK[0] = os.umask(0o022)
    os.umask(_UMASK[0])
    out: Path = args.out
    problems = _collisions(args.files, args.format, out)
    if problems:
        for problem in problems:
            errors.print(f"batchscribe transcribe: {problem}; rename one, or use --out")
        return 2
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        errors.print(f"batchscribe transcribe: cannot create {out}: {exc.strerror}")
        return 2
    client = JobsClient(args.url, args.api_key, tenant=args.tenant)
    try:
        outcomes = _transcribe_all(client, args, errors)
    except KeyboardInterrupt:
        errors.print(
            "Stopped. The jobs go on on the server; run the same command again to pick them up."
        )
        return 130
    finally:
        client.close()
    _summary(outcomes, Console())
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def _transcribe_all(client: JobsClient, args: argparse.Namespace, errors: Any) -> list[Outcome]:
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=errors,
    )
    run = _Run(client, args.format, args.language, progress)
    outcomes = [Outcome(path, output_path(path, args.format, args.out)) for path in args.files]
    with progress:
        tasks = [
            progress.add_task(outcome.path.name, total=None, state="waiting")
            for outcome in outcomes
        ]
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            futures = [
                pool.submit(_one, run, outcome, task)
                for outcome, task in zip(outcomes, tasks, strict=True)
            ]
            try:
                for future in futures:
                    future.result()
            except KeyboardInterrupt:
                run.stopping.set()
                raise
    return outcomes


def _say(run: _Run, task: TaskID, state: str, **update: Any) -> None:
    run.progress.update(task, state=state, **update)
    if not run.progress.console.is_terminal:
        # No live bars in a log: one line per change of state instead.
        name = run.progress.tasks[task].description
        run.progress.console.print(f"{name}: {state}", highlight=False)


def _one(run: _Run, outcome: Outcome, task: TaskID) -> None:
    """Hash, submit, follow and fetch one file; every failure ends in `outcome`."""
    from batchscribe.client.api import ApiError

    try:
        _transcribe(run, outcome, task)
    except ApiError as exc:
        outcome.detail = str(exc)
    except OSError as exc:
        outcome.detail = f"{exc.strerror or exc} ({exc.filename or outcome.path})"
    from rich.markup import escape

    if outcome.ok:
        _say(
            run, task, f"[green]done[/] -> {escape(str(outcome.output))}", completed=100, total=100
        )
    else:
        _say(run, task, f"[red]failed[/]: {escape(outcome.detail)}", total=100)


def _transcribe(run: _Run, outcome: Outcome, task: TaskID) -> None:
    path = outcome.path
    if not path.is_file():
        raise OSError(2, "no such file", str(path))
    size = path.stat().st_size
    _say(run, task, "hashing", total=size, completed=0)
    sha256 = _sha256(path, lambda n: run.progress.advance(task, n))
    key = idempotency_key(sha256, run.language)
    tenant: str | None = None
    for resubmits in range(MAX_RESUBMITS + 1):
        _say(run, task, "uploading", total=size, completed=0)
        accepted = run.client.submit(
            path,
            idempotency_key=key,
            language=run.language,
            on_upload=lambda n: run.progress.advance(task, n),
        )
        outcome.job_id, tenant = accepted.job_id, accepted.tenant_id or None
        outcome.reused = accepted.replayed
        if not (accepted.replayed and accepted.status in ("failed", "cancelled")):
            break
        if resubmits == MAX_RESUBMITS:
            break
        # The earlier run's job ended without a transcript: try again under a key naming it,
        # which a later re-run finds in turn.
        key = f"{idempotency_key(sha256, run.language)}-after-{accepted.job_id}"
    job = _follow(run, task, outcome.job_id, tenant)
    outcome.duration_seconds = job.get("duration_seconds")
    if job.get("status") != "completed":
        error = job.get("error") or {}
        outcome.detail = str(error.get("message") or f"the job was {job.get('status')}")
        return
    _say(run, task, "fetching", completed=100, total=100)
    if run.fmt == "json":
        text = json.dumps(job.get("result"), indent=2, ensure_ascii=False) + "\n"
    else:
        text = run.client.transcript(outcome.job_id, run.fmt, tenant)
    _write(outcome.output, text)
    outcome.ok = True


def _follow(run: _Run, task: TaskID, job_id: str, tenant: str | None) -> dict[str, Any]:
    """Poll the job until it ends, moving the bar with its progress."""
    delay = POLL_FIRST_SECONDS
    shown = ""
    while not run.stopping.is_set():
        job = dict(run.client.job(job_id, tenant))
        status = str(job.get("status"))
        if status in ("completed", "failed", "cancelled"):
            return job
        percent = float(job.get("progress") or 0.0) * 100
        state = "queued" if status == "queued" else "transcribing"
        if state != shown:
            _say(run, task, state, total=100, completed=percent)
            shown = state
        else:
            run.progress.update(task, completed=percent)
        time.sleep(delay)
        delay = min(delay * 1.5, POLL_MAX_SECONDS)
    raise KeyboardInterrupt


def _sha256(path: Path, advance: Any) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            advance(len(chunk))
    return digest.hexdigest()


def _write(target: Path, text: str) -> None:
    """Write atomically: a reader never sees half a subtitle file."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        # mkstemp makes the file private; give it the permissions any new file gets here.
        os.chmod(name, 0o666 & ~_UMASK[0])
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def _summary(outcomes: Sequence[Outcome], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="batchscribe transcribe")
    table.add_column("file")
    table.add_column("status")
    table.add_column("audio", justify="right")
    table.add_column("job")
    table.add_column("output or error", overflow="fold")
    for outcome in outcomes:
        seconds = outcome.duration_seconds
        table.add_row(
            escape(str(outcome.path)),
            ("[green]done[/]" + (" (reused)" if outcome.reused else ""))
            if outcome.ok
            else "[red]failed[/]",
            f"{seconds:.1f} s" if isinstance(seconds, int | float) else "-",
            outcome.job_id[:8] or "-",
            escape(str(outcome.output) if outcome.ok else outcome.detail),
        )
    console.print(table)
    failed = sum(not outcome.ok for outcome in outcomes)
    console.print(
        f"{len(outcomes) - failed} of {len(outcomes)} files transcribed"
        + (f", {failed} failed." if failed else ".")
    )
