"""Speech fixtures and measurements shared by tests and benchmarks.

The fixtures are committed files made by `scripts/make_fixtures.py` (espeak-ng reading known
sentences); nothing here needs espeak-ng at test time.
"""

from __future__ import annotations

import json
import re
import wave
from pathlib import Path
from typing import Any

import jiwer

from batchscribe.pipeline.audio import SAMPLE_RATE, iter_pcm

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
BAD_INPUTS = FIXTURES / "bad"
#: Every upload format the fixtures come in (each at a different rate or layout).
SPEECH_FORMATS = ("wav", "flac", "mp3", "m4a", "webm")


def speech_fixture(fmt: str, *, short: bool = False) -> Path:
    """The committed recording of the known sentences in format `fmt` (a file suffix)."""
    path = FIXTURES / f"{'speech_short' if short else 'speech'}.{fmt}"
    if not path.is_file():
        raise FileNotFoundError(f"no fixture {path}; run scripts/make_fixtures.py")
    return path


def known_text(*, short: bool = False) -> str:
    """The sentences the fixture reads, one per line, as written (capitalised, punctuated)."""
    return (FIXTURES / f"{'speech_short' if short else 'speech'}.txt").read_text().strip()


def known_sentences(*, short: bool = False) -> list[str]:
    return known_text(short=short).splitlines()


def known_timing(*, short: bool = False) -> dict[str, Any]:
    """Where each sentence and word of the fixture was spoken, in seconds (`<stem>.timing.json`,
    written by `scripts/make_fixtures.py` from espeak-ng's word events): `duration`, and
    `sentences`, each with `text`, `start`, `end` (first and last audible sample) and `words`
    (`word` as written, `start`, `end`)."""
    path = FIXTURES / f"{'speech_short' if short else 'speech'}.timing.json"
    timing: dict[str, Any] = json.loads(path.read_text())
    return timing


def normalise_words(text: str) -> str:
    """Lower-case words only (no labels, no punctuation), the form WER is measured on."""
    text = re.sub(r"SPEAKER_\d+:", " ", text)
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of `hypothesis` against `reference`, ignoring case, punctuation and speaker labels."""
    return float(jiwer.wer(normalise_words(reference), normalise_words(hypothesis)))


def make_long_wav(path: Path, minutes: float, *, source: Path | None = None) -> Path:
    """Write a 16 kHz mono WAV of about `minutes` by repeating a fixture's PCM.

    Written chunk by chunk, so building an hour-long file does not hold it in memory.
    """
    pcm = b"".join(iter_pcm(source or speech_fixture("flac")))
    target_bytes = int(minutes * 60 * SAMPLE_RATE) * 2
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        written = 0
        while written < target_bytes:
            piece = pcm[: target_bytes - written]
            out.writeframes(piece)
            written += len(piece)
    return path
