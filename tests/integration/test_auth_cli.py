"""`batchscribe keys create|list|revoke` against the default SQLite database of the working
directory, as an operator would run them beside the service."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from batchscribe import cli
from batchscribe.auth.keys import looks_like_key


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_the_key_once_and_list_never_shows_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tenant = str(uuid.uuid4())
    code, out, err = run(capsys, "keys", "create", "--tenant", tenant, "--name", "crm-sync")
    assert code == 0
    key = out.strip()
    assert looks_like_key(key), "stdout is the key alone, ready for KEY=$(...)"
    assert key[:12] in err
    assert "only time" in err
    assert (tmp_path / "var" / "batchscribe.db").is_file()  # made and migrated on first use

    code, out, _ = run(capsys, "keys", "list")
    assert code == 0
    assert key[:12] in out
    assert tenant in out
    assert "crm-sync" in out
    assert key not in out

    code, out, _ = run(capsys, "keys", "list", "--json")
    (listed,) = [json.loads(line) for line in out.splitlines()]
    assert listed["prefix"] == key[:12]
    assert listed["revoked_at"] is None

    code, out, _ = run(capsys, "keys", "revoke", key[:12])
    assert code == 0
    assert "revoked" in out
    code, out, _ = run(capsys, "keys", "revoke", key[4:12])
    assert code == 0
    assert "already revoked" in out
    code, out, _ = run(capsys, "keys", "list", "--json")
    assert json.loads(out)["revoked_at"] is not None


def test_mistakes_exit_1_and_say_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "keys", "list")
    assert code == 1
    assert "no database at" in err
    code, out, err = run(capsys, "keys", "create", "--tenant", "acme")
    assert (code, out) == (1, "")
    assert "UUID v4" in err
    code, _, err = run(capsys, "keys", "revoke", "bsk_nothere")
    assert code == 1
    assert "batchscribe keys list" in err
