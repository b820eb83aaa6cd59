"""The `batchscribe` command's own options: `--version`, and `local` without its extra."""

from __future__ import annotations

import importlib.util
import tomllib
from importlib.machinery import ModuleSpec
from pathlib import Path

import pytest

from batchscribe import cli

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_version_prints_the_version_of_the_project(capsys: pytest.CaptureFixture[str]) -> None:
    expected = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"batchscribe {expected}\n"


def test_local_without_the_emulator_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a user of `pip install batchscribe` (no `local` extra) sees: one line and exit 2."""
    real_find_spec = importlib.util.find_spec

    def without_moto(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "moto" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_moto)
    assert cli.main(["local"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'batchscribe[local]'" in err
