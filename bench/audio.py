"""Benchmark audio, built at bench time from the committed speech fixture (never committed).

Long recordings are the fixture repeated; with `speech_fraction` below 1, each copy is followed by
faint room tone so that the given share of the file is speech (meetings have pauses, and the
engine's voice activity detection skips them). Files are FLAC so a 60-minute upload stays under
the default 100 MiB limit, like a real client would send it.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
SPEECH = FIXTURES / "speech.wav"
SHORT_SPEECH = FIXTURES / "speech_short.wav"
_CHUNK_SECONDS = 30


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono 16-bit samples and the sample rate of a PCM WAV file."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path} is not 16-bit PCM")
        rate, channels = wav.getframerate(), wav.getnchannels()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    return samples, rate


def _pieces(seconds: float, speech_fraction: float, seed: int) -> Iterator[np.ndarray]:
    speech, rate = read_wav(SPEECH)
    gap_len = round(len(speech) * (1 - speech_fraction) / speech_fraction)
    rng = np.random.default_rng(seed)
    remaining = int(seconds * rate)
    while remaining > 0:
        for piece in (speech, rng.normal(0, 25, gap_len).astype("<i2") if gap_len else None):
            if piece is None or remaining <= 0:
                continue
            piece = piece[:remaining]
            remaining -= len(piece)
            yield piece


def build_flac(out: Path, seconds: float, speech_fraction: float = 1.0, seed: int = 1) -> Path:
    """Write `seconds` of audio (`speech_fraction` of it speech) as mono 16-bit FLAC."""
    if not 0 < speech_fraction <= 1:
        raise ValueError("speech_fraction must be in (0, 1]")
    _, rate = read_wav(SPEECH)
    with av.open(str(out), mode="w", format="flac") as container:
        stream = container.add_stream("flac", rate=rate, layout="mono")
        buffer: list[np.ndarray] = []
        buffered = 0

        def flush() -> None:
            nonlocal buffer, buffered
            if not buffer:
                return
            frame = av.AudioFrame.from_ndarray(
                np.concatenate(buffer).reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
            buffer, buffered = [], 0

        for piece in _pieces(seconds, speech_fraction, seed):
            buffer.append(piece)
            buffered += len(piece)
            if buffered >= _CHUNK_SECONDS * rate:
                flush()
        flush()
        for packet in stream.encode(None):
            container.mux(packet)
    return out


def build_wav(out: Path, seconds: float) -> Path:
    """`seconds` of continuous speech as 16-bit WAV (the fixture repeated)."""
    _, rate = read_wav(SPEECH)
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        for piece in _pieces(seconds, 1.0, 0):
            wav.writeframes(piece.tobytes())
    return out


def duration_seconds(path: Path) -> float:
    """Duration as the container reports it."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration or 0) / 1_000_000
