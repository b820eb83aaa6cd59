"""EventsRuntime on the request path: it always answers, and says what happened to the event."""

from __future__ import annotations

import argparse
import json
import logging
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from batchscribe.config import Settings
from batchscribe.events import cli
from batchscribe.events.exceptions import EventNotFoundError
from batchscribe.events.outbox import Outbox, OutboxStatus
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.runtime import EventsRuntime
from batchscribe.identity import RequestContext
from tests.support.events import metric

RAW = "SPEAKER_0: my card number is private"
CLEANED = "SPEAKER_0: My card number is private."


def _ctx(**overrides: Any) -> RequestContext:
    values = {
        "tenant_id": str(uuid.uuid4()),
        "user_id": "u",
        "account_id": None,
        "interaction_id": str(uuid.uuid4()),
    }
    values.update(overrides)
    return RequestContext(**values)


def _runtime(tmp_path: Path, **overrides: Any) -> EventsRuntime:
    """A runtime whose publisher is enabled (dummy keys) but never started: nothing is sent."""
    settings = Settings(**{"outbox_path": tmp_path / "outbox.db", **overrides})
    client = boto3.client(
        "events",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="dummy",
        endpoint_url="http://127.0.0.1:9",
    )
    return EventsRuntime(settings, publisher=AWSEventPublisher(client=client, settings=settings))


def _close(runtime: EventsRuntime) -> None:
    if runtime.outbox is not None:
        runtime.outbox.close()
    runtime.publisher.client.close()


def test_record_queues_a_valid_event(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    ctx = _ctx(account_id="acct")
    assert runtime.record(ctx, RAW, CLEANED) == {"status": "queued"}
    assert runtime.outbox is not None
    row = runtime.outbox.get(ctx.interaction_id)
    assert row is not None
    assert row.status == OutboxStatus.PENDING
    assert json.loads(row.entry["Detail"])["account_id"] == "acct"
    assert (row.raw_len, row.cleaned_len) == (len(RAW), len(CLEANED))
    _close(runtime)


def test_an_unwritable_outbox_never_fails_the_request(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the outbox directory should be")
    runtime = _runtime(tmp_path, outbox_path=blocker / "outbox.db")
    failures_before = metric("batchscribe_outbox_write_failures_total")
    with caplog.at_level(logging.ERROR):
        answer = runtime.record(_ctx(), RAW, CLEANED)
    assert answer == {"status": "not_stored", "reason": "outbox_unavailable"}
    assert metric("batchscribe_outbox_write_failures_total") - failures_before == 1
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    assert all("card number" not in r.getMessage() for r in caplog.records)
    ready = runtime.readiness()
    assert ready["ok"] is False
    assert ready["outbox"]["writable"] is False
    _close(runtime)


def test_record_survives_an_unexpected_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = _runtime(tmp_path)

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(runtime.publisher, "entry_for", explode)
    assert runtime.record(_ctx(), RAW, CLEANED) == {
        "status": "not_stored",
        "reason": "internal_error",
    }
    _close(runtime)


def test_an_event_over_the_limit_is_recorded_as_too_large(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, event_max_bytes=400)
    ctx = _ctx()
    answer = runtime.record(ctx, RAW * 20, CLEANED)
    assert answer["status"] == "too_large"
    assert answer["size_bytes"] > answer["limit_bytes"] == 400
    assert runtime.outbox is not None
    assert runtime.outbox.get(ctx.interaction_id).status == OutboxStatus.TOO_LARGE  # type: ignore[union-attr]
    status = runtime.event_status(ctx.interaction_id, ctx.tenant_id)
    assert status["status"] == OutboxStatus.TOO_LARGE
    _close(runtime)


def test_an_identity_the_model_refuses_is_not_stored(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    assert runtime.record(_ctx(tenant_id="tenant-one"), RAW, CLEANED) == {
        "status": "not_stored",
        "reason": "invalid_event",
    }
    _close(runtime)


def test_event_status_is_only_for_the_same_tenant(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    ctx = _ctx()
    runtime.record(ctx, RAW, CLEANED)
    mine = runtime.event_status(ctx.interaction_id, ctx.tenant_id)
    assert mine["status"] == OutboxStatus.PENDING
    assert mine["created_at"].endswith("Z")
    assert "card number" not in json.dumps(mine)
    with pytest.raises(EventNotFoundError):  # another tenant's event looks absent
        runtime.event_status(ctx.interaction_id, str(uuid.uuid4()))
    with pytest.raises(EventNotFoundError):
        runtime.event_status(str(uuid.uuid4()), ctx.tenant_id)
    _close(runtime)


def test_without_credentials_events_are_held_and_readiness_says_so(tmp_path: Path) -> None:
    settings = Settings(outbox_path=tmp_path / "outbox.db")
    runtime = EventsRuntime(settings)
    runtime.start()
    try:
        assert runtime.record(_ctx(), RAW, CLEANED) == {
            "status": "held",
            "reason": "publishing_disabled",
        }
        ready = runtime.readiness()
        assert ready["ok"] is True
        assert ready["publisher"] == "disabled"
        assert "credentials" in ready["publisher_reason"]
        assert ready["held"] == 1
        assert ready["pending"] == 0
    finally:
        runtime.stop()
        runtime.publisher.client.close()


def test_cli_status_and_list_show_states_and_lengths_not_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = _runtime(tmp_path)
    ctx = _ctx()
    runtime.record(ctx, RAW, CLEANED)
    _close(runtime)
    settings = runtime.settings
    assert cli.cmd_status(argparse.Namespace(json=True), settings) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"]["pending"] == 1
    assert status["counts"]["held"] == 0
    assert cli.cmd_list(argparse.Namespace(status=None, limit=5, json=False), settings) == 0
    table = capsys.readouterr().out
    assert ctx.interaction_id in table
    assert str(len(RAW)) in table
    assert "card number" not in table


@pytest.mark.parametrize("command", ["status", "list", "replay"])
def test_cli_run_where_there_is_no_outbox_says_so_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    missing = tmp_path / "elsewhere" / "outbox.db"
    settings = Settings(
        outbox_path=missing, aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="dummy"
    )
    args = argparse.Namespace(json=False, status=None, limit=5, include_failed=False, timeout=1)
    run = {"status": cli.cmd_status, "list": cli.cmd_list, "replay": cli.cmd_replay}[command]
    assert run(args, settings) == 1
    error = capsys.readouterr().err
    assert f"no outbox at {missing}" in error
    assert "OUTBOX_PATH" in error
    assert not missing.exists()
    assert not missing.parent.exists()


def test_cli_list_closes_the_outbox_when_its_query_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = _runtime(tmp_path)
    runtime.record(_ctx(), RAW, CLEANED)
    _close(runtime)
    # A file another version wrote: the column the query filters on has another name.
    with sqlite3.connect(runtime.settings.outbox_path) as conn:
        conn.execute("ALTER TABLE outbox RENAME COLUMN status TO state")
    conn.close()
    opened: list[Outbox] = []
    original_close = Outbox.close

    def tracking_close(self: Outbox) -> None:
        opened.append(self)
        original_close(self)

    monkeypatch.setattr(Outbox, "close", tracking_close)
    for status in ("held", None):
        args = argparse.Namespace(status=status, limit=5, json=False)
        assert cli.cmd_list(args, runtime.settings) == 1
        assert capsys.readouterr().err.startswith("error: ")
    assert len(opened) == 2  # each run closed the outbox it opened


def test_cli_parser_registers_outbox_commands() -> None:
    parser = argparse.ArgumentParser(prog="batchscribe")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["outbox", "replay", "--include-failed"])
    assert args.include_failed is True
    assert args.func is cli.cmd_replay
    args = parser.parse_args(["outbox", "list", "--status", "failed", "--limit", "3"])
    assert (args.status, args.limit, args.func) == ("failed", 3, cli.cmd_list)
    assert parser.parse_args(["outbox", "status"]).func is cli.cmd_status
