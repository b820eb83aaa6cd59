"""Worker processes that hold a loaded engine and transcribe off the event loop.

Transcription is CPU work; running it in the server process would freeze `/healthz`. Each worker
loads its engine once (in the initializer) and then takes files one at a time. Admission is
bounded: at most `workers + max_queued` requests hold a slot; the next one gets
`OverloadedError` at once (HTTP 503 with Retry-After) instead of waiting without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchscribe.metrics import WORKERS_BUSY
from batchscribe.pipeline.audio import probe_audio
from batchscribe.pipeline.exceptions import (
    EngineUnavailableError,
    InvalidAudioError,
    OverloadedError,
    PipelineError,
    TranscriptionError,
)
from batchscribe.pipeline.formats import ACCEPTED_SENTENCE
from batchscribe.pipeline.types import Transcript

if TYPE_CHECKING:
    from batchscribe.config import Settings
    from batchscribe.pipeline.transcribers.base import Transcriber

logger = logging.getLogger(__name__)

_engine: Transcriber | None = None
_engine_error: str | None = None


def _init_worker(settings: Settings) -> None:
    """Runs once in each worker process: configure logging and load the engine.

    Settings travel pickled (not as JSON, which would mask the API keys)."""
    global _engine, _engine_error
    from batchscribe.logging_setup import configure_logging
    from batchscribe.pipeline.transcribers import build_transcriber

    configure_logging(settings.log_level)
    _exit_with_parent()
    try:
        _engine = build_transcriber(settings)
    except Exception as exc:  # reported through readiness and each request as 503
        _engine_error = f"{type(exc).__name__}: {exc}"
        logging.getLogger(__name__).exception("engine failed to load in worker")


def _exit_with_parent() -> None:
    """A worker whose server was SIGKILLed would wait for work forever; end it instead."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _warm(delay: float) -> tuple[int, str | None]:
    """Make sure a worker exists and has loaded its engine; report its pid and any load error."""
    time.sleep(delay)  # keeps this worker busy so the next warm task lands on another one
    return os.getpid(), _engine_error


def _transcribe_in_worker(path: str, interaction_id: str) -> Transcript:
    """Probe, then transcribe `path` in this worker. Runs in a child process."""
    from batchscribe.logging_setup import interaction_id_var

    interaction_id_var.set(interaction_id)
    if _engine is None:
        raise EngineUnavailableError(
            "The transcription engine is not available. Try again later; if it persists, "
            "an operator should check the server logs.",
            retry_after=30,
        )
    try:
        info = probe_audio(Path(path), decode=not _engine.decodes_locally)
    except InvalidAudioError:
        raise
    except Exception as exc:  # a decoder surprise on hostile input is still bad input
        raise InvalidAudioError(
            f"The file could not be decoded as audio. Upload {ACCEPTED_SENTENCE}."
        ) from exc
    started = time.perf_counter()
    try:
        output = _engine.transcribe(Path(path), info)
    except PipelineError:
        raise
    except Exception as exc:
        logging.getLogger(__name__).exception("engine failed")
        raise TranscriptionError(
            "Transcription failed on this file. Try again; if it persists, report the "
            "interaction id to the operator."
        ) from exc
    duration = (
        output.duration_seconds if output.duration_seconds is not None else info.duration_seconds
    )
    transcript = Transcript.from_engine(output.segments, duration, _engine.name, output.language)
    logging.getLogger(__name__).info(
        "transcribed",
        extra={
            "engine": _engine.name,
            "audio_seconds": round(duration, 3),
            "cpu_seconds": round(time.perf_counter() - started, 3),
            "turns": len(transcript.segments),
            "transcript_chars": len(transcript.raw_text),
        },
    )
    return transcript


class TranscriptionPool:
    """A process pool of loaded engines with bounded admission."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.workers = settings.workers
        self.capacity = settings.workers + settings.max_queued
        self._in_use = 0
        self._executor: ProcessPoolExecutor | None = None
        self.ready = False
        self.load_error: str | None = None

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._settings,),
        )

    async def start(self) -> None:
        """Start every worker and wait until each has loaded its engine."""
        self._executor = self._new_executor()
        loop = asyncio.get_running_loop()
        results = await asyncio.gather(
            *(
                loop.run_in_executor(self._executor, _warm, 0.3 if self.workers > 1 else 0.0)
                for _ in range(self.workers)
            )
        )
        errors = {err for _, err in results if err}
        self.load_error = next(iter(errors), None)
        self.ready = self.load_error is None
        logger.info(
            "worker pool ready" if self.ready else "worker pool started without an engine",
            extra={
                "workers": len({pid for pid, _ in results}),
                "capacity": self.capacity,
                "engine": self._settings.transcriber,
                "load_error": self.load_error,
            },
        )

    async def stop(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True, cancel_futures=True)
            )
        self.ready = False

    @property
    def in_use(self) -> int:
        return self._in_use

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Reserve a place for one request, or raise `OverloadedError` at once."""
        if self._in_use >= self.capacity:
            raise OverloadedError(
                "The server is busy with other transcriptions. Retry in a little while.",
                retry_after=self._retry_after(),
            )
        self._in_use += 1
        WORKERS_BUSY.set(self._in_use)
        try:
            yield
        finally:
            self._in_use -= 1
            WORKERS_BUSY.set(self._in_use)

    def _retry_after(self) -> int:
        return max(5, min(120, 10 * (self._in_use // max(1, self.workers))))

    async def transcribe(self, path: Path, interaction_id: str) -> Transcript:
        """Transcribe `path` in a worker. Pipeline errors come back as raised in the worker."""
        if self._executor is None:
            raise EngineUnavailableError(
                "The server is starting or stopping. Retry in a few seconds.", retry_after=5
            )
        loop = asyncio.get_running_loop()
        try:
            result: Any = await loop.run_in_executor(
                self._executor, _transcribe_in_worker, str(path), interaction_id
            )
        except BrokenProcessPool as exc:
            # A worker died (out of memory, a crash in native code). Replace the pool so the
            # next request works, and tell this client to retry.
            logger.error("a worker process died; restarting the pool")
            old, self._executor = self._executor, self._new_executor()
            old.shutdown(wait=False, cancel_futures=True)
            raise EngineUnavailableError(
                "A transcription worker stopped unexpectedly. Retry the request.", retry_after=5
            ) from exc
        assert isinstance(result, Transcript)
        return result
