"""API keys in the application database, on SQLite and PostgreSQL: only hashes and display
prefixes are stored, revocation, the lookup cache (no query on a hit, revocation seen once an
entry expires) and last-used times written in batches."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from batchscribe.auth.cache import KeyCache, UsageRecorder
from batchscribe.auth.exceptions import InvalidKeyInputError, KeyNotFoundError
from batchscribe.auth.keys import KeyStore, display_prefix, hash_key, looks_like_key
from batchscribe.db import Database
from batchscribe.db.migrate import upgrade
from batchscribe.db.tables import api_keys


@pytest.fixture
def store(database: Database) -> KeyStore:
    upgrade(database)
    return KeyStore(database)


class Statements:
    """Counts the SQL statements an engine runs (an executemany counts once)."""

    def __init__(self, db: Database) -> None:
        self.seen: list[str] = []
        sa.event.listen(db.engine, "before_cursor_execute", self._record)
        self.db = db

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SELECT 1")):
            self.seen.append(statement.split(None, 1)[0].upper())

    def close(self) -> None:
        sa.event.remove(self.db.engine, "before_cursor_execute", self._record)


@pytest.fixture
def statements(store: KeyStore) -> Iterator[Statements]:
    counter = Statements(store.db)
    try:
        yield counter
    finally:
        counter.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_created_key_is_stored_only_as_its_hash_and_prefix(store: KeyStore) -> None:
    tenant = str(uuid.uuid4())
    record, key = store.create(tenant.upper(), name="crm-sync", default_user="crm")
    assert looks_like_key(key)
    assert len(key) == 47
    assert record.tenant_id == tenant
    assert record.display == "bsk_" + display_prefix(key) == key[:12]
    assert (record.name, record.default_user) == ("crm-sync", "crm")
    with store.db.read() as conn:
        row = conn.execute(sa.select(api_keys)).one()
    stored = " ".join(str(value) for value in row)
    assert key not in stored
    assert key[12:20] not in stored  # nothing of the key past the display prefix
    assert row.key_hash == hash_key(key)
    assert store.find(hash_key(key)) == record
    assert store.find(hash_key(key + "x")) is None


def test_keys_are_unique_and_listed_per_tenant(store: KeyStore) -> None:
    tenant, other = str(uuid.uuid4()), str(uuid.uuid4())
    made = [store.create(tenant)[1] for _ in range(3)] + [store.create(other)[1]]
    assert len(set(made)) == 4
    assert len(store.list()) == 4
    assert {k.tenant_id for k in store.list(tenant_id=tenant)} == {tenant}
    assert len(store.list(tenant_id=tenant)) == 3


@pytest.mark.parametrize(
    ("tenant", "name"),
    [
        ("acme", None),
        (str(uuid.uuid1()), None),
        ("00000000-0000-0000-0000-000000000000", None),
        (str(uuid.uuid4()), "x" * 257),
        (str(uuid.uuid4()), "line\nbreak"),
    ],
)
def test_bad_input_is_refused_with_what_to_do(store: KeyStore, tenant: str, name: str) -> None:
    with pytest.raises(InvalidKeyInputError):
        store.create(tenant, name=name)
    assert store.list() == []


def test_revoke_by_prefix_with_or_without_bsk(store: KeyStore) -> None:
    record, _ = store.create(str(uuid.uuid4()))
    revoked, changed = store.revoke(record.display)
    assert changed
    assert revoked.revoked
    again, changed = store.revoke(record.prefix)
    assert not changed
    assert again.revoked_at == revoked.revoked_at
    with pytest.raises(KeyNotFoundError):
        store.revoke("bsk_nothere")


def test_a_cache_hit_asks_nothing_and_a_revocation_is_seen_once_the_entry_expires(
    store: KeyStore, statements: Statements
) -> None:
    record, key = store.create(str(uuid.uuid4()))
    clock = Clock()
    cache = KeyCache(store, ttl=5.0, clock=clock)
    statements.seen.clear()
    assert cache.lookup(hash_key(key)) == record
    assert statements.seen == ["SELECT"]
    for _ in range(20):
        found = cache.lookup(hash_key(key))
        assert found is not None
        assert not found.revoked
    assert statements.seen == ["SELECT"]  # 20 requests, no more queries
    store.revoke(record.prefix)  # elsewhere: another instance or the command line
    clock.now += 4.9
    cached = cache.lookup(hash_key(key))
    assert cached is not None
    assert not cached.revoked  # still within the cache's few seconds
    clock.now += 0.2
    fresh = cache.lookup(hash_key(key))
    assert fresh is not None
    assert fresh.revoked


def test_the_cache_is_bounded_against_made_up_keys(store: KeyStore) -> None:
    cache = KeyCache(store, max_entries=10)
    for n in range(50):
        assert cache.lookup(hash_key(f"bsk_{n}")) is None
    assert len(cache._entries) == 10


def test_last_use_is_written_in_one_batch_not_per_request(
    store: KeyStore, statements: Statements
) -> None:
    first, _ = store.create(str(uuid.uuid4()))
    second, _ = store.create(str(uuid.uuid4()))
    recorder = UsageRecorder(store, interval=60)
    statements.seen.clear()
    for n in range(100):
        recorder.touch(first.key_hash, at=2_000_000_000.0 + n)
        recorder.touch(second.key_hash, at=2_000_000_000.0)
    assert statements.seen == []
    assert recorder.flush() == 2
    assert statements.seen == ["UPDATE"]
    assert recorder.flush() == 0
    found = {k.key_hash: k.last_used_at for k in store.list()}
    assert found == {first.key_hash: 2_000_000_099.0, second.key_hash: 2_000_000_000.0}
    # An older time (another instance flushing late) never moves last use back.
    store.record_use({first.key_hash: 1_000_000_000.0})
    assert store.find(first.key_hash).last_used_at == 2_000_000_099.0  # type: ignore[union-attr]


def test_the_recorder_flushes_what_is_left_when_it_stops(store: KeyStore) -> None:
    record, _ = store.create(str(uuid.uuid4()))
    recorder = UsageRecorder(store, interval=3600)
    recorder.start()
    recorder.touch(record.key_hash)
    recorder.stop()
    assert store.find(record.key_hash).last_used_at is not None  # type: ignore[union-attr]
