"""Alembic environment: migrations run on the connection `batchscribe.db.migrate` hands over.

Run them with `batchscribe migrate` (or AUTO_MIGRATE at startup), not with the `alembic`
command: the connection (and SQLite's write-transaction setup) comes from the application.
"""

from __future__ import annotations

from alembic import context

from batchscribe.db.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=True,
)
with context.begin_transaction():
    context.run_migrations()
