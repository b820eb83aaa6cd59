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
