"""The one-hop append path: a coroutine that only awaits its InlineSession runs to its end at once; one that
suspends is refused with a reason; the transaction commits on success and rolls back on an error."""

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, func, select

from libs.store import sqlite_pragmas
from services.metrics_collector.inline_writer import InlineWriter, run_inline

metadata = MetaData()
things = Table("things", metadata, Column("n", Integer, primary_key=True))


def test_a_coroutine_that_never_suspends_runs_to_its_value() -> None:
    async def answer() -> int:
        async def inner() -> int:
            return 41
        return await inner() + 1

    assert run_inline(answer()) == 42


def test_a_coroutine_that_suspends_is_refused() -> None:
    async def waits() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaited something other than its session"):
        run_inline(waits())


async def test_commits_on_success_and_rolls_back_on_error(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    writer = InlineWriter(f"sqlite+aiosqlite:///{path}", sqlite_pragmas)

    async def insert(session, fail: bool) -> int:  # type: ignore[no-untyped-def]
        await session.execute(things.insert(), [{"n": 1}, {"n": 2}] if not fail else [{"n": 3}])
        if fail:
            raise ValueError("bad batch")
        return int(await session.scalar(select(func.count()).select_from(things)))

    try:
        assert await writer.transaction(lambda s: insert(s, False)) == 2
        with pytest.raises(ValueError, match="bad batch"):
            await writer.transaction(lambda s: insert(s, True))
        with engine.connect() as connection:
            assert sorted(connection.scalars(select(things.c.n))) == [1, 2]
    finally:
        writer.dispose()
        engine.dispose()
