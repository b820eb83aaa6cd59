"""Hypothesis strategies of the property tests, one module for every component.

Sections: identity headers and uploads (HTTP layer); events (identities, transcripts, PutEvents
and publishing failures); the audio pipeline (transcripts with disfluencies); the hosted engines
(turns, Deepgram words); the AWS tooling (deletion plans between provisioning runs);
authentication (keys, schemes and identity headers in every combination); webhooks (addresses a
host may resolve to, callback URLs assembled from good and bad parts, signing inputs).
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from hypothesis import strategies as st

from batchscribe.http.upload import ACCEPTED_EXTENSIONS
from batchscribe.identity import RequestContext
from batchscribe.pipeline.cleaners.rules import FILLERS, KEEP_DOUBLED
from batchscribe.pipeline.types import Segment, Transcript, Word
from batchscribe.webhooks import is_public_address
from batchscribe.webhooks.addresses import IPAddress

# -- identity headers --------------------------------------------------------------------------

PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))


@st.composite
def uuid4_strings(draw: st.DrawFn, *, lower_only: bool = False) -> str:
    """Canonical UUID v4 strings, in lower or upper case (`lower_only`: as the service writes
    them)."""
    value = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)), version=4))
    return value.upper() if not lower_only and draw(st.booleans()) else value


@st.composite
def not_uuid4_strings(draw: st.DrawFn) -> str:
    """Printable header values that are not a UUID v4 (other versions, garbage, near misses)."""
    value = draw(
        st.one_of(
            st.text(PRINTABLE, min_size=1, max_size=60),
            st.just(str(uuid.uuid1())),
            st.just("00000000-0000-0000-0000-000000000000"),
            uuid4_strings().map(lambda u: u[:-1]),
        )
    )
    stripped = value.strip()
    try:
        parsed = uuid.UUID(stripped)
        if parsed.version == 4 and str(parsed) == stripped.lower():
            value = "not-" + value
    except ValueError:
        pass
    return value


@st.composite
def header_values(draw: st.DrawFn) -> str:
    """Acceptable identity header values: printable, non-blank, at most 256 characters."""
    return draw(st.text(PRINTABLE, min_size=1, max_size=256).filter(lambda s: s.strip() != ""))


# -- uploads -----------------------------------------------------------------------------------


@st.composite
def upload_extensions(draw: st.DrawFn) -> str:
    """File name extensions a client may send: accepted ones, odd cases, double extensions,
    other formats, none, and random ones."""
    return draw(
        st.one_of(
            st.sampled_from(sorted(ACCEPTED_EXTENSIONS)),
            st.sampled_from([".WAV", ".Mp3", ".txt", ".exe", ".mp4", ".wav.exe", ""]),
            st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=5).map(
                lambda s: "." + s
            ),
        )
    )


@st.composite
def file_stems(draw: st.DrawFn) -> str:
    """File names without extension: ASCII letters, digits, dashes, underscores and spaces."""
    return draw(
        st.text(
            st.characters(codec="ascii", categories=("L", "N"), include_characters="-_ "),
            min_size=1,
            max_size=30,
        )
    )


#: Names of the optional small fields the jobs API accepts beside `file` (SPEC sections 13, 15).
JOB_FORM_FIELDS = ("language", "callback_url", "metadata", "response_format")


@dataclass(frozen=True)
class FormPart:
    """One part of a multipart form: a field name, its bytes, and a filename for file parts."""

    name: str
    data: bytes
    filename: str | None = None


@st.composite
def form_parts(draw: st.DrawFn) -> list[FormPart]:
    """The parts of a multipart form a client may send: the `file` part (sometimes empty), the
    jobs API's small fields with short or oversized ASCII values, unknown names, repeats, and
    from none up to more parts than MAX_FORM_PARTS allows by default (16)."""
    name = st.one_of(
        st.just("file"),
        st.sampled_from(JOB_FORM_FIELDS),
        st.sampled_from(["files", "File", "upload", "", "a" * 60]),
    )
    parts: list[FormPart] = []
    for _ in range(draw(st.integers(0, 24))):
        field_name = draw(name)
        if field_name == "file":
            size = draw(st.sampled_from([0, 1, 100, 3000]))
            parts.append(FormPart(field_name, b"\x01" * size, draw(st.sampled_from(["a.wav", ""]))))
        else:
            size = draw(st.sampled_from([0, 5, 300, 8192, 8193]))
            parts.append(FormPart(field_name, b"v" * size))
    return parts


# -- request heads (the HTTP protocol layer) -------------------------------------------------

_TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1)
_VISIBLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)


@st.composite
def request_heads(draw: st.DrawFn, max_headers: int = 60) -> bytes:
    """Complete, well-formed HTTP/1.1 request heads (request line, `Host`, then up to
    `max_headers` headers with token names and visible ASCII values, CRLF line breaks), of any
    size from a few bytes to several kilobytes."""
    path = "/" + draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789/-", max_size=40))
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1:8000"]
    for _ in range(draw(st.integers(0, max_headers))):
        name = "X-" + draw(_TOKEN.filter(lambda t: len(t) <= 30))
        value = draw(st.text(_VISIBLE, max_size=200))
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut into the pieces a socket may deliver it in: at random points, including
    one-byte pieces and cuts inside CRLF pairs."""
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=12)))
    bounds = [0, *(c for c in cuts if c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# -- events ------------------------------------------------------------------------------------

RETRYABLE_ENTRY_CODES = ("ThrottlingException", "InternalFailure")
TERMINAL_ENTRY_CODES = (
    "MalformedDetail",
    "AccessDeniedException",
    "NotAuthorizedForSourceException",
    "InvalidArgument",
    "ValidationException",
)


@st.composite
def contexts(draw: st.DrawFn) -> RequestContext:
    """A valid request identity: UUID v4 tenant and interaction, any user and optional account."""
    return RequestContext(
        tenant_id=draw(uuid4_strings(lower_only=True)),
        user_id=draw(st.text(max_size=256)),
        account_id=draw(st.none() | st.text(max_size=256)),
        interaction_id=draw(uuid4_strings(lower_only=True)),
    )


@dataclass(frozen=True)
class Transcripts:
    """A raw/cleaned pair, each ending in a marker no log line could contain by accident."""

    raw: str
    cleaned: str
    markers: tuple[str, str]


@st.composite
def transcripts(draw: st.DrawFn) -> Transcripts:
    """Speaker-turn transcripts with arbitrary Unicode text (no surrogates) and unique markers."""
    turns = draw(st.lists(st.text(max_size=80), min_size=1, max_size=5))
    raw_marker = "rawmark" + uuid.UUID(int=draw(st.integers(0, 2**128 - 1))).hex
    clean_marker = "cleanmark" + uuid.UUID(int=draw(st.integers(0, 2**128 - 1))).hex
    raw = "\n".join(f"SPEAKER_{i % 2}: {text}" for i, text in enumerate(turns)) + raw_marker
    cleaned = draw(st.text(max_size=200)) + clean_marker
    return Transcripts(raw=raw, cleaned=cleaned, markers=(raw_marker, clean_marker))


@st.composite
def entry_error_codes(draw: st.DrawFn) -> str:
    """Per-entry PutEvents error codes, retryable and terminal."""
    return draw(st.sampled_from(RETRYABLE_ENTRY_CODES + TERMINAL_ENTRY_CODES))


@st.composite
def publisher_failures(draw: st.DrawFn) -> tuple[str, str]:
    """How a publish can fail, as (kind, code): an entry refused with a PutEvents code, the
    whole call refused with an API error code, or ("network" | "timeout" | "credentials" |
    "bug" | "outbox", "")."""
    return draw(
        st.one_of(
            st.tuples(st.just("entry"), entry_error_codes()),
            st.tuples(
                st.just("call"),
                st.sampled_from(
                    [
                        "ThrottlingException",
                        "InternalException",
                        "AccessDeniedException",
                        "ResourceNotFoundException",
                        "ValidationException",
                    ]
                ),
            ),
            st.tuples(
                st.sampled_from(["network", "timeout", "credentials", "bug", "outbox"]),
                st.just(""),
            ),
        )
    )


# -- audio pipeline ----------------------------------------------------------------------------

#: Content words, including the awkward ones: "i", contractions, names, a number, a word that
#: starts like a filler ("umbrella", "errand", "ahead"), hyphenated compounds.
CONTENT_WORDS = (
    "i", "i'm", "we", "you", "the", "a", "to", "report", "send", "customer", "price", "meeting",
    "Paris", "Monday", "don't", "it's", "umbrella", "errand", "ahead", "hummus", "three",
    "well-known", "e-mail", "ER", "iPhone", "about", "and", "but", "think", "good", "morning",
)  # fmt: skip
FILLER_WORDS = tuple(sorted(FILLERS))
assert not set(CONTENT_WORDS) & (FILLERS | KEEP_DOUBLED)


@dataclass(frozen=True)
class NoisyTranscript:
    """A transcript plus, for each of its utterances, the content words it was built from."""

    transcript: Transcript
    content: list[list[str]]


@st.composite
def noisy_words(draw: st.DrawFn) -> tuple[str, list[str]]:
    """One utterance: content words with fillers, stutters and repetitions mixed in.

    Returns the utterance text and the content words (in order) a perfect cleaner keeps.
    """
    words = draw(st.lists(st.sampled_from(CONTENT_WORDS), min_size=0, max_size=8))
    tokens: list[str] = []
    for word in words:
        for _ in range(draw(st.integers(0, 1))):
            filler = draw(st.sampled_from(FILLER_WORDS))
            tokens.append(filler + draw(st.sampled_from(["", ",", ""])))
        noise = draw(st.sampled_from(["plain", "plain", "stutter", "repeat"]))
        if noise == "stutter" and word.isalpha():
            cut = draw(st.integers(1, len(word)))
            tokens.append(f"{word[:cut]}-{word}")
        elif noise == "repeat" and "-" not in word:
            tokens.extend([word] * draw(st.integers(2, 3)))
        else:
            tokens.append(word)
    if draw(st.booleans()):
        tokens.append(draw(st.sampled_from(FILLER_WORDS)))
    return " ".join(tokens), words


@st.composite
def noisy_transcripts(draw: st.DrawFn) -> NoisyTranscript:
    """Several speakers' utterances (adjacent ones may share a speaker and form one turn)."""
    count = draw(st.integers(1, 6))
    utterances, content = [], []
    for _ in range(count):
        text, words = draw(noisy_words())
        if not text:
            continue
        speaker = draw(st.integers(0, 3))
        utterances.append(Segment(speaker, text))
        content.append(words)
    return NoisyTranscript(Transcript.from_engine(utterances, 1.0, "test"), content)


@st.composite
def arbitrary_transcripts(draw: st.DrawFn) -> Transcript:
    """Utterances of arbitrary printable text and punctuation: what a hosted engine might send."""
    alphabet = st.characters(
        codec="utf-8", categories=("L", "N", "P", "Zs"), exclude_characters="\n\r"
    )
    texts = draw(st.lists(st.text(alphabet, max_size=40), min_size=1, max_size=5))
    speakers = draw(st.lists(st.integers(0, 2), min_size=len(texts), max_size=len(texts)))
    segments = [Segment(s, t) for s, t in zip(speakers, texts, strict=True)]
    return Transcript.from_engine(segments, 1.0, "test")


# -- hosted engines ----------------------------------------------------------------------------

_LETTERS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzé'-", min_size=1, max_size=8)


@st.composite
def spoken_words(draw: st.DrawFn) -> str:
    """One word as an engine writes it: letters, sometimes capitalised, sometimes followed by
    a comma or a sentence end (`.`, `?`, `!`, maybe with a closing quote)."""
    word = draw(_LETTERS)
    if draw(st.booleans()):
        word = word.capitalize()
    return word + draw(st.sampled_from(["", "", "", "", ",", ".", "?", "!", '."', "?)"]))


@st.composite
def long_turns(draw: st.DrawFn, max_words: int = 40) -> list[Segment]:
    """Speaker turns of 1 to ~4x `max_words` words with sparse or no sentence ends, so some
    need splitting and some contain sentences longer than the limit."""
    count = draw(st.integers(1, 4))
    turns = []
    for _ in range(count):
        speaker = draw(st.integers(0, 3))
        words = draw(st.lists(spoken_words(), min_size=1, max_size=4 * max_words))
        turns.append(Segment(speaker, " ".join(words)))
    return turns


@st.composite
def deepgram_word_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Deepgram `words[]` entries with speakers: runs of one speaker, speakers in any order,
    `punctuated_word` present on most words (smart formatting) and missing on some."""
    words: list[dict[str, Any]] = []
    clock = 0.0
    for _ in range(draw(st.integers(0, 8))):
        speaker = draw(st.integers(0, 4))
        for bare in draw(st.lists(_LETTERS, min_size=1, max_size=6)):
            word: dict[str, Any] = {
                "word": bare,
                "start": clock,
                "end": clock + 0.2,
                "confidence": draw(st.floats(0, 1)),
                "speaker": speaker,
            }
            if draw(st.integers(0, 4)):
                word["punctuated_word"] = bare.capitalize() + draw(st.sampled_from(["", ",", "."]))
            words.append(word)
            clock += 0.25
    return words


# -- AWS tooling -------------------------------------------------------------------------------

RESOURCES = ("dlq", "queue", "rule", "target")


@st.composite
def deletion_plans(draw: st.DrawFn) -> list[frozenset[str]]:
    """Two or three provisioning runs, each preceded by deleting a random subset of resources
    (the first run starts from nothing, whatever is drawn for it)."""
    runs = draw(st.integers(min_value=2, max_value=3))
    return [
        frozenset(draw(st.sets(st.sampled_from(RESOURCES), max_size=len(RESOURCES))))
        for _ in range(runs)
    ]


@st.composite
def timed_transcripts(draw: st.DrawFn) -> Transcript:
    """Utterances at increasing times (a pause or none between them), some of them with text
    that could break a subtitle file: blank lines, `-->`, markup, `&`. Sometimes untimed, as
    from an engine that reports no timing."""
    alphabet = st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs"))
    fragments = st.one_of(
        st.text(alphabet, max_size=12),
        st.sampled_from(["-->", "--->", "\n\n", "\r\n", "<v x>", "</c>", "&amp;", "um", "uh"]),
    )
    count = draw(st.integers(0, 6))
    duration = draw(st.floats(1.0, 7200.0))
    timed = draw(st.booleans())
    cursor = 0.0
    pieces = []
    for _ in range(count):
        text = " ".join(draw(st.lists(fragments, min_size=1, max_size=6)))
        start = min(cursor + draw(st.floats(0.0, duration / 8)), duration)
        end = min(start + draw(st.floats(0.0, duration / 8)), duration)
        cursor = end
        words = (Word(text.split()[0], start, end, draw(st.floats(0, 1))),) if text.split() else ()
        speaker = draw(st.integers(0, 3))
        pieces.append(
            Segment(speaker, text, start, end, words) if timed else Segment(speaker, text)
        )
    return Transcript.from_engine(pieces, duration, "test")


#: Blob key segments of the form the application uses, and pieces that try to escape a store.
SAFE_SEGMENT = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,15}", fullmatch=True)
HOSTILE_PIECES = st.sampled_from(
    ["..", ".", "", "/", "//", "\\", "..\\", "\x00", "~", "%2e%2e", ".hidden", " ", "é", "\n"]
)


@st.composite
def safe_keys(draw: st.DrawFn) -> str:
    """Keys of one to five safe segments, the form the application uses (`uploads/<id>/audio`)."""
    return "/".join(draw(st.lists(SAFE_SEGMENT, min_size=1, max_size=5)))


@st.composite
def hostile_keys(draw: st.DrawFn) -> str:
    """Safe segments with traversal, separators, control and non-ASCII pieces mixed in."""
    pieces = draw(st.lists(st.one_of(SAFE_SEGMENT, HOSTILE_PIECES), min_size=1, max_size=8))
    return draw(st.sampled_from(["/", "", "\\"])).join(pieces)


# -- authentication ------------------------------------------------------------------------------

#: Who a drawn request presents itself as: the keys of tenants A and B, a revoked key of A, and
#: ways of being nobody.
KEY_ROLES = ("a", "b", "revoked", "unknown", "tampered_a", "truncated_a", "malformed", "absent")
TENANT_ROLES = ("absent", "a", "a_upper", "b", "random", "garbage")


@dataclass(frozen=True)
class AuthAttempt:
    """One request's credentials and identity headers, as roles the test turns into values."""

    key: str
    scheme: str
    tenant: str
    user: str | None
    spaces: int

    @property
    def presents_a_valid_key(self) -> bool:
        return self.key in ("a", "b") and self.scheme.lower() == "bearer"


@st.composite
def auth_attempts(draw: st.DrawFn) -> AuthAttempt:
    """Combinations of a key (valid, revoked, unknown, altered, malformed or none), an
    Authorization scheme (Bearer in any case, or another), an X-Tenant-ID (the key's own,
    another tenant's, a random or a malformed one, or none) and an optional X-User-ID."""
    return AuthAttempt(
        key=draw(st.sampled_from(KEY_ROLES)),
        scheme=draw(st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token"])),
        tenant=draw(st.sampled_from(TENANT_ROLES)),
        user=draw(st.none() | st.from_regex(r"[A-Za-z0-9@._-]{1,40}", fullmatch=True)),
        spaces=draw(st.integers(1, 3)),
    )


# -- webhooks ----------------------------------------------------------------------------------

#: Ranges no webhook may reach, written independently of the sender's own list.
NON_PUBLIC_V4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
NON_PUBLIC_V6 = ("::1/128", "::/128", "fc00::/7", "fe80::/10", "ff00::/8")


@st.composite
def non_public_addresses(draw: st.DrawFn) -> IPAddress:
    """An address in a loopback, private, link-local, CGNAT, multicast or reserved range, or
    one of those IPv4 addresses dressed as IPv6 (IPv4-mapped, NAT64, 6to4)."""
    v4 = draw(st.sampled_from(NON_PUBLIC_V4).flatmap(lambda net: st.ip_addresses(network=net)))
    v6 = draw(st.sampled_from(NON_PUBLIC_V6).flatmap(lambda net: st.ip_addresses(network=net)))
    dressed = [
        v4,
        v6,
        IPv6Address(f"::ffff:{v4}"),
        IPv6Address(int(IPv6Address("64:ff9b::")) | int(v4)),
        IPv6Address((0x2002 << 112) | (int(v4) << 80)),
    ]
    return draw(st.sampled_from(dressed))


@st.composite
def public_addresses(draw: st.DrawFn) -> IPAddress:
    """A public unicast address (IPv4, IPv6, or IPv4-mapped IPv6 of a public IPv4)."""
    address = draw(st.ip_addresses().filter(is_public_address))
    if isinstance(address, IPv4Address) and draw(st.booleans()):
        return IPv6Address(f"::ffff:{address}")
    return address


@st.composite
def resolved_sets(draw: st.DrawFn) -> list[str | IPAddress]:
    """What a DNS lookup may answer: one to four addresses, public or not, as text or objects,
    sometimes repeated."""
    addresses = draw(
        st.lists(st.one_of(public_addresses(), non_public_addresses()), min_size=1, max_size=4)
    )
    return [draw(st.sampled_from([a, str(a)])) for a in addresses]


_LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?\Z")


@st.composite
def host_names(draw: st.DrawFn) -> str:
    """A fully qualified, public-looking host name (two to four labels, alphabetic TLD)."""
    labels = draw(st.lists(_LABEL, min_size=1, max_size=3))
    tld = draw(st.from_regex(r"\A[a-z]{2,6}\Z"))
    return ".".join([*labels, tld])


@st.composite
def callback_urls(draw: st.DrawFn) -> str:
    """A URL assembled from parts that are sometimes wrong: scheme, credentials, host (name,
    IPv4, bracketed IPv6, bare number), port, path, query and fragment."""
    scheme = draw(st.sampled_from(["https", "https", "http", "ftp", "HTTPS", ""]))
    userinfo = draw(st.sampled_from(["", "", "", "user@", "user:pw@"]))
    host = draw(
        st.one_of(
            host_names(),
            st.ip_addresses(v=4).map(str),
            st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
            st.integers(0, 2**32 - 1).map(str),
            st.sampled_from(["localhost", "intranet", "", "a..b", "-x.com", "[::1", "[v1.x]"]),
        )
    )
    port = draw(st.one_of(st.just(""), st.integers(-1, 70000).map(lambda p: f":{p}")))
    path = draw(st.text(st.characters(codec="utf-8"), max_size=30).map(lambda p: "/" + p))
    query = draw(st.sampled_from(["", "?a=1", "?token=x&y=%20"]))
    fragment = draw(st.sampled_from(["", "", "#f"]))
    prefix = f"{scheme}://" if scheme else ""
    return f"{prefix}{userinfo}{host}{port}{path}{query}{fragment}"


@st.composite
def secret_keys(draw: st.DrawFn) -> bytes:
    """Raw signing-secret bytes of an allowed length (24 to 64)."""
    return draw(st.binary(min_size=24, max_size=64))


@st.composite
def message_ids(draw: st.DrawFn) -> str:
    """A `webhook-id`: letters, digits, `_` and `-`."""
    return draw(st.from_regex(r"\A[A-Za-z0-9_-]{1,40}\Z"))


# -- long recordings (SPEC 16) -----------------------------------------------------------------


@st.composite
def speech_analyses(draw: st.DrawFn) -> Any:
    """What the splitter's pass over a recording finds: alternating silences and stretches of
    speech (some longer than any target), and the loudness of each 30 ms frame (speech loud,
    silence faint)."""
    from array import array

    from batchscribe.pipeline.split import Analysis

    regions: list[tuple[float, float]] = []
    at = draw(st.floats(0.0, 5.0))
    for _ in range(draw(st.integers(0, 40))):
        speech = draw(st.one_of(st.floats(0.3, 20.0), st.floats(20.0, 400.0)))
        regions.append((at, at + speech))
        at += speech + draw(st.floats(0.3, 30.0))
    duration = at + draw(st.floats(0.5, 60.0))
    frame = 0.03
    # Speech's loudness rises and falls in a drawn pattern, with the odd quiet frame.
    pattern = draw(st.lists(st.sampled_from([60.0, 400.0, 800.0, 1500.0]), min_size=1, max_size=7))
    levels = array("f", [10.0] * (int(duration / frame) + 1))
    for start, end in regions:
        for index in range(int(start / frame), min(int(end / frame) + 1, len(levels))):
            levels[index] = pattern[index % len(pattern)]
    return Analysis(round(duration * 16000), regions, levels, frame)
