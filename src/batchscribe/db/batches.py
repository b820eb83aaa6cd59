"""Leasing a batch of due rows: what the outbox relay and the webhook sender both do.

One statement picks the ids (on PostgreSQL `FOR UPDATE SKIP LOCKED`, so concurrent claimers
skip rows another holds instead of waiting; SQLite serialises writers with `BEGIN IMMEDIATE`),
a second one updates them, still conditional on `due`, and returns them as they now are. Both
run in the caller's transaction. (Jobs and their pieces are claimed one at a time with a
deadline: `jobs.leases.LeasedQueue`.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

S = TypeVar("S", bound=StrEnum)


def due_or_abandoned(
    table: sa.Table, *, pending: str, sending: str, now: float
) -> sa.ColumnElement[bool]:
    """Rows to take now: `pending` ones whose time has come, and `sending` ones whose lease
    has expired (their sender died or hung)."""
    c = table.c
    return sa.or_(
        sa.and_(c.status == pending, c.next_attempt_at <= now),
        sa.and_(c.status == sending, c.lease_expires_at <= now),
    )


def lease_due_rows(
    conn: Connection,
    table: sa.Table,
    *,
    due: sa.ColumnElement[bool],
    order_by: Sequence[sa.ColumnElement[Any]],
    limit: int,
    values: Mapping[str, Any],
    skip_locked: bool,
) -> Sequence[Row[Any]]:
    """Set `values` on up to `limit` rows of `table` matching `due` (first by `order_by`) and
    return those rows after the update; nothing when none is due."""
    pick = sa.select(table.c.id).where(due).order_by(*order_by).limit(limit)
    if skip_locked:
        pick = pick.with_for_update(skip_locked=True)
    ids = list(conn.scalars(pick))
    if not ids:
        return []
    return conn.execute(
        sa.update(table).where(table.c.id.in_(ids), due).values(**values).returning(*table.c)
    ).all()


def count_by_status(conn: Connection, table: sa.Table, statuses: type[S]) -> dict[S, int]:
    """Rows of `table` per status: every status of `statuses` present, zero when none."""
    counts = dict.fromkeys(statuses, 0)
    query = sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
    for status, count in conn.execute(query):
        counts[statuses(status)] = int(count)
    return counts
