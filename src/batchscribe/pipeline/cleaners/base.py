"""The cleaner interface."""

from __future__ import annotations

from typing import Protocol

from batchscribe.pipeline.types import CleaningResult


class Cleaner(Protocol):
    """Cleans a raw `SPEAKER_<n>: text` transcript, keeping labels and turn order.

    Runs in the server's event loop, so it must not block: CPU-light work or async I/O only.
    It never raises for a content problem: on failure it returns the raw text with
    `degraded=True` and a short reason.
    """

    name: str

    async def clean(self, raw_transcript: str) -> CleaningResult: ...

    async def aclose(self) -> None: ...
