"""The shipped JSON Schemas are what the models generate (and the frozen 1.0 schema still
describes every event that uses no 1.1 feature), so consumers validate the real thing."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from batchscribe.events.entry import build_completed_entry, build_failed_entry
from batchscribe.events.schema import (
    GENERATED_SCHEMAS,
    SCHEMA_DIR,
    SCHEMA_FILE,
    BatchProcessingFailedEvent,
    detail_json_schema,
    main,
    render_schema,
)
from batchscribe.identity import RequestContext
from tests.support.events import DETAIL_FIELDS

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTEXT = RequestContext(
    "6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03", "alice", None, "0b5f8a59-5c1e-4a43-8f7a-0f3c4e0f1b2d"
)


@pytest.mark.parametrize("name", sorted(GENERATED_SCHEMAS))
def test_schema_files_match_the_models(name: str) -> None:
    shipped = REPO_ROOT / SCHEMA_DIR / name
    assert shipped.exists(), "run: python -m batchscribe.events.schema"
    assert shipped.read_text(encoding="utf-8") == render_schema(name), (
        f"docs/events/{name} is stale; run: python -m batchscribe.events.schema"
    )


def _validate(detail: str, schema_file: Path) -> None:
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(json.loads(detail))


def test_a_plain_completed_event_still_validates_against_the_frozen_1_0_schema() -> None:
    built = build_completed_entry(
        CONTEXT, "SPEAKER_0: hi", "SPEAKER_0: Hi.", source="s", bus_name="b"
    )
    _validate(built.entry["Detail"], REPO_ROOT / SCHEMA_FILE)
    _validate(
        built.entry["Detail"], REPO_ROOT / SCHEMA_DIR / "batch-processing-completed.v1.1.json"
    )
    with_metadata = build_completed_entry(
        CONTEXT, "SPEAKER_0: hi", "SPEAKER_0: Hi.", source="s", bus_name="b", metadata={"a": 1}
    )
    _validate(
        with_metadata.entry["Detail"],
        REPO_ROOT / SCHEMA_DIR / "batch-processing-completed.v1.1.json",
    )
    with pytest.raises(jsonschema.ValidationError):  # 1.0 consumers are told it is not theirs
        _validate(with_metadata.entry["Detail"], REPO_ROOT / SCHEMA_FILE)


def test_a_failed_event_validates_against_its_schema() -> None:
    built = build_failed_entry(CONTEXT, "invalid_audio", "Not audio.", source="s", bus_name="b")
    _validate(built.entry["Detail"], REPO_ROOT / SCHEMA_DIR / "batch-processing-failed.v1.json")


def test_every_published_field_is_required_for_consumers() -> None:
    schema = detail_json_schema()
    assert set(schema["required"]) == DETAIL_FIELDS - {"data"}
    assert {"required": ["data"]} in schema["oneOf"]
    assert set(schema["properties"]["version"]["enum"]) == {"1.0", "1.1"}
    assert schema["properties"]["timestamp"]["type"] == "string"
    failed = detail_json_schema(BatchProcessingFailedEvent)
    assert "error" in failed["required"]
    assert "data" not in failed["properties"]


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    target = tmp_path / "schemas"
    assert main(["--check", str(target)]) == 1
    assert main([str(target)]) == 0
    written = json.loads((target / "batch-processing-failed.v1.json").read_text(encoding="utf-8"))
    assert written["title"] == "BatchProcessingFailed"
    assert main(["--check", str(target)]) == 0


def test_default_path_is_the_repository_not_the_installed_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run outside a checkout, the generator says where to run it instead of writing into
    site-packages (or next to the source tree)."""
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert "repository root" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())
    (tmp_path / "docs" / "events").mkdir(parents=True)
    assert main([]) == 0
    for name in GENERATED_SCHEMAS:
        assert (tmp_path / SCHEMA_DIR / name).read_text(encoding="utf-8") == render_schema(name)
