"""Audio that costs more than it looks: hours of silence in a few hundred kilobytes, and a FLAC
whose header says one thing while its frames hold much more."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE = 16000


def flac(seconds: float, *, tone: bool = False) -> bytearray:
    """Mono 16 kHz FLAC: a 440 Hz tone, or digital silence (which compresses to almost nothing)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=RATE)
        stream.layout = "mono"
        total = int(seconds * RATE)
        for start in range(0, total, RATE * 10):
            count = min(RATE * 10, total - start)
            index = np.arange(start, start + count)
            if tone:
                samples = (np.sin(index * 2 * np.pi * 440 / RATE) * 3000).astype(np.int16)
            else:
                samples = np.zeros(count, dtype=np.int16)
            frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
            frame.sample_rate = RATE
            frame.pts = start
            frame.time_base = Fraction(1, RATE)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return bytearray(buf.getvalue())


def lying_flac(actual_seconds: float, claimed_seconds: float) -> bytes:
    """A FLAC of `actual_seconds` whose STREAMINFO header claims `claimed_seconds` (the
    header's total-samples field, which players and probes trust, is rewritten)."""
    data = flac(actual_seconds, tone=True)
    assert data[:4] == b"fLaC"
    # STREAMINFO follows the 4-byte marker and its 4-byte block header; its bytes 10..17 hold
    # sample rate (20 bits), channels-1 (3), bits-1 (5) and total samples (36).
    start = 8 + 10
    packed = int.from_bytes(data[start : start + 8], "big")
    packed = (packed & ~((1 << 36) - 1)) | int(claimed_seconds * RATE)
    data[start : start + 8] = packed.to_bytes(8, "big")
    return bytes(data)


def write(path: Path, data: bytes | bytearray) -> Path:
    path.write_bytes(bytes(data))
    return path
