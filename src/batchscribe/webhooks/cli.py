"""`batchscribe webhooks list|show|replay|rotate-secret|secrets|new-secret|reencrypt`.

Deliveries are shown with their state, attempts and last answer, never their bodies (they hold
transcripts) nor signatures. `rotate-secret` prints the new secret once, alone on stdout (so
`SECRET=$(batchscribe webhooks rotate-secret --tenant ...)` works), and what to do with it on
stderr. Run these with the same configuration (DATABASE_URL, WEBHOOK_ENCRYPTION_KEY) as the
service.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from batchscribe.config import Settings, get_settings
from batchscribe.console import print_json_lines, print_table
from batchscribe.db.engine import Database
from batchscribe.db.exceptions import DatabaseError
from batchscribe.db.setup import open_for_tool
from batchscribe.webhooks.deliveries import FINISHED, Delivery, DeliveryStatus, DeliveryStore
from batchscribe.webhooks.exceptions import WebhookError
from batchscribe.webhooks.signing import ROTATION_OVERLAP, generate_secret
from batchscribe.webhooks.tenant_secrets import SecretBox, TenantSecrets


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `webhooks` command and its subcommands to the main parser's subparsers."""
    webhooks = subparsers.add_parser(
        "webhooks",
        help="job callbacks: deliveries, replays and the tenants' signing secrets",
        description="Job callbacks live in the application database (DATABASE_URL); run these "
        "commands with the same configuration as the service.",
    )
    commands = webhooks.add_subparsers(dest="webhooks_command", required=True)

    listing = commands.add_parser("list", help="recent deliveries: state, attempts, last answer")
    listing.add_argument(
        "--status", choices=[s.value for s in DeliveryStatus], help="only deliveries in this state"
    )
    listing.add_argument("--job", help="only the delivery of this job")
    listing.add_argument("--tenant", help="only this tenant's deliveries")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)

    show = commands.add_parser("show", help="one delivery and every attempt")
    show.add_argument("id", help="delivery id, webhook id (msg_...) or job id")
    show.add_argument("--json", action="store_true", help="a JSON object")
    show.set_defaults(func=cmd_show)

    replay = commands.add_parser(
        "replay",
        help="send finished deliveries again (same webhook id, a new 24-hour window)",
        description="Puts delivered, failed or gone deliveries back in the queue; the running "
        "service sends them within a second. A delivery whose body was removed after "
        "RETENTION_DAYS cannot be replayed.",
    )
    replay.add_argument("ids", nargs="*", help="delivery ids, webhook ids (msg_...) or job ids")
    replay.add_argument("--failed", action="store_true", help="every failed delivery")
    replay.add_argument("--gone", action="store_true", help="every delivery that got 410 Gone")
    replay.set_defaults(func=cmd_replay)

    rotate = commands.add_parser(
        "rotate-secret",
        help="give a tenant a new signing secret and print it (shown only this once)",
        description="The tenant's previous secret keeps signing beside the new one for "
        f"{ROTATION_OVERLAP.total_seconds() / 3600:g} hours, so receivers can switch at their "
        "pace. The first run creates the tenant's secret.",
    )
    rotate.add_argument("--tenant", required=True, help="the tenant's id (a UUID v4)")
    rotate.add_argument("--json", action="store_true", help="print a JSON object instead")
    rotate.set_defaults(func=cmd_rotate)

    secrets = commands.add_parser(
        "secrets", help="tenants with their own signing secret (never the secrets)"
    )
    secrets.add_argument("--json", action="store_true", help="one JSON object per line")
    secrets.set_defaults(func=cmd_secrets)

    new_secret = commands.add_parser(
        "new-secret", help="print a new random whsec_ secret (for WEBHOOK_SECRET); stores nothing"
    )
    new_secret.set_defaults(func=cmd_new_secret)

    reencrypt = commands.add_parser(
        "reencrypt",
        help="rewrite every stored signing secret under the first WEBHOOK_ENCRYPTION_KEY",
        description="Run after setting WEBHOOK_ENCRYPTION_KEY (secrets stored before are in the "
        "clear) or after putting a new key first in it (then drop the old one).",
    )
    reencrypt.set_defaults(func=cmd_reencrypt)


def _open(settings: Settings, *, create: bool = False) -> Database | None:
    """The service's database, or None after printing why not (see `open_for_tool`)."""
    try:
        return open_for_tool(settings, create=create)
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _view(delivery: Delivery) -> dict[str, Any]:
    pending = delivery.status is DeliveryStatus.PENDING
    return {
        "id": delivery.id,
        "webhook_id": delivery.message_id,
        "job_id": delivery.job_id,
        "tenant_id": delivery.tenant_id,
        "type": delivery.event_type,
        "status": str(delivery.status),
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": _iso(delivery.created_at),
        "last_attempt_at": _iso(delivery.last_attempt_at),
        "next_attempt_at": _iso(delivery.next_attempt_at) if pending else None,
        "delivered_at": _iso(delivery.delivered_at),
        "body_bytes": delivery.payload_bytes,
        "body_kept": delivery.payload is not None,
        "url_host": _host(delivery.url),
    }


def _host(url: str) -> str:
    # The path and query may carry the tenant's tokens: listings show the host only.
    return url.split("://", 1)[-1].split("/", 1)[0]


def cmd_list(args: argparse.Namespace, settings: Settings | None = None) -> int:
    db = _open(settings or get_settings())
    if db is None:
        return 1
    try:
        found = DeliveryStore(db).recent(
            status=DeliveryStatus(args.status) if args.status else None,
            job_id=args.job,
            tenant_id=args.tenant,
            limit=max(1, min(args.limit, 1000)),
        )
    except WebhookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    if args.json:
        print_json_lines([_view(delivery) for delivery in found])
        return 0
    if not found:
        print("no webhook deliveries")
        return 0
    columns = ("id", "webhook_id", "job_id", "status", "attempts", "last_status_code")
    views = [_view(delivery) for delivery in found]
    rows = [[str(view[c] if view[c] is not None else "-") for c in columns] for view in views]
    for row, delivery in zip(rows, found, strict=True):
        row.append(_iso(delivery.next_attempt_at if delivery.status == "pending" else None) or "-")
        row.append(_host(delivery.url))
    print_table(["ID", "WEBHOOK ID", "JOB", "STATUS", "ATTEMPTS", "LAST", "NEXT", "HOST"], rows)
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings | None = None) -> int:
    db = _open(settings or get_settings())
    if db is None:
        return 1
    store = DeliveryStore(db)
    try:
        delivery = store.find(args.id)
        attempts = store.attempts(delivery.id, limit=1000)
    except WebhookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    report = {
        **_view(delivery),
        "attempt_log": [
            {
                "attempt": attempt.attempt,
                "at": _iso(attempt.started_at),
                "outcome": attempt.outcome,
                "status_code": attempt.status_code,
                "duration_ms": attempt.duration_ms,
                "error": attempt.error,
                "sender": attempt.sender,
            }
            for attempt in attempts
        ],
    }
    if args.json:
        print(json.dumps(report))
        return 0
    for key, value in report.items():
        if key != "attempt_log":
            print(f"{key}: {value if value is not None else '-'}")
    if attempts:
        rows = [
            [
                str(a["attempt"]),
                str(a["at"]),
                str(a["outcome"]),
                str(a["status_code"] or "-"),
                f"{a['duration_ms']:.0f}",
                str(a["error"] or "-"),
            ]
            for a in report["attempt_log"]
        ]
        print()
        print_table(["#", "AT", "OUTCOME", "STATUS", "MS", "ERROR"], rows)
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    wanted = {DeliveryStatus.FAILED: args.failed, DeliveryStatus.GONE: args.gone}
    statuses = [status for status, chosen in wanted.items() if chosen]
    if not args.ids and not statuses:
        print("error: name deliveries to replay, or use --failed or --gone", file=sys.stderr)
        return 2
    db = _open(settings)
    if db is None:
        return 1
    store = DeliveryStore(db)
    try:
        chosen = [store.find(ref) for ref in args.ids]
        refused = [d for d in chosen if d.status not in FINISHED or d.payload is None]
        for delivery in refused:
            reason = (
                "its body was removed after RETENTION_DAYS"
                if delivery.payload is None
                else f"it is {delivery.status} (only finished deliveries are replayed)"
            )
            print(f"not replayed: {delivery.id} ({delivery.message_id}): {reason}", file=sys.stderr)
        replayed = store.replay(
            ids=[d.id for d in chosen if d not in refused],
            statuses=statuses,
            window_seconds=settings.callback_retry_window_seconds,
        )
    except WebhookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    for delivery in replayed:
        print(f"queued {delivery.id} ({delivery.message_id}) for job {delivery.job_id}")
    print(
        f"{len(replayed)} deliveries queued; the running service sends them within a second "
        "(`batchscribe webhooks list --status pending` follows them)"
    )
    return 1 if refused else 0


def _tenant(value: str) -> str | None:
    try:
        parsed = uuid.UUID(value.strip())
    except ValueError:
        return None
    return str(parsed) if parsed.version == 4 else None


def cmd_rotate(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    tenant = _tenant(args.tenant)
    if tenant is None:
        print(
            "error: the tenant must be a UUID v4, e.g. 6f1c2a9e-3b7d-4c1e-9a8f-2d5b7c9e1f03",
            file=sys.stderr,
        )
        return 2
    db = _open(settings, create=True)
    if db is None:
        return 1
    secrets = TenantSecrets(db, SecretBox.from_settings(settings), fallback=None)
    try:
        replaced = secrets.has_own(tenant)
        secret = secrets.rotate(tenant)
    except WebhookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    hours = ROTATION_OVERLAP.total_seconds() / 3600
    if args.json:
        print(json.dumps({"tenant_id": tenant, "secret": secret.encoded, "rotated": replaced}))
    else:
        print(secret.encoded)
    overlap = (
        f" The previous secret keeps signing beside it for {hours:g} hours: receivers verify "
        "with either until then."
        if replaced
        else ""
    )
    stored = (
        "stored encrypted with WEBHOOK_ENCRYPTION_KEY"
        if secrets.box.encrypts
        else "stored in the database unencrypted (set WEBHOOK_ENCRYPTION_KEY, then run "
        "`batchscribe webhooks reencrypt`)"
    )
    print(
        f"New webhook signing secret for tenant {tenant}; this is the only time it is shown: "
        f"give it to the tenant's receiver now. It is {stored}.{overlap}",
        file=sys.stderr,
    )
    return 0


def cmd_secrets(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    db = _open(settings)
    if db is None:
        return 1
    try:
        infos = TenantSecrets(db, SecretBox.from_settings(settings), fallback=None).list()
    except WebhookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    views = [
        {
            "tenant_id": info.tenant_id,
            "created_at": _iso(info.created_at),
            "rotated_at": _iso(info.rotated_at),
            "previous_signs_until": _iso(info.previous_until),
            "encrypted": info.encrypted,
        }
        for info in infos
    ]
    if args.json:
        print_json_lines(views)
        return 0
    if not views:
        print("no tenant has its own secret; create one with `webhooks rotate-secret --tenant`")
        return 0
    columns = ("tenant_id", "created_at", "rotated_at", "previous_signs_until", "encrypted")
    rows = [[str(v[c] if v[c] is not None else "-") for c in columns] for v in views]
    print_table(["TENANT", "CREATED", "ROTATED", "PREVIOUS SIGNS UNTIL", "ENCRYPTED"], rows)
    return 0


def cmd_new_secret(args: argparse.Namespace, settings: Settings | None = None) -> int:
    print(generate_secret().encoded)
    print(
        "A new signing secret; set it as WEBHOOK_SECRET (none and gateway modes) and give it to "
        "the receivers. Nothing was stored.",
        file=sys.stderr,
    )
    return 0


def cmd_reencrypt(args: argparse.Namespace, settings: Settings | None = None) -> int:
    settings = settings or get_settings()
    db = _open(settings)
    if db is None:
        return 1
    secrets = TenantSecrets(db, SecretBox.from_settings(settings), fallback=None)
    try:
        count = secrets.reencrypt()
    except WebhookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    how = (
        "encrypted with the first WEBHOOK_ENCRYPTION_KEY"
        if secrets.box.encrypts
        else ("in the clear (WEBHOOK_ENCRYPTION_KEY is not set)")
    )
    print(f"rewrote the signing secrets of {count} tenants, {how}")
    return 0
