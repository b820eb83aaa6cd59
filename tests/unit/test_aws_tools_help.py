"""What `--help` tells an operator about the AWS tools: what each does and every exit code."""

from __future__ import annotations

import re

import pytest

from batchscribe.cli import main
from batchscribe.infra.cli import provision_main, verify_main
from batchscribe.infra.exit_codes import COMMAND_CODES, ExitCode

EXPECTED_CODES = {
    "provision": {0, 1, 2, 5},
    "verify": {0, 1, 2, 3, 4},
    "tail": {0, 1, 2, 3},
}


def _help(argv: list[str], capsys: pytest.CaptureFixture[str], entry: object = main) -> str:
    with pytest.raises(SystemExit) as done:
        entry(argv)  # type: ignore[operator]
    assert done.value.code == 0
    return capsys.readouterr().out


def _listed_codes(text: str) -> dict[int, str]:
    """The "exit codes:" paragraph as {code: meaning}."""
    section = text.split("exit codes:", 1)[1]
    listed: dict[int, str] = {}
    for match in re.finditer(r"^  (\d)  (.+(?:\n     .+)*)", section, re.MULTILINE):
        listed[int(match.group(1))] = " ".join(match.group(2).split())
    return listed


def test_provision_help_says_what_provision_does(capsys: pytest.CaptureFixture[str]) -> None:
    """It used to show the first line of the CLI module's docstring instead."""
    out = _help(["provision", "--help"], capsys)
    description = " ".join(out.split("options:", 1)[0].split())
    assert "subcommands" not in description
    assert "entry points" not in description
    for promise in ("dead-letter queue", "EventBridge rule", "--reconcile", "drift", "IAM"):
        assert promise in description


@pytest.mark.parametrize("command", sorted(EXPECTED_CODES))
def test_every_command_lists_all_its_exit_codes(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = _listed_codes(_help([command, "--help"], capsys))
    assert set(listed) == EXPECTED_CODES[command]
    assert all(meaning for meaning in listed.values())


def test_one_number_never_means_two_things() -> None:
    """3 is "queue not found" wherever it appears; drift has a number of its own."""
    assert len(ExitCode.__members__) == len(ExitCode)  # no name is an alias of another's number
    assert "drift" in COMMAND_CODES["provision"][ExitCode.DRIFT]
    for command in ("verify", "tail"):
        assert "queue not found" in COMMAND_CODES[command][ExitCode.QUEUE_NOT_FOUND]


@pytest.mark.parametrize(
    ("entry", "command"), [(provision_main, "provision"), (verify_main, "verify")]
)
def test_the_scripts_show_the_same_description_and_codes(
    entry: object, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _help(["--help"], capsys, entry)
    subcommand = _help([command, "--help"], capsys)
    assert _listed_codes(script) == _listed_codes(subcommand)
    assert (
        script.split("options:")[0].split("\n\n", 1)[1]
        == (subcommand.split("options:")[0].split("\n\n", 1)[1])
    )
