"""Long recordings in parallel (SPEC 16): split a job into pieces, transcribe a piece, merge.

`Splitter` extends a worker's `JobRunner` with the three steps of a split job:

1. split (the worker that claimed the job): decode the recording once, find its silences with
   the engine's voice activity detector and cut it into pieces of about SPLIT_TARGET_SECONDS
   (`pipeline.split`); store each piece's audio as FLAC under `pieces/<job id>/<n>.flac` and
   queue the pieces, handing the job to them (`PieceStore.hand_over`). The worker is then free
   to take a piece like any other.
2. transcribe a piece (any worker, on any machine): the engine decodes the piece's utterances
   as the split's detector found them over the whole recording (a detector run afresh on the
   piece, having heard less, would place some differently), so a piece is decoded as the whole
   file would be; its segments, timed from the piece's start, are stored with the piece.
3. merge (the worker that finished the last piece, holding the job's lease again): the pieces'
   segments in order, every time offset by its piece's start, make one transcript of the whole
   recording; the cleaner runs once on it; the job completes with its event in one transaction.

Only engines that decode locally are split (sphinx): Deepgram needs the whole recording to tell
speakers apart, and the OpenAI-compatible transcriber splits by itself, only over its service's
upload limit (`pipeline.transcribers.openai`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from batchscribe.jobs.exceptions import JobLeaseLostError
from batchscribe.jobs.models import Job, JobErrorCode, JobStatus
from batchscribe.jobs.pieces import NewPiece, Piece, PieceOutput, PieceStore, piece_key
from batchscribe.jobs.results import JobResult
from batchscribe.jobs.runner import (
    ENGINE_RETRY_DELAY_SECONDS,
    STORAGE_RETRY_DELAY_SECONDS,
    STORAGE_RETRY_MAX_SECONDS,
    Heartbeat,
)
from batchscribe.logging_setup import interaction_id_var
from batchscribe.pipeline.audio import AudioInfo, probe_audio
from batchscribe.pipeline.exceptions import EngineUnavailableError, PipelineError
from batchscribe.pipeline.split import (
    analyse,
    offset_segments,
    plan_pieces,
    read_pcm,
    regions_of,
    write_flac,
)
from batchscribe.pipeline.transcribers.base import Control, EngineOutput
from batchscribe.pipeline.types import Segment, Transcript

if TYPE_CHECKING:
    from batchscribe.jobs.runner import JobRunner

logger = logging.getLogger(__name__)


def merge_pieces(pieces: list[Piece], engine: str) -> Transcript:
    """One transcript of the whole recording from its completed pieces, in order."""
    segments: list[Segment] = []
    duration = 0.0
    language: str | None = None
    for piece in sorted(pieces, key=lambda piece: piece.seq):
        output = piece.output()
        segments.extend(offset_segments(output.segments, piece.start_seconds))
        duration = max(duration, piece.start_seconds + output.duration_seconds)
        language = language or output.language
    return Transcript.from_engine(segments, duration, engine, language)


@runtime_checkable
class RegionTranscriber(Protocol):
    """An engine that can decode given stretches of speech of a file (sphinx)."""

    def transcribe_regions(
        self, path: Path, regions: Sequence[tuple[int, int]], control: Control = ...
    ) -> EngineOutput: ...


class PieceHeartbeat(Heartbeat):
    """Renews a piece's lease from a thread and records its progress (and its job's)."""

    def __init__(self, pieces: PieceStore, piece: Piece, owner: str, lease: float) -> None:
        super().__init__(pieces.jobs, _as_job_stub(piece), owner, lease)
        self.pieces = pieces
        self.piece = piece

    def _renew(self) -> None:
        self.pieces.renew(self.piece, self.owner, self.lease_seconds, self.progress)


def _as_job_stub(piece: Piece) -> Any:
    """`Heartbeat` logs and holds a job; a piece's heartbeat only needs an id."""

    class _Stub:
        id = piece.id

    return _Stub()


class Splitter:
    """The split, piece and merge steps for one worker's `JobRunner`."""

    def __init__(self, runner: JobRunner, pieces: PieceStore) -> None:
        self.runner = runner
        self.pieces = pieces
        self.settings = runner.settings

    # -- 1. split --------------------------------------------------------------------------------

    def wants(self, job: Job, info: AudioInfo) -> bool:
        """Split this job? Only long recordings, only on an engine that decodes locally."""
        return (
            self.runner.transcriber.decodes_locally
            and info.duration_seconds > self.settings.split_min_seconds
        )

    def was_split(self, job: Job) -> bool:
        """Claimed again after it was split (its merging worker died): it has pieces."""
        return bool(self.pieces.pieces_of(job.id))

    def split(self, job: Job, path: Path, info: AudioInfo, beat: Heartbeat, limit: float) -> bool:
        """Cut the recording into pieces, store them and hand the job over; False when it
        turned out too short to cut (the caller transcribes it whole)."""
        started, cpu = time.perf_counter(), time.process_time()
        blobs = self.runner.blobs
        stored: list[NewPiece] = []
        directory = Path(tempfile.mkdtemp(prefix="batchscribe-split-", dir=self.runner.work_dir))
        try:
            with (directory / "pcm").open("w+b") as spool:
                analysis = analyse(
                    path,
                    spool,
                    max_seconds=limit,
                    expected_seconds=info.duration_seconds,
                )
                plans = plan_pieces(analysis, self.settings.split_target_seconds)
                if len(plans) < 2:
                    return False
                for seq, plan in enumerate(plans):
                    if beat.lost.is_set():
                        raise JobLeaseLostError(job.id)
                    local = write_flac(read_pcm(spool, plan), directory / f"{seq}.flac")
                    key = piece_key(job.id, seq)
                    blobs.put_file(key, local)
                    local.unlink()
                    stored.append(
                        NewPiece(
                            plan.start_seconds,
                            plan.duration_seconds,
                            key,
                            plan.cut_in_speech,
                            regions_of(analysis, plan),
                        )
                    )
            # The job's lease passes to its pieces: stop renewing it first.
            beat.stop()
            self.runner._final(lambda: self.pieces.hand_over(job, self.runner.owner, stored))
        except BaseException:
            self._forget(stored)
            raise
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        logger.info(
            "job split into pieces",
            extra={
                "pieces": len(stored),
                "cut_in_speech": sum(piece.cut_in_speech for piece in stored),
                "audio_seconds": round(analysis.duration_seconds, 3),
                "elapsed_seconds": round(time.perf_counter() - started, 3),
                "cpu_seconds": round(time.process_time() - cpu, 3),
            },
        )
        return True

    def continue_job(self, job: Job, beat: Heartbeat) -> JobStatus | None:
        """A split job claimed again: back to its pieces, or merged when they are all done."""
        if self.runner._final(lambda: self.pieces.resume(job, self.runner.owner)):
            return None
        return self.merge(job)

    # -- 2. a piece ------------------------------------------------------------------------------

    def run_piece(self, piece: Piece) -> JobStatus | None:
        interaction_id_var.set(piece.job_id)
        runner = self.runner
        runner.stats = {"engine": runner.transcriber.name, "audio_seconds": 0.0}
        started, cpu = time.perf_counter(), time.process_time()
        lease = self.settings.job_lease_seconds
        beat = PieceHeartbeat(self.pieces, piece, runner.owner, lease)
        with beat:
            outcome = self._run_piece(piece, beat)
        logger.info(
            "piece transcribed" if outcome is None else "job finished",
            extra={
                "piece": piece.seq,
                "pieces": piece.pieces,
                "job_status": str(outcome) if outcome is not None else None,
                "attempt": piece.attempts,
                "elapsed_seconds": round(time.perf_counter() - started, 3),
                # This process's CPU for the piece (and the merge, when it was the last).
                "cpu_seconds": round(time.process_time() - cpu, 3),
            },
        )
        return outcome

    def _run_piece(self, piece: Piece, beat: PieceHeartbeat) -> JobStatus | None:
        runner = self.runner
        try:
            with self._piece_audio(piece) as path:
                info = probe_audio(path, decode=False)
                control = Control(
                    max_seconds=piece.duration_seconds + 1.0, progress=beat.set_progress
                )
                output = self._transcribe(piece, path, info, control)
        except runner._missing_error:
            return self._fail(
                piece,
                JobErrorCode.AUDIO_MISSING,
                f"The audio of {piece.label} of the recording is no longer in storage, so the "
                "job cannot finish. Submit the recording again.",
            )
        except runner._unavailable_error as exc:
            delay = min(
                STORAGE_RETRY_DELAY_SECONDS * 2 ** min(piece.attempts, 8),
                STORAGE_RETRY_MAX_SECONDS,
            )
            logger.warning("blob store unavailable (%s); piece back in the queue", exc)
            runner._final(lambda: self.pieces.defer(piece, runner.owner, delay))
            return None
        except JobLeaseLostError:
            return None
        except EngineUnavailableError as exc:
            failed = runner._final(
                lambda: self.pieces.release(piece, runner.owner, ENGINE_RETRY_DELAY_SECONDS)
            )
            logger.warning("engine unavailable (%s); piece back in the queue", exc)
            return JobStatus.FAILED if failed is not None else None
        except PipelineError as exc:
            return self._fail(
                piece,
                JobErrorCode.TRANSCRIPTION_FAILED,
                f"Transcribing {piece.label} of the recording failed: {exc}",
            )
        except Exception:
            logger.exception("the pipeline failed unexpectedly on a piece")
            return self._fail(
                piece,
                JobErrorCode.TRANSCRIPTION_FAILED,
                f"Transcription failed on {piece.label} of the recording. Try again; if it "
                "persists, report the job id to the operator.",
            )
        if beat.lost.is_set():
            return None
        duration = (
            output.duration_seconds
            if output.duration_seconds is not None
            else piece.duration_seconds
        )
        result = PieceOutput(output.segments, duration, output.language)
        beat.stop()  # the piece is done: its lease ends with the write below
        try:
            job = runner._final(
                lambda: self.pieces.complete(
                    piece, runner.owner, result, self.settings.job_lease_seconds
                )
            )
        except JobLeaseLostError:
            return None
        if job is None:
            return None
        return self.merge(job)

    def _transcribe(
        self, piece: Piece, path: Path, info: AudioInfo, control: Control
    ) -> EngineOutput:
        """The piece through the engine: with the utterances the splitter found over the whole
        recording when the engine can take them (sphinx), so that a piece is decoded exactly as
        the whole file would be; otherwise as an ordinary file."""
        engine = self.runner.transcriber
        regions = piece.regions
        if regions is not None and isinstance(engine, RegionTranscriber):
            return engine.transcribe_regions(path, regions, control)
        return engine.transcribe(path, info, control)

    @contextlib.contextmanager
    def _piece_audio(self, piece: Piece) -> Iterator[Path]:
        blobs = self.runner.blobs
        local = blobs.local_path(piece.audio_key)
        if local is not None:
            yield local
            return
        directory = Path(tempfile.mkdtemp(prefix="batchscribe-piece-", dir=self.runner.work_dir))
        try:
            path = directory / "piece.flac"
            blobs.download(piece.audio_key, path)
            yield path
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def _fail(self, piece: Piece, code: JobErrorCode, message: str) -> JobStatus | None:
        failed = self.runner._final(
            lambda: self.pieces.fail(piece, self.runner.owner, code, message)
        )
        if failed is None:
            return None
        self.finish(failed)
        return JobStatus.FAILED

    # -- 3. merge --------------------------------------------------------------------------------

    def merge(self, job: Job) -> JobStatus | None:
        """Merge the job's pieces, clean once, complete the job (this worker holds its lease)."""
        runner = self.runner
        lease = self.settings.job_lease_seconds
        with Heartbeat(runner.store, job, runner.owner, lease) as beat:
            try:
                transcript = merge_pieces(self.pieces.pieces_of(job.id), runner.transcriber.name)
            except ValueError:
                logger.exception("a piece's stored transcript could not be read")
                failed = runner._final(
                    lambda: runner.store.fail(
                        job.id,
                        runner.owner,
                        JobErrorCode.TRANSCRIPTION_FAILED,
                        "The pieces of this recording could not be put back together. Submit "
                        "it again; if it persists, report the job id to the operator.",
                    )
                )
                if failed is not None:
                    self.finish(failed)
                return JobStatus.FAILED if failed is not None else None
            runner.stats["audio_seconds"] = transcript.duration_seconds
            cleaning = runner._loop.run_until_complete(runner.cleaner.clean(transcript))
            runner.stats.update(cleaner=cleaning.engine, degraded=cleaning.degraded)
            if beat.lost.is_set():
                return None
            try:
                done = runner._final(
                    lambda: runner.store.complete(
                        job.id, runner.owner, JobResult(transcript, cleaning)
                    )
                )
            except JobLeaseLostError:
                return None
        self.finish(done)
        return JobStatus.COMPLETED

    def finish(self, job: Job) -> None:
        """The job ended: delete its pieces (rows and audio) and, unless KEEP_AUDIO, its
        upload. Whatever is left behind is swept later (`sweep`)."""
        self.discard(job.id)
        if not self.settings.keep_audio:
            self.runner._delete_audio(job)

    def _forget(self, stored: list[NewPiece]) -> None:
        """Delete the pieces stored before a split was abandoned."""
        for piece in stored:
            try:
                self.runner.blobs.delete(piece.audio_key)
            except Exception as exc:  # a blob store that is down: the retention sweep
                logger.warning("could not delete a piece of an abandoned split (%s)", exc)

    def discard(self, job_id: str) -> None:
        try:
            keys = self.pieces.discard(job_id)
            for key in keys:
                self.runner.blobs.delete(key)
        except Exception as exc:  # the sweep retries
            logger.warning("could not delete a finished job's pieces (%s)", exc)

    def sweep(self) -> None:
        """Delete the pieces of jobs that ended without their last piece's worker (cancelled,
        or failed while other pieces waited): any worker runs this now and then."""
        for job_id in self.pieces.leftovers():
            self.discard(job_id)
