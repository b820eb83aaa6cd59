"""A job's event is written with the job's final state, in one transaction, on both databases;
the runtime reports what happened to it; the outbox CLI reads it without ever showing text."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
import uuid
from pathlib import Path

import boto3
import pytest
import sqlalchemy as sa

from batchscribe.blobs.s3 import S3BlobStore
from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.db.tables import outbox as outbox_table
from batchscribe.events import cli
from batchscribe.events.exceptions import EventNotFoundError
from batchscribe.events.outbox import Outbox, OutboxStatus, Outcome
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.runtime import EventsRuntime
from batchscribe.infra.emulator import LocalAWSEmulator
from batchscribe.jobs.exceptions import JobLeaseLostError
from batchscribe.jobs.factory import claim_check_for
from batchscribe.jobs.models import JobStatus
from batchscribe.signals import Signals
from tests.support.jobs import completed_job, failed_job, job_store, new_job, result_of

PRIVATE = "my card number is private"


def _publisher(settings: Settings) -> AWSEventPublisher:
    """Enabled (dummy keys) but pointing nowhere: nothing is ever sent by these tests."""
    client = boto3.client(
        "events",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="dummy",
        endpoint_url="http://127.0.0.1:9",
    )
    return AWSEventPublisher(client=client, settings=settings)


def _detail(db: Database, interaction_id: str) -> dict[str, object]:
    row = Outbox(db).get(interaction_id)
    assert row is not None
    return dict(json.loads(row.entry["Detail"]))


def test_a_completed_job_writes_its_event_with_it(database: Database) -> None:
    store = job_store(database)
    job = completed_job(store, PRIVATE, account="acct")
    row = Outbox(database).get(job.id)
    assert row is not None
    assert row.status == OutboxStatus.PENDING
    assert row.detail_type == "BatchProcessingCompleted"
    detail = _detail(database, job.id)
    assert detail["version"] == "1.0"  # no 1.1 feature used: consumers of 1.0 read it as before
    assert detail["account_id"] == "acct"
    assert detail["data"] == {
        "raw_transcript": f"SPEAKER_0: {PRIVATE}",
        "cleaned_transcript": f"SPEAKER_0: {PRIVATE}",
    }
    assert (row.raw_len, row.cleaned_len) == (len(f"SPEAKER_0: {PRIVATE}"),) * 2


def test_metadata_travels_in_the_event_as_version_1_1(database: Database) -> None:
    store = job_store(database)
    job = completed_job(store, metadata={"meeting": "weekly", "crm_id": 42})
    detail = _detail(database, job.id)
    assert detail["version"] == "1.1"
    assert detail["metadata"] == {"meeting": "weekly", "crm_id": 42}


def test_a_failed_job_writes_a_failed_event_without_transcripts(database: Database) -> None:
    store = job_store(database)
    job = failed_job(store, "invalid_audio", metadata={"m": 1})
    row = Outbox(database).get(job.id)
    assert row is not None
    assert row.detail_type == "BatchProcessingFailed"
    detail = _detail(database, job.id)
    assert detail["status"] == "failed"
    assert detail["error"] == {"code": "invalid_audio", "message": "The file is not audio."}
    assert "data" not in detail
    assert detail["metadata"] == {"m": 1}


def test_job_state_and_event_commit_together_or_not_at_all(database: Database) -> None:
    store = job_store(database)
    created, _ = store.create(new_job())
    store.claim("w1", 30)
    # A row already holding this interaction id makes the event insert fail inside the
    # transaction that would complete the job.
    with database.transaction() as conn:
        conn.execute(
            sa.insert(outbox_table).values(
                interaction_id=created.id, tenant_id=created.tenant_id, entry="{}",
                size_bytes=2, raw_len=0, cleaned_len=0, status="held", created_at=time.time(),
                updated_at=time.time(), next_attempt_at=time.time(),
            )
        )  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError):
        store.complete(created.id, "w1", result_of("text"))
    after = store.get(created.id)
    assert after.status is JobStatus.RUNNING
    assert after.result_json is None


def test_a_cancelled_job_writes_no_event(database: Database) -> None:
    store = job_store(database)
    created, _ = store.create(new_job())
    store.claim("w1", 30)
    store.cancel(created.id)
    with pytest.raises(JobLeaseLostError):
        store.complete(created.id, "w1", result_of("late"))
    assert Outbox(database).get(created.id) is None


def test_an_oversize_event_is_kept_too_large_without_its_transcripts(database: Database) -> None:
    store = job_store(database, max_bytes=400)
    job = completed_job(store, PRIVATE * 20)
    row = Outbox(database).get(job.id)
    assert row is not None
    assert row.status == OutboxStatus.TOO_LARGE
    assert row.size_bytes > 400
    assert "Detail" not in row.entry  # never sent: the transcripts are not kept
    assert PRIVATE not in json.dumps(row.entry)


def test_with_s3_an_oversize_event_carries_a_claim_check(
    database: Database, aws_emulator: LocalAWSEmulator
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=aws_emulator.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"claims-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    claim_check = claim_check_for(S3BlobStore(bucket, "events-test", client=s3))
    assert claim_check is not None
    store = job_store(database, max_bytes=1000, claim_check=claim_check)
    job = completed_job(store, PRIVATE * 40)
    row = Outbox(database).get(job.id)
    assert row is not None
    assert row.status == OutboxStatus.PENDING
    assert row.size_bytes <= 1000
    detail = _detail(database, job.id)
    assert detail["version"] == "1.1"
    assert "data" not in detail
    ref = detail["data_ref"]
    assert isinstance(ref, dict)
    key = f"events-test/events/{job.id}.json"
    assert ref["uri"] == f"s3://{bucket}/{key}"
    document = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert hashlib.sha256(document).hexdigest() == ref["sha256"]
    assert ref["bytes"] == len(document)
    assert json.loads(document)["data"]["raw_transcript"] == f"SPEAKER_0: {PRIVATE * 40}"


def test_delivery_reports_the_outbox_state(database: Database) -> None:
    settings = Settings(event_max_bytes=400)
    store = job_store(database, max_bytes=400)
    runtime = EventsRuntime(settings, database, Signals(), publisher=_publisher(settings))
    queued = completed_job(store)
    assert runtime.delivery(queued.id) == {"status": "queued"}
    big = completed_job(store, PRIVATE * 20)
    answer = runtime.delivery(big.id)
    assert answer["status"] == "too_large"
    assert answer["size_bytes"] > answer["limit_bytes"] == 400
    assert runtime.delivery(str(uuid.uuid4())) == {"status": "not_stored"}
    disabled = EventsRuntime(Settings(), database, Signals())  # no credentials anywhere
    assert disabled.delivery(queued.id) == {"status": "held", "reason": "publishing_disabled"}


def test_event_status_is_only_for_the_same_tenant(database: Database) -> None:
    settings = Settings()
    store = job_store(database)
    runtime = EventsRuntime(settings, database, Signals(), publisher=_publisher(settings))
    job = completed_job(store, PRIVATE)
    mine = runtime.event_status(job.id, job.tenant_id)
    assert mine["status"] == OutboxStatus.PENDING
    assert mine["detail_type"] == "BatchProcessingCompleted"
    assert mine["created_at"].endswith("Z")
    assert PRIVATE not in json.dumps(mine)
    with pytest.raises(EventNotFoundError):  # another tenant's event looks absent
        runtime.event_status(job.id, str(uuid.uuid4()))
    with pytest.raises(EventNotFoundError):
        runtime.event_status(str(uuid.uuid4()), job.tenant_id)


def test_without_credentials_the_relay_holds_events_and_says_so(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    store = job_store(database)
    job = completed_job(store, PRIVATE)
    runtime = EventsRuntime(Settings(), database, Signals())
    with caplog.at_level(logging.WARNING):
        runtime.start()
        try:
            deadline = time.monotonic() + 10
            while Outbox(database).get(job.id).status != OutboxStatus.HELD:  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the relay did not hold the event"
                time.sleep(0.05)
            ready = runtime.readiness()
        finally:
            runtime.stop()
    assert ready["publisher"] == "disabled"
    assert "credentials" in ready["publisher_reason"]
    assert (ready["held"], ready["pending"]) == (1, 0)
    held = [r for r in caplog.records if r.getMessage().startswith("Event held")]
    assert held
    assert getattr(held[0], "interaction_id", None) == job.id
    assert all(PRIVATE not in r.getMessage() for r in caplog.records)


def test_retention_purges_every_row_that_holds_a_transcript_but_never_a_pending_one(
    database: Database,
) -> None:
    store = job_store(database, max_bytes=400)
    pending = completed_job(store)
    too_large = completed_job(store, PRIVATE * 20)
    failed = failed_job(store)
    box = Outbox(database)
    rows = box.claim("relay", 10, 30)
    sent_id = next(r.id for r in rows if r.interaction_id == failed.id)
    box.apply("relay", [Outcome(sent_id, OutboxStatus.SENT, event_id="e-1")])
    box.release("relay")
    assert box.purge(older_than_seconds=3600) == 0
    assert box.purge(older_than_seconds=-1) == 2  # the sent and the too_large rows
    assert box.get(pending.id) is not None
    assert box.get(too_large.id) is None
    assert box.get(failed.id) is None


def test_cli_status_and_list_show_states_and_lengths_not_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'app.db'}")
    db = Database(settings.database)
    job = completed_job(job_store(db), PRIVATE)
    db.dispose()
    assert cli.cmd_status(argparse.Namespace(json=True), settings) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"]["pending"] == 1
    assert status["counts"]["held"] == 0
    assert cli.cmd_list(argparse.Namespace(status=None, limit=5, json=False), settings) == 0
    table = capsys.readouterr().out
    assert job.id in table
    assert str(len(f"SPEAKER_0: {PRIVATE}")) in table
    assert PRIVATE not in table


@pytest.mark.parametrize("command", ["status", "list", "replay"])
def test_cli_run_where_there_is_no_database_says_so_and_creates_none(
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
    assert f"no database at {missing}" in error
    assert "OUTBOX_PATH" in error
    assert not missing.exists()
    assert not missing.parent.exists()


def test_cli_on_a_database_of_another_version_says_to_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.db"
    with sa.create_engine(f"sqlite:///{path}").begin() as conn:
        conn.exec_driver_sql("CREATE TABLE unrelated (x INTEGER)")
    settings = Settings(database_url=f"sqlite:///{path}")
    assert cli.cmd_list(argparse.Namespace(status=None, limit=5, json=False), settings) == 1
    assert "batchscribe migrate" in capsys.readouterr().err


def test_replay_sends_held_events_through_the_emulator(
    tmp_path: Path, emulator_env: LocalAWSEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'app.db'}")
    db = Database(settings.database)
    job = completed_job(job_store(db))
    assert Outbox(db).hold_pending() == [job.id]
    db.dispose()
    args = argparse.Namespace(include_failed=False, timeout=10)
    assert cli.cmd_replay(args, settings) == 0
    assert "sent 1, failed 0" in capsys.readouterr().out


def test_cli_parser_registers_outbox_commands() -> None:
    parser = argparse.ArgumentParser(prog="batchscribe")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["outbox", "replay", "--include-failed"])
    assert args.include_failed is True
    assert args.func is cli.cmd_replay
    args = parser.parse_args(["outbox", "list", "--status", "failed", "--limit", "3"])
    assert (args.status, args.limit, args.func) == ("failed", 3, cli.cmd_list)
    assert parser.parse_args(["outbox", "status"]).func is cli.cmd_status
