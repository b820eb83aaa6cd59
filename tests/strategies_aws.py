"""Hypothesis strategies for the AWS tooling tests."""

from __future__ import annotations

from hypothesis import strategies as st

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
