"""The OpenAPI document (what /docs shows and what the fuzz test generates requests from)
describes the typed answers: statuses as enums, the /events and /readyz bodies."""

from __future__ import annotations

from typing import Any

import pytest

from batchscribe.config import Settings
from batchscribe.events.outbox import OutboxStatus
from batchscribe.events.runtime import DeliveryStatus
from batchscribe.http.app import create_app
from batchscribe.pipeline.formats import ACCEPTED_SENTENCE


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


def _schema(document: dict[str, Any], ref_holder: dict[str, Any]) -> dict[str, Any]:
    name = ref_holder["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def _response(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    content = document["paths"][path][method]["responses"][status]["content"]
    return _schema(document, content["application/json"]["schema"])


def test_event_status_response_documents_the_outbox_states(document: dict[str, Any]) -> None:
    body = _response(document, "/events/{interaction_id}", "get", "200")
    status = _schema(document, body["properties"]["status"])
    assert status["enum"] == [s.value for s in OutboxStatus]
    assert {"interaction_id", "attempts", "event_id", "error_code", "sent_at"} <= set(
        body["properties"]
    )
    responses = document["paths"]["/events/{interaction_id}"]["get"]["responses"]
    assert {"404", "503"} <= set(responses)


def test_readiness_response_is_documented_for_200_and_503(document: dict[str, Any]) -> None:
    for status_code in ("200", "503"):
        body = _response(document, "/readyz", "get", status_code)
        assert body["title"] == "ReadinessResponse"
    status = _schema(document, body["properties"]["status"])
    assert status["enum"] == ["ready", "not_ready"]
    events = _schema(document, body["properties"]["events"])
    assert {"publisher", "relay_running", "pending", "held", "failed"} <= set(events["properties"])
    failing = body["properties"]["failing"]["items"]
    assert _schema(document, failing)["enum"] == ["database", "blob_store", "engine"]


def test_the_jobs_api_is_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert {"post", "get"} <= set(paths["/batch/jobs"])
    assert {"get", "delete"} <= set(paths["/batch/jobs/{job_id}"])
    accepted = _response(document, "/batch/jobs", "post", "202")
    assert {"job_id", "status", "status_url"} <= set(accepted["properties"])
    job = _response(document, "/batch/jobs/{job_id}", "get", "200")
    status = _schema(document, job["properties"]["status"])
    assert status["enum"] == ["queued", "running", "completed", "failed", "cancelled"]
    assert {"progress", "error", "result", "metadata"} <= set(job["properties"])
    assert "409" in paths["/batch/jobs/{job_id}"]["delete"]["responses"]


def test_batch_response_documents_the_delivery_states(document: dict[str, Any]) -> None:
    body = _response(document, "/batch/process", "post", "200")
    event = _schema(document, body["properties"]["event"])
    assert _schema(document, event["properties"]["status"])["enum"] == [
        s.value for s in DeliveryStatus
    ]
    upload = document["paths"]["/batch/process"]["post"]["requestBody"]["content"]
    file_field = upload["multipart/form-data"]["schema"]["properties"]["file"]
    assert file_field["description"] == f"{ACCEPTED_SENTENCE} audio."
