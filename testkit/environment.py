"""One definition of a clean environment for tests, e2e servers and the bench: nothing in it can
point boto3 at a real AWS account, reach a hosted engine, or change a default setting."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from batchscribe.config import Settings

_SCRUBBED_PREFIXES = ("AWS_", "DEEPGRAM_", "OPENAI_", "MOCK_", "BATCHSCRIBE_")
_SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)


def is_scrubbed(name: str) -> bool:
    """True for a variable a clean environment must not carry: any setting of ours, and any
    AWS, Deepgram, OpenAI, identity-fallback or project variable."""
    return name.startswith(_SCRUBBED_PREFIXES) or name in _SETTING_NAMES


def aws_isolation(tmp: Path) -> dict[str, str]:
    """boto3 also reads `~/.aws` and the instance metadata service: point both at nothing."""
    return {
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def clean_environ(base: Mapping[str, str], tmp: Path) -> dict[str, str]:
    """`base` without the scrubbed variables, with AWS configuration files isolated in `tmp`."""
    env = {name: value for name, value in base.items() if not is_scrubbed(name)}
    env.update(aws_isolation(tmp))
    return env
