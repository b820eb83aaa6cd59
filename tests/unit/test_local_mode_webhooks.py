"""Local mode signs callbacks out of the box, with a secret kept in a private file."""

from __future__ import annotations

import stat
from pathlib import Path

from batchscribe.config import Settings
from batchscribe.infra.local import LOCAL_WEBHOOK_SECRET_FILE, service_environment
from batchscribe.webhooks.signing import parse_secret


def test_local_mode_signs_webhooks_with_a_private_stable_secret(tmp_path: Path) -> None:
    # The autouse fixture runs each test in its own tmp_path: var/ is the test's.
    first = service_environment(Settings(), "http://127.0.0.1:4566")
    secret = first["WEBHOOK_SECRET"]
    parse_secret(secret)  # a valid whsec_ secret
    assert first["CALLBACK_ALLOW_PRIVATE_NETWORKS"] == "true"
    mode = stat.S_IMODE(LOCAL_WEBHOOK_SECRET_FILE.stat().st_mode)
    assert mode == 0o600
    again = service_environment(Settings(), "http://127.0.0.1:4566")
    assert again["WEBHOOK_SECRET"] == secret  # the same on every run


def test_a_configured_secret_and_network_rule_are_left_alone() -> None:
    settings = Settings(
        webhook_secret="whsec_" + "A" * 43 + "=", callback_allow_private_networks=False
    )
    env = service_environment(settings, "http://127.0.0.1:4566")
    assert "WEBHOOK_SECRET" not in env  # the service reads the configured one itself
    assert env.get("CALLBACK_ALLOW_PRIVATE_NETWORKS") != "true"
    assert not LOCAL_WEBHOOK_SECRET_FILE.exists()
