"""No event is lost (SPEC section 10): EventBridge refuses connections, answers 500, throttles and
answers slowly while 30 requests are made, and the server is SIGKILLed once under load and
restarted on the same database and blob store (the outbox is a table of that database). After
recovery, every interaction id that got a 200 is in the queue. Delivery is at least once, so
duplicates are allowed; they are counted and printed.

Run alone with `pytest -m chaos`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from batchscribe.infra.emulator import EMULATOR_CREDENTIALS
from testkit.aws import EventSink
from testkit.faultproxy import FaultProxy, Mode
from testkit.server import ServerProcess

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(170)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FAULT_CYCLE: tuple[tuple[Mode, float], ...] = (
    ("refuse", 1.0),
    ("error500", 1.0),
    ("throttle", 1.0),
    ("slow", 1.0),
    ("reset", 0.5),
    ("pass", 0.5),
)


class FaultCycler:
    """Switches the proxy through `FAULT_CYCLE` in a thread until paused or stopped."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self._running = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-cycler", daemon=True)
        self.applied: set[str] = set()

    def _run(self) -> None:
        while not self._stop.is_set():
            for mode, seconds in FAULT_CYCLE:
                self._running.wait()
                if self._stop.is_set():
                    return
                self.proxy.set_mode(mode, delay=1.5)
                self.applied.add(mode)
                self._stop.wait(seconds)

    def resume(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        self._thread.join(10)


def outbox_unsent(path: Path) -> int:
    """Rows not yet delivered, read straight from the application database's SQLite file (the
    server is dead)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')"
        ).fetchone()
    return int(count)


def test_no_event_lost_through_outages_and_a_sigkill(
    tmp_path: Path, proxy: FaultProxy, sink: EventSink
) -> None:
    audio = (FIXTURES / "speech_short.wav").read_bytes()
    database = tmp_path / "app.db"
    env = {
        **EMULATOR_CREDENTIALS,
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": proxy.url,
        "EVENT_SOURCE": sink.source,
        "DATABASE_URL": f"sqlite:///{database}",
        "BLOB_STORE": f"file://{tmp_path / 'blobs'}",
        "WORKERS": "2",
        "MAX_QUEUED": "8",
        # Short enough for a test: retries at most 2 s apart, a dead relay's lease lasts 5 s.
        "RELAY_MAX_BACKOFF_SECONDS": "2",
        "RELAY_LEASE_SECONDS": "5",
        "SHUTDOWN_GRACE_SECONDS": "5",
    }
    server = ServerProcess(env, tmp_path / "server.log").start()
    cycler = FaultCycler(proxy)
    ok_ids: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()

    def post(n: int) -> None:
        try:
            response = httpx.post(
                server.url + "/batch/process",
                files={"file": (f"call-{n}.wav", audio, "audio/wav")},
                headers={"X-User-ID": f"chaos-{n}"},
                timeout=60,
            )
        except httpx.HTTPError as exc:
            with lock:
                failures.append(f"request {n}: {type(exc).__name__}")
            return
        with lock:
            if response.status_code == 200:
                ok_ids.append(response.json()["interaction_id"])
            else:
                failures.append(f"request {n}: HTTP {response.status_code}")

    try:
        cycler.resume()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(post, range(14)))
        # Make sure some events are still unsent when the server dies: EventBridge throttles.
        cycler.pause()
        proxy.set_mode("throttle")
        for n in range(14, 16):
            post(n)
        in_flight = [threading.Thread(target=post, args=(n,)) for n in (16, 17)]
        for thread in in_flight:
            thread.start()
        threading.Event().wait(0.3)  # the two requests are uploading or transcribing
        server.kill()
        for thread in in_flight:
            thread.join(60)
        unsent_at_kill = outbox_unsent(database)
        assert unsent_at_kill >= 2, "the kill must happen with events still in the outbox"

        server.start()  # same port, same DATABASE_URL and BLOB_STORE
        cycler.resume()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(post, range(18, 30)))
        cycler.stop()
        # The cycle is timed, so a short window can pass without a relay call in it; give
        # every countable fault one more request of its own so each is really exercised.
        for extra, mode in enumerate(("error500", "throttle", "slow", "reset"), start=30):
            if proxy.counts.get(mode, 0) == 0:
                proxy.set_mode(mode, delay=1.5)
                post(extra)
                deadline = time.monotonic() + 20
                while proxy.counts.get(mode, 0) == 0 and time.monotonic() < deadline:
                    time.sleep(0.1)
        proxy.set_mode("pass")

        expected = set(ok_ids)
        received = sink.collect(expected, timeout=60)
    finally:
        cycler.stop()
        server.terminate(timeout=30)

    missing = expected - set(received)
    duplicates = sum(count - 1 for count in received.values())
    print(
        f"\nchaos: {len(ok_ids) + len(failures)} requests, {len(ok_ids)} answered 200, "
        f"{len(failures)} did not "
        f"({'; '.join(failures)}); {unsent_at_kill} events unsent at SIGKILL; "
        f"{len(received)} distinct ids delivered, {duplicates} duplicates, "
        f"{len(set(received) - expected)} delivered for requests without a 200; "
        f"proxy saw {proxy.counts}"
    )
    assert len(ok_ids) >= 20, f"too few successful requests to prove anything: {failures}"
    assert not missing, f"{len(missing)} events lost: {sorted(missing)}"
    # Every fault mode was really exercised. Refused connections never reach the proxy's
    # handler, so `refuse` is checked as applied rather than counted.
    assert {"error500", "throttle", "slow", "reset", "pass"} <= set(proxy.counts)
    assert "refuse" in cycler.applied
