"""The shipped JSON Schema is what the model generates, so consumers validate the real thing."""

from __future__ import annotations

import json

from batchscribe.models.batch_event import SCHEMA_FILE, detail_json_schema, main, render_schema


def test_schema_file_matches_the_model() -> None:
    assert SCHEMA_FILE.exists(), "run: python -m batchscribe.models.batch_event"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render_schema(), (
        "docs/events/batch-processing-completed.v1.json is stale; "
        "run: python -m batchscribe.models.batch_event"
    )


def test_every_published_field_is_required_for_consumers() -> None:
    schema = detail_json_schema()
    assert set(schema["required"]) == {
        "version",
        "interaction_id",
        "tenant_id",
        "user_id",
        "account_id",
        "timestamp",
        "status",
        "data",
    }
    assert schema["properties"]["version"]["const"] == "1.0"
    assert schema["properties"]["timestamp"]["type"] == "string"


def test_check_mode_reports_a_stale_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "schema.json"
    assert main(["--check", str(target)]) == 1
    assert main([str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8"))["title"] == "BatchProcessingCompleted"
    assert main(["--check", str(target)]) == 0
