"""`batchscribe keys create|list|revoke`: the API keys of `AUTH_MODE=api_key`.

`create` prints the key once, alone on stdout (so `KEY=$(batchscribe keys create ...)` works),
and what to do with it on stderr; the database keeps only its hash. `list` and `revoke` name keys
by their display prefix (`bsk_` + 8 characters), the only part of a key ever shown again.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from batchscribe.auth.cache import KEY_CACHE_SECONDS
from batchscribe.auth.exceptions import AuthError
from batchscribe.auth.keys import ApiKey, KeyStore
from batchscribe.config import Settings, get_settings
from batchscribe.console import print_json_lines, print_table
from batchscribe.db.engine import Database
from batchscribe.db.exceptions import DatabaseError
from batchscribe.db.setup import open_for_tool


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `keys` command and its subcommands to the main parser's subparsers."""
    keys = subparsers.add_parser(
        "keys",
        help="create, list and revoke API keys (AUTH_MODE=api_key)",
        description="API keys live in the application database (DATABASE_URL); run these "
        "commands with the same configuration as the service.",
    )
    commands = keys.add_subparsers(dest="keys_command", required=True)

    create = commands.add_parser(
        "create", help="create a key for a tenant and print it (shown only this once)"
    )
    create.add_argument("--tenant", required=True, help="the tenant's id (a UUID v4)")
    create.add_argument("--name", help="what the key is for, e.g. crm-sync (shown in listings)")
    create.add_argument(
        "--user", help="user id of requests that send no X-User-ID (default: system)"
    )
    create.add_argument("--json", action="store_true", help="print a JSON object instead")
    create.set_defaults(func=cmd_create)

    listing = commands.add_parser("list", help="every key: prefix, tenant, name, times, revoked")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)

    revoke = commands.add_parser(
        "revoke", help=f"revoke a key; every instance refuses it within {KEY_CACHE_SECONDS:g} s"
    )
    revoke.add_argument("prefix", help="the key's prefix as `keys list` shows it (bsk_XXXXXXXX)")
    revoke.set_defaults(func=cmd_revoke)


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _view(key: ApiKey) -> dict[str, Any]:
    return {
        "prefix": key.display,
        "tenant_id": key.tenant_id,
        "name": key.name,
        "default_user": key.default_user,
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at) if key.last_used_at else None,
        "revoked_at": _iso(key.revoked_at) if key.revoked_at else None,
    }


def _open(settings: Settings, *, create: bool = False) -> Database | None:
    """The service's database, or None after printing why not (see `open_for_tool`)."""
    try:
        return open_for_tool(settings, create=create)
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def cmd_create(args: argparse.Namespace, settings: Settings | None = None) -> int:
    db = _open(settings or get_settings(), create=True)
    if db is None:
        return 1
    try:
        record, key = KeyStore(db).create(args.tenant, name=args.name, default_user=args.user)
    except (AuthError, DatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    if args.json:
        print(json.dumps({"key": key, **_view(record)}))
    else:
        print(key)
    print(
        f"Created {record.display} for tenant {record.tenant_id}. This is the only time the key "
        "is shown: store it now. Clients send it as `Authorization: Bearer <key>`; revoke it "
        f"with `batchscribe keys revoke {record.display}`.",
        file=sys.stderr,
    )
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings | None = None) -> int:
    db = _open(settings or get_settings(), create=False)
    if db is None:
        return 1
    try:
        keys = KeyStore(db).list(tenant_id=args.tenant)
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    if args.json:
        print_json_lines([_view(key) for key in keys])
        return 0
    if not keys:
        print("no keys; create one with `batchscribe keys create --tenant <uuid>`")
        return 0
    columns = ("prefix", "tenant_id", "name", "created_at", "last_used_at", "revoked_at")
    rows = [[str(_view(key)[c] or "-") for c in columns] for key in keys]
    print_table(["PREFIX", "TENANT", "NAME", "CREATED", "LAST USED", "REVOKED"], rows)
    return 0


def cmd_revoke(args: argparse.Namespace, settings: Settings | None = None) -> int:
    db = _open(settings or get_settings(), create=False)
    if db is None:
        return 1
    try:
        key, changed = KeyStore(db).revoke(args.prefix)
    except (AuthError, DatabaseError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    if changed:
        print(
            f"revoked {key.display} (tenant {key.tenant_id}); every instance refuses it within "
            f"{KEY_CACHE_SECONDS:g} seconds"
        )
    else:
        print(f"{key.display} was already revoked at {_iso(key.revoked_at)}")
    return 0
