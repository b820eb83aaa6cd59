"""The exit codes of the AWS tools: one meaning per number, whichever command returns it.

`verify` keeps the codes of SPEC section 6 (0 ok, 1 not received, 2 credentials, 3 queue not
found, 4 structure invalid); `tail` shares 3 for a missing queue; `provision`'s drift has its
own number. `epilog(command)` is the "exit codes" paragraph of each command's `--help`.
"""

from __future__ import annotations

import textwrap
from enum import IntEnum


class ExitCode(IntEnum):
    """What a tool's exit status means."""

    OK = 0
    FAILED = 1  # did not complete: not received in time, or AWS refused or was unreachable
    CREDENTIALS = 2
    QUEUE_NOT_FOUND = 3
    INVALID_EVENT = 4
    DRIFT = 5


#: Per command, the codes it can return and what each means there, in `--help` wording.
COMMAND_CODES: dict[str, dict[ExitCode, str]] = {
    "provision": {
        ExitCode.OK: "every resource present and correct (or the --dry-run plan printed)",
        ExitCode.FAILED: "AWS refused a step, or stayed unreachable or throttling after 3 retries",
        ExitCode.CREDENTIALS: "missing or invalid credentials, or a missing IAM permission "
        "(the message lists the actions needed)",
        ExitCode.DRIFT: "drift left in place: settings differ from the contract (run again "
        "with --reconcile)",
    },
    "verify": {
        ExitCode.OK: "the test event arrived with a valid structure",
        ExitCode.FAILED: "not received in time (or AWS stayed unreachable after 3 retries)",
        ExitCode.CREDENTIALS: "missing or invalid credentials, or a missing IAM permission",
        ExitCode.QUEUE_NOT_FOUND: "queue not found (run batchscribe provision first)",
        ExitCode.INVALID_EVENT: "the test event arrived with an invalid structure",
    },
    "tail": {
        ExitCode.OK: "stopped normally (invalid messages are reported, not fatal)",
        ExitCode.FAILED: "AWS refused a call, or stayed unreachable after 3 retries",
        ExitCode.CREDENTIALS: "missing or invalid credentials, or a missing IAM permission",
        ExitCode.QUEUE_NOT_FOUND: "queue not found (run batchscribe provision first)",
    },
}


def epilog(command: str) -> str:
    """The `--help` paragraph listing every exit code of `command`."""
    lines = [
        textwrap.fill(
            meaning,
            78,
            initial_indent=f"  {int(code)}  ",
            subsequent_indent="     ",
            break_on_hyphens=False,
        )
        for code, meaning in COMMAND_CODES[command].items()
    ]
    return "exit codes:\n" + "\n".join(lines)
