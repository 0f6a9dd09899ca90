"""A PostgreSQL database of a test's own on 127.0.0.1:5432, made for it and dropped after it.

What an earlier run left in a shared database cannot matter, and tests never see each other's rows.
Where no server answers, the test is skipped and says so.
"""

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

SERVER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@asynccontextmanager
async def own_database() -> AsyncIterator[str]:
    """Yields the URL of a fresh database; skips the test when PostgreSQL is not there."""
    if not postgres_reachable():
        pytest.skip("no PostgreSQL server reachable on 127.0.0.1:5432")
    database = f"slipway_test_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{database}"'))
        yield SERVER_URL.rsplit("/", 1)[0] + f"/{database}"
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()
