"""What the command-line tools print: listings as JSON lines or as an aligned table."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def print_json_lines(views: Sequence[Mapping[str, Any]]) -> None:
    """One JSON object a line (for `jq` and scripts)."""
    for view in views:
        print(json.dumps(view))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A header line and the rows, each column as wide as its widest cell."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
