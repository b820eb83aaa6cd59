"""The outbox and relay against the AWS emulator: events really arrive in an SQS queue."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchscribe.config import Settings
from batchscribe.events import cli
from batchscribe.events.exceptions import EventNotFoundError
from batchscribe.events.outbox import Outbox, OutboxStatus, Outcome
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.relay import OutboxRelay
from batchscribe.events.runtime import EventsRuntime
from batchscribe.events.schema import BatchProcessingCompletedEvent
from batchscribe.identity import RequestContext
from batchscribe.infra.emulator import LocalAWSEmulator, free_port
from testkit.aws import EventSink
from tests.support.events import FaultyClient, add_rows, metric, wait_for

REPO = Path(__file__).resolve().parents[2]


def make_settings(tmp_path: Path, source: str, endpoint: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "outbox_path": tmp_path / "var" / "outbox.db",
        "event_source": source,
        "aws_endpoint_url": endpoint,
        "relay_max_backoff_seconds": 0.2,
        "shutdown_grace_seconds": 5,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(emulator_env: LocalAWSEmulator, source: str, tmp_path: Path) -> Settings:
    """This test's outbox, publishing `source` to the emulator with its dummy credentials."""
    return make_settings(tmp_path, source, emulator_env.endpoint_url)


def prefill(settings: Settings, count: int) -> list[str]:
    """Write `count` pending events through another outbox handle, as another process would."""
    writer = Outbox(settings.outbox_path)
    try:
        return add_rows(writer, count, settings.event_source)
    finally:
        writer.close()


def context(tenant: str | None = None) -> RequestContext:
    return RequestContext(tenant or str(uuid.uuid4()), "user-1", None, str(uuid.uuid4()))


@pytest.fixture
def runtime_factory() -> Iterator[Any]:
    """Builds runtimes and stops every one at the end."""
    made: list[EventsRuntime] = []

    def make(settings: Settings, publisher: AWSEventPublisher | None = None) -> EventsRuntime:
        runtime = EventsRuntime(settings, publisher=publisher)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.stop()
        runtime.publisher.client.close()


def test_recorded_event_arrives_in_the_queue_and_validates(
    sink: EventSink,
    settings: Settings,
    runtime_factory: Any,
) -> None:
    runtime = runtime_factory(settings)
    runtime.start()
    ctx = context()
    assert runtime.record(ctx, "SPEAKER_0: um hello there", "SPEAKER_0: Hello there.") == {
        "status": "queued"
    }
    (detail,) = sink.receive_details(1)
    event = BatchProcessingCompletedEvent.model_validate(detail)
    assert event.interaction_id == ctx.interaction_id
    assert event.tenant_id == ctx.tenant_id
    assert event.data.raw_transcript == "SPEAKER_0: um hello there"
    assert event.data.cleaned_transcript == "SPEAKER_0: Hello there."
    assert wait_for(
        lambda: (
            runtime.event_status(ctx.interaction_id, ctx.tenant_id)["status"] == OutboxStatus.SENT
        )
    )
    status = runtime.event_status(ctx.interaction_id, ctx.tenant_id)
    assert status["event_id"]
    assert status["attempts"] == 1
    with pytest.raises(EventNotFoundError):  # another tenant sees nothing
        runtime.event_status(ctx.interaction_id, str(uuid.uuid4()))
    ready = runtime.readiness()
    assert ready["ok"]
    assert ready["publisher"] == "enabled"
    assert ready["relay_running"]


def test_pending_rows_go_out_in_batches_of_ten(
    sink: EventSink,
    settings: Settings,
    runtime_factory: Any,
) -> None:
    ids = prefill(settings, 25)
    runtime = runtime_factory(settings)
    calls: list[int] = []
    runtime.publisher.client.meta.events.register(
        "provide-client-params.events.PutEvents",
        lambda params, **_: calls.append(len(params["Entries"])),
    )
    runtime.start()
    details = sink.receive_details(25)
    assert sorted(d["interaction_id"] for d in details) == sorted(ids)
    assert calls == [10, 10, 5]


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
    writer = Outbox(settings.outbox_path)
    (bad,) = add_rows(writer, 1, source, detail="not json")  # the emulator: MalformedDetail
    (good,) = add_rows(writer, 1, source)
    (lost_bus,) = add_rows(writer, 1, source, bus="no-such-bus")  # ResourceNotFoundException
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
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(tmp_path, source, aws_emulator.endpoint_url)
    runtime = runtime_factory(settings)  # no credentials anywhere: publishing disabled
    runtime.start()
    with caplog.at_level(logging.WARNING):
        first = runtime.record(context(), "SPEAKER_0: secret words", "Secret words.")
        second = runtime.record(context(), "SPEAKER_0: more", "More.")
    assert first == second == {"status": "held", "reason": "publishing_disabled"}
    held_warnings = [r for r in caplog.records if "Event held" in r.getMessage()]
    assert len(held_warnings) == 2  # one WARNING per request while disabled
    assert runtime.readiness()["publisher"] == "disabled"
    runtime.stop()

    assert cli.cmd_replay(argparse.Namespace(include_failed=False, timeout=20), settings) == 2
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code = cli.cmd_replay(argparse.Namespace(include_failed=False, timeout=20), settings)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sent 2, failed 0, still pending 0" in out
    assert "secret words" not in out
    assert len(sink.receive_details(2)) == 2


def test_replay_include_failed_reports_what_still_fails(
    sink: EventSink,
    settings: Settings,
    source: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outbox = Outbox(settings.outbox_path)
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
    outbox.close()
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
) -> None:
    dead = make_settings(
        tmp_path, source, f"http://127.0.0.1:{free_port()}", shutdown_grace_seconds=0.3
    )
    first = runtime_factory(dead)
    first.start()
    contexts = [context() for _ in range(5)]
    for ctx in contexts:
        assert first.record(ctx, "SPEAKER_0: a", "A.")["status"] == "queued"
    assert wait_for(lambda: first.outbox.get(contexts[-1].interaction_id).attempts >= 1)
    first.stop()
    check = Outbox(dead.outbox_path)
    counts = check.counts()
    check.close()
    assert counts[OutboxStatus.PENDING] == 5
    assert counts[OutboxStatus.SENDING] == 0

    second = runtime_factory(make_settings(tmp_path, source, emulator_env.endpoint_url))
    second.start()
    details = sink.receive_details(5)
    assert sorted(d["interaction_id"] for d in details) == sorted(
        c.interaction_id for c in contexts
    )


def test_an_expired_lease_is_taken_over_and_a_live_one_is_respected(
    sink: EventSink,
    settings: Settings,
    source: str,
) -> None:
    outbox = Outbox(settings.outbox_path)
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
    outbox.close()


def test_two_processes_on_one_outbox_never_send_a_row_twice(
    sink: EventSink,
    settings: Settings,
    source: str,
) -> None:
    outbox = Outbox(settings.outbox_path)
    ids = add_rows(outbox, 60, source)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "OUTBOX_PATH": str(settings.outbox_path),
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.relay_worker", str(settings.outbox_path)],
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
    outbox.close()


def test_sent_events_are_purged_after_the_retention(
    emulator_env: LocalAWSEmulator,
    source: str,
    tmp_path: Path,
    runtime_factory: Any,
) -> None:
    settings = make_settings(tmp_path, source, emulator_env.endpoint_url, retention_days=1)
    outbox = Outbox(settings.outbox_path)
    old, recent = add_rows(outbox, 2, source)
    (old_pending,) = add_rows(outbox, 1, source, bus="no-such-bus", status=OutboxStatus.HELD)
    rows = outbox.claim("me", 10, 30)
    assert len(rows) == 2
    by_id = {r.interaction_id: r.id for r in rows}
    outbox.apply(
        "me", [Outcome(by_id[old], OutboxStatus.SENT, event_id="e1")], now=time.time() - 2 * 86400
    )
    outbox.apply("me", [Outcome(by_id[recent], OutboxStatus.SENT, event_id="e2")])
    outbox.close()
    runtime = runtime_factory(settings)
    runtime.start()
    assert wait_for(lambda: runtime.outbox.get(old) is None)
    assert runtime.outbox.get(recent) is not None
    assert runtime.outbox.get(old_pending).status == OutboxStatus.HELD  # only sent rows are purged


def test_stop_drains_pending_events_before_returning(
    sink: EventSink,
    settings: Settings,
    source: str,
    runtime_factory: Any,
) -> None:
    runtime = runtime_factory(settings)
    runtime.start()
    writer = Outbox(settings.outbox_path)  # another process writes; nobody wakes our relay
    ids = add_rows(writer, 30, source)
    runtime.stop()
    counts = writer.counts()
    writer.close()
    assert counts[OutboxStatus.SENT] == 30
    assert counts[OutboxStatus.PENDING] == counts[OutboxStatus.SENDING] == 0
    assert sorted(d["interaction_id"] for d in sink.receive_details(30)) == sorted(ids)
