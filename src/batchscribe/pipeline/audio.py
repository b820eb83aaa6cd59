"""Audio decoding with PyAV (FFmpeg inside the wheel).

The format is decided by decoding, never by the file name or Content-Type. Decoding streams:
PCM is produced in chunks of about a second, resampled to 16 kHz mono signed 16-bit, so memory
stays flat however long the recording is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.error

from batchscribe.pipeline.exceptions import AudioTooLongError, InvalidAudioError
from batchscribe.pipeline.formats import (
    ACCEPTED_CONTAINERS,
    ACCEPTED_SENTENCE,
    mimetype_for_container,
)

SAMPLE_RATE = 16000
_NOT_AUDIO = f"The file is not audio we can decode. Upload {ACCEPTED_SENTENCE}."
_UNKNOWN_CODEC = (
    f"The audio uses a codec we cannot decode. Convert it to {ACCEPTED_SENTENCE} and upload it "
    "again."
)


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What probing found: container, codec, duration and the mimetype hosted APIs expect."""

    container: str
    codec: str
    duration_seconds: float
    sample_rate: int
    channels: int

    @property
    def mimetype(self) -> str:
        return mimetype_for_container(self.container)


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise InvalidAudioError(_NOT_AUDIO) from exc


def probe_audio(path: Path, *, decode: bool = True, max_seconds: float | None = None) -> AudioInfo:
    """Check that `path` holds audio in an accepted container, and measure its duration.

    The header alone can lie (a truncated MP3, a WAV header with no samples), so with `decode`
    the file is decoded once and the duration is the count of decoded samples. Engines that
    decode anyway (sphinx) pass `decode=False` and check the samples themselves; the duration is
    then the header's estimate. Raises `InvalidAudioError` with a message for the user.
    """
    container = _open(path)
    with container:
        fmt = container.format.name
        if fmt not in ACCEPTED_CONTAINERS:
            raise InvalidAudioError(_NOT_AUDIO)
        if not container.streams.audio:
            raise InvalidAudioError(
                f"The file has no audio track. Upload a recording with sound ({ACCEPTED_SENTENCE})."
            )
        stream = container.streams.audio[0]
        context = stream.codec_context
        if context is None:
            # FFmpeg read the container but has no decoder for this codec (e.g. a WAV
            # header with an unknown format tag).
            raise InvalidAudioError(_UNKNOWN_CODEC)
        codec = context.name
        rate = context.sample_rate or SAMPLE_RATE
        channels = context.channels or 1
        header_duration = _header_duration(container, stream)
    if not decode:
        return AudioInfo(fmt, codec, header_duration, rate, channels)
    samples = sum(len(chunk) // 2 for chunk in iter_pcm(path, max_seconds=max_seconds))
    duration = samples / SAMPLE_RATE
    if duration <= 0:
        raise InvalidAudioError(
            "The audio has no samples (zero duration). Upload a recording that contains sound."
        )
    return AudioInfo(fmt, codec, duration, rate, channels)


def _header_duration(container: av.container.InputContainer, stream: av.AudioStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def iter_pcm(
    path: Path, chunk_seconds: float = 1.0, *, max_seconds: float | None = None
) -> Iterator[bytes]:
    """Yield 16 kHz mono s16le PCM in chunks of about `chunk_seconds`.

    Corrupt data in the middle of a file ends the stream with `InvalidAudioError` only if nothing
    decoded before it; a damaged tail after good audio is tolerated, as players do. With
    `max_seconds`, decoding stops with `AudioTooLongError` as soon as more audio than that has
    come out: a header that lies about the duration cannot pass.
    """
    chunk_bytes = int(SAMPLE_RATE * chunk_seconds) * 2
    limit_bytes = int(max_seconds * SAMPLE_RATE) * 2 if max_seconds is not None else None
    emitted = 0
    container = _open(path)
    produced = False
    with container:
        if not container.streams.audio:
            raise InvalidAudioError(_NOT_AUDIO)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        buffer = bytearray()
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    buffer += bytes(out.planes[0])[: out.samples * 2]
                while len(buffer) >= chunk_bytes:
                    produced = True
                    emitted += chunk_bytes
                    if limit_bytes is not None and emitted > limit_bytes:
                        raise _longer_than(max_seconds)
                    yield bytes(buffer[:chunk_bytes])
                    del buffer[:chunk_bytes]
            for out in resampler.resample(None):
                buffer += bytes(out.planes[0])[: out.samples * 2]
        except (av.error.FFmpegError, ValueError) as exc:
            if not produced and not buffer:
                raise InvalidAudioError(_NOT_AUDIO) from exc
        if buffer:
            if limit_bytes is not None and emitted + len(buffer) > limit_bytes:
                raise _longer_than(max_seconds)
            yield bytes(buffer)


def _longer_than(max_seconds: float | None) -> AudioTooLongError:
    return AudioTooLongError(
        f"The recording is longer than {max_seconds:g} s (its header said less). Split it into "
        "shorter parts."
    )
