"""Hypothesis strategies for blob keys: well-formed ones, and ones that try to escape."""

from __future__ import annotations

from hypothesis import strategies as st

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
