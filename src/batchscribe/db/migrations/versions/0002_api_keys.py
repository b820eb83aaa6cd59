"""API keys: SHA-256 of each key, its display prefix, tenant, name, default user and times.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("prefix", sa.String(8), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(256)),
        sa.Column("default_user", sa.String(256)),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("last_used_at", sa.Double),
        sa.Column("revoked_at", sa.Double),
    )
    op.create_index("api_keys_tenant", "api_keys", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_table("api_keys")
