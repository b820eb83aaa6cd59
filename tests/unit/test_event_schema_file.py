"""The shipped JSON Schema is what the model generates, so consumers validate the real thing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batchscribe.events.schema import SCHEMA_FILE, detail_json_schema, main, render_schema
from tests.support.events import DETAIL_FIELDS

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_matches_the_model() -> None:
    shipped = REPO_ROOT / SCHEMA_FILE
    assert shipped.exists(), "run: python -m batchscribe.events.schema"
    assert shipped.read_text(encoding="utf-8") == render_schema(), (
        "docs/events/batch-processing-completed.v1.json is stale; "
        "run: python -m batchscribe.events.schema"
    )


def test_every_published_field_is_required_for_consumers() -> None:
    schema = detail_json_schema()
    assert set(schema["required"]) == DETAIL_FIELDS
    assert schema["properties"]["version"]["const"] == "1.0"
    assert schema["properties"]["timestamp"]["type"] == "string"


def test_check_mode_reports_a_stale_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "schema.json"
    assert main(["--check", str(target)]) == 1
    assert main([str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8"))["title"] == "BatchProcessingCompleted"
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
    assert (tmp_path / SCHEMA_FILE).read_text(encoding="utf-8") == render_schema()
