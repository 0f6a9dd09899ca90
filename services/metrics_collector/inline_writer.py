"""The append transaction in one thread hop, on SQLite.

Over aiosqlite every awaited statement is a hand-off to the driver's thread and back; an append
runs some twenty of them (dedupe, chain, index, projections), and on a loaded machine those
hand-offs, not SQLite, were most of a batch's time. Here the same use-case code runs in a worker
thread against a plain sqlite3 connection: its `await session.execute(...)` calls go to an
`InlineSession` whose methods finish without ever suspending, so the coroutine is driven to its end
in one go (`run_inline`) and the event loop pays one hop per batch.

PostgreSQL has no synchronous driver installed here (asyncpg only): it keeps the async session.

Inserts of many rows (`insert_rows`) skip SQLAlchemy's per-row parameter handling here: they go to the
driver's executemany with each column's own bind processor applied, which is what SQLAlchemy would send,
at a fraction of its cost per row (it was most of an append's time).
"""

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Table, create_engine, event
from sqlalchemy.engine import Connection, Dialect, Engine

from libs.store import UtcDateTime

T = TypeVar("T")


class InlineSession:
    """The few AsyncSession methods the append path uses, answered at once by a synchronous Connection.

    A Connection, not an ORM Session: nothing here is an ORM object, and a Session's transaction bookkeeping
    (its snapshot of weak references, taken at every begin) cost more per append than the append's own queries.
    """

    def __init__(self, connection: Connection) -> None:
        self.sync = connection

    async def execute(self, statement: Any, params: Any = None) -> Any:
        return self.sync.execute(statement, params)

    async def scalar(self, statement: Any, params: Any = None) -> Any:
        return self.sync.scalar(statement, params)

    async def scalars(self, statement: Any, params: Any = None) -> Any:
        return self.sync.scalars(statement, params)

    def driver_rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """A query in the driver's own SQL (`?` marks), straight to it: for the append's lookups by a list
        of keys, whose expanding IN costs SQLAlchemy more than SQLite takes to answer."""
        cursor = self.sync.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            return cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()

    def insert_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """The rows, straight to the driver's executemany (the columns are the first row's keys)."""
        plan = _insert_plan(table, tuple(rows[0]), self.sync.dialect)
        cursor = self.sync.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(plan.sql, [plan.values(row) for row in rows])
        finally:
            cursor.close()


def bind_marks(values: list[Any]) -> str:
    return ", ".join("?" for _ in values)


async def insert_rows(session: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` into `table` in the caller's transaction: at the driver on the inline path, through
    SQLAlchemy on an async session (PostgreSQL)."""
    if not rows:
        return
    if isinstance(session, InlineSession):
        session.insert_many(table, rows)
    else:
        await session.execute(table.insert(), rows)


class _InsertPlan:
    def __init__(self, table: Table, names: tuple[str, ...], dialect: Dialect) -> None:
        columns = [table.c[name] for name in names]
        quote = dialect.identifier_preparer.quote  # a column may be named like a keyword ("check")
        self.sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c.name) for c in columns)}) "
                    f"VALUES ({bind_marks(columns)})")
        self.row_values = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
        processors = [_utc_text if isinstance(c.type, UtcDateTime) else c.type._cached_bind_processor(dialect)  # noqa: SLF001
                      for c in columns]
        self.conversions = [(n, convert) for n, convert in enumerate(processors) if convert is not None]

    def values(self, row: dict[str, Any]) -> tuple[Any, ...] | list[Any]:
        values = self.row_values(row)
        if not self.conversions:
            return values  # type: ignore[no-any-return]
        converted = list(values)
        for n, convert in self.conversions:
            if converted[n] is not None:
                converted[n] = convert(converted[n])
        return converted


def _utc_text(value: datetime) -> str:
    """A UtcDateTime as SQLAlchemy's SQLite dialect stores it (UTC, 'YYYY-MM-DD HH:MM:SS.ffffff'), in one call
    instead of its three layers; tests/unit/test_inline_writer.py holds the two to the same text."""
    global _last_utc
    last_value, last_text = _last_utc  # one tuple, replaced whole: never half of one value and half of another
    if value is last_value:  # a batch's rows share one recorded_at: converted once
        return last_text
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} given where UTC is required")
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    _last_utc = (value, text)
    return text


_last_utc: tuple[datetime | None, str] = (None, "")


_plans: dict[tuple[str, tuple[str, ...]], _InsertPlan] = {}


def _insert_plan(table: Table, names: tuple[str, ...], dialect: Dialect) -> _InsertPlan:
    key = (table.name, names)
    if key not in _plans:  # a handful of tables and shapes: built once each
        _plans[key] = _InsertPlan(table, names, dialect)
    return _plans[key]


def run_inline(work: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends (it awaits only InlineSession calls) to its result."""
    try:
        work.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    work.close()
    raise RuntimeError("the append path awaited something other than its session: it cannot run inline")


class InlineWriter:
    """Runs `work(session)` in one transaction on a worker thread, over its own sqlite3 connection."""

    def __init__(self, async_url: str, pragmas: Callable[..., None]) -> None:
        # One connection is enough: the collector's append lock lets one append run at a time.
        self.engine: Engine = create_engine(async_url.replace("+aiosqlite", "", 1), pool_size=1, max_overflow=0,
                                            connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(self.engine, "connect", pragmas)

    async def transaction(self, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        return await asyncio.to_thread(self._run, work)

    def _run(self, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        with self.engine.begin() as connection:
            return run_inline(work(InlineSession(connection)))

    def dispose(self) -> None:
        self.engine.dispose()
