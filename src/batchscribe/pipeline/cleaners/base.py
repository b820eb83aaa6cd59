"""The cleaner interface."""

from __future__ import annotations

from typing import Protocol

from batchscribe.pipeline.types import CleaningResult, Transcript


class Cleaner(Protocol):
    """Cleans a transcript into `SPEAKER_<n>: text` lines, keeping labels and turn order.

    It receives the whole `Transcript` so it can use utterance boundaries as sentence breaks;
    text-based cleaners use `transcript.raw_text`.

    Runs in the server's event loop, so it must not block: CPU-light work or async I/O only.
    It never raises for a content problem: on failure it returns the raw text with
    `degraded=True` and a short reason.
    """

    name: str

    async def clean(self, transcript: Transcript) -> CleaningResult: ...

    async def aclose(self) -> None: ...
