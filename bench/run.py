"""`make bench`: the SPEC section 9 comparisons, each pair measured side by side in one run.

    python -m bench.run            # everything, writes bench/results.json
    python -m bench.run p1 p3      # only some comparisons: their figures replace those in
                                   # results.json, the others stay (each says when it was taken)

Environment knobs (defaults are what `make bench` runs):
    BENCH_LONG_MINUTES      length of P4's long upload (60)
    BENCH_SPEECH_FRACTION   share of speech in P4's uploads, the rest room tone (0.1)
    BENCH_ROUNDS            P2 rounds of 10 requests per condition (4)
    BENCH_EVENTS            P3 events per side per repetition (200)
    BENCH_P5_COPIES         P5's recording in copies of the 20 s fixture (30: 10 minutes)
    BENCH_P5_ROUNDS         P5 rounds of the W-workers / one-worker pair (2)
    BENCH_RESULTS           where the results go (bench/results.json)

Every figure is measured here, on this machine, with the real server processes, the real engine
and the local AWS emulator; nothing is estimated.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx

from batchscribe.infra.emulator import EMULATOR_CREDENTIALS, LocalAWSEmulator
from bench import audio
from bench.bare import BareEngines
from bench.harness import (
    RssSampler,
    Upload,
    cpu_seconds,
    high_water_marks,
    job_turnaround,
    machine_facts,
    percentile,
    scrub_environment,
    start_server,
    tree_pids,
    upload,
)
from bench.p5 import p5_long_recording
from bench.pickup import pickup_latency
from bench.scaleout import p6_job_path, p7_scale_out
from testkit.aws import EventSink
from testkit.faultproxy import FaultProxy
from testkit.postgres import PostgresServer

RESULTS = Path(os.environ.get("BENCH_RESULTS") or Path(__file__).resolve().parent / "results.json")
CORES = os.cpu_count() or 1
P1_CLIP_SECONDS = 20.0


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _concurrent_uploads(url: str, path: Path, clients: int, per_client: int) -> list[Upload]:
    """`clients` threads, each posting `path` `per_client` times back to back."""

    def one_client(_: int) -> list[Upload]:
        with httpx.Client() as client:
            return [upload(client, url, path) for _ in range(per_client)]

    with ThreadPoolExecutor(clients) as pool:
        return [u for batch in pool.map(one_client, range(clients)) for u in batch]


def _require_ok(uploads: list[Upload], what: str) -> None:
    bad = [(u.status, u.error) for u in uploads if u.status != 200]
    if bad:
        raise RuntimeError(f"{what}: {len(bad)} uploads failed with {sorted(set(bad))}")


# -- P1 ---------------------------------------------------------------------------------------


def p1_pipeline_efficiency(tmp: Path) -> dict[str, Any]:
    """HTTP throughput (audio s / s) with CORES concurrent requests over the bare engine in
    CORES processes, same audio. Both sides stay up for the whole comparison and take turns in
    an A-B-B-A-A-B order, so a slow drift of the machine's load hits both alike."""
    clip = audio.build_wav(tmp / "p1.wav", P1_CLIP_SECONDS)
    repeats = 2
    server = start_server("p1", tmp, {"WORKERS": str(CORES)})
    blocks: dict[str, list[dict[str, Any]]] = {"bare": [], "http": []}
    try:
        _require_ok(_concurrent_uploads(server.url, clip, CORES, 1), "P1 warm-up")
        with BareEngines(clip, CORES) as bare:
            for n, side in enumerate(("bare", "http", "http", "bare", "bare", "http")):
                log(f"P1 block {n + 1}/6: {side}, {CORES} at once x {repeats} x clip")
                load = os.getloadavg()[0]
                assert server.proc is not None
                pids = bare.pids if side == "bare" else tree_pids(server.proc.pid)
                cpu_before = cpu_seconds(pids)
                if side == "bare":
                    block: dict[str, Any] = bare.run(repeats)
                else:
                    started = time.perf_counter()
                    uploads = _concurrent_uploads(server.url, clip, CORES, repeats)
                    wall = time.perf_counter() - started
                    _require_ok(uploads, "P1")
                    http_audio = sum(u.audio_seconds for u in uploads)
                    block = {
                        "audio_seconds": http_audio,
                        "wall_seconds": wall,
                        "throughput": http_audio / wall,
                        "request_seconds": [round(u.seconds, 3) for u in uploads],
                    }
                block["cpu_seconds"] = round(cpu_seconds(pids) - cpu_before, 3)
                block["load_average_1m_before"] = round(load, 2)
                blocks[side].append(block)
    finally:
        server.terminate()
    tp = {
        side: sum(b["audio_seconds"] for b in runs) / sum(b["wall_seconds"] for b in runs)
        for side, runs in blocks.items()
    }
    ratio = tp["http"] / tp["bare"]
    # Load-independent view: CPU seconds per audio second of the engines alone over those of
    # the whole server tree (server + workers); other tenants of the machine do not move it.
    cpu_per_audio = {
        side: sum(b["cpu_seconds"] for b in runs) / sum(b["audio_seconds"] for b in runs)
        for side, runs in blocks.items()
    }
    return {
        "ratio": round(ratio, 3),
        "target": ">= 0.85",
        "met": ratio >= 0.85,
        "http_audio_seconds_per_second": round(tp["http"], 3),
        "bare_audio_seconds_per_second": round(tp["bare"], 3),
        "cpu_efficiency": round(cpu_per_audio["bare"] / cpu_per_audio["http"], 3),
        "cpu_seconds_per_audio_second": {k: round(v, 4) for k, v in cpu_per_audio.items()},
        "concurrency": CORES,
        "clip_seconds": P1_CLIP_SECONDS,
        "blocks": blocks,
    }


# -- P2 ---------------------------------------------------------------------------------------


def p2_event_overhead(tmp: Path, emulator: LocalAWSEmulator) -> dict[str, Any]:
    """p95 latency with EventBridge 1 s late, and refusing connections, over publishing off.

    Three servers run at once (publishing off; through a proxy that delays every call 1 s;
    through a proxy whose port is closed). Rounds of 10 requests (CORES concurrent clients) go
    to each in a shuffled order, so slow drifts of the machine hit all three alike.
    """
    clip = audio.SHORT_SPEECH
    rounds = int(_env_float("BENCH_ROUNDS", 4))
    per_client = max(1, 10 // CORES)
    source = f"com.yourapp.bench.{uuid.uuid4().hex[:8]}"
    sink = EventSink.create(emulator.endpoint_url, source)
    slow_proxy = FaultProxy(emulator.endpoint_url).start()
    down_proxy = FaultProxy(emulator.endpoint_url).start()
    slow_proxy.set_mode("slow", delay=1.0)
    down_proxy.set_mode("refuse")
    aws = {**EMULATOR_CREDENTIALS, "AWS_REGION": "us-east-1", "EVENT_SOURCE": source}
    configs = {
        "publishing_off": {},
        "eventbridge_slow_1s": {**aws, "AWS_ENDPOINT_URL": slow_proxy.url},
        "eventbridge_refusing": {**aws, "AWS_ENDPOINT_URL": down_proxy.url},
    }
    servers = {}
    latencies: dict[str, list[float]] = {name: [] for name in configs}
    event_statuses: dict[str, set[str | None]] = {name: set() for name in configs}
    try:
        for name, env in configs.items():
            servers[name] = start_server(f"p2-{name}", tmp, {"WORKERS": str(CORES), **env})
            _require_ok(_concurrent_uploads(servers[name].url, clip, CORES, 1), "P2 warm-up")
        order = list(configs)
        for rnd in range(rounds):
            random.Random(rnd).shuffle(order)
            log(f"P2 round {rnd + 1}/{rounds}: {' -> '.join(order)}")
            for name in order:
                uploads = _concurrent_uploads(servers[name].url, clip, CORES, per_client)
                _require_ok(uploads, f"P2 {name}")
                latencies[name].extend(u.seconds for u in uploads)
                event_statuses[name].update(u.event_status for u in uploads)
        readiness = {
            name: httpx.get(server.url + "/readyz", timeout=10).json()
            for name, server in servers.items()
        }
    finally:
        for server in servers.values():
            server.terminate()
        slow_proxy.stop()
        down_proxy.stop()
        sink.close()
    p95 = {name: percentile(values, 95) for name, values in latencies.items()}
    base = p95["publishing_off"]
    ratio_slow = p95["eventbridge_slow_1s"] / base
    ratio_down = p95["eventbridge_refusing"] / base
    worse = max(ratio_slow, ratio_down)
    return {
        "ratio": round(worse, 3),
        "target": "<= 1.05",
        "met": worse <= 1.05,
        "ratio_eventbridge_slow_1s": round(ratio_slow, 3),
        "ratio_eventbridge_refusing": round(ratio_down, 3),
        "p95_seconds": {k: round(v, 4) for k, v in p95.items()},
        "p50_seconds": {k: round(percentile(v, 50), 4) for k, v in latencies.items()},
        "requests_per_condition": {k: len(v) for k, v in latencies.items()},
        "event_status_in_responses": {k: sorted(map(str, v)) for k, v in event_statuses.items()},
        "proxy_calls": {"slow": slow_proxy.counts, "refusing": down_proxy.counts},
        "readyz_after": readiness,
        "clip": clip.name,
        "latencies_seconds": {k: [round(x, 4) for x in v] for k, v in latencies.items()},
    }


# -- P3 ---------------------------------------------------------------------------------------


def p3_relay_speedup(tmp: Path, emulator: LocalAWSEmulator) -> dict[str, Any]:
    """Events/s the relay delivers from the outbox into the emulator's EventBridge, over one
    PutEvents call per event (the plan's `publish_batch_completed_event` after each request).

    Measured twice. Headline: no rule matches the events, so each call costs what it costs the
    publisher on AWS, where EventBridge accepts the entries and fans them out to targets
    asynchronously. Second: a rule sends every event to an SQS queue; moto does that fan-out
    synchronously inside PutEvents, at a cost per event (a JSONPath parser built per event, a
    scan of the whole queue per message), so both sides are bounded by the emulator there.
    Each side gets a fresh queue, since moto's cost per message grows with the queue's length.
    """
    from batchscribe.config import Settings
    from batchscribe.db import Database
    from batchscribe.db.migrate import upgrade
    from batchscribe.events.outbox import Outbox, OutboxStatus
    from batchscribe.events.publisher import AWSEventPublisher
    from batchscribe.events.relay import OutboxRelay
    from batchscribe.identity import RequestContext

    count = int(_env_float("BENCH_EVENTS", 200))
    raw = "SPEAKER_0: " + " ".join(["the quarterly numbers look fine"] * 60)  # ~2 kB, realistic
    cleaned = raw.replace("SPEAKER_0: the", "SPEAKER_0: The") + "."
    tenant = str(uuid.uuid4())
    sinks: list[EventSink] = []

    def publisher_for(fanout: bool) -> AWSEventPublisher:
        source = f"com.yourapp.bench.{uuid.uuid4().hex[:8]}"
        if fanout:
            sinks.append(EventSink.create(emulator.endpoint_url, source))
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            aws_endpoint_url=emulator.endpoint_url,
            aws_access_key_id=EMULATOR_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=EMULATOR_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            event_source=source,
        )
        return AWSEventPublisher(settings=settings)

    def plan_way(n: int, fanout: bool) -> float:
        publisher = publisher_for(fanout)
        started = time.perf_counter()
        for _ in range(n):
            publisher.publish_batch_completed_event(
                str(uuid.uuid4()), tenant, "bench", None, raw, cleaned
            )
        elapsed = time.perf_counter() - started
        publisher.client.close()
        return n / elapsed

    def relay_way(n: int, fanout: bool, name: str) -> float:
        publisher = publisher_for(fanout)
        db = Database(f"sqlite:///{tmp / f'{name}.db'}")
        upgrade(db)
        outbox = Outbox(db)
        try:
            for _ in range(n):
                context = RequestContext(tenant, "bench", None, str(uuid.uuid4()))
                built = publisher.entry_for(context, raw, cleaned)
                outbox.insert(
                    built, status=OutboxStatus.PENDING, raw_len=len(raw), cleaned_len=len(cleaned)
                )
            relay = OutboxRelay(outbox, publisher, max_backoff_seconds=1.0)
            started = time.perf_counter()
            result = relay.drain_now(timeout_seconds=300)
            elapsed = time.perf_counter() - started
            if result.sent != n:
                raise RuntimeError(f"P3 relay sent {result.sent} of {n}: {result}")
            return n / elapsed
        finally:
            db.dispose()
            publisher.client.close()

    scenarios: dict[str, dict[str, Any]] = {}
    try:
        for fanout, n in ((False, count), (True, max(20, count // 2))):
            label = "with_sqs_target" if fanout else "eventbridge_only"
            plan: list[float] = []
            relay: list[float] = []
            for rep in range(2):
                log(f"P3 {label} rep {rep + 1}: {n} events one call each, then via the relay")
                plan.append(plan_way(n, fanout))
                relay.append(relay_way(n, fanout, f"p3-{label}-{rep}"))
            plan_eps, relay_eps = sum(plan) / len(plan), sum(relay) / len(relay)
            scenarios[label] = {
                "ratio": round(relay_eps / plan_eps, 3),
                "relay_events_per_second": round(relay_eps, 1),
                "one_call_per_event_events_per_second": round(plan_eps, 1),
                "events_per_repetition": n,
                "repetitions": {
                    "relay": [round(x, 1) for x in relay],
                    "plan": [round(x, 1) for x in plan],
                },
            }
        if sinks:
            delivered = sum(sinks[-1].collect(set(), timeout=3).values())
            scenarios["with_sqs_target"]["messages_in_last_queue"] = delivered
    finally:
        for sink in sinks:
            sink.close()
    head = scenarios["eventbridge_only"]
    return {
        "ratio": head["ratio"],
        "target": ">= 5",
        "met": head["ratio"] >= 5,
        "relay_events_per_second": head["relay_events_per_second"],
        "one_call_per_event_events_per_second": head["one_call_per_event_events_per_second"],
        "ratio_with_sqs_target_in_emulator": scenarios["with_sqs_target"]["ratio"],
        "detail_bytes_approx": len(raw) + len(cleaned),
        "scenarios": scenarios,
        "note": (
            "Headline without a matching rule: on AWS, PutEvents returns once EventBridge has "
            "accepted the entries and target delivery is asynchronous. With a rule to SQS, moto "
            "delivers inside the PutEvents call at about 17 ms per event (profiled: half in "
            "building a JSONPath parser per event, a third in scanning the queue per message), "
            "which bounds both sides alike."
        ),
    }


# -- P4 and /healthz --------------------------------------------------------------------------


def p4_memory_ratio(tmp: Path) -> dict[str, Any]:
    """Peak RSS of the server's process tree (server + workers) while one long recording goes
    through `POST /batch/jobs` (the way for anything past MAX_SYNC_AUDIO_SECONDS; split into
    pieces the workers share) over one 1-minute recording the same way; a fresh server for
    each so earlier peaks do not carry over."""
    minutes = _env_float("BENCH_LONG_MINUTES", 60)
    fraction = _env_float("BENCH_SPEECH_FRACTION", 0.1)
    short = audio.build_flac(tmp / "p4-1min.flac", 60, fraction)
    long = audio.build_flac(tmp / f"p4-{minutes:g}min.flac", minutes * 60, fraction)
    runs: dict[str, Any] = {}
    for label, path in (("1min", short), (f"{minutes:g}min", long)):
        server = start_server(f"p4-{label}", tmp, {"WORKERS": str(CORES)})
        try:
            assert server.proc is not None
            idle = high_water_marks(server.proc.pid)
            log(f"P4: submitting {label} ({path.stat().st_size / 2**20:.1f} MiB FLAC) as a job")
            with RssSampler(server.proc.pid) as sampler:
                seconds, job = job_turnaround(server.url, path)
            marks = high_water_marks(server.proc.pid)
        finally:
            server.terminate()
        runs[label] = {
            "peak_tree_rss_mib_sampled": round(sampler.peak / 2**20, 1),
            "sum_vmhwm_mib": round(sum(marks.values()) / 2**20, 1),
            "vmhwm_mib_by_process": {k: round(v / 2**20, 1) for k, v in marks.items()},
            "vmhwm_mib_after_startup": round(sum(idle.values()) / 2**20, 1),
            "upload_mib": round(path.stat().st_size / 2**20, 2),
            "audio_seconds": job.get("duration_seconds"),
            "submit_to_completed_seconds": round(seconds, 2),
            "samples": len(sampler.samples),
        }
    small, big = runs["1min"], runs[f"{minutes:g}min"]
    ratio = big["peak_tree_rss_mib_sampled"] / small["peak_tree_rss_mib_sampled"]
    return {
        "ratio": round(ratio, 3),
        "target": "<= 1.5",
        "met": ratio <= 1.5,
        "ratio_sum_vmhwm": round(big["sum_vmhwm_mib"] / small["sum_vmhwm_mib"], 3),
        "long_minutes": minutes,
        "speech_fraction": fraction,
        "runs": runs,
    }


def healthz_p99(tmp: Path) -> dict[str, Any]:
    """/healthz latency, probed every 20 ms, while two long transcriptions keep both workers
    (and so both cores) busy."""
    clip = audio.build_flac(tmp / "healthz-3min.flac", 180, 1.0)
    server = start_server("healthz", tmp, {"WORKERS": "2"})
    probes: list[float] = []
    busy = threading.Event()
    done = threading.Event()

    def long_upload() -> Upload:
        with httpx.Client() as client:
            return upload(client, server.url, clip)

    def probe() -> None:
        with httpx.Client(base_url=server.url) as client:
            busy.wait()
            while not done.is_set():
                started = time.perf_counter()
                response = client.get("/healthz", timeout=10)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"/healthz answered {response.status_code}")
                probes.append(elapsed)
                time.sleep(0.02)

    try:
        with ThreadPoolExecutor(3) as pool:
            prober = pool.submit(probe)
            jobs = [pool.submit(long_upload) for _ in range(2)]
            time.sleep(1.0)  # both uploads are in and transcribing
            busy.set()
            wait(jobs, return_when=FIRST_COMPLETED)  # probe only while both are running
            done.set()
            prober.result()
            uploads = [j.result() for j in jobs]
    finally:
        done.set()
        busy.set()
        server.terminate()
    _require_ok(uploads, "healthz long uploads")
    p99_ms = percentile(probes, 99) * 1000
    return {
        "value": round(p99_ms, 2),
        "target": "< 50",
        "met": p99_ms < 50,
        "p50_ms": round(percentile(probes, 50) * 1000, 2),
        "max_ms": round(max(probes) * 1000, 2),
        "probes": len(probes),
        "transcriptions": [
            {"audio_seconds": u.audio_seconds, "seconds": round(u.seconds, 1)} for u in uploads
        ],
    }


# -- the run ----------------------------------------------------------------------------------


def _row(key: str, result: dict[str, Any]) -> str:
    value = result.get("ratio", result.get("value"))
    verdict = "met" if result.get("met") else "MISSED"
    return f"{key:<24} {value!s:>10} {result['target']:>10}  {verdict}"


def _pg(server: PostgresServer | None) -> PostgresServer:
    assert server is not None, "started for p6 and p7"
    return server


def main(argv: list[str] | None = None) -> int:
    everything = {"p1", "p2", "p3", "p4", "p5", "healthz", "p6", "p7", "pickup"}
    wanted = set(argv if argv is not None else sys.argv[1:]) or everything
    # `finally` blocks stop the servers and the emulator when the run is interrupted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine_facts()}
    with tempfile.TemporaryDirectory(prefix="batchscribe-bench-") as tmp_name:
        tmp = Path(tmp_name)
        scrub_environment(tmp)
        emulator = LocalAWSEmulator().start()
        postgres = PostgresServer() if wanted & {"p6", "p7", "pickup"} else None
        if postgres is not None:
            postgres.start()
        try:
            steps: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
                ("p3", "p3_relay_speedup", lambda: p3_relay_speedup(tmp, emulator)),
                ("p1", "p1_pipeline_efficiency", lambda: p1_pipeline_efficiency(tmp)),
                ("p2", "p2_event_overhead", lambda: p2_event_overhead(tmp, emulator)),
                ("healthz", "healthz_p99_ms", lambda: healthz_p99(tmp)),
                ("p4", "p4_memory_ratio", lambda: p4_memory_ratio(tmp)),
                ("p5", "p5_long_recording", lambda: p5_long_recording(tmp, emulator.endpoint_url)),
                ("p6", "p6_job_path", lambda: p6_job_path(tmp, _pg(postgres), log)),
                ("p7", "p7_scale_out", lambda: p7_scale_out(tmp, _pg(postgres), emulator, log)),
                ("pickup", "job_pickup_latency", lambda: pickup_latency(tmp, _pg(postgres), log)),
            ]
            for short, key, step in steps:
                if short not in wanted:
                    continue
                log(f"{key} ...")
                t0 = time.monotonic()
                results[key] = step()
                results[key]["bench_seconds"] = round(time.monotonic() - t0, 1)
                results[key]["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                log(_row(key, results[key]))
        finally:
            emulator.stop()
            if postgres is not None:
                postgres.cleanup()
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["total_seconds"] = round(time.monotonic() - started, 1)
    if wanted != everything and RESULTS.exists():
        # A partial run: the figures it did not measure stay as the last run left them.
        earlier = json.loads(RESULTS.read_text())
        results = {**earlier, **results}
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print(f"{'figure':<24} {'measured':>10} {'target':>10}  verdict")
    for key in (
        "p1_pipeline_efficiency",
        "p2_event_overhead",
        "p3_relay_speedup",
        "p4_memory_ratio",
        "p5_long_recording",
        "healthz_p99_ms",
        "p6_job_path",
        "p7_scale_out",
        "job_pickup_latency",
    ):
        if key in results:
            print(_row(key, results[key]))
    m = results["machine"]
    print(
        f"\nmachine: {m['cpu_model']}, {m['cpu_count']} cores, {m['memory_gib']} GiB; load "
        f"{m['load_average_at_start']} -> {m['load_average_at_end']}; "
        f"{results['total_seconds']} s in all. Written to {RESULTS}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
