"""Prometheus metrics of the HTTP layer and the pipeline (events define their own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "batchscribe_requests_total", "HTTP requests by route and status.", ["route", "status"]
)
REQUEST_SECONDS = Histogram(
    "batchscribe_request_duration_seconds",
    "HTTP request duration by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
AUDIO_SECONDS = Counter(
    "batchscribe_audio_seconds_total", "Seconds of audio transcribed, by engine.", ["engine"]
)
TRANSCRIPTIONS = Counter(
    "batchscribe_transcriptions_total",
    "Transcriptions by engine and outcome.",
    ["engine", "outcome"],
)
CLEANINGS = Counter(
    "batchscribe_cleanings_total",
    "Cleanings by engine and whether they degraded.",
    ["engine", "degraded"],
)
WORKERS_BUSY = Gauge("batchscribe_workers_busy", "Local worker processes running a job now.")
JOBS_FINISHED = Counter(
    "batchscribe_jobs_finished_total",
    "Jobs that ended in this server's workers, by final status.",
    ["status"],
)
JOB_WAIT_SECONDS = Histogram(
    "batchscribe_job_wait_seconds",
    "From submission to a worker starting the job (queueing and pickup).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
WORKER_REPLACEMENTS = Counter(
    "batchscribe_worker_replacements_total",
    "Worker processes replaced, by reason (died, deadline, cancelled).",
    ["reason"],
)
STORAGE_FAILURES = Counter(
    "batchscribe_storage_failures_total",
    "Failed storage write probes, by component (database, blob_store).",
    ["component"],
)
CONNECTIONS_REFUSED = Counter(
    "batchscribe_connections_refused_total",
    "Connections closed before their request reached the app, by reason "
    "(headers_too_large, malformed_request, header_timeout).",
    ["reason"],
)
