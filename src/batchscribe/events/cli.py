"""`batchscribe outbox status|list|replay`: look into the outbox and resend held events.

Output shows ids, states, codes and transcript lengths, never transcript text.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from batchscribe.config import Settings, get_settings
from batchscribe.db.engine import describe_url
from batchscribe.db.exceptions import DatabaseError
from batchscribe.db.setup import open_for_tool
from batchscribe.events.exceptions import EventsError
from batchscribe.events.outbox import Outbox, OutboxStatus
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.relay import OutboxRelay


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `outbox` command and its subcommands to the main parser's subparsers."""
    outbox = subparsers.add_parser("outbox", help="inspect the event outbox and replay events")
    commands = outbox.add_subparsers(dest="outbox_command", required=True)

    status = commands.add_parser("status", help="events per status and the oldest pending age")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)

    listing = commands.add_parser("list", help="recent events (ids, states, lengths)")
    listing.add_argument(
        "--status", choices=[s.value for s in OutboxStatus], help="only events in this state"
    )
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)

    replay = commands.add_parser(
        "replay", help="send held events (publishing was disabled) now that AWS is configured"
    )
    replay.add_argument(
        "--include-failed", action="store_true", help="also resend events that failed terminally"
    )
    replay.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to keep retrying (default 60)"
    )
    replay.set_defaults(func=cmd_replay)


def _open(settings: Settings) -> Outbox | None:
    """The service's outbox, or None after printing why it cannot be opened (the command then
    exits 1). These tools never create a database: run elsewhere, they say where they looked."""
    try:
        return Outbox(open_for_tool(settings))
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def cmd_status(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Print counts per status, the oldest pending age and the publisher state."""
    settings = settings or get_settings()
    outbox = _open(settings)
    if outbox is None:
        return 1
    try:
        counts = outbox.counts()
        oldest = outbox.oldest_unsent_created_at()
    finally:
        outbox.db.dispose()
    publisher = AWSEventPublisher(settings=settings)
    report: dict[str, Any] = {
        "database": describe_url(settings.database),
        "counts": counts,
        "oldest_pending_age_seconds": round(time.time() - oldest, 1) if oldest else None,
        "publisher": publisher.describe(),
    }
    publisher.client.close()
    if getattr(args, "json", False):
        print(json.dumps(report))
        return 0
    print(f"database: {report['database']}")
    for status in OutboxStatus:
        print(f"  {status:<10} {counts[status]}")
    age = report["oldest_pending_age_seconds"]
    print(f"oldest pending: {f'{age} s' if age is not None else '-'}")
    info = report["publisher"]
    state = info["state"] + (f" ({info['reason']})" if info["reason"] else "")
    print(
        f"publisher: {state}; region {info['region']}, bus {info['bus_name']}, "
        f"source {info['source']}"
    )
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Print recent rows: interaction id, tenant, status, attempts, code, lengths."""
    settings = settings or get_settings()
    outbox = _open(settings)
    if outbox is None:
        return 1
    try:
        status = OutboxStatus(args.status) if args.status else None
        rows = outbox.list(status=status, limit=max(1, args.limit))
    except EventsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        outbox.db.dispose()
    if getattr(args, "json", False):
        for row in rows:
            print(json.dumps(row.summary()))
        return 0
    print(
        f"{'interaction_id':<36}  {'status':<9}  {'tries':>5}  {'code':<22}  "
        f"{'raw':>7}  {'clean':>7}  created"
    )
    for row in rows:
        print(
            f"{row.interaction_id:<36}  {row.status:<9}  {row.attempts:>5}  "
            f"{(row.error_code or '-'):<22}  {row.raw_len:>7}  {row.cleaned_len:>7}  "
            f"{_iso(row.created_at)}"
        )
    if not rows:
        print("(no events)")
    return 0


def cmd_replay(
    args: argparse.Namespace,
    settings: Settings | None = None,
    publisher: AWSEventPublisher | None = None,
) -> int:
    """Move held (and with --include-failed, failed) events to pending and send them now.

    Exit 0 when every replayed event was sent, 1 when some failed or are still pending,
    2 when publishing is still disabled (no credentials).
    """
    settings = settings or get_settings()
    publisher = publisher or AWSEventPublisher(settings=settings)
    if not publisher.enabled:
        print(
            f"error: publishing is disabled: {publisher.disabled_reason}. Configure AWS "
            "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role) and "
            "run replay again."
        )
        return 2
    outbox = _open(settings)
    if outbox is None:
        return 1
    try:
        statuses = [OutboxStatus.HELD]
        if args.include_failed:
            statuses.append(OutboxStatus.FAILED)
        ids = outbox.requeue(statuses)
        print(f"replaying {len(ids)} events to bus {publisher.bus_name} in {publisher.region}")
        relay = OutboxRelay(
            outbox,
            publisher,
            lease_seconds=settings.relay_lease_seconds,
            max_backoff_seconds=min(settings.relay_max_backoff_seconds, 5.0),
        )
        relay.drain_now(args.timeout)
        final = outbox.statuses_of(ids)
    except EventsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        outbox.db.dispose()
    sent = sum(1 for s in final.values() if s == OutboxStatus.SENT)
    failed = sum(1 for s in final.values() if s == OutboxStatus.FAILED)
    waiting = len(ids) - sent - failed
    print(f"sent {sent}, failed {failed}, still pending {waiting}")
    if failed:
        print("see `batchscribe outbox list --status failed` for the error codes")
    if waiting:
        print(
            "pending events are sent by the running service or the next replay "
            f"({OutboxStatus.PENDING})"
        )
    return 0 if sent == len(ids) else 1
