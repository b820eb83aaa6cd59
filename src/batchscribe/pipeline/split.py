"""Cutting a long recording into pieces at silences, so several workers can transcribe it.

One pass decodes the recording (PyAV, 16 kHz mono, as the engine hears it), runs the same voice
activity detector the embedded engine uses (pocketsphinx's `Segmenter`), keeps a coarse loudness
per detector frame and spools the PCM to a local file. `plan_pieces` then chooses where to cut:

- Every piece ends inside a silence (a gap between two speech regions of the detector), at the
  point of the gap nearest to the piece's target end, never closer than `EDGE_MARGIN_SECONDS` to
  the speech on either side. A gap is looked for from half the target on and as far as
  `2 x target` past that, so whenever no stretch of speech is longer than twice the target a
  gap is always found and no word is cut.
- Only a stretch of speech longer than twice the target (a monologue without pauses, or steady
  noise the detector takes for speech) is cut inside speech: at its quietest moment (the lowest
  loudness over `QUIET_WINDOW_FRAMES` frames) near the target, where a breath or a word boundary
  most likely is.
- Pieces aim at `target` seconds, and the recording's last stretch is cut finer (a piece aims at
  half of what remains, but never under half the target): a worker that takes a piece near the
  end then finishes close to the others, instead of one full-size piece running on alone while
  the others idle. It costs one or two more pieces per recording.

Cuts are sample positions, so the pieces put back together are exactly the recording, and the
times of a piece's words plus the piece's start are times in the recording.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
from pocketsphinx import Segmenter

from batchscribe.pipeline.audio import SAMPLE_RATE, AudioInfo, iter_pcm, probe_audio
from batchscribe.pipeline.exceptions import InvalidAudioError, TranscriptionError
from batchscribe.pipeline.transcribers.base import NO_CONTROL, Control, EngineOutput
from batchscribe.pipeline.types import Segment, Word

BYTES_PER_SAMPLE = 2
#: A cut inside a silence stays at least this far from the speech around it (seconds).
EDGE_MARGIN_SECONDS = 0.15
#: The quietest moment of a long stretch of speech is the lowest loudness over this many
#: detector frames (30 ms each): a breath or a pause between words, not one quiet sample.
QUIET_WINDOW_FRAMES = 5
#: Loudness is measured on every Nth sample of a frame: plenty for telling pauses from words.
_LEVEL_STRIDE = 4
_NO_SAMPLES = "The audio has no samples (zero duration). Upload a recording that contains sound."


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one pass over a recording found: its length in samples, the detector's speech
    regions (seconds, in order, not overlapping) and the loudness of each detector frame."""

    samples: int
    regions: list[tuple[float, float]]
    levels: array[float]
    frame_seconds: float

    @property
    def duration_seconds(self) -> float:
        return self.samples / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class PiecePlan:
    """One piece of the recording: samples [start, end), and whether its end is inside speech
    (only when a stretch of speech was longer than twice the target)."""

    start: int
    end: int
    cut_in_speech: bool = False

    @property
    def start_seconds(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_seconds(self) -> float:
        return self.end / SAMPLE_RATE

    @property
    def duration_seconds(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


def _level(frame: bytes) -> float:
    """Mean absolute amplitude of a frame of s16le samples (every `_LEVEL_STRIDE`th sample)."""
    samples = array("h")
    samples.frombytes(frame)
    if sys.byteorder == "big":
        samples.byteswap()
    picked = samples[::_LEVEL_STRIDE]
    return sum(map(abs, picked)) / max(len(picked), 1)


def analyse(
    path: Path,
    spool: BinaryIO,
    *,
    max_seconds: float | None = None,
    progress: Callable[[float], None] | None = None,
    expected_seconds: float = 0.0,
) -> Analysis:
    """Decode `path` once: write its PCM to `spool`, find its speech regions and loudness.

    Raises `InvalidAudioError` when it has no samples, `AudioTooLongError` past `max_seconds`.
    """
    segmenter = Segmenter()
    frame_bytes: int = segmenter.frame_bytes
    frame_seconds = frame_bytes / BYTES_PER_SAMPLE / SAMPLE_RATE
    regions: list[tuple[float, float]] = []
    levels: array[float] = array("f")
    region_start: float | None = None
    pending = bytearray()
    total = 0
    expected_bytes = max(expected_seconds, 1e-6) * SAMPLE_RATE * BYTES_PER_SAMPLE

    def step(frame: bytes) -> None:
        nonlocal region_start
        try:
            voiced = segmenter.process(frame)
        except (IndexError, ValueError, RuntimeError) as exc:
            raise TranscriptionError(
                "The voice activity detector failed on this recording. Try again, or convert "
                "it to WAV and upload that."
            ) from exc
        levels.append(_level(frame))
        if voiced is None:
            return
        if region_start is None:
            region_start = float(segmenter.speech_start)
        if not segmenter.in_speech:
            regions.append((region_start, float(segmenter.speech_end)))
            region_start = None

    for chunk in iter_pcm(path, max_seconds=max_seconds):
        spool.write(chunk)
        total += len(chunk)
        if progress is not None:
            progress(min(total / expected_bytes, 1.0))
        pending += chunk
        usable = len(pending) - len(pending) % frame_bytes
        for offset in range(0, usable, frame_bytes):
            step(bytes(pending[offset : offset + frame_bytes]))
        del pending[:usable]
    if total == 0:
        raise InvalidAudioError(_NO_SAMPLES)
    duration = total / BYTES_PER_SAMPLE / SAMPLE_RATE
    if region_start is not None:  # the recording ends in speech
        regions.append((region_start, duration))
    spool.flush()
    clipped = [(max(a, 0.0), min(b, duration)) for a, b in regions if b > a]
    return Analysis(total // BYTES_PER_SAMPLE, clipped, levels, frame_seconds)


def _gaps(regions: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """The silences between speech regions, including before the first and after the last."""
    gaps: list[tuple[float, float]] = []
    previous_end = 0.0
    for start, end in regions:
        if start > previous_end:
            gaps.append((previous_end, start))
        previous_end = max(previous_end, end)
    if duration > previous_end:
        gaps.append((previous_end, duration))
    return gaps


def _in_gap(gap: tuple[float, float], ideal: float, *, start: float, end: float) -> float:
    """The point of `gap` nearest `ideal`, kept off the speech at the gap's edges (the start
    and end of the recording are not speech)."""
    low, high = gap
    margin_low = 0.0 if low <= start else min(EDGE_MARGIN_SECONDS, (high - low) / 2)
    margin_high = 0.0 if high >= end else min(EDGE_MARGIN_SECONDS, (high - low) / 2)
    return min(max(ideal, low + margin_low), high - margin_high)


def _quietest(analysis: Analysis, low: float, high: float) -> float:
    """The centre of the quietest `QUIET_WINDOW_FRAMES` frames between `low` and `high`."""
    levels = analysis.levels
    width = QUIET_WINDOW_FRAMES
    first = max(int(low / analysis.frame_seconds), 0)
    last = min(int(high / analysis.frame_seconds), len(levels)) - width
    if last <= first:
        return (low + high) / 2
    window = sum(levels[first : first + width])
    best, best_at = window, first
    for index in range(first + 1, last + 1):
        window += levels[index + width - 1] - levels[index - 1]
        if window < best:
            best, best_at = window, index
    return (best_at + width / 2) * analysis.frame_seconds


def _speech_at(analysis: Analysis, at: float) -> float:
    """How long the stretch of speech around `at` is (0 in a silence)."""
    return next((end - start for start, end in analysis.regions if start <= at <= end), 0.0)


def plan_pieces(analysis: Analysis, target_seconds: float) -> list[PiecePlan]:
    """Where to cut the analysed recording into pieces of about `target_seconds` (see the
    module docstring); one piece when it is not longer than that."""
    if target_seconds <= 0:
        raise ValueError("target_seconds must be positive")
    duration = analysis.duration_seconds
    gaps = _gaps(analysis.regions, duration)
    cuts: list[tuple[float, bool]] = []
    last = 0.0
    while True:
        remaining = duration - last
        size = min(target_seconds, max(target_seconds / 2, remaining / 2))
        if remaining <= size * 1.25:
            break
        ideal = last + size
        # A piece is at least half its size, and leaves at least a quarter of it for the next.
        low = last + size / 2
        # Past any stretch of speech of up to twice the target that starts near `low`, and
        # the margin that a cut keeps off it.
        reach = low + 2 * target_seconds + 4 * EDGE_MARGIN_SECONDS
        high = min(reach, duration - size / 4)
        points = [
            _in_gap(gap, ideal, start=0.0, end=duration)
            for gap in gaps
            if gap[1] >= low and gap[0] <= high
        ]
        points = [point for point in points if low <= point <= high]
        if points:
            cut, in_speech = min(points, key=lambda point: abs(point - ideal)), False
        elif high < reach and _speech_at(analysis, low) <= 2 * target_seconds:
            break  # speech runs on to the end without a pause: the rest is the last piece
        else:
            # Twice the target without a pause: cut where the speech is quietest.
            cut = _quietest(analysis, max(low, ideal - size / 4), min(high, ideal + size / 4))
            in_speech = any(start < cut < end for start, end in analysis.regions)
        cuts.append((cut, in_speech))
        last = cut
    plans: list[PiecePlan] = []
    start = 0
    for cut, in_speech in cuts:
        end = round(cut * SAMPLE_RATE)
        if end > start:
            plans.append(PiecePlan(start, end, in_speech))
            start = end
    plans.append(PiecePlan(start, analysis.samples))
    return plans


def regions_of(analysis: Analysis, plan: PiecePlan) -> list[tuple[int, int]]:
    """The analysis's stretches of speech inside the piece, as sample ranges from the piece's
    start (a stretch cut by the piece's edge is clipped to it)."""
    out: list[tuple[int, int]] = []
    for start, end in analysis.regions:
        first = max(round(start * SAMPLE_RATE), plan.start) - plan.start
        last = min(round(end * SAMPLE_RATE), plan.end) - plan.start
        if last > first:
            out.append((first, last))
    return out


def read_pcm(
    spool: BinaryIO, plan: PiecePlan, chunk_samples: int = SAMPLE_RATE * 10
) -> Iterator[bytes]:
    """The piece's PCM from the spool file, in chunks."""
    spool.seek(plan.start * BYTES_PER_SAMPLE)
    left = (plan.end - plan.start) * BYTES_PER_SAMPLE
    while left > 0:
        chunk = spool.read(min(left, chunk_samples * BYTES_PER_SAMPLE))
        if not chunk:
            break
        left -= len(chunk)
        yield chunk


def write_flac(chunks: Iterator[bytes], out: Path) -> Path:
    """Encode 16 kHz mono s16le PCM as FLAC (lossless: decoding gives the same samples back)."""
    with av.open(str(out), mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        for chunk in chunks:
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
            frame.planes[0].update(chunk)
            frame.sample_rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out


def offset_segments(segments: list[Segment], offset: float) -> list[Segment]:
    """A piece's segments placed in the recording: every time moved by the piece's start
    (times the engine did not report stay None)."""

    def moved(value: float | None) -> float | None:
        return None if value is None else value + offset

    return [
        Segment(
            segment.speaker,
            segment.text,
            moved(segment.start),
            moved(segment.end),
            tuple(
                Word(word.text, word.start + offset, word.end + offset, word.confidence)
                for word in segment.words
            ),
        )
        for segment in segments
    ]


#: 16-bit mono PCM at 16 kHz: what a second of a piece costs at most (FLAC is smaller but
#: cannot promise how much smaller on noise).
_PIECE_BYTES_PER_SECOND = SAMPLE_RATE * BYTES_PER_SAMPLE
#: Pieces can reach 2.5 x their target (a long stretch of speech waits for its pause); the rest
#: of the margin covers container overhead.
_LONGEST_PIECE_FACTOR = 2.5
_SIZE_MARGIN = 0.9


def transcribe_in_pieces(
    path: Path,
    max_bytes: int,
    transcribe_file: Callable[[Path, AudioInfo], EngineOutput],
    control: Control = NO_CONTROL,
) -> EngineOutput:
    """Transcribe a file too large for a service's upload limit: cut it at silences into FLAC
    pieces that each fit in `max_bytes`, send them one by one in order through
    `transcribe_file`, and merge the results with every time offset by its piece's start."""
    target = max_bytes * _SIZE_MARGIN / _PIECE_BYTES_PER_SECOND / _LONGEST_PIECE_FACTOR
    directory = Path(tempfile.mkdtemp(prefix="batchscribe-upload-pieces-"))
    try:
        with (directory / "pcm").open("w+b") as spool:
            analysis = analyse(path, spool, max_seconds=control.max_seconds)
            segments: list[Segment] = []
            language: str | None = None
            plans = plan_pieces(analysis, target)
            for seq, plan in enumerate(plans):
                piece = write_flac(read_pcm(spool, plan), directory / f"piece-{seq}.flac")
                output = transcribe_file(piece, probe_audio(piece, decode=False))
                piece.unlink()
                segments.extend(offset_segments(output.segments, plan.start_seconds))
                language = language or output.language
                if control.progress is not None:
                    control.progress((seq + 1) / len(plans))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return EngineOutput(segments, analysis.duration_seconds, language)
