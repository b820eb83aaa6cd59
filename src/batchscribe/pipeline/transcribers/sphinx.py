"""The embedded engine: CMU PocketSphinx 5 with its bundled en-US model, offline, on the CPU.

Audio arrives as 16 kHz mono PCM from `iter_pcm`, goes through pocketsphinx's `Segmenter`
(voice activity detection) and is decoded one utterance at a time. Compared with decoding the
whole file as one utterance this keeps memory flat on hour-long files (at most one utterance of
PCM is held, and utterances are capped at `MAX_UTTERANCE_SECONDS`), skips silence, and yields the
utterance boundaries the rules cleaner turns into sentences. There is no diarization: every
utterance belongs to speaker 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from pocketsphinx import Decoder, Segmenter

from batchscribe.pipeline.audio import SAMPLE_RATE, AudioInfo, iter_pcm
from batchscribe.pipeline.exceptions import (
    EngineUnavailableError,
    InvalidAudioError,
    TranscriptionError,
)
from batchscribe.pipeline.transcribers.base import EngineOutput
from batchscribe.pipeline.types import Segment

logger = logging.getLogger(__name__)

#: A VAD region longer than this (a monologue without pauses, steady noise) is decoded in
#: pieces of this length, so neither the PCM buffer nor the decoder's search grows without bound.
MAX_UTTERANCE_SECONDS = 20.0
_BYTES_PER_SAMPLE = 2
_ENGINE_FAILED = (
    "The speech engine failed on this recording. Try again, or convert it to WAV and upload that."
)


def _vad(step: Callable[[bytes], bytes | None], frame: bytes) -> bytes | None:
    """One call into the endpointer, its errors translated."""
    try:
        return step(frame)
    except (IndexError, ValueError, RuntimeError) as exc:
        raise TranscriptionError(_ENGINE_FAILED) from exc


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
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineUnavailableError(
                "The speech engine could not load its model. Reinstall the pocketsphinx package "
                "or choose another engine with TRANSCRIBER."
            ) from exc
        self._max_utterance_bytes = int(max_utterance_seconds * SAMPLE_RATE) * _BYTES_PER_SAMPLE

    def transcribe(self, path: Path, info: AudioInfo) -> EngineOutput:
        """One `Segment(0, text)` per non-empty utterance, and the decoded duration.

        Raises `InvalidAudioError` if the file yields no samples, `TranscriptionError` if the
        decoder fails on audio that decoded fine.
        """
        segmenter = Segmenter()
        frame_bytes: int = segmenter.frame_bytes
        pending = bytearray()  # PCM not yet a whole VAD frame
        speech = bytearray()  # the current utterance's PCM
        texts: list[str] = []
        total_bytes = 0

        for chunk in iter_pcm(path):
            total_bytes += len(chunk)
            pending += chunk
            usable = len(pending) - len(pending) % frame_bytes
            for offset in range(0, usable, frame_bytes):
                voiced = _vad(segmenter.process, bytes(pending[offset : offset + frame_bytes]))
                if voiced is not None:
                    speech += voiced
                    if not segmenter.in_speech or len(speech) >= self._max_utterance_bytes:
                        self._decode_utterance(speech, texts)
            del pending[:usable]
        if segmenter.in_speech:
            # The recording ends mid-utterance: flush what the VAD still holds. end_stream
            # refuses an empty frame, so an exact multiple of the frame size gets one silent
            # sample.
            tail = _vad(segmenter.end_stream, bytes(pending) or b"\x00\x00")
            if tail is not None:
                speech += tail
        if speech:
            self._decode_utterance(speech, texts)

        if total_bytes == 0:
            raise InvalidAudioError(
                "The audio has no samples (zero duration). Upload a recording that contains sound."
            )
        duration = total_bytes / _BYTES_PER_SAMPLE / SAMPLE_RATE
        logger.debug("sphinx decoded %.1f s of audio into %d utterances", duration, len(texts))
        return EngineOutput([Segment(0, text) for text in texts], duration)

    def _decode_utterance(self, speech: bytearray, texts: list[str]) -> None:
        """Decode one utterance (and empty the buffer); keep its text if it has words."""
        decoder = self._decoder
        try:
            decoder.start_utt()
            try:
                decoder.process_raw(bytes(speech), full_utt=True)
            finally:
                decoder.end_utt()
            hypothesis = decoder.hyp()
        except (RuntimeError, ValueError) as exc:
            raise TranscriptionError(_ENGINE_FAILED) from exc
        finally:
            speech.clear()
        text = hypothesis.hypstr.strip() if hypothesis is not None else ""
        if text:
            texts.append(text)
