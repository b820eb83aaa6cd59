"""The accepted formats, defined once: every row of the table decodes, and everything shown to
people or sent to hosted APIs is derived from it."""

from __future__ import annotations

import array
import math
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import pytest

from batchscribe.pipeline.audio import probe_audio
from batchscribe.pipeline.formats import (
    ACCEPTED_EXTENSIONS,
    ACCEPTED_SENTENCE,
    FORMATS,
    AudioFormat,
    extension_for_mimetype,
    html_accept_attribute,
)
from tests.support.audio import SPEECH_FORMATS, speech_fixture

ROOT = Path(__file__).resolve().parents[2]


def _ogg_opus(path: Path, seconds: float = 1.0, rate: int = 48000) -> Path:
    """A tone in an Ogg container with the Opus codec, as phones and browsers record."""
    samples = array.array(
        "h",
        (int(math.sin(2 * math.pi * 440 * i / rate) * 8000) for i in range(int(seconds * rate))),
    )
    with av.open(str(path), mode="w", format="ogg") as container:
        stream = cast(av.AudioStream, container.add_stream("libopus", rate=rate))
        stream.layout = "mono"
        for start in range(0, len(samples), 960):
            chunk = samples[start : start + 960]
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


def _sample(extension: str, tmp_path: Path) -> Path:
    suffix = extension.lstrip(".")
    if suffix in SPEECH_FORMATS:
        return speech_fixture(suffix, short=True)
    return _ogg_opus(tmp_path / f"sample{extension}")


CASES = [(f, e) for f in FORMATS for e in f.extensions]


@pytest.mark.parametrize(
    ("audio_format", "extension"), CASES, ids=[f"{f.name}{e}" for f, e in CASES]
)
def test_every_format_decodes_and_is_sent_with_its_mimetype(
    audio_format: AudioFormat, extension: str, tmp_path: Path
) -> None:
    info = probe_audio(_sample(extension, tmp_path))
    assert info.container in audio_format.containers
    assert info.mimetype == audio_format.mimetype
    assert info.duration_seconds > 0.5
    assert extension in ACCEPTED_EXTENSIONS


def test_what_people_read_is_derived_from_the_table() -> None:
    assert ACCEPTED_SENTENCE == "WAV, MP3, FLAC, M4A, OGG, Opus or WebM"
    accept = html_accept_attribute().split(",")
    assert accept[0] == "audio/*"
    assert "video/webm" in accept  # browsers label recorded WebM so
    assert set(accept) >= ACCEPTED_EXTENSIONS
    readme = (ROOT / "README.md").read_text()
    (line,) = [line for line in readme.splitlines() if line.startswith("Accepted audio:")]
    assert all(f.name in line for f in FORMATS)


def test_hosted_apis_get_a_file_name_of_the_real_format() -> None:
    assert extension_for_mimetype("audio/mp4") == "m4a"
    assert extension_for_mimetype("audio/mpeg") == "mp3"
    assert extension_for_mimetype("video/webm") == "webm"
    assert extension_for_mimetype("text/plain") is None
