"""The one-hop append path: a coroutine that only awaits its InlineSession runs to its end at once; one that
suspends is refused with a reason; the transaction commits on success and rolls back on an error; rows inserted
at the driver read back exactly as rows inserted through SQLAlchemy."""

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Boolean, Column, Date, Float, Integer, MetaData, String, Table, create_engine, func, select

from libs.store import UtcDateTime, sqlite_pragmas
from services.metrics_collector.inline_writer import InlineWriter, insert_rows, run_inline

metadata = MetaData()
things = Table("things", metadata, Column("n", Integer, primary_key=True))
# Every type the append path writes, and a column named like an SQL keyword.
typed = Table("typed", metadata, Column("n", Integer, primary_key=True), Column("check", String(20)),
              Column("at", UtcDateTime()), Column("day", Date), Column("passed", Boolean), Column("seconds", Float))


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


async def test_rows_inserted_at_the_driver_read_back_as_sqlalchemy_inserts_them(tmp_path: Path) -> None:
    path = tmp_path / "typed.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    writer = InlineWriter(f"sqlite+aiosqlite:///{path}", sqlite_pragmas)
    plus_two = timezone(timedelta(hours=2))
    rows = [{"n": n, "check": "select", "at": datetime(2026, 3, 1, 18, 0, 0, 123456, tzinfo=plus_two),
             "day": date(2026, 3, 1), "passed": n % 2 == 0, "seconds": 1.5} for n in (1, 2)]
    rows.append({"n": 3, "check": None, "at": None, "day": None, "passed": None, "seconds": None})

    async def driver(session) -> None:  # type: ignore[no-untyped-def]
        await insert_rows(session, typed, rows)

    try:
        await writer.transaction(driver)
        with engine.begin() as connection:
            by_driver = [tuple(r) for r in connection.execute(select(typed).order_by(typed.c.n))]
            stored_by_driver = connection.exec_driver_sql("SELECT * FROM typed ORDER BY n").all()
            connection.execute(typed.delete())
            connection.execute(typed.insert(), rows)
            by_sqlalchemy = [tuple(r) for r in connection.execute(select(typed).order_by(typed.c.n))]
            stored_by_sqlalchemy = connection.exec_driver_sql("SELECT * FROM typed ORDER BY n").all()
    finally:
        writer.dispose()
        engine.dispose()
    assert by_driver == by_sqlalchemy
    assert stored_by_driver == stored_by_sqlalchemy  # the same text in the file: SQL range queries compare it
    assert by_driver[0][2] == datetime(2026, 3, 1, 16, 0, 0, 123456, tzinfo=UTC)  # stored in UTC, read back aware
