"""The outbox and relay against the AWS emulator: events really arrive in an SQS queue.

The outbox is a table of the application database; the tests that share the `settings`
fixture run on SQLite and on PostgreSQL."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from batchscribe.blobs import open_blob_store
from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.db.migrate import upgrade
from batchscribe.db.tables import outbox as outbox_table
from batchscribe.events import cli
from batchscribe.events.exceptions import EventNotFoundError
from batchscribe.events.outbox import Outbox, OutboxStatus, Outcome
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.relay import OutboxRelay
from batchscribe.events.runtime import EventsRuntime
from batchscribe.events.schema import BatchProcessingCompletedEvent
from batchscribe.infra.emulator import LocalAWSEmulator, free_port
from batchscribe.jobs.factory import job_store
from batchscribe.jobs.models import Job
from batchscribe.signals import Signals, Topic
from testkit.aws import EventSink
from tests.support.events import FaultyClient, add_rows, metric, wait_for
from tests.support.jobs import new_job, result_of

REPO = Path(__file__).resolve().parents[2]


def make_settings(
    tmp_path: Path, source: str, endpoint: str, database_url: str | None = None, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url or f"sqlite:///{tmp_path / 'app.db'}",
        "blob_store": f"file://{tmp_path / 'blobs'}",
        "event_source": source,
        "aws_endpoint_url": endpoint,
        "relay_max_backoff_seconds": 0.2,
        "shutdown_grace_seconds": 5,
    }
    values.update(overrides)
    settings = Settings(**values)
    db = Database(settings.database)
    try:
        upgrade(db)  # what the service does at startup
    finally:
        db.dispose()
    return settings


@pytest.fixture
def settings(
    emulator_env: LocalAWSEmulator, source: str, tmp_path: Path, database_url: str
) -> Settings:
    """This test's database (SQLite or PostgreSQL), publishing `source` to the emulator with
    its dummy credentials."""
    return make_settings(tmp_path, source, emulator_env.endpoint_url, database_url)


class Handle:
    """The application database opened by "another process": an outbox and a job store."""

    def __init__(self, settings: Settings) -> None:
        self.db = Database(settings.database)
        self.outbox = Outbox(self.db)
        self.jobs = job_store(settings, self.db, open_blob_store(settings))

    def complete(self, raw: str, cleaned: str, tenant: str | None = None) -> Job:
        """One job through to `completed`: its event goes into the outbox with it."""
        created, _ = self.jobs.create(new_job(tenant=tenant))
        claimed = self.jobs.claim("test-worker", 30)
        assert claimed is not None
        assert claimed.id == created.id
        return self.jobs.complete(created.id, "test-worker", result_of(raw, cleaned))

    def close(self) -> None:
        self.db.dispose()


@pytest.fixture
def handles() -> Iterator[Any]:
    """Opens database handles and closes every one at the end."""
    made: list[Handle] = []

    def make(settings: Settings) -> Handle:
        made.append(Handle(settings))
        return made[-1]

    yield make
    for handle in made:
        handle.close()


def prefill(settings: Settings, count: int) -> list[str]:
    """Write `count` pending events through another database handle, as another process would."""
    writer = Handle(settings)
    try:
        return add_rows(writer.outbox, count, settings.event_source)
    finally:
        writer.close()


@pytest.fixture
def runtime_factory() -> Iterator[Any]:
    """Builds runtimes (each on a database handle of its own) and stops every one at the end."""
    made: list[tuple[EventsRuntime, Database]] = []

    def make(settings: Settings, publisher: AWSEventPublisher | None = None) -> EventsRuntime:
        db = Database(settings.database)
        runtime = EventsRuntime(settings, db, Signals(), publisher=publisher)
        made.append((runtime, db))
        return runtime

    yield make
    for runtime, db in made:
        runtime.stop()
        runtime.publisher.client.close()
        db.dispose()


def test_a_completed_jobs_event_arrives_in_the_queue_and_validates(
    sink: EventSink,
    settings: Settings,
    runtime_factory: Any,
    handles: Any,
) -> None:
    runtime = runtime_factory(settings)
    runtime.start()
    job = handles(settings).complete("um hello there", "Hello there.")
    runtime.signals.publish(Topic.OUTBOX_WRITTEN)  # what this server's supervisor does
    assert runtime.delivery(job.id)["status"] in ("queued", "sent")
    (detail,) = sink.receive_details(1)
    event = BatchProcessingCompletedEvent.model_validate(detail)
    assert event.interaction_id == job.id
    assert event.tenant_id == job.tenant_id
    assert event.data is not None
    assert event.data.raw_transcript == "SPEAKER_0: um hello there"
    assert event.data.cleaned_transcript == "SPEAKER_0: Hello there."
    assert wait_for(
        lambda: runtime.event_status(job.id, job.tenant_id)["status"] == OutboxStatus.SENT
    )
    assert runtime.delivery(job.id) == {"status": "sent"}
    status = runtime.event_status(job.id, job.tenant_id)
    assert status["event_id"]
    assert status["attempts"] == 1
    with pytest.raises(EventNotFoundError):  # another tenant sees nothing
        runtime.event_status(job.id, str(uuid.uuid4()))
    ready = runtime.readiness()
    assert ready["publisher"] == "enabled"
    assert ready["relay_running"]
    assert ready["pending"] == 0


def test_pending_rows_go_out_in_calls_of_ten_made_at_once(
    sink: EventSink,
    settings: Settings,
    runtime_factory: Any,
) -> None:
    ids = prefill(settings, 25)
    runtime = runtime_factory(settings)
    assert runtime.relay.concurrency >= 3
    calls: list[int] = []
    # The three calls of one step meet here before any is sent: made one after the other, the
    # first would wait alone until the barrier broke.
    together = threading.Barrier(3, timeout=20)
    met: list[bool] = []

    def before_call(params: dict[str, Any], **_: Any) -> None:
        calls.append(len(params["Entries"]))
        try:
            together.wait()
            met.append(True)
        except threading.BrokenBarrierError:
            met.append(False)

    runtime.publisher.client.meta.events.register(
        "provide-client-params.events.PutEvents", before_call
    )
    runtime.start()
    details = sink.receive_details(25)
    assert sorted(d["interaction_id"] for d in details) == sorted(ids)
    assert sorted(calls) == [5, 10, 10]
    assert met == [True, True, True]
    assert wait_for(lambda: runtime.outbox.counts()[OutboxStatus.SENT] == 25)


def test_throttling_internal_failure_and_network_errors_are_retried(
    sink: EventSink,
    settings: Settings,
    runtime_factory: Any,
) -> None:
    publisher = AWSEventPublisher(settings=settings)
    faulty = FaultyClient(publisher.client, ["throttle", "internal", "call-throttle", "network"])
    publisher.client = faulty
    codes = ("ThrottlingException", "InternalFailure", "NetworkError")
    retries_before = sum(metric("batchscribe_relay_retries_total", {"code": c}) for c in codes)
    runtime = runtime_factory(settings, publisher)
    ids = prefill(settings, 3)
    runtime.start()
    details = sink.receive_details(3)
    assert sorted(d["interaction_id"] for d in details) == sorted(ids)
    assert faulty.script == []  # all four faults were hit, each followed by a retry
    assert wait_for(lambda: runtime.outbox.counts()[OutboxStatus.SENT] == 3)
    rows = [runtime.outbox.get(i) for i in ids]
    # Every entry-attempt is accounted for: one success per row, the rest were retries.
    assert sum(r.attempts for r in rows) == sum(faulty.calls)
    retries = sum(metric("batchscribe_relay_retries_total", {"code": c}) for c in codes)
    assert retries - retries_before == sum(faulty.calls) - 3
    assert runtime.outbox.counts()[OutboxStatus.FAILED] == 0


def test_terminal_codes_are_recorded_as_failed(
    sink: EventSink,
    settings: Settings,
    source: str,
    runtime_factory: Any,
) -> None:
    writer = Handle(settings)
    (bad,) = add_rows(writer.outbox, 1, source, detail="not json")  # the emulator: MalformedDetail
    (good,) = add_rows(writer.outbox, 1, source)
    # ResourceNotFoundException
    (lost_bus,) = add_rows(writer.outbox, 1, source, bus="no-such-bus")
    writer.close()
    failed_before = metric("batchscribe_event_publishes_failed_total", {"code": "MalformedDetail"})
    runtime = runtime_factory(settings)
    runtime.start()
    # One bad entry must not sink its batch: the good event still goes out.
    assert [d["interaction_id"] for d in sink.receive_details(1)] == [good]
    assert wait_for(lambda: runtime.outbox.counts()[OutboxStatus.FAILED] == 2)
    assert runtime.outbox.get(bad).error_code == "MalformedDetail"
    assert runtime.outbox.get(lost_bus).error_code == "ResourceNotFoundException"
    assert (
        metric("batchscribe_event_publishes_failed_total", {"code": "MalformedDetail"})
        - failed_before
        == 1
    )


def test_events_are_held_while_disabled_and_replay_sends_them(
    aws_emulator: LocalAWSEmulator,
    sink: EventSink,
    source: str,
    tmp_path: Path,
    runtime_factory: Any,
    handles: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, source, aws_emulator.endpoint_url)
    runtime = runtime_factory(settings)  # no credentials anywhere: publishing disabled
    runtime.start()
    writer = handles(settings)
    with caplog.at_level(logging.WARNING):
        first = writer.complete("secret words", "Secret words.")
        second = writer.complete("more", "More.")
        runtime.signals.publish(Topic.OUTBOX_WRITTEN)
        assert wait_for(lambda: runtime.outbox.counts()[OutboxStatus.HELD] == 2)
    for job in (first, second):
        assert runtime.delivery(job.id) == {"status": "held", "reason": "publishing_disabled"}
    held_warnings = [r for r in caplog.records if "Event held" in r.getMessage()]
    assert len(held_warnings) == 2  # one WARNING per event while disabled
    assert runtime.readiness()["publisher"] == "disabled"
    assert runtime.readiness()["held"] == 2
    runtime.stop()

    assert cli.cmd_replay(argparse.Namespace(include_failed=False, timeout=20), settings) == 2
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code = cli.cmd_replay(argparse.Namespace(include_failed=False, timeout=20), settings)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sent 2, failed 0, still pending 0" in out
    assert "secret words" not in out
    details = sink.receive_details(2)
    assert sorted(d["interaction_id"] for d in details) == sorted((first.id, second.id))


def test_replay_include_failed_reports_what_still_fails(
    sink: EventSink,
    settings: Settings,
    source: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handle = Handle(settings)
    outbox = handle.outbox
    (fixable,) = add_rows(outbox, 1, source, status=OutboxStatus.HELD)
    (broken,) = add_rows(outbox, 1, source, detail="not json", status=OutboxStatus.HELD)
    OutboxRelay(outbox, AWSEventPublisher(settings=settings)).drain_now(0)  # nothing pending
    outbox.requeue([OutboxStatus.HELD])
    relay = OutboxRelay(outbox, AWSEventPublisher(settings=settings))
    relay.drain_now(10)
    assert outbox.get(broken).status == OutboxStatus.FAILED
    # Pretend the good one failed too (for example AccessDenied before a policy fix).
    outbox.claim("x", 10, 30)  # nothing due: both settled
    assert outbox.get(fixable).status == OutboxStatus.SENT
    relay.publisher.client.close()
    handle.close()
    args = argparse.Namespace(include_failed=True, timeout=10)
    assert cli.cmd_replay(args, settings) == 1
    assert "sent 0, failed 1" in capsys.readouterr().out
    assert len(sink.receive_details(1)) == 1  # only the fixable one, sent once


def test_pending_events_survive_a_restart(
    emulator_env: LocalAWSEmulator,
    sink: EventSink,
    source: str,
    tmp_path: Path,
    runtime_factory: Any,
    handles: Any,
) -> None:
    dead = make_settings(
        tmp_path, source, f"http://127.0.0.1:{free_port()}", shutdown_grace_seconds=0.3
    )
    first = runtime_factory(dead)
    first.start()
    writer = handles(dead)
    jobs = [writer.complete("a", "A.") for _ in range(5)]
    first.signals.publish(Topic.OUTBOX_WRITTEN)
    for job in jobs:
        assert first.delivery(job.id)["status"] == "queued"
    assert wait_for(lambda: all(first.outbox.get(job.id).attempts >= 1 for job in jobs))
    first.stop()
    counts = writer.outbox.counts()
    assert counts[OutboxStatus.PENDING] == 5
    assert counts[OutboxStatus.SENDING] == 0
    assert all(first.delivery(job.id)["status"] == "queued" for job in jobs)

    second = runtime_factory(make_settings(tmp_path, source, emulator_env.endpoint_url))
    second.start()
    details = sink.receive_details(5)
    assert sorted(d["interaction_id"] for d in details) == sorted(job.id for job in jobs)


def test_an_expired_lease_is_taken_over_and_a_live_one_is_respected(
    sink: EventSink,
    settings: Settings,
    source: str,
) -> None:
    handle = Handle(settings)
    outbox = handle.outbox
    (busy,) = add_rows(outbox, 1, source)
    assert outbox.claim("live-relay", 10, 300)  # another relay is sending it right now
    (crashed,) = add_rows(outbox, 1, source)
    assert outbox.claim("crashed-relay", 10, 0.001)  # its relay died; the lease runs out
    publisher = AWSEventPublisher(settings=settings)
    result = OutboxRelay(outbox, publisher).drain_now(1)
    assert result.sent == 1
    assert outbox.get(crashed).status == OutboxStatus.SENT
    assert outbox.get(busy).status == OutboxStatus.SENDING
    assert outbox.get(busy).lease_owner == "live-relay"
    assert [d["interaction_id"] for d in sink.receive_details(1)] == [crashed]
    publisher.client.close()
    handle.close()


def test_two_processes_on_one_outbox_never_send_a_row_twice(
    sink: EventSink,
    settings: Settings,
    source: str,
) -> None:
    handle = Handle(settings)
    outbox = handle.outbox
    ids = add_rows(outbox, 60, source)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "DATABASE_URL": settings.database,
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.relay_worker", settings.database],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        sent = [int(worker.communicate(timeout=60)[0].strip()) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert sum(sent) == 60
    details = sink.receive_details(60)
    received = [d["interaction_id"] for d in details]
    assert sorted(received) == sorted(ids)  # each exactly once
    assert sink.receive_details(1, timeout=1) == []
    assert outbox.counts()[OutboxStatus.SENT] == 60
    handle.close()


def test_stored_transcripts_are_purged_after_the_retention(
    emulator_env: LocalAWSEmulator,
    source: str,
    tmp_path: Path,
    runtime_factory: Any,
) -> None:
    settings = make_settings(tmp_path, source, emulator_env.endpoint_url, retention_days=1)
    handle = Handle(settings)
    outbox = handle.outbox
    old, recent = add_rows(outbox, 2, source)
    old_held, recent_held = add_rows(outbox, 2, source, status=OutboxStatus.HELD)
    rows = outbox.claim("me", 10, 30)
    assert len(rows) == 2
    by_id = {r.interaction_id: r.id for r in rows}
    outbox.apply(
        "me",
        [
            Outcome(by_id[old], OutboxStatus.SENT, event_id="e1"),
            Outcome(by_id[recent], OutboxStatus.SENT, event_id="e2"),
        ],
    )
    two_days_ago = time.time() - 2 * 86400
    with handle.db.transaction() as conn:  # as if these were last touched two days ago
        conn.execute(
            sa.update(outbox_table)
            .where(outbox_table.c.interaction_id.in_([old, old_held]))
            .values(updated_at=two_days_ago, sent_at=two_days_ago)
        )
    handle.close()
    runtime = runtime_factory(settings)
    runtime.start()
    assert wait_for(lambda: runtime.outbox.get(old) is None)
    assert runtime.outbox.get(old_held) is None  # held rows hold transcripts too
    assert runtime.outbox.get(recent).status == OutboxStatus.SENT
    assert runtime.outbox.get(recent_held).status == OutboxStatus.HELD


def test_stop_drains_pending_events_before_returning(
    sink: EventSink,
    settings: Settings,
    source: str,
    runtime_factory: Any,
) -> None:
    runtime = runtime_factory(settings)
    runtime.start()
    writer = Handle(settings)  # another process writes; nobody wakes our relay
    ids = add_rows(writer.outbox, 30, source)
    runtime.stop()
    counts = writer.outbox.counts()
    writer.close()
    assert counts[OutboxStatus.SENT] == 30
    assert counts[OutboxStatus.PENDING] == counts[OutboxStatus.SENDING] == 0
    assert sorted(d["interaction_id"] for d in sink.receive_details(30)) == sorted(ids)
