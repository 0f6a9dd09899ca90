"""Schema changes through Alembic migrations: one history per service, its revisions in migrations/<service>/.

The histories share the script directory's env.py and template (migrations/); each reads only its
own revisions, since each service has a database of its own.

A service's database is brought to the newest revision when it starts (`upgrade`). Each history's
first revision (the baseline) creates the tables as `metadata.create_all` made them before there were
migrations, each only if it is not there yet: a database from before (no `alembic_version`, some or
all of those tables) is upgraded like a new one and keeps its rows.

`python -m slipway.schema` makes new revisions and checks every history against its models.
"""

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, create_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def history_of(service: str) -> Path:
    return MIGRATIONS / label_of(service)


def label_of(service: str) -> str:
    return service.replace("-", "_")


def config_for(service: str, connection: Connection | None, metadatas: Sequence[MetaData]) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(history_of(service)))
    config.attributes["connection"] = connection
    config.attributes["metadatas"] = list(metadatas)
    return config


def upgrade(connection: Connection, service: str, metadatas: Sequence[MetaData]) -> None:
    """Bring the database behind `connection` to the newest revision of `service`'s history."""
    command.upgrade(config_for(service, connection, metadatas), "head")


def run_env(context: Any) -> None:
    """What every history's env.py does: run the migrations on the connection the caller passed in."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("slipway runs its migrations through libs.migrations, with a connection: "
                           "use `python -m slipway.schema` or start the service, not the alembic command")
    context.configure(connection=connection, target_metadata=config.attributes["metadatas"],
                      render_as_batch=True, compare_type=True)  # batch: SQLite alters a table by copying it
    with context.begin_transaction():
        context.run_migrations()


def differences(service: str, metadatas: Sequence[MetaData]) -> list[Any]:
    """What `service`'s models declare that its migrated schema lacks (or the other way): [] when they agree."""
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/check.db")
        with engine.begin() as connection:
            upgrade(connection, service, metadatas)
            found = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                     list(metadatas))
        engine.dispose()
    return found


def revision(service: str, message: str, metadatas: Sequence[MetaData], revision_id: str | None = None) -> None:
    """Autogenerate the next revision of `service` from what its models declare beyond its history."""
    history_of(service).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite:///{scratch}/draft.db")
        with engine.begin() as connection:
            config = config_for(service, connection, metadatas)
            command.upgrade(config, "head")
            command.revision(config, message=message, autogenerate=True, rev_id=revision_id)
        engine.dispose()
