"""Fixtures of this tier: hosted-API stand-ins and generated audio (see tests/support)."""

from tests.support.database import *  # noqa: F403
from tests.support.fixtures import *  # noqa: F403
