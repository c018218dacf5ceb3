"""Alembic environment: labelloop passes its own connection in ``config.attributes``."""

from alembic import context

from labelloop.store.schema import metadata
from labelloop.store.search_schema import comparison_filter

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs the alembic CLI by hand
    raise RuntimeError("run migrations through labelloop (labelloop.store.migrate.upgrade)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=comparison_filter(connection.dialect.name),  # search objects SQLAlchemy cannot describe
)
with context.begin_transaction():
    context.run_migrations()
