"""Hypothesis strategies shared by the property tests of the HTTP layer."""

from __future__ import annotations

import uuid

from hypothesis import strategies as st

PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"))


@st.composite
def uuid4_strings(draw: st.DrawFn) -> str:
    """Canonical UUID v4 strings, in lower or upper case."""
    value = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)), version=4))
    return value.upper() if draw(st.booleans()) else value


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
