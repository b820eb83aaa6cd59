"""The embedded engine: CMU PocketSphinx 5 with its bundled en-US model, offline, on the CPU.

Audio arrives as 16 kHz mono PCM from `iter_pcm`, goes through pocketsphinx's `Segmenter`
(voice activity detection) and is decoded one utterance at a time. Compared with decoding the
whole file as one utterance this keeps memory flat on hour-long files (at most one utterance of
PCM is held, and utterances are capped at `MAX_UTTERANCE_SECONDS`), skips silence, and yields the
utterance boundaries the rules cleaner turns into sentences. There is no diarization: every
utterance belongs to speaker 0.

Timing: the decoder reports each word's first and last frame (`Config` `frate`, 100 frames a
second) counted from the start of the utterance it was given. The utterance's own place in the
recording is where the `Segmenter` says its speech region started, plus whatever part of the
region was already decoded when a long region is cut at `MAX_UTTERANCE_SECONDS` (the endpointer
hands back a region's audio contiguously, so the cut pieces follow each other exactly). Word
times are that offset plus the frames; a segment spans its first word's start to its last word's
end. Fillers (`<s>`, `</s>`, `<sil>`, `[NOISE]`...) are not words; `word(2)` is the dictionary's
second pronunciation of `word`. A word's confidence is the decoder's posterior probability.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pocketsphinx import Decoder, Segmenter

from batchscribe.pipeline.audio import SAMPLE_RATE, AudioInfo, iter_pcm
from batchscribe.pipeline.exceptions import (
    EngineUnavailableError,
    InvalidAudioError,
    TranscriptionError,
)
from batchscribe.pipeline.transcribers.base import NO_CONTROL, Control, EngineOutput
from batchscribe.pipeline.types import Segment, Word

logger = logging.getLogger(__name__)

#: A VAD region longer than this (a monologue without pauses, steady noise) is decoded in
#: pieces of this length, so neither the PCM buffer nor the decoder's search grows without bound.
MAX_UTTERANCE_SECONDS = 20.0
_BYTES_PER_SAMPLE = 2
_BYTES_PER_SECOND = SAMPLE_RATE * _BYTES_PER_SAMPLE
#: The language of the model that ships in the wheel.
LANGUAGE = "en"
#: `word(2)`: the dictionary's alternative pronunciations of one word.
_ALTERNATIVE = re.compile(r"\(\d+\)$")
_ENGINE_FAILED = (
    "The speech engine failed on this recording. Try again, or convert it to WAV and upload that."
)


def _vad(step: Callable[[bytes], bytes | None], frame: bytes) -> bytes | None:
    """One call into the endpointer, its errors translated."""
    try:
        return step(frame)
    except (IndexError, ValueError, RuntimeError) as exc:
        raise TranscriptionError(_ENGINE_FAILED) from exc


@dataclass
class _Utterance:
    """PCM collected for the next decode, and where its first sample sits in the recording.

    `continues` is True after a speech region was cut at the length cap: the next piece starts
    where the last one ended rather than where the endpointer's region started.
    """

    start: float = 0.0
    pcm: bytearray = field(default_factory=bytearray)
    continues: bool = False

    @property
    def end(self) -> float:
        return self.start + len(self.pcm) / _BYTES_PER_SECOND

    def add(self, voiced: bytes, region_start: float) -> None:
        if not self.pcm and not self.continues:
            self.start = region_start
        self.pcm += voiced

    def next_piece(self, *, continues: bool) -> None:
        """Empty the buffer once decoded; a cut region's next piece starts where this ended."""
        self.start = self.end
        self.pcm.clear()
        self.continues = continues


def _is_filler(word: str) -> bool:
    """`<s>`, `</s>`, `<sil>`, `[NOISE]`, `[SPEECH]`, `++GARBAGE++`: silence and noise models."""
    return not word or word[0] in "<[+"


def _within(pieces: list[Segment], duration: float) -> list[Segment]:
    """Clamp times to [0, duration]: the last piece's audio may carry the padding sample
    `end_stream` needs, which is not part of the recording."""

    def clamp(value: float) -> float:
        return min(max(value, 0.0), duration)

    return [
        Segment(
            piece.speaker,
            piece.text,
            clamp(piece.start or 0.0),
            clamp(piece.end or 0.0),
            tuple(
                Word(word.text, clamp(word.start), clamp(word.end), word.confidence)
                for word in piece.words
            ),
        )
        for piece in pieces
    ]


class SphinxTranscriber:
    """PocketSphinx decoder loaded once; `transcribe` is called one file at a time.

    Not thread-safe: the worker process owns one instance and calls it sequentially.
    """

    name = "sphinx"
    decodes_locally = True

    def __init__(
        self,
        *,
        max_utterance_seconds: float = MAX_UTTERANCE_SECONDS,
        decoder_options: Mapping[str, object] | None = None,
    ) -> None:
        """Load the model (about a second). `decoder_options` are pocketsphinx `Config` keys,
        e.g. `{"fwdflat": False, "maxhmmpf": 3000}` trades some accuracy for about twice the
        speed."""
        options: dict[str, object] = {"loglevel": "FATAL", **(decoder_options or {})}
        try:
            # Default config = the en-US acoustic model, language model and dictionary that ship
            # in the wheel; loglevel keeps pocketsphinx's C logging off stderr.
            self._decoder = Decoder(**options)
            self._frame_seconds = 1.0 / float(self._decoder.config["frate"])
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineUnavailableError(
                "The speech engine could not load its model. Reinstall the pocketsphinx package "
                "or choose another engine with TRANSCRIBER."
            ) from exc
        self._max_utterance_bytes = int(max_utterance_seconds * SAMPLE_RATE) * _BYTES_PER_SAMPLE

    def transcribe(
        self, path: Path, info: AudioInfo, control: Control = NO_CONTROL
    ) -> EngineOutput:
        """One `Segment` of speaker 0 per non-empty utterance, with its times and words, and
        the decoded duration.

        Raises `InvalidAudioError` if the file yields no samples, `TranscriptionError` if the
        decoder fails on audio that decoded fine.
        """
        segmenter = Segmenter()
        frame_bytes: int = segmenter.frame_bytes
        pending = bytearray()  # PCM not yet a whole VAD frame
        utterance = _Utterance()
        pieces: list[Segment] = []
        total_bytes = 0

        expected = max(info.duration_seconds, 1e-6) * _BYTES_PER_SECOND
        for chunk in iter_pcm(path, max_seconds=control.max_seconds):
            total_bytes += len(chunk)
            if control.progress is not None:
                control.progress(min(total_bytes / expected, 0.99))
            pending += chunk
            usable = len(pending) - len(pending) % frame_bytes
            for offset in range(0, usable, frame_bytes):
                voiced = _vad(segmenter.process, bytes(pending[offset : offset + frame_bytes]))
                if voiced is None:
                    continue
                utterance.add(voiced, segmenter.speech_start)
                if not segmenter.in_speech or len(utterance.pcm) >= self._max_utterance_bytes:
                    self._decode_utterance(utterance, pieces)
                    utterance.next_piece(continues=segmenter.in_speech)
            del pending[:usable]
        if segmenter.in_speech:
            # The recording ends mid-utterance: flush what the VAD still holds. end_stream
            # refuses an empty frame, so an exact multiple of the frame size gets one silent
            # sample.
            tail = _vad(segmenter.end_stream, bytes(pending) or b"\x00\x00")
            if tail is not None:
                utterance.add(tail, segmenter.speech_start)
        if utterance.pcm:
            self._decode_utterance(utterance, pieces)

        if total_bytes == 0:
            raise InvalidAudioError(
                "The audio has no samples (zero duration). Upload a recording that contains sound."
            )
        duration = total_bytes / _BYTES_PER_SECOND
        logger.debug("sphinx decoded %.1f s of audio into %d utterances", duration, len(pieces))
        return EngineOutput(_within(pieces, duration), duration, LANGUAGE)

    def transcribe_regions(
        self,
        path: Path,
        regions: Sequence[tuple[int, int]],
        control: Control = NO_CONTROL,
    ) -> EngineOutput:
        """Decode only the given stretches of speech (sample ranges in `path`), exactly as
        `transcribe` decodes the utterances its own detector finds, in pieces of the same
        length when they are long.

        For the pieces of a long recording (`jobs.splitting`): the detector adapts to what it
        has heard, so run afresh on a piece it would place some utterances differently from a
        run over the whole recording. The splitter's run over the whole recording gives the
        piece its utterances, and the piece is decoded as the whole file would be.
        """
        pcm = b"".join(iter_pcm(path, max_seconds=control.max_seconds))
        if not pcm:
            raise InvalidAudioError(
                "The audio has no samples (zero duration). Upload a recording that contains sound."
            )
        # `transcribe` decodes a long utterance as soon as it holds the cap, which it checks
        # after every detector frame: its pieces are the cap rounded up to whole frames.
        frame_bytes = int(Segmenter().frame_bytes)
        step = -(-self._max_utterance_bytes // frame_bytes) * frame_bytes
        pieces: list[Segment] = []
        for done, (first, last) in enumerate(regions, start=1):
            speech = pcm[first * _BYTES_PER_SAMPLE : last * _BYTES_PER_SAMPLE]
            for offset in range(0, len(speech), step):
                start = (first * _BYTES_PER_SAMPLE + offset) / _BYTES_PER_SECOND
                chunk = bytearray(speech[offset : offset + step])
                self._decode_utterance(_Utterance(start, chunk), pieces)
            if control.progress is not None:
                control.progress(min(done / max(len(regions), 1), 0.99))
        duration = len(pcm) / _BYTES_PER_SECOND
        return EngineOutput(_within(pieces, duration), duration, LANGUAGE)

    def _decode_utterance(self, utterance: _Utterance, pieces: list[Segment]) -> None:
        """Decode one utterance; keep it, with its words placed in the recording, if it has
        words. The caller empties the buffer."""
        decoder = self._decoder
        try:
            decoder.start_utt()
            try:
                decoder.process_raw(bytes(utterance.pcm), full_utt=True)
            finally:
                decoder.end_utt()
            hypothesis = decoder.hyp()
            text = hypothesis.hypstr.strip() if hypothesis is not None else ""
            words = self._words(decoder.seg(), utterance) if text else ()
        except (RuntimeError, ValueError) as exc:
            utterance.pcm.clear()
            raise TranscriptionError(_ENGINE_FAILED) from exc
        if text:
            start = words[0].start if words else utterance.start
            end = words[-1].end if words else utterance.end
            pieces.append(Segment(0, text, start, end, words))

    def _words(self, segments: Iterable[Any], utterance: _Utterance) -> tuple[Word, ...]:
        """The decoder's word segmentation as words timed in the recording.

        Frames are counted from the utterance's start; `end_frame` is inclusive. Times are
        kept inside the utterance's audio and in order (the search never overlaps words, the
        clamp only guards the rounding at the edges).
        """
        words: list[Word] = []
        floor = utterance.start
        for seg in segments:
            name = str(seg.word)
            if _is_filler(name):
                continue
            start = max(floor, utterance.start + seg.start_frame * self._frame_seconds)
            end = min(utterance.end, utterance.start + (seg.end_frame + 1) * self._frame_seconds)
            end = max(start, end)
            probability = float(seg.prob)
            words.append(
                Word(_ALTERNATIVE.sub("", name), start, end, min(max(probability, 0.0), 1.0))
            )
            floor = end
        return tuple(words)
