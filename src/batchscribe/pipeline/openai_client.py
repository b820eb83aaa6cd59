"""How both OpenAI-compatible engines (transcriber and cleaner) build their SDK client.

The SDK's own retries are off (`max_retries=0`): both engines retry through the hosted engines'
one policy (`batchscribe.pipeline.retry`), so Deepgram and OpenAI-compatible servers are retried
alike; the engines' module docstrings say why.
"""

from __future__ import annotations

from typing import Any

from batchscribe.config import Settings


def openai_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `openai.OpenAI` / `openai.AsyncOpenAI` from the settings."""
    key = settings.openai_api_key
    return {
        "api_key": key.get_secret_value() if key is not None else None,
        "base_url": settings.openai_base_url,
        "timeout": settings.openai_timeout_seconds,
        "max_retries": 0,
    }
