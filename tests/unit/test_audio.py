"""Decoding every accepted format, and refusing every kind of bad upload with a useful message."""

from __future__ import annotations

import contextlib
import shutil
import struct
from pathlib import Path

import pytest

from batchscribe.pipeline.audio import SAMPLE_RATE, iter_pcm, probe_audio
from batchscribe.pipeline.exceptions import InvalidAudioError
from tests.support.audio import BAD_INPUTS, SPEECH_FORMATS, speech_fixture

#: Length of the fixtures as synthesised (silence included), from scripts/make_fixtures.py.
SPEECH_SECONDS = 20.17
SHORT_SECONDS = 2.54
MIMETYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "webm": "audio/webm",
}


def _wav_bytes(fmt_tag: int = 1, channels: int = 1, rate: int = 16000, data: bytes = b"") -> bytes:
    """A hand-made RIFF/WAVE file, for headers PyAV would refuse to write."""
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * channels * 2, channels * 2, 16)
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("fmt", SPEECH_FORMATS)
@pytest.mark.parametrize(("short", "seconds"), [(False, SPEECH_SECONDS), (True, SHORT_SECONDS)])
def test_every_format_probes_with_its_real_duration(fmt: str, short: bool, seconds: float) -> None:
    info = probe_audio(speech_fixture(fmt, short=short))
    assert info.duration_seconds == pytest.approx(seconds, abs=0.03)
    assert info.mimetype == MIMETYPES[fmt]
    assert info.sample_rate in {16000, 22050, 44100, 48000}
    assert info.channels in {1, 2}


@pytest.mark.parametrize("fmt", SPEECH_FORMATS)
def test_header_probe_agrees_with_the_decoded_duration_on_good_files(fmt: str) -> None:
    path = speech_fixture(fmt, short=True)
    header = probe_audio(path, decode=False)
    assert header.duration_seconds == pytest.approx(probe_audio(path).duration_seconds, abs=0.05)
    assert header.codec == probe_audio(path).codec


@pytest.mark.parametrize("fmt", SPEECH_FORMATS)
def test_iter_pcm_streams_16k_mono_in_one_second_chunks(fmt: str) -> None:
    chunks = list(iter_pcm(speech_fixture(fmt, short=True)))
    one_second = SAMPLE_RATE * 2
    assert all(len(c) == one_second for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= one_second
    assert len(chunks[-1]) % 2 == 0
    total_seconds = sum(len(c) for c in chunks) / one_second
    assert total_seconds == pytest.approx(SHORT_SECONDS, abs=0.03)
    assert any(any(c) for c in chunks), "the speech is not silence"


def test_iter_pcm_honours_chunk_seconds() -> None:
    chunks = list(iter_pcm(speech_fixture("flac", short=True), chunk_seconds=0.25))
    assert len(chunks[0]) == SAMPLE_RATE // 4 * 2
    assert len(chunks) == 11  # 2.54 s in quarter seconds


def test_format_is_decided_by_content_not_by_the_file_name(tmp_path: Path) -> None:
    disguised = tmp_path / "recording.wav"
    shutil.copy(speech_fixture("mp3", short=True), disguised)
    info = probe_audio(disguised)
    assert info.container == "mp3"
    assert info.mimetype == "audio/mpeg"


def test_truncated_mp3_decodes_the_audio_it_still_has() -> None:
    path = BAD_INPUTS / "truncated.mp3"
    decoded = probe_audio(path)
    # 40 % of the bytes: about 8 of the 20 seconds survive, however long the header claims.
    assert 6.0 < decoded.duration_seconds < 10.0
    assert probe_audio(path, decode=False).duration_seconds > decoded.duration_seconds
    assert sum(len(c) for c in iter_pcm(path)) / (SAMPLE_RATE * 2) == pytest.approx(
        decoded.duration_seconds, abs=0.01
    )


def test_wav_header_with_no_samples_is_zero_duration() -> None:
    path = BAD_INPUTS / "no_samples.wav"
    with pytest.raises(InvalidAudioError, match="zero duration") as excinfo:
        probe_audio(path)
    assert "Upload a recording that contains sound" in str(excinfo.value)
    assert list(iter_pcm(path)) == []
    # The header alone looks fine; engines that decode themselves report it (see sphinx tests).
    assert probe_audio(path, decode=False).duration_seconds == 0.0


@pytest.mark.parametrize("name", ["video_only.webm", "video_only.mp4"])
def test_video_without_sound_says_there_is_no_audio_track(name: str) -> None:
    for decode in (True, False):
        with pytest.raises(InvalidAudioError, match="no audio track"):
            probe_audio(BAD_INPUTS / name, decode=decode)
    with pytest.raises(InvalidAudioError):
        list(iter_pcm(BAD_INPUTS / name))


def _bad_files(tmp: Path) -> dict[str, Path]:
    made = {
        "empty.wav": b"",
        "unknown_codec.wav": _wav_bytes(fmt_tag=0x9999, data=b"\x01\x02" * 800),
        "zero_rate.wav": _wav_bytes(rate=0, data=b"\x01\x02" * 800),
        "zero_channels.wav": _wav_bytes(channels=0, data=b"\x01\x02" * 800),
        "id3_only.mp3": b"ID3\x03\x00\x00\x00\x00\x00\x10" + b"\x00" * 16,
    }
    paths = {}
    for name, data in made.items():
        paths[name] = tmp / name
        paths[name].write_bytes(data)
    for name in ("header_only.mp3", "random.bin", "text.wav", "riff_garbage.wav"):
        paths[name] = BAD_INPUTS / name
    return paths


BAD_NAMES = [
    "empty.wav",
    "unknown_codec.wav",
    "zero_rate.wav",
    "zero_channels.wav",
    "id3_only.mp3",
    "header_only.mp3",
    "random.bin",
    "text.wav",
    "riff_garbage.wav",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_undecodable_files_are_refused_with_a_message_that_says_what_to_do(
    name: str, tmp_path: Path
) -> None:
    path = _bad_files(tmp_path)[name]
    with pytest.raises(InvalidAudioError) as excinfo:
        probe_audio(path)
    message = str(excinfo.value)
    assert message.endswith(".")
    assert "Upload" in message or "upload" in message
    assert "WAV" in message or "sound" in message


@pytest.mark.parametrize("name", BAD_NAMES)
def test_undecodable_files_never_raise_anything_but_invalid_audio(
    name: str, tmp_path: Path
) -> None:
    path = _bad_files(tmp_path)[name]
    with contextlib.suppress(InvalidAudioError):
        probe_audio(path, decode=False)
    try:
        pcm = b"".join(iter_pcm(path))
    except InvalidAudioError:
        pcm = b""
    assert len(pcm) < SAMPLE_RATE * 2 // 10, "garbage must not decode into seconds of audio"


def test_corrupted_middle_keeps_the_audio_before_the_damage(tmp_path: Path) -> None:
    data = bytearray(speech_fixture("flac").read_bytes())
    start = len(data) // 2
    data[start : start + 4000] = bytes(range(256)) * 15 + bytes(160)
    path = tmp_path / "damaged.flac"
    path.write_bytes(bytes(data))
    seconds = probe_audio(path).duration_seconds
    assert seconds > SPEECH_SECONDS / 3
