"""Pytest fixtures built on `testkit`: the hosted-API stand-ins, the fault proxy, an
EventBridge -> SQS sink on the emulator for event tests, and small generated audio files.

Import them into a conftest: `from tests.support.fixtures import *  # noqa: F403`.
"""

from __future__ import annotations

import array
import math
import uuid
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import pytest

from batchscribe.infra.emulator import LocalAWSEmulator
from testkit.aws import EventSink
from testkit.faultproxy import FaultProxy
from testkit.standins import DeepgramStandIn, OpenAIStandIn

__all__ = [
    "deepgram_standin",
    "openai_standin",
    "proxy",
    "sink",
    "source",
    "tone_file",
    "write_tone",
]

_CODECS = {"wav": ("wav", "pcm_s16le"), "mp3": ("mp3", "libmp3lame"), "flac": ("flac", "flac")}


def write_tone(path: Path, seconds: float = 1.0, fmt: str = "wav", rate: int = 16000) -> Path:
    """Write a 440 Hz mono tone in `fmt` (wav, mp3 or flac) with PyAV."""
    container_format, codec = _CODECS[fmt]
    samples = int(seconds * rate)
    wave = array.array(
        "h", (int(math.sin(2 * math.pi * 440 * i / rate) * 8000) for i in range(samples))
    )
    with av.open(str(path), mode="w", format=container_format) as container:
        stream = cast(av.AudioStream, container.add_stream(codec, rate=rate))
        stream.layout = "mono"
        frame_size = 1152
        for start in range(0, samples, frame_size):
            chunk = wave[start : start + frame_size]
            frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk))
            frame.planes[0].update(chunk.tobytes())
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture
def tone_file(tmp_path: Path) -> Path:
    """A one-second WAV tone (the engines under test are stand-ins: content does not matter)."""
    return write_tone(tmp_path / "upload.bin")


@pytest.fixture
def deepgram_standin() -> Iterator[DeepgramStandIn]:
    """A running Deepgram stand-in; `.base_url` and `.api_key` configure the transcriber."""
    with DeepgramStandIn() as standin:
        yield standin


@pytest.fixture
def openai_standin() -> Iterator[OpenAIStandIn]:
    """A running OpenAI stand-in; `.base_url` (ends in /v1) and `.api_key` configure the engines."""
    with OpenAIStandIn() as standin:
        yield standin


@pytest.fixture
def source() -> str:
    """A unique event source per test, so only this test's rule matches its events."""
    return f"test.events.{uuid.uuid4().hex[:10]}"


@pytest.fixture
def proxy(aws_emulator: LocalAWSEmulator) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the emulator; point AWS_ENDPOINT_URL at `.url`."""
    with FaultProxy(aws_emulator.endpoint_url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def sink(aws_emulator: LocalAWSEmulator, source: str) -> Iterator[EventSink]:
    """A fresh queue receiving every event of `source` (`receive_details()`, `collect()`)."""
    event_sink = EventSink.create(aws_emulator.endpoint_url, source)
    try:
        yield event_sink
    finally:
        event_sink.close()
