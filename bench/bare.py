"""The bare engine, for P1's denominator: the configured transcriber called directly, one per
process, with no HTTP, no upload, no probe and no cleaning in the timed part.

The processes are started once and kept (like the server's workers), so their start-up and
model loading never overlap the HTTP side's measurements.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType


def _worker(path: str, conn: Connection) -> None:
    from batchscribe.config import Settings
    from batchscribe.pipeline.audio import probe_audio
    from batchscribe.pipeline.transcribers import build_transcriber

    engine = build_transcriber(Settings())
    info = probe_audio(Path(path), decode=not engine.decodes_locally)
    engine.transcribe(Path(path), info)  # warm-up, like the server's already-used workers
    conn.send("ready")
    while (repeats := conn.recv()) is not None:
        started = time.perf_counter()
        for _ in range(repeats):
            engine.transcribe(Path(path), info)
        conn.send((started, time.perf_counter(), info.duration_seconds * repeats))


class BareEngines:
    """`processes` loaded engines in their own processes; `run()` times one round."""

    def __init__(self, path: Path, processes: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conns: list[Connection] = []
        self._procs = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(str(path), child), daemon=True)
            proc.start()
            self._conns.append(parent)
            self._procs.append(proc)
        for conn in self._conns:
            if conn.recv() != "ready":
                raise RuntimeError("a bare engine failed to start")

    def run(self, repeats: int) -> dict[str, float]:
        """Audio seconds per wall second, all engines transcribing `repeats` times at once.

        Wall time runs from the first engine starting to the last one finishing.
        """
        for conn in self._conns:
            conn.send(repeats)
        answers = [conn.recv() for conn in self._conns]
        start = min(a[0] for a in answers)
        end = max(a[1] for a in answers)
        audio = sum(a[2] for a in answers)
        wall = end - start
        return {"audio_seconds": audio, "wall_seconds": wall, "throughput": audio / wall}

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs if proc.pid is not None]

    def close(self) -> None:
        for conn in self._conns:
            conn.send(None)
            conn.close()
        for proc in self._procs:
            proc.join(30)

    def __enter__(self) -> BareEngines:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
