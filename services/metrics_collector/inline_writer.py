"""The append transaction in one thread hop, on SQLite.

Over aiosqlite every awaited statement is a hand-off to the driver's thread and back; an append
runs some twenty of them (dedupe, chain, index, projections), and on a loaded machine those
hand-offs, not SQLite, were most of a batch's time. Here the same use-case code runs in a worker
thread against a plain sqlite3 connection: its `await session.execute(...)` calls go to an
`InlineSession` whose methods finish without ever suspending, so the coroutine is driven to its end
in one go (`run_inline`) and the event loop pays one hop per batch.

PostgreSQL has no synchronous driver installed here (asyncpg only): it keeps the async session.
"""

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

T = TypeVar("T")


class InlineSession:
    """The few AsyncSession methods the append path uses, answered at once by a synchronous Session."""

    def __init__(self, session: Session) -> None:
        self.sync = session

    async def execute(self, statement: Any, params: Any = None) -> Any:
        return self.sync.execute(statement, params)

    async def scalar(self, statement: Any, params: Any = None) -> Any:
        return self.sync.scalar(statement, params)

    async def scalars(self, statement: Any, params: Any = None) -> Any:
        return self.sync.scalars(statement, params)


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
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            return run_inline(work(InlineSession(session)))

    def dispose(self) -> None:
        self.engine.dispose()
