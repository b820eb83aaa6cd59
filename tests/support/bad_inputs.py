"""Builders for malformed uploads: each returns the bytes of one kind of bad file."""

from __future__ import annotations

import io
import os
import struct
import wave

import av
import numpy as np


def text_bytes() -> bytes:
    return b"Meeting notes: this is plain text, not audio.\n" * 20


def random_bytes(size: int = 4096, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def wav_header_without_samples() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"")
    return buf.getvalue()


def wav_with_lying_header(seconds: float = 60.0) -> bytes:
    """A RIFF header that claims a minute of samples but carries none."""
    data_bytes = int(16000 * seconds) * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


def video_only_mp4() -> bytes:
    """An MP4 with one short video stream and no audio track."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), i * 20, dtype=np.uint8), format="rgb24"
            )
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def sine_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A tone: valid audio with no speech."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return buf.getvalue()


def oversized(size: int) -> bytes:
    return os.urandom(size)
