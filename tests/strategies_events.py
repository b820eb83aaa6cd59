"""Hypothesis strategies for the event tests (identities, transcripts, AWS error codes)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from hypothesis import strategies as st

from batchscribe.identity import RequestContext

RETRYABLE_ENTRY_CODES = ("ThrottlingException", "InternalFailure")
TERMINAL_ENTRY_CODES = (
    "MalformedDetail",
    "AccessDeniedException",
    "NotAuthorizedForSourceException",
    "InvalidArgument",
    "ValidationException",
)


@st.composite
def uuid4s(draw: st.DrawFn) -> str:
    """A canonical lowercase UUID v4 string."""
    return str(draw(st.uuids(version=4)))


@st.composite
def contexts(draw: st.DrawFn) -> RequestContext:
    """A valid request identity: UUID v4 tenant and interaction, any user and optional account."""
    return RequestContext(
        tenant_id=draw(uuid4s()),
        user_id=draw(st.text(max_size=256)),
        account_id=draw(st.none() | st.text(max_size=256)),
        interaction_id=draw(uuid4s()),
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


def entry_error_codes() -> st.SearchStrategy[str]:
    """Per-entry PutEvents error codes, retryable and terminal."""
    return st.sampled_from(RETRYABLE_ENTRY_CODES + TERMINAL_ENTRY_CODES)
