"""A separate process draining a shared outbox: `python -m tests.support.relay_worker DATABASE_URL`.

Prints "ready", waits for a line on stdin (so several workers start together), drains, then
prints the number of events it sent. The database (SQLite file or PostgreSQL) is already
migrated; the rest of the configuration comes from the environment (emulator).
"""

from __future__ import annotations

import sys

from batchscribe.config import Settings
from batchscribe.db import Database
from batchscribe.events.outbox import Outbox
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.relay import OutboxRelay


def main() -> int:
    db = Database(sys.argv[1])
    publisher = AWSEventPublisher(settings=Settings())
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        result = OutboxRelay(Outbox(db), publisher).drain_now(timeout_seconds=30)
    finally:
        db.dispose()
        publisher.client.close()
    print(result.sent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
