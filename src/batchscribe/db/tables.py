"""The tables of the application database (SQLAlchemy Core), the schema the migrations build.

Times are seconds since the epoch (double precision): the same on SQLite and PostgreSQL, cheap
to compare in claim queries, and what the outbox has always stored. Ids are UUID strings. JSON
payloads that we serialise ourselves (event entries, job results) are text, so their exact bytes
are what was validated.

A change here needs a new migration in `batchscribe/db/migrations/versions/`; a test compares
this metadata with the migrated schema on both dialects.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: One row; `Database.check_writable` updates it (and rolls back) as the readiness write probe.
schema_probe = sa.Table(
    "schema_probe",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("probed_at", sa.Double, nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    # The job id is the interaction id, so jobs and events join on it.
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("user_id", sa.String(256), nullable=False),
    sa.Column("account_id", sa.String(256)),
    sa.Column("status", sa.String(16), nullable=False),
    # `sync` jobs back a waiting POST /batch/process and are claimed before `async` ones.
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("engine", sa.String(32), nullable=False),
    sa.Column("language", sa.String(35)),
    sa.Column("metadata_json", sa.Text),
    sa.Column("filename", sa.String(256)),
    sa.Column("content_type", sa.String(128)),
    sa.Column("audio_key", sa.String(512)),
    sa.Column("audio_bytes", sa.BigInteger),
    sa.Column("audio_sha256", sa.String(64)),
    sa.Column("duration_seconds", sa.Double),
    sa.Column("progress", sa.Double, nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_expires_at", sa.Double),
    sa.Column("next_attempt_at", sa.Double, nullable=False),
    sa.Column("deadline_at", sa.Double),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("result_json", sa.Text),
    sa.Column("result_key", sa.String(512)),
    sa.Column("idempotency_key", sa.String(256)),
    # Where the job's webhook goes (normalised at submission), and the job's URL as the client
    # was given it (a large result's webhook points there). Both null without a callback.
    sa.Column("callback_url", sa.String(2048)),
    sa.Column("status_url", sa.String(2048)),
    sa.Index("jobs_claim", "status", "priority", "next_attempt_at"),
    sa.Index("jobs_lease", "status", "lease_expires_at"),
    sa.Index("jobs_tenant", "tenant_id", "created_at"),
    sa.Index("jobs_finished", "status", "finished_at"),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(256), primary_key=True),
    sa.Column("job_id", sa.String(36), nullable=False),
    sa.Column("audio_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    sa.Index("idempotency_expiry", "expires_at"),
)

# The durable event outbox. Its columns are those of the SQLite outbox file of earlier versions
# (so an existing OUTBOX_PATH file is adopted in place), plus `detail_type`.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("interaction_id", sa.Text, nullable=False, unique=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("entry", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("raw_len", sa.Integer, nullable=False),
    sa.Column("cleaned_len", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("next_attempt_at", sa.Double, nullable=False),
    sa.Column("lease_owner", sa.Text),
    sa.Column("lease_expires_at", sa.Double),
    sa.Column("event_id", sa.Text),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("sent_at", sa.Double),
    sa.Column(
        "detail_type", sa.String(64), nullable=False, server_default="BatchProcessingCompleted"
    ),
    sa.Index("outbox_due", "status", "next_attempt_at"),
    sa.Index("outbox_lease", "status", "lease_expires_at"),
    sa.Index("outbox_sent", "status", "sent_at"),
)

# API keys (SPEC 12): never the key itself, only its SHA-256 and the 8 characters shown to
# people (`bsk_` + these) to tell keys apart in listings and logs.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("prefix", sa.String(8), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("name", sa.String(256)),
    sa.Column("default_user", sa.String(256)),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("last_used_at", sa.Double),
    sa.Column("revoked_at", sa.Double),
    sa.Index("api_keys_tenant", "tenant_id", "created_at"),
)

# Job webhooks (SPEC 13). One delivery per job that ended with a callback_url, written in the
# job's final transaction; its body is signed anew at every attempt, under the same message id.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), nullable=False, unique=True),
    sa.Column("job_id", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("event_type", sa.String(32), nullable=False),
    # The exact JSON body (transcripts inline when small); null once redacted after
    # RETENTION_DAYS. `payload_bytes` stays.
    sa.Column("payload", sa.Text),
    sa.Column("payload_bytes", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Double, nullable=False),
    # Retries stop at this time (created + the retry window, renewed by a replay).
    sa.Column("give_up_at", sa.Double, nullable=False),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_expires_at", sa.Double),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("last_attempt_at", sa.Double),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("delivered_at", sa.Double),
    sa.Index("webhook_deliveries_due", "status", "next_attempt_at"),
    sa.Index("webhook_deliveries_lease", "status", "lease_expires_at"),
    sa.Index("webhook_deliveries_tenant", "tenant_id", "created_at"),
)

# Every attempt of a delivery: when, by which process, what came back (never the body).
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.Integer, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("duration_ms", sa.Double, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("sender", sa.String(128), nullable=False),
    sa.Index("webhook_attempts_delivery", "delivery_id", "id"),
)

# Per-tenant webhook signing secrets. The secrets are credentials: stored encrypted when
# WEBHOOK_ENCRYPTION_KEY is set (`fernet:` + token), else as they are (`plain:` + whsec_...).
# The previous secret keeps signing for 24 h after `rotated_at`.
tenant_webhook_secrets = sa.Table(
    "tenant_webhook_secrets",
    metadata,
    sa.Column("tenant_id", sa.String(36), primary_key=True),
    sa.Column("current_secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text),
    sa.Column("rotated_at", sa.Double, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
)

# The pieces of a long recording (SPEC 16): each is a task any worker claims like a job (the same
# lease columns, `jobs.leases.LeasedQueue`), its audio a blob of its own. `result_json` holds the
# piece's transcript, times counted from the piece's start, until the job merges them.
job_pieces = sa.Table(
    "job_pieces",
    metadata,
    # `<job id>.<seq>`: one key for the lease statements shared with jobs.
    sa.Column("id", sa.String(48), primary_key=True),
    sa.Column("job_id", sa.String(36), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("pieces", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("start_seconds", sa.Double, nullable=False),
    sa.Column("duration_seconds", sa.Double, nullable=False),
    sa.Column("cut_in_speech", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("audio_key", sa.String(512), nullable=False),
    sa.Column("progress", sa.Double, nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_expires_at", sa.Double),
    sa.Column("next_attempt_at", sa.Double, nullable=False),
    sa.Column("deadline_at", sa.Double),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double),
    sa.Column("finished_at", sa.Double),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    # The piece's stretches of speech as the splitter's detector found them over the whole
    # recording: [[first sample, end sample], ...] counted from the piece's start.
    sa.Column("regions_json", sa.Text),
    sa.Column("result_json", sa.Text),
    sa.UniqueConstraint("job_id", "seq", name="job_pieces_job_seq"),
    sa.Index("job_pieces_claim", "status", "priority", "next_attempt_at"),
    sa.Index("job_pieces_lease", "status", "lease_expires_at"),
    # Pieces whose audio is still stored (`audio_key > ''`): what the sweep looks through.
    sa.Index("job_pieces_audio", "audio_key"),
)
