"""A separate process draining a shared outbox: `python -m tests.support.relay_worker PATH`.

Prints "ready", waits for a line on stdin (so several workers start together), drains, then
prints the number of events it sent. Configuration comes from the environment (emulator).
"""

from __future__ import annotations

import sys

from batchscribe.config import Settings
from batchscribe.events.outbox import Outbox
from batchscribe.events.publisher import AWSEventPublisher
from batchscribe.events.relay import OutboxRelay


def main() -> int:
    outbox = Outbox(sys.argv[1])
    publisher = AWSEventPublisher(settings=Settings())
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        result = OutboxRelay(outbox, publisher).drain_now(timeout_seconds=30)
    finally:
        outbox.close()
        publisher.client.close()
    print(result.sent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
