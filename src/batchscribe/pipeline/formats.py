"""The audio formats batchscribe accepts, defined once.

Everything else is derived from `FORMATS`: the extensions an upload may carry, the containers
FFmpeg must report when it opens the file, the mimetype hosted APIs are sent, the sentence error
messages and the web page show, and the page's `accept` attribute. The extension only filters
obvious mistakes; the format is decided by decoding (see `audio.py`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """One accepted format.

    `containers` are the names FFmpeg (`av.open(...).format.name`) gives files of this format;
    `mimetypes` start with the one hosted APIs expect, then any a browser may label such a file
    with instead.
    """

    name: str
    extensions: tuple[str, ...]
    containers: tuple[str, ...]
    mimetypes: tuple[str, ...]

    @property
    def mimetype(self) -> str:
        return self.mimetypes[0]


FORMATS: tuple[AudioFormat, ...] = (
    AudioFormat("WAV", (".wav",), ("wav",), ("audio/wav",)),
    AudioFormat("MP3", (".mp3",), ("mp3",), ("audio/mpeg",)),
    AudioFormat("FLAC", (".flac",), ("flac",), ("audio/flac",)),
    AudioFormat("M4A", (".m4a",), ("mov,mp4,m4a,3gp,3g2,mj2",), ("audio/mp4",)),
    AudioFormat("OGG", (".ogg", ".oga"), ("ogg",), ("audio/ogg",)),
    # Opus lives in an Ogg container: FFmpeg reports "ogg" for it too.
    AudioFormat("Opus", (".opus",), ("ogg",), ("audio/ogg",)),
    # Browsers record WebM and often label it video/webm even when it holds only sound.
    AudioFormat("WebM", (".webm",), ("matroska,webm",), ("audio/webm", "video/webm")),
)

#: File-name extensions an upload may have (lower case, with the dot). No extension is fine too.
ACCEPTED_EXTENSIONS: frozenset[str] = frozenset(e for f in FORMATS for e in f.extensions)

#: Container names FFmpeg reports for the accepted formats.
ACCEPTED_CONTAINERS: frozenset[str] = frozenset(c for f in FORMATS for c in f.containers)

#: `WAV, MP3, FLAC, M4A, OGG, Opus or WebM`: the list as people read it in messages.
ACCEPTED_SENTENCE = ", ".join(f.name for f in FORMATS[:-1]) + f" or {FORMATS[-1].name}"

# Reversed so that the first format listed for a container wins (OGG before Opus).
_MIMETYPE_BY_CONTAINER = {c: f.mimetype for f in reversed(FORMATS) for c in f.containers}


def mimetype_for_container(container: str) -> str:
    """The mimetype to send a file of this FFmpeg container as (octet-stream when unknown)."""
    return _MIMETYPE_BY_CONTAINER.get(container, "application/octet-stream")


def extension_for_mimetype(mimetype: str) -> str | None:
    """The usual extension (without the dot) of a file of this mimetype: `audio/mp4` -> `m4a`."""
    for audio_format in FORMATS:
        if mimetype in audio_format.mimetypes:
            return audio_format.extensions[0].lstrip(".")
    return None


def html_accept_attribute() -> str:
    """The web page's `<input type=file accept=...>`: any audio, the non-audio mimetypes our
    formats may carry, and every extension (for systems that do not know the mimetypes)."""
    extra = [m for f in FORMATS for m in f.mimetypes if not m.startswith("audio/")]
    extensions = [e for f in FORMATS for e in f.extensions]
    return ",".join(["audio/*", *dict.fromkeys(extra), *extensions])
