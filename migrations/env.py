"""Alembic environment: runs against the engine Fovea hands over in `config.attributes`."""

from __future__ import annotations

from alembic import context

from app.store.tables import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` CLI use: take the URL from the environment like Fovea does
    from app.settings import Settings
    from app.store.infra.db import create_index_engine

    engine = create_index_engine(Settings().resolved_database_url)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
