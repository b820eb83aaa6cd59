"""Properties 1, 4 and 5 of the plan: schema completeness, configuration defaults, log audit."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.stub import Stubber
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.events.exceptions import PublishError
from batchscribe.events.outbox import Outbox
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.relay import OutboxRelay
from batchscribe.events.schema import (
    BatchProcessingCompletedEvent,
    EventData,
    detail_json_schema,
)
from batchscribe.identity import RequestContext
from batchscribe.jobs.results import JobResult
from batchscribe.logging_setup import JsonFormatter
from batchscribe.pipeline.types import CleaningResult, Segment, Transcript
from tests.strategies import Transcripts, contexts, entry_error_codes, transcripts
from tests.support.events import DETAIL_FIELDS
from tests.support.jobs import job_store, new_job

VALIDATOR = jsonschema.Draft202012Validator(
    detail_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
SECRET_KEY = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY"


# -- Property 1: event schema completeness ---------------------------------------------------


@given(context=contexts(), texts=transcripts())
def test_any_valid_input_yields_a_complete_schema_valid_detail(
    context: RequestContext, texts: Transcripts
) -> None:
    event = BatchProcessingCompletedEvent(
        interaction_id=context.interaction_id,
        tenant_id=context.tenant_id,
        user_id=context.user_id,
        account_id=context.account_id,
        data=EventData(raw_transcript=texts.raw, cleaned_transcript=texts.cleaned),
    )
    detail = json.loads(event.detail_json())
    VALIDATOR.validate(detail)
    assert set(detail) == DETAIL_FIELDS
    assert detail["interaction_id"] == context.interaction_id
    assert detail["data"] == {"raw_transcript": texts.raw, "cleaned_transcript": texts.cleaned}
    assert detail["timestamp"].endswith("Z")
    # Consumers parse it back with the same model.
    assert BatchProcessingCompletedEvent.model_validate_json(event.detail_json()) == event


@given(bad=st.text(max_size=40).filter(lambda s: _not_uuid4(s)))
def test_a_tenant_that_is_not_uuid4_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="tenant_id"):
        BatchProcessingCompletedEvent(
            interaction_id=str(uuid.uuid4()),
            tenant_id=bad,
            user_id="u",
            data=EventData(raw_transcript="", cleaned_transcript=""),
        )


def _not_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version != 4 or str(uuid.UUID(value)) != value.lower()
    except ValueError:
        return True


# -- Property 4: configuration defaults ------------------------------------------------------

OPTIONAL_VARS = {
    "AWS_REGION": ("aws_region", "us-east-1", st.sampled_from(["eu-west-1", "ap-south-1"])),
    "EVENTBRIDGE_BUS_NAME": ("eventbridge_bus_name", "default", st.sampled_from(["orders", "b-2"])),
    "EVENT_SOURCE": (
        "event_source",
        "com.yourapp.transcription",
        st.sampled_from(["com.acme.audio", "x.y"]),
    ),
    "EVENT_MAX_BYTES": ("event_max_bytes", 262144, st.integers(1, 1048576)),
}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chosen=st.fixed_dictionaries({}, optional={k: v[2] for k, v in OPTIONAL_VARS.items()}))
def test_missing_variables_fall_back_to_documented_defaults(
    chosen: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as env:
        for name in OPTIONAL_VARS:
            env.delenv(name, raising=False)
        for name, value in chosen.items():
            env.setenv(name, str(value))
        publisher = AWSEventPublisher(settings=Settings())
    try:
        for name, (attr, default, _) in OPTIONAL_VARS.items():
            expected = chosen.get(name, default)
            assert getattr(publisher.settings, attr) == expected
        assert publisher.region == chosen.get("AWS_REGION", "us-east-1")
        assert publisher.client.meta.region_name == publisher.region
        assert publisher.bus_name == chosen.get("EVENTBRIDGE_BUS_NAME", "default")
        assert publisher.source == chosen.get("EVENT_SOURCE", "com.yourapp.transcription")
        assert publisher.max_bytes == chosen.get("EVENT_MAX_BYTES", 262144)
        # Retries belong to the relay: one attempt per call, short timeouts.
        config = publisher.client.meta.config
        assert config.retries["total_max_attempts"] == 1
        assert config.connect_timeout <= 5
        assert config.read_timeout <= 10
    finally:
        publisher.client.close()


def test_endpoint_url_is_used_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    publisher = AWSEventPublisher(settings=Settings())
    try:
        assert publisher.client.meta.endpoint_url == "http://127.0.0.1:4566"
    finally:
        publisher.client.close()


# -- Property 5: logging of publishes ---------------------------------------------------------


@contextmanager
def captured_json_logs() -> Iterator[io.StringIO]:
    """Every record of the process, formatted by our JSON formatter, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _publisher_with_secret() -> tuple[AWSEventPublisher, Any]:
    settings = Settings(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key=SECRET_KEY)
    client = boto3.client(
        "events",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key=SECRET_KEY,
    )
    return AWSEventPublisher(client=client, settings=settings), client


def _assert_clean(output: str, texts: Transcripts) -> None:
    for marker in texts.markers:
        assert marker not in output
    assert SECRET_KEY not in output


@settings(max_examples=40, deadline=None)
@given(context=contexts(), texts=transcripts(), code=st.none() | entry_error_codes())
def test_publish_logs_ids_and_lengths_never_text_or_secrets(
    context: RequestContext, texts: Transcripts, code: str | None
) -> None:
    publisher, client = _publisher_with_secret()
    answer = (
        {"FailedEntryCount": 0, "Entries": [{"EventId": "evt-9"}]}
        if code is None
        else {"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "m"}]}
    )
    with Stubber(client) as stubber, captured_json_logs() as logs:
        stubber.add_response("put_events", answer)
        publisher.log_startup()
        try:
            publisher.publish_batch_completed_event(
                context.interaction_id,
                context.tenant_id,
                context.user_id,
                context.account_id,
                texts.raw,
                texts.cleaned,
            )
        except PublishError:
            assert code is not None
        stubber.assert_no_pending_responses()
    client.close()
    output = logs.getvalue()
    _assert_clean(output, texts)
    records = [json.loads(line) for line in output.splitlines()]
    publish_records = [r for r in records if r.get("interaction_id") == context.interaction_id]
    assert publish_records, "the publish must be logged with its interaction id"
    record = publish_records[-1]
    assert record["raw_len"] == len(texts.raw)
    assert record["cleaned_len"] == len(texts.cleaned)
    if code is None:
        assert record["level"] == "INFO"
        assert record["event_id"] == "evt-9"
        assert record["source"] == "com.yourapp.transcription"
        assert record["detail_type"] == "BatchProcessingCompleted"
        assert record["timestamp"].endswith("Z")
    else:
        assert record["level"] == "ERROR"
        assert record["error_code"] == code
        assert record["exc_type"]
        assert "Traceback" in record["stack"]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(context=contexts(), texts=transcripts(), code=st.none() | entry_error_codes())
def test_outbox_path_logs_never_contain_text_or_secrets(
    context: RequestContext, texts: Transcripts, code: str | None, tmp_path: Path
) -> None:
    publisher, client = _publisher_with_secret()
    db = Database(f"sqlite:///{tmp_path / uuid.uuid4().hex}.db")
    store = job_store(db)
    answer = (
        {"FailedEntryCount": 0, "Entries": [{"EventId": "evt-9"}]}
        if code is None
        else {"FailedEntryCount": 1, "Entries": [{"ErrorCode": code, "ErrorMessage": "m"}]}
    )
    with Stubber(client) as stubber, captured_json_logs() as logs:
        stubber.add_response("put_events", answer)
        job = store.create(new_job(tenant=context.tenant_id))[0]
        store.claim("w", 30)
        transcript = Transcript.from_engine([Segment(0, texts.raw)], 1.0, "sphinx")
        store.complete(job.id, "w", JobResult(transcript, CleaningResult(texts.cleaned, "rules")))
        outbox = Outbox(db)
        relay = OutboxRelay(outbox, publisher)
        relay.send_batch(outbox.claim(relay.owner, 10, 30))
        stubber.assert_no_pending_responses()
    db.dispose()
    client.close()
    output = logs.getvalue()
    _assert_clean(output, texts)
    mine = [json.loads(x) for x in output.splitlines() if job.id in x]
    assert len(mine) >= 1  # published / retried / refused
    if code is None:
        (published,) = [r for r in mine if r.get("event_id") == "evt-9"]
        assert published["level"] == "INFO"
        assert published["source"] == "com.yourapp.transcription"
        assert published["detail_type"] == "BatchProcessingCompleted"
        assert published["timestamp"].endswith("Z")
