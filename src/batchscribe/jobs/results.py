"""What a completed job keeps: the transcript and its cleaning, stored whole so every format
(JSON, text, SRT, VTT, verbose JSON) can be rendered from it later, and the public view of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from batchscribe.pipeline import render
from batchscribe.pipeline.types import CleaningResult, Transcript

#: Bump when the stored shape changes; `from_json` refuses what it does not know.
RESULT_FORMAT = 1


@dataclass(frozen=True, slots=True)
class JobResult:
    """A finished transcription: the engine's transcript and the cleaner's result."""

    transcript: Transcript
    cleaning: CleaningResult

    @property
    def raw_transcript(self) -> str:
        return self.transcript.raw_text

    @property
    def cleaned_transcript(self) -> str:
        return self.cleaning.text

    def to_json(self) -> str:
        stored = {"format": RESULT_FORMAT, **_ADAPTER.dump_python(self, mode="json")}
        return json.dumps(stored, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> JobResult:
        data = json.loads(text)
        if data.pop("format", None) != RESULT_FORMAT:
            raise ValueError("stored result of an unknown format")
        result: JobResult = _ADAPTER.validate_python(data)
        return result

    def view(self) -> dict[str, Any]:
        """The public fields of a result (beside identity and event state): what
        `POST /batch/process` answers and `GET /batch/jobs/{id}` shows under `result`."""
        return {
            "raw_transcript": self.raw_transcript,
            "cleaned_transcript": self.cleaned_transcript,
            "duration_seconds": round(self.transcript.duration_seconds, 3),
            "engine": self.transcript.engine,
            "language": self.transcript.language,
            "cleaning": self.cleaning.as_response(),
            "segments": render.segments_json(self.transcript, self.cleaning),
        }


_ADAPTER = TypeAdapter(JobResult)
