"""Regenerate the speech fixtures in tests/fixtures from known sentences.

Speech is synthesised with espeak-ng (a fixed voice and speed), joined with pauses so a voice
activity detector sees one utterance per sentence, and encoded with PyAV into every upload format
the service accepts. Each format uses a different sample rate or channel layout on purpose, so the
decoder's resampling and down-mixing are exercised too. The bad-input corpus (truncated MP3, WAV
header with no samples, video-only files, random bytes, text) is written beside them.

Beside each recording, `<stem>.timing.json` says where every sentence and word was spoken, in
seconds from the start of the recording. The word times are espeak-ng's own: the libespeak-ng
library reports the audio position of each word as it synthesises it (its word events). The
library is run once per sentence in a fresh process (it carries state from one text to the next)
and its samples are checked to be the `espeak-ng -w` command's, so the events describe exactly
the committed audio. A sentence spans its first to its last audible sample; a word runs from its
event to the next word's (so it includes any pause after it), the last word to the end of the
sentence. espeak-ng merges some short unstressed words ("a", "the") into the word after them
and reports no event for them: those words are not listed.

Output is deterministic for a given espeak-ng and PyAV version (containers and encoders run in
bit-exact mode), so re-running it on the same machine changes no committed byte.

Usage: python scripts/make_fixtures.py [--out tests/fixtures]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import json
import multiprocessing
import random
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

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


#: An audible sample: louder than espeak-ng's faint fade at the edges of a sentence.
AUDIBLE = 64


class _EspeakEvent(ctypes.Structure):
    """`espeak_EVENT` from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character offset of the word
        ("length", ctypes.c_int),  # the word's length in characters
        ("audio_position", ctypes.c_int),  # milliseconds into this synthesis
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_RATE_PARAMETER = 1
_ENDPAUSE = 0x1000  # the pause after the text that the espeak-ng command adds (unless -z)
_EVENT_END_OF_LIST = 0
_EVENT_WORD = 1


@dataclass(frozen=True)
class Speech:
    """One sentence as espeak-ng says it: PCM and where each word starts (seconds)."""

    pcm: bytes
    words: list[tuple[str, float]]


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


def synthesise_with_events(sentence: str) -> Speech:
    """One sentence through libespeak-ng, in the calling process (which it then leaves in a
    state of its own: call it in a fresh process)."""
    lib = ctypes.CDLL("libespeak-ng.so.1")
    assert lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0) == ESPEAK_RATE
    pcm = bytearray()
    events: list[tuple[int, int, int]] = []

    def collect(wav: Any, samples: int, event_list: Any) -> int:
        if wav and samples > 0:
            pcm.extend(ctypes.string_at(wav, samples * 2))
        index = 0
        while event_list[index].type != _EVENT_END_OF_LIST:
            event = event_list[index]
            if event.type == _EVENT_WORD:
                events.append((event.text_position, event.length, event.audio_position))
            index += 1
        return 0

    callback = _SynthCallback(collect)  # referenced until the synthesis is over
    lib.espeak_SetSynthCallback(callback)
    assert lib.espeak_SetVoiceByName(VOICE.encode()) == 0
    assert lib.espeak_SetParameter(_ESPEAK_RATE_PARAMETER, SPEED_WPM, 0) == 0
    text = sentence.encode()
    assert text.isascii()  # character positions are byte positions
    buffer = ctypes.create_string_buffer(text)
    status = lib.espeak_Synth(buffer, len(text) + 1, 0, _POS_CHARACTER, 0, _ENDPAUSE, None, None)
    assert status == 0
    assert lib.espeak_Synchronize() == 0
    words = [
        (sentence[position - 1 : position - 1 + length], millis / 1000)
        for position, length, millis in events
    ]
    return Speech(bytes(pcm), words)


def speak(sentence: str, workdir: Path) -> Speech:
    """The command's PCM for `sentence` and its words' start times, from a library run checked
    to give the very same samples."""
    pcm = synthesise(sentence, workdir)
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=1, mp_context=multiprocessing.get_context("spawn")
    ) as fresh:
        speech = fresh.submit(synthesise_with_events, sentence).result()
    assert speech.pcm == pcm, f"libespeak-ng and espeak-ng disagree on {sentence!r}"
    return speech


def audible_span(pcm: bytes) -> tuple[float, float]:
    """Seconds from the start of `pcm` to its first and past its last audible sample."""
    samples = memoryview(pcm).cast("h")
    loud = [index for index, value in enumerate(samples) if abs(value) > AUDIBLE]
    return loud[0] / ESPEAK_RATE, (loud[-1] + 1) / ESPEAK_RATE


def silence(seconds: float) -> bytes:
    return b"\x00\x00" * int(ESPEAK_RATE * seconds)


def build_recording(sentences: list[str], workdir: Path) -> tuple[bytes, dict[str, object]]:
    """The sentences, each followed by a pause long enough to end a VAD utterance, and where
    each sentence and word lies in the result."""
    pieces = [silence(LEAD_SILENCE)]
    timing: list[dict[str, object]] = []
    for index, sentence in enumerate(sentences):
        if index:
            pieces.append(silence(GAP_SILENCE))
        offset = sum(len(piece) for piece in pieces) / 2 / ESPEAK_RATE
        speech = speak(sentence, workdir)
        first, last = audible_span(speech.pcm)
        starts = [start for _, start in speech.words] + [last]
        timing.append(
            {
                "text": sentence,
                "start": round(offset + first, 3),
                "end": round(offset + last, 3),
                "words": [
                    {
                        "word": word,
                        "start": round(offset + start, 3),
                        "end": round(offset + max(starts[position + 1], start), 3),
                    }
                    for position, (word, start) in enumerate(speech.words)
                ],
            }
        )
        pieces.append(speech.pcm)
    pieces.append(silence(TAIL_SILENCE))
    pcm = b"".join(pieces)
    return pcm, {
        "about": "Where each sentence and word of the recording was spoken (seconds); made by "
        "scripts/make_fixtures.py from espeak-ng's word events.",
        "duration": round(len(pcm) / 2 / ESPEAK_RATE, 3),
        "sentences": timing,
    }


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
            pcm, timing = build_recording(sentences, workdir)
            for enc in ENCODINGS:
                encode(pcm, out / f"{stem}.{enc.suffix}", enc)
            (out / f"{stem}.txt").write_text("\n".join(sentences) + "\n")
            (out / f"{stem}.timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    write_bad_inputs(out, out / "speech.mp3")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"fixtures written to {out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
