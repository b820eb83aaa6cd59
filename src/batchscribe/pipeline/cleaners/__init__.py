"""Transcript cleaners behind one interface; `build_cleaner` picks one from Settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchscribe.pipeline.cleaners.base import Cleaner

if TYPE_CHECKING:
    from batchscribe.config import Settings

__all__ = ["Cleaner", "build_cleaner"]


def build_cleaner(settings: Settings) -> Cleaner:
    """The cleaner named by `CLEANER`."""
    if settings.cleaner == "rules":
        from batchscribe.pipeline.cleaners.rules import RulesCleaner

        return RulesCleaner()
    from batchscribe.pipeline.cleaners.openai import OpenAICleaner

    return OpenAICleaner(settings)
