"""`batchscribe webhooks ...` against the default SQLite database of the working directory, as an
operator would run them beside the service: secrets shown once and never stored in the clear
when WEBHOOK_ENCRYPTION_KEY is set, deliveries listed without their bodies, replays."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from batchscribe import cli
from batchscribe.config import get_settings
from batchscribe.db import Database
from batchscribe.webhooks.deliveries import DeliveryStatus, DeliveryStore
from batchscribe.webhooks.exceptions import SecretUnreadable
from batchscribe.webhooks.signing import parse_secret
from batchscribe.webhooks.tenant_secrets import SecretBox, TenantSecrets
from tests.support.jobs import job_store
from tests.support.webhook_jobs import finish_with_callback, sender, wait_for
from tests.support.webhooks import ReceiverReply, WebhookReceiver

ENCRYPTION_KEY = "0123456789abcdef0123456789abcdef-first"
DATABASE = Path("var") / "batchscribe.db"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    get_settings.cache_clear()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _database_bytes(tmp_path: Path) -> bytes:
    """The database files as a backup would copy them (main file and write-ahead log)."""
    return b"".join(p.read_bytes() for p in (tmp_path / "var").glob("batchscribe.db*"))


def test_rotate_secret_prints_it_once_and_the_database_keeps_it_encrypted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_ENCRYPTION_KEY", ENCRYPTION_KEY)
    tenant = str(uuid.uuid4())
    code, out, err = run(capsys, "webhooks", "rotate-secret", "--tenant", tenant.upper())
    assert code == 0
    first = out.strip()
    parse_secret(first)  # stdout is the secret alone, ready for SECRET=$(...)
    assert "only time" in err
    assert "stored encrypted" in err

    code, out, err = run(capsys, "webhooks", "rotate-secret", "--tenant", tenant, "--json")
    second = json.loads(out)
    assert second["rotated"] is True
    assert second["tenant_id"] == tenant
    assert "keeps signing beside it for 24 hours" in err

    dump = _database_bytes(tmp_path)
    for secret in (first, second["secret"]):
        assert secret.encode() not in dump
        assert secret.removeprefix("whsec_").encode() not in dump

    code, out, _ = run(capsys, "webhooks", "secrets", "--json")
    (listed,) = [json.loads(line) for line in out.splitlines()]
    assert listed["tenant_id"] == tenant
    assert listed["encrypted"] is True
    assert listed["previous_signs_until"] is not None
    assert first not in out
    assert second["secret"] not in out

    db = Database(f"sqlite:///{tmp_path / DATABASE}")
    try:
        box = SecretBox([ENCRYPTION_KEY])
        signing = TenantSecrets(db, box, fallback=None).for_tenant(tenant)
        assert [s.encoded for s in signing] == [second["secret"], first]
        # Without the key, or with another, the stored secrets cannot be used at all.
        for other in (SecretBox(), SecretBox(["another-key-of-at-least-32-characters"])):
            with pytest.raises(SecretUnreadable, match="WEBHOOK_ENCRYPTION_KEY"):
                TenantSecrets(db, other, fallback=None).for_tenant(tenant)
    finally:
        db.dispose()


def test_secrets_stored_before_a_key_was_set_are_encrypted_by_reencrypt(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = str(uuid.uuid4())
    code, out, err = run(capsys, "webhooks", "rotate-secret", "--tenant", tenant)
    secret = out.strip()
    assert "unencrypted" in err
    assert secret.encode() in _database_bytes(tmp_path)  # what SECURITY.md warns about

    new_key = "fedcba9876543210fedcba9876543210-second"
    monkeypatch.setenv("WEBHOOK_ENCRYPTION_KEY", ENCRYPTION_KEY)
    code, out, _ = run(capsys, "webhooks", "reencrypt")
    assert code == 0
    assert "rewrote the signing secrets of 1 tenants, encrypted" in out
    # Rotating the key itself: the new one first, the old one still accepted, then re-encrypt.
    monkeypatch.setenv("WEBHOOK_ENCRYPTION_KEY", f"{new_key},{ENCRYPTION_KEY}")
    assert run(capsys, "webhooks", "reencrypt")[0] == 0
    # Overwritten values linger in free pages and the write-ahead log until a vacuum (which
    # SECURITY.md tells operators to run after enabling encryption).
    raw = sqlite3.connect(tmp_path / DATABASE, isolation_level=None)
    raw.execute("VACUUM")
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    assert secret.removeprefix("whsec_").encode() not in _database_bytes(tmp_path)
    db = Database(f"sqlite:///{tmp_path / DATABASE}")
    try:
        (signing,) = TenantSecrets(db, SecretBox([new_key]), fallback=None).for_tenant(tenant)
        assert signing.encoded == secret
    finally:
        db.dispose()


def test_list_show_and_replay_deliveries_without_their_bodies(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / DATABASE}")
    try:
        store = job_store(db)
        with WebhookReceiver() as receiver:
            receiver.queue(ReceiverReply(status=410))
            job = finish_with_callback(
                store, receiver.url_for("127.0.0.1", "/in?token=s3cret"), text="private words"
            )
            deliveries = DeliveryStore(db)
            delivery = deliveries.for_job(job.id)
            assert delivery is not None
            code, out, _ = run(capsys, "webhooks", "list")
            assert code == 0
            assert delivery.message_id in out
            assert "pending" in out
            assert "private words" not in out
            assert "s3cret" not in out  # the URL's path and query may hold tokens

            dispatcher = sender(db)
            dispatcher.start()
            wait_for(deliveries, job.id)
            dispatcher.stop()

            code, out, _ = run(capsys, "webhooks", "show", delivery.message_id, "--json")
            shown = json.loads(out)
            assert shown["status"] == "gone"
            assert [a["status_code"] for a in shown["attempt_log"]] == [410]
            assert "private words" not in out

            code, out, _ = run(capsys, "webhooks", "list", "--status", "gone", "--json")
            assert [json.loads(line)["job_id"] for line in out.splitlines()] == [job.id]

            code, out, _ = run(capsys, "webhooks", "replay", job.id)
            assert code == 0
            assert f"queued {delivery.id}" in out
            again = deliveries.for_job(job.id)
            assert again is not None
            assert again.status is DeliveryStatus.PENDING
            assert again.attempts == 0
            assert again.message_id == delivery.message_id  # the same webhook, sent again

            code, _, err = run(capsys, "webhooks", "replay", job.id)
            assert code == 1
            assert "only finished deliveries are replayed" in err
            code, _, err = run(capsys, "webhooks", "replay")
            assert code == 2
            assert "--failed" in err
            code, _, err = run(capsys, "webhooks", "show", "msg_nope")
            assert code == 1
            assert "no webhook delivery" in err
    finally:
        db.dispose()


def test_new_secret_and_bad_tenants(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "webhooks", "new-secret")
    assert code == 0
    assert len(parse_secret(out.strip()).key) == 32
    assert "WEBHOOK_SECRET" in err
    code, _, err = run(capsys, "webhooks", "rotate-secret", "--tenant", "acme")
    assert code == 2
    assert "UUID v4" in err
    code, _, err = run(capsys, "webhooks", "list")
    assert code == 1
    assert "no database at" in err
