"""Regenerate the speech fixtures in tests/fixtures from known sentences.

Speech is synthesised with espeak-ng (a fixed voice and speed), joined with pauses so a voice
activity detector sees one utterance per sentence, and encoded with PyAV into every upload format
the service accepts. Each format uses a different sample rate or channel layout on purpose, so the
decoder's resampling and down-mixing are exercised too. The bad-input corpus (truncated MP3, WAV
header with no samples, video-only files, random bytes, text) is written beside them.

Output is deterministic for a given espeak-ng and PyAV version (containers and encoders run in
bit-exact mode), so re-running it on the same machine changes no committed byte.

Usage: python scripts/make_fixtures.py [--out tests/fixtures]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

VOICE = "en-us+klatt4"  # the Klatt voices are the ones PocketSphinx recognises best
SPEED_WPM = 160
ESPEAK_RATE = 22050  # espeak-ng's native output rate
LEAD_SILENCE = 0.4
GAP_SILENCE = 0.8
TAIL_SILENCE = 0.5

SENTENCES = [
    "The weather is nice today and we will go for a walk in the park.",
    "Please send the report to the sales team before the end of the week.",
    "We need to call the customer about the new price.",
    "The meeting starts at ten in the morning.",
    "Thank you for your time and have a good day.",
]
SHORT_SENTENCES = ["Good morning everyone."]


@dataclass(frozen=True)
class Encoding:
    """How one fixture format is written: container, codec, rate and layout."""

    suffix: str
    container: str
    codec: str
    rate: int
    layout: str
    bit_rate: int | None = None


ENCODINGS = [
    Encoding("wav", "wav", "pcm_s16le", ESPEAK_RATE, "mono"),
    Encoding("flac", "flac", "flac", 16000, "mono"),
    Encoding("mp3", "mp3", "libmp3lame", ESPEAK_RATE, "mono", 32000),
    Encoding("m4a", "ipod", "aac", 44100, "stereo", 48000),  # ipod = the .m4a muxer
    Encoding("webm", "webm", "libopus", 48000, "mono", 24000),
]


def synthesise(sentence: str, workdir: Path) -> bytes:
    """espeak-ng's 22.05 kHz mono s16le PCM for one sentence."""
    out = workdir / "sentence.wav"
    subprocess.run(
        ["espeak-ng", "-v", VOICE, "-s", str(SPEED_WPM), "-w", str(out), sentence],
        check=True,
        capture_output=True,
    )
    with wave.open(str(out), "rb") as wav:
        assert wav.getframerate() == ESPEAK_RATE
        assert wav.getnchannels() == 1
        return wav.readframes(wav.getnframes())


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(ESPEAK_RATE * seconds)


def build_pcm(sentences: list[str], workdir: Path) -> bytes:
    """The sentences, each followed by a pause long enough to end a VAD utterance."""
    pieces = [silence(LEAD_SILENCE)]
    for index, sentence in enumerate(sentences):
        if index:
            pieces.append(silence(GAP_SILENCE))
        pieces.append(synthesise(sentence, workdir))
    pieces.append(silence(TAIL_SILENCE))
    return b"".join(pieces)


def frames(pcm: bytes, samples_per_frame: int = 1024) -> Iterator[av.AudioFrame]:
    """Mono s16 frames at espeak's rate, with timestamps."""
    step = samples_per_frame * 2
    for offset in range(0, len(pcm), step):
        chunk = pcm[offset : offset + step]
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
        frame.planes[0].update(chunk)
        frame.sample_rate = ESPEAK_RATE
        frame.pts = offset // 2
        frame.time_base = Fraction(1, ESPEAK_RATE)
        yield frame


def encode(pcm: bytes, path: Path, enc: Encoding) -> None:
    """Write `pcm` to `path` in the given format, bit-exact."""
    with av.open(
        str(path), mode="w", format=enc.container, options={"fflags": "+bitexact"}
    ) as container:
        stream = container.add_stream(enc.codec, rate=enc.rate, layout=enc.layout)
        assert isinstance(stream, av.AudioStream)
        formats = stream.codec_context.codec.audio_formats
        assert formats
        stream.codec_context.options = {"flags": "+bitexact"}
        if enc.bit_rate:
            stream.codec_context.bit_rate = enc.bit_rate
        resampler = av.AudioResampler(
            format=formats[0].name,
            layout=enc.layout,
            rate=enc.rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        for frame in frames(pcm):
            for out in resampler.resample(frame):
                container.mux(stream.encode(out))
        for out in resampler.resample(None):
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))


def write_video_only(path: Path, container_format: str, codec: str) -> None:
    """A tiny file with one video stream and no audio stream."""
    with av.open(
        str(path), mode="w", format=container_format, options={"fflags": "+bitexact"}
    ) as container:
        stream = container.add_stream(codec, rate=10)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.codec_context.options = {"flags": "+bitexact"}
        for index in range(5):
            frame = av.VideoFrame(32, 32, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(index * 40) % 256]) * plane.buffer_size)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_bad_inputs(out: Path, speech_mp3: Path) -> None:
    """The corpus of uploads that must be refused (or, for a truncated MP3, decoded in part)."""
    bad = out / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    data = speech_mp3.read_bytes()
    # Cut mid-frame at 40 %: the first sentences decode, the tail is lost.
    (bad / "truncated.mp3").write_bytes(data[: len(data) * 2 // 5])
    # Only the first bytes: an ID3/frame header and nothing decodable after it.
    (bad / "header_only.mp3").write_bytes(data[:64])
    with wave.open(str(bad / "no_samples.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(b"")
    write_video_only(bad / "video_only.webm", "webm", "libvpx")
    write_video_only(bad / "video_only.mp4", "mp4", "mpeg4")
    (bad / "random.bin").write_bytes(random.Random(20261129).randbytes(4096))
    (bad / "text.wav").write_text("This is a text file with a .wav name, not audio.\n")
    (bad / "riff_garbage.wav").write_bytes(
        b"RIFF\x24\x10\x00\x00WAVEfmt " + random.Random(7).randbytes(2048)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures"))
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for stem, sentences in (("speech", SENTENCES), ("speech_short", SHORT_SENTENCES)):
            pcm = build_pcm(sentences, workdir)
            for enc in ENCODINGS:
                encode(pcm, out / f"{stem}.{enc.suffix}", enc)
            (out / f"{stem}.txt").write_text("\n".join(sentences) + "\n")
    write_bad_inputs(out, out / "speech.mp3")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"fixtures written to {out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
