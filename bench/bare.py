"""The bare engine, for P1's denominator: the configured transcriber called directly, one per
process, with no HTTP, no upload, no probe and no cleaning in the timed part."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any


def _worker(path: str, repeats: int, barrier: Barrier, results: Any) -> None:
    from batchscribe.config import Settings
    from batchscribe.pipeline.audio import probe_audio
    from batchscribe.pipeline.transcribers import build_transcriber

    engine = build_transcriber(Settings())
    info = probe_audio(Path(path), decode=not engine.decodes_locally)
    engine.transcribe(Path(path), info)  # warm-up, like the server's already-used workers
    barrier.wait()
    started = time.perf_counter()
    for _ in range(repeats):
        engine.transcribe(Path(path), info)
    results.put((started, time.perf_counter(), info.duration_seconds * repeats))


def bare_throughput(path: Path, processes: int, repeats: int) -> dict[str, float]:
    """Audio seconds per wall second with `processes` engines each transcribing `repeats` times.

    Wall time runs from the moment all engines are loaded and warm to the last one finishing.
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(str(path), repeats, barrier, results))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    answers = [results.get(timeout=1800) for _ in procs]
    for proc in procs:
        proc.join(60)
    start = min(a[0] for a in answers)
    end = max(a[1] for a in answers)
    audio = sum(a[2] for a in answers)
    return {
        "audio_seconds": audio,
        "wall_seconds": end - start,
        "throughput": audio / (end - start),
    }
