"""The pieces of long recordings, claimed by workers like jobs (SPEC 16).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_pieces",
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
        sa.Column("regions_json", sa.Text),
        sa.Column("result_json", sa.Text),
        sa.UniqueConstraint("job_id", "seq", name="job_pieces_job_seq"),
    )
    op.create_index("job_pieces_claim", "job_pieces", ["status", "priority", "next_attempt_at"])
    op.create_index("job_pieces_lease", "job_pieces", ["status", "lease_expires_at"])
    op.create_index("job_pieces_audio", "job_pieces", ["audio_key"])


def downgrade() -> None:
    op.drop_table("job_pieces")
