"""Every service's database goes through its Alembic history: the histories match the models, a database made
before migrations (by create_all) is upgraded with its rows kept, and the same holds on PostgreSQL."""

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from libs.migrations import config_for, differences
from libs.store import Database
from slipway.schema import service_metadatas

SERVICES = service_metadatas()
POSTGRES = os.environ.get("SLIPWAY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_the_migration_history_creates_what_the_models_declare(service: str) -> None:
    # A table or column added to a model without a revision fails here: `python -m slipway.schema revision ...`.
    assert differences(service, SERVICES[service]) == []


async def test_a_database_made_before_migrations_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    service, metadatas = "gatekeeper", SERVICES["gatekeeper"]
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    old = Database(url)
    baseline = baseline_tables(service, metadatas)
    async with old.engine.begin() as conn:  # what `slipway up` made before there were migrations
        for metadata in metadatas:
            await conn.run_sync(metadata.create_all, tables=[t for n, t in metadata.tables.items() if n in baseline])
    async with old.engine.begin() as conn:
        await conn.execute(text("INSERT INTO freezes (freeze_id, environment, starts_at, ends_at, reason, actor, "
                                "lifted) VALUES ('frz-1', 'prod', '2026-01-01 00:00:00', '2026-01-02 00:00:00', "
                                "'quarter close', 'person:alice', 0)"))
        await conn.execute(text("DROP TABLE evidence"))  # and a table an older version did not have yet
    await old.dispose()

    upgraded = Database(url)
    await upgraded.migrate(service, *metadatas[1:])
    await upgraded.migrate(service, *metadatas[1:])  # a second start changes nothing
    async with upgraded.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        kept = (await conn.execute(text("SELECT reason FROM freezes"))).scalars().all()
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    await upgraded.dispose()
    assert {"evidence", "freezes", "alembic_version"} <= tables
    head = ScriptDirectory.from_config(config_for(service, None, metadatas)).get_current_head()
    assert (kept, version) == (["quarter close"], [head])


def baseline_tables(service: str, metadatas: list) -> set[str]:  # noqa: ANN001
    """The tables the first revision creates: those a database from before migrations had."""
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        command.upgrade(config_for(service, connection, metadatas), "0001")
        found = set(inspect(connection).get_table_names()) - {"alembic_version"}
    engine.dispose()
    return found


async def test_every_history_upgrades_a_postgresql_schema() -> None:
    probe = Database(POSTGRES)
    try:
        async with asyncio.timeout(5), probe.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any reason PostgreSQL is not there
        pytest.skip(f"PostgreSQL at {POSTGRES} is not reachable ({type(exc).__name__}): the SQLite runs cover it")
    finally:
        await probe.dispose()
    run = uuid.uuid4().hex[:8]
    for service, metadatas in SERVICES.items():
        schema = f"slipway_test_{run}_{service.replace('-', '_')}"
        db = Database(POSTGRES, schema=schema)
        try:
            await db.migrate(service, *metadatas[1:])
            async with db.engine.connect() as conn:
                tables = await conn.run_sync(lambda sync, s=schema: set(inspect(sync).get_table_names(schema=s)))
            assert {t for m in metadatas for t in m.tables} <= tables, service
        finally:
            async with db.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await db.dispose()
