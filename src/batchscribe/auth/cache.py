"""What makes key checks cheap: a short-lived cache of lookups, and last-used times written in
batches rather than once per request.

`KeyCache` remembers each lookup (found, revoked or unknown) for `ttl` seconds, so a busy key
costs one database read per `ttl` per instance, and a revocation made anywhere (another
instance, `batchscribe keys revoke`) is seen by every instance within `ttl` seconds. Its size is
bounded: a client spraying made-up keys evicts the oldest entries, never grows the memory.

`UsageRecorder` keeps the latest use of each key in memory and a background thread writes them
every `interval` seconds in one transaction (and once more when it stops), so `keys list` shows
a last-used time that is at most `interval` seconds old without a write per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from batchscribe.auth.keys import ApiKey, KeyStore
from batchscribe.db.exceptions import DatabaseError

logger = logging.getLogger(__name__)

#: How long a lookup is trusted: the longest a revoked key keeps working on another instance.
KEY_CACHE_SECONDS = 5.0
KEY_CACHE_ENTRIES = 10_000
#: How often last-used times are written.
USAGE_FLUSH_SECONDS = 5.0


class KeyCache:
    """Lookups of keys by hash through `store`, each kept for `ttl` seconds."""

    def __init__(
        self,
        store: KeyStore,
        *,
        ttl: float = KEY_CACHE_SECONDS,
        max_entries: int = KEY_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, key_hash: str) -> tuple[bool, ApiKey | None]:
        """(True, the key or None for unknown) when a fresh lookup is remembered, else
        (False, None). Never touches the database: safe on the event loop."""
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is None:
                return False, None
            expires, record = entry
            if self.clock() >= expires:
                del self._entries[key_hash]
                return False, None
            return True, record

    def lookup(self, key_hash: str) -> ApiKey | None:
        """The key (revoked or not) or None, from the cache or else the database (blocking).
        Raises `DatabaseUnavailableError` when the database cannot be read."""
        hit, record = self.cached(key_hash)
        if hit:
            return record
        record = self.store.find(key_hash)
        with self._lock:
            self._entries[key_hash] = (self.clock() + self.ttl, record)
            self._entries.move_to_end(key_hash)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return record

    def forget(self, key_hash: str) -> None:
        """Drop one lookup (this instance revoked the key: no need to wait for `ttl`)."""
        with self._lock:
            self._entries.pop(key_hash, None)


class UsageRecorder:
    """Coalesces "key used now" into one write per key every `interval` seconds."""

    def __init__(self, store: KeyStore, *, interval: float = USAGE_FLUSH_SECONDS) -> None:
        self.store = store
        self.interval = interval
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def touch(self, key_hash: str, at: float | None = None) -> None:
        """Remember that the key was used (now, or at `at`); no I/O."""
        at = time.time() if at is None else at
        with self._lock:
            if at > self._pending.get(key_hash, 0.0):
                self._pending[key_hash] = at

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> int:
        """Write every remembered use in one transaction; the number of keys written. On a
        database failure the uses are kept for the next flush."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            self.store.record_use(batch)
        except DatabaseError as exc:
            with self._lock:
                for key_hash, at in batch.items():
                    if at > self._pending.get(key_hash, 0.0):
                        self._pending[key_hash] = at
            if not self._failing:
                logger.warning("could not record API key use; retrying later: %s", exc)
            self._failing = True
            return 0
        if self._failing:
            logger.info("recording API key use works again")
        self._failing = False
        return len(batch)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="api-key-usage", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # a bookkeeping thread must never die silently
                logger.exception("recording API key use failed; trying again later")
