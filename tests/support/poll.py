"""Polling a condition that no event announces (a process exiting, a row appearing), with a deadline."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
INTERVAL_S = 0.05


async def eventually(probe: Callable[[], T | Awaitable[T]], timeout: float = 10.0, what: str = "condition") -> T:
    """Return the first truthy value of `probe()`; fail with `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(INTERVAL_S)


def eventually_sync(probe: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last: {value!r})")
        time.sleep(INTERVAL_S)
    return value
