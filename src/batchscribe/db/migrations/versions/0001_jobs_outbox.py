"""Jobs, idempotency keys and the event outbox; adopts an outbox file of earlier versions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _outbox_columns() -> list[sa.Column[object]]:
    return [
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
            "detail_type",
            sa.String(64),
            nullable=False,
            server_default="BatchProcessingCompleted",
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    op.create_table(
        "schema_probe",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("probed_at", sa.Double, nullable=False),
    )
    op.bulk_insert(
        sa.table("schema_probe", sa.column("id"), sa.column("probed_at")),
        [{"id": 1, "probed_at": time.time()}],
    )
    if inspector.has_table("outbox"):
        # An OUTBOX_PATH file of an earlier version: keep its rows, add what is new.
        existing = {column["name"] for column in inspector.get_columns("outbox")}
        if "detail_type" not in existing:
            op.add_column(
                "outbox",
                sa.Column(
                    "detail_type",
                    sa.String(64),
                    nullable=False,
                    server_default="BatchProcessingCompleted",
                ),
            )
        indexes = {index["name"] for index in inspector.get_indexes("outbox")}
    else:
        op.create_table("outbox", *_outbox_columns())
        indexes = set()
    for name, columns in (
        ("outbox_due", ["status", "next_attempt_at"]),
        ("outbox_lease", ["status", "lease_expires_at"]),
        ("outbox_sent", ["status", "sent_at"]),
    ):
        if name not in indexes:
            op.create_index(name, "outbox", columns)

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("account_id", sa.String(256)),
        sa.Column("status", sa.String(16), nullable=False),
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
    )
    op.create_index("jobs_claim", "jobs", ["status", "priority", "next_attempt_at"])
    op.create_index("jobs_lease", "jobs", ["status", "lease_expires_at"])
    op.create_index("jobs_tenant", "jobs", ["tenant_id", "created_at"])
    op.create_index("jobs_finished", "jobs", ["status", "finished_at"])

    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("audio_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
    )
    op.create_index("idempotency_expiry", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("jobs")
    op.drop_table("outbox")
    op.drop_table("schema_probe")
