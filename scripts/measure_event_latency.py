"""Measure the request-path cost of `EventsRuntime.record()` and the delay to the SQS queue.

Starts the local AWS emulator, wires EventBridge to a fresh queue, then:
1. calls `record()` N times while the relay publishes in the background (p50/p95/p99 of the call,
   which includes the fsync'd SQLite insert);
2. records M events one at a time and times each from `record()` to the outbox saying `sent`
   (EventBridge accepted it) and to the message being received from the SQS queue.

Usage: python scripts/measure_event_latency.py [--calls 1000] [--deliveries 50] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from batchscribe.config import Settings  # noqa: E402
from batchscribe.events.outbox import OutboxStatus  # noqa: E402
from batchscribe.events.runtime import EventsRuntime  # noqa: E402
from batchscribe.identity import RequestContext  # noqa: E402
from batchscribe.infra.emulator import EMULATOR_CREDENTIALS, LocalAWSEmulator  # noqa: E402
from testkit.aws import EventSink  # noqa: E402

RAW = "SPEAKER_0: " + "so um the quarterly numbers look good " * 40
CLEANED = "SPEAKER_0: " + "The quarterly numbers look good. " * 40


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(pct(ms, 0.95), 3),
        "p99_ms": round(pct(ms, 0.99), 3),
        "max_ms": round(max(ms), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--deliveries", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None, help="where the outbox file goes")
    args = parser.parse_args()
    os.environ.update(EMULATOR_CREDENTIALS)
    with LocalAWSEmulator() as emulator, tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        source = f"measure.{uuid.uuid4().hex[:8]}"
        sink = EventSink.create(emulator.endpoint_url, source)
        settings = Settings(
            outbox_path=Path(tmp) / "outbox.db",
            event_source=source,
            aws_endpoint_url=emulator.endpoint_url,
        )
        runtime = EventsRuntime(settings)
        runtime.start()
        tenant = str(uuid.uuid4())

        costs = []
        for _ in range(args.calls):
            ctx = RequestContext(tenant, "bench", None, str(uuid.uuid4()))
            start = time.perf_counter()
            runtime.record(ctx, RAW, CLEANED)
            costs.append(time.perf_counter() - start)
        sink.receive_details(args.calls, timeout=120)  # let the relay catch up, empty queue

        to_sent, to_queue = [], []
        for _ in range(args.deliveries):
            ctx = RequestContext(tenant, "bench", None, str(uuid.uuid4()))
            start = time.perf_counter()
            runtime.record(ctx, RAW, CLEANED)
            outbox = runtime.outbox
            assert outbox is not None
            while (
                row := outbox.get(ctx.interaction_id)
            ) is None or row.status != OutboxStatus.SENT:
                time.sleep(0.0005)
            to_sent.append(time.perf_counter() - start)
            while (
                not sink.sqs.receive_message(
                    QueueUrl=sink.queue_url, WaitTimeSeconds=0, MaxNumberOfMessages=1
                ).get("Messages")
                and time.perf_counter() - start < 10
            ):
                pass
            to_queue.append(time.perf_counter() - start)
            sink.receive_details(1, timeout=0)  # (already received; visibility hides it)
        runtime.stop()
        runtime.publisher.client.close()
        sink.close()
    print(
        json.dumps(
            {
                "record_cost": summary(costs),
                "record_to_sent": summary(to_sent),
                "record_to_sqs_receive": summary(to_queue),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
