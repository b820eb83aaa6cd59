"""The `provision`, `verify` and `tail` subcommands, and the standalone script entry points.

`register(subparsers)` adds the three subcommands to the main `batchscribe` parser; each sets
`func(args) -> int`, the exit code. `provision_main` and `verify_main` serve
`scripts/setup_aws_infra.py` and `scripts/verify_event_flow.py`.

Progress and warnings go to stderr, results to stdout, so `--json` output stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError
from pydantic import SecretStr

from batchscribe.aws.clients import make_session
from batchscribe.aws.exceptions import (
    AWSAccessDeniedError,
    AWSCredentialsError,
    AWSError,
    QueueNotFoundError,
)
from batchscribe.config import Settings, exit_on_config_error, get_settings
from batchscribe.infra.bucket import bucket_name_problem
from batchscribe.infra.emulator import EMULATOR_CREDENTIALS
from batchscribe.infra.exceptions import InfraError
from batchscribe.infra.exit_codes import ExitCode, epilog
from batchscribe.infra.provision import AWSInfrastructureProvisioner, ProvisionResult
from batchscribe.infra.tail import QueueTail
from batchscribe.infra.target import AWSTarget
from batchscribe.infra.verify import EventFlowVerifier

#: What each command does, for its `--help` (the subcommand and the standalone script alike).
PROVISION_DESCRIPTION = (
    "Create, idempotently, the AWS resources batchscribe publishes to: the dead-letter queue, "
    "the SQS queue (redrive after 3 receives, encryption, a policy letting only the rule send), "
    "the EventBridge rule (BatchProcessingCompleted and BatchProcessingFailed) and its target; "
    "with --with-bucket, also the blob store's S3 bucket (default encryption, public access "
    "blocked). Existing resources are kept; settings that differ are reported as drift and "
    "corrected with --reconcile. Ends by reading every resource back and prints the queue URL, "
    "DLQ URL, rule ARN and least-privilege IAM policies. AWS calls are retried 3 times on "
    "throttling, 5xx answers and network errors."
)
VERIFY_DESCRIPTION = (
    "Publish one schema-valid test BatchProcessingCompleted event and wait for it in the SQS "
    "queue: polls every --poll-interval seconds up to --timeout, validates the envelope and "
    "detail, deletes only its own message and releases everybody else's at once."
)
TAIL_DESCRIPTION = (
    "Print the events arriving in the transcripts queue, one line each with transcript "
    "lengths (the texts only with --show-text) or, for a failed job, its error code. An event "
    "whose transcripts are in S3 (data_ref) is followed there (S3_ENDPOINT_URL, else "
    "--endpoint-url) and checked against its size and SHA-256. Messages are deleted only with "
    "--ack, invalid ones never; every receive counts toward the queue's maxReceiveCount of 3."
)

#: The tooling's own modules and the AWS boundary they call.
TOOL_LOGGERS = ("batchscribe.infra", "batchscribe.aws")


def _setup_cli_logging() -> None:
    """Human-readable progress on stderr for the AWS tooling loggers."""
    for name in TOOL_LOGGERS:
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            if getattr(handler, "_batchscribe_cli", False):
                log.removeHandler(handler)
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handler._batchscribe_cli = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _add_common(parser: argparse.ArgumentParser, *, event_flags: bool = True) -> None:
    parser.add_argument("--region", help="AWS region (default: AWS_REGION or us-east-1)")
    parser.add_argument(
        "--endpoint-url",
        help="AWS endpoint, e.g. http://127.0.0.1:4566 for the local emulator (default: "
        "AWS_ENDPOINT_URL); a loopback endpoint works without credentials",
    )
    if event_flags:
        parser.add_argument("--bus-name", help="EventBridge bus (default: EVENTBRIDGE_BUS_NAME)")
        parser.add_argument("--source", help="event source (default: EVENT_SOURCE)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _is_loopback(url: str | None) -> bool:
    host = urlparse(url).hostname if url else None
    return host in ("127.0.0.1", "localhost", "::1")


def _settings_and_target(args: argparse.Namespace) -> tuple[Settings, AWSTarget]:
    """Settings from the environment; flags override. A loopback endpoint with no credentials
    anywhere gets the emulator's dummy ones, so local mode needs no AWS setup."""
    settings = get_settings()
    target = AWSTarget.from_settings(
        settings,
        region=args.region,
        endpoint_url=args.endpoint_url,
        bus_name=getattr(args, "bus_name", None),
        source=getattr(args, "source", None),
    )
    try:
        no_credentials = (
            not settings.aws_access_key_id
            and make_session(settings, target.region).get_credentials() is None
        )
    except BotoCoreError:  # e.g. a bad AWS_PROFILE: the tool reports it as a credentials error
        no_credentials = False
    if _is_loopback(target.endpoint_url) and no_credentials:
        logging.getLogger("batchscribe.infra").info(
            "no AWS credentials configured; using the local emulator's dummy credentials"
        )
        settings = settings.model_copy(
            update={
                "aws_access_key_id": EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": SecretStr(EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
            }
        )
    return settings, target


def _fail(args: argparse.Namespace, code: int, status: str, message: str) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "status": status, "exit_code": code, "message": message}))
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


def render_provision(result: ProvisionResult) -> str:
    """The human summary: what happened to each resource, the URLs and ARN, the IAM policies."""
    lines = ["DRY RUN: nothing was created or changed" if result.dry_run else "AWS resources:"]
    for outcome in result.resources:
        lines.append(f"  {outcome.kind:<7} {outcome.name:<45} {outcome.action}")
        for drift in outcome.drift:
            lines.append(f"      {drift.setting}: {drift.actual!r} (expected {drift.expected!r})")
    lines += [
        "",
        f"queue URL  {result.queue_url or '(not created yet)'}",
        f"DLQ URL    {result.dlq_url or '(not created yet)'}",
        f"rule ARN   {result.rule_arn}",
    ]
    if result.bucket is not None:
        lines.append(f"bucket     s3://{result.bucket}  (service: BLOB_STORE={result.blob_store})")
    if result.problems:
        lines += ["", "verification found problems (run again with --reconcile to fix drift):"]
        lines += [f"  - {problem}" for problem in result.problems]
    elif not result.dry_run:
        lines += ["", "verified: every resource and setting matches the contract"]
    lines += ["", "least-privilege IAM policies (also in docs/iam/):"]
    for name, policy in result.iam_policies.items():
        lines += [f"--- {name}", json.dumps(policy, indent=2)]
    return "\n".join(lines)


def provision_command(args: argparse.Namespace) -> int:
    """`batchscribe provision`: create or check the queues, rule and target."""
    _setup_cli_logging()
    try:
        settings, target = _settings_and_target(args)
        provisioner = AWSInfrastructureProvisioner(
            settings,
            target=target,
            bucket=args.with_bucket,
            reconcile=args.reconcile,
            dry_run=args.dry_run,
        )
        result = provisioner.provision_all()
    except (AWSCredentialsError, AWSAccessDeniedError) as exc:
        return _fail(args, ExitCode.CREDENTIALS, "credentials", str(exc))
    except (AWSError, InfraError) as exc:
        return _fail(args, ExitCode.FAILED, "error", str(exc))
    print(json.dumps(result.to_dict(), indent=2) if args.json else render_provision(result))
    return ExitCode.OK if result.ok else ExitCode.DRIFT


def verify_command(args: argparse.Namespace) -> int:
    """`batchscribe verify`: one test event end to end; exit codes as in the epilog."""
    _setup_cli_logging()
    settings, target = _settings_and_target(args)
    verifier = EventFlowVerifier(
        settings, target=target, timeout=args.timeout, poll_interval=args.poll_interval
    )
    result = verifier.run()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        stream = sys.stdout if result.exit_code == 0 else sys.stderr
        label = "ok" if result.exit_code == 0 else f"FAILED ({result.status})"
        print(f"{label}: {result.message}", file=stream)
        print(
            f"interaction_id={result.interaction_id} elapsed={result.elapsed_seconds:.1f}s "
            f"polls={result.polls}",
            file=stream,
        )
    return result.exit_code


def tail_command(args: argparse.Namespace) -> int:
    """`batchscribe tail`: print events from the queue; delete them only with --ack."""
    _setup_cli_logging()
    try:
        settings, target = _settings_and_target(args)
        tail = QueueTail(
            settings,
            target=target,
            ack=args.ack,
            show_text=args.show_text,
            max_messages=args.max_messages,
            once=args.once,
            wait_seconds=args.wait_seconds,
        )
        if not args.ack:
            logging.getLogger("batchscribe.infra").info(
                "watching %s without --ack: messages stay in the queue (each receive counts "
                "toward its maxReceiveCount of 3)",
                target.queue_name,
            )
        stats = tail.run()
    except QueueNotFoundError:
        return _fail(args, ExitCode.QUEUE_NOT_FOUND, "queue_not_found", "queue not found; run "
                     "batchscribe provision (or make run) first")  # fmt: skip
    except (AWSCredentialsError, AWSAccessDeniedError) as exc:
        return _fail(args, ExitCode.CREDENTIALS, "credentials", str(exc))
    except AWSError as exc:
        return _fail(args, ExitCode.FAILED, "error", str(exc))
    summary: dict[str, Any] = {"valid": stats.valid, "invalid": stats.invalid, "acked": stats.acked}
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"{stats.valid} events, {stats.invalid} invalid, {stats.acked} acked", file=sys.stderr
        )
    return ExitCode.OK


def _bucket_name(value: str) -> str:
    problem = bucket_name_problem(value)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def add_provision_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument(
        "--with-bucket",
        metavar="NAME",
        type=_bucket_name,
        help="also create the S3 bucket for BLOB_STORE=s3://NAME[/PREFIX], in --region, with "
        "default encryption (SSE-S3) and public access blocked",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan; create nothing")
    parser.add_argument("--reconcile", action="store_true", help="correct drifted settings")
    parser.set_defaults(func=provision_command)


def add_verify_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser)
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the event (default 30)"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=2.0, help="seconds between polls (default 2)"
    )
    parser.set_defaults(func=verify_command)


def add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser, event_flags=False)
    parser.add_argument("--source", help="expected event source (default: EVENT_SOURCE)")
    parser.add_argument("--ack", action="store_true", help="delete each event after printing it")
    parser.add_argument("--show-text", action="store_true", help="print the transcripts too")
    parser.add_argument("--max-messages", type=int, help="stop after this many events")
    parser.add_argument("--once", action="store_true", help="stop when the queue is empty")
    parser.add_argument(
        "--wait-seconds", type=int, default=20, choices=range(21), metavar="0-20",
        help="long-poll wait per receive (default 20)",
    )  # fmt: skip
    parser.set_defaults(func=tail_command)


def register(subparsers: Any) -> None:
    """Add `provision`, `verify` and `tail` to the `batchscribe` command."""
    for name, help_text, description, add in (
        ("provision", "create or check the SQS queues, the EventBridge rule and, with "
         "--with-bucket, the S3 bucket (setup_aws_infra.py)",
         PROVISION_DESCRIPTION, add_provision_arguments),
        ("verify", "send a test event and wait for it in the queue (verify_event_flow.py)",
         VERIFY_DESCRIPTION, add_verify_arguments),
        ("tail", "print events from the transcripts queue", TAIL_DESCRIPTION,
         add_tail_arguments),
    ):  # fmt: skip
        add(
            subparsers.add_parser(
                name,
                help=help_text,
                description=textwrap.fill(description, 78, break_on_hyphens=False),
                epilog=epilog(name),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )


@exit_on_config_error
def _standalone(
    prog: str, description: str, command: str, add: Any, argv: Sequence[str] | None
) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=textwrap.fill(description, 78, break_on_hyphens=False),
        epilog=epilog(command),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


def provision_main(argv: Sequence[str] | None = None) -> int:
    """`scripts/setup_aws_infra.py`."""
    return _standalone(
        "setup_aws_infra.py", PROVISION_DESCRIPTION, "provision", add_provision_arguments, argv
    )


def verify_main(argv: Sequence[str] | None = None) -> int:
    """`scripts/verify_event_flow.py`."""
    return _standalone(
        "verify_event_flow.py", VERIFY_DESCRIPTION, "verify", add_verify_arguments, argv
    )
