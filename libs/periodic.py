"""A round of checks every few seconds while a service runs: started and stopped with it, outliving a failed round."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("slipway.periodic")


class Every:
    """Runs `checks` every `interval_s` while the service runs; a failed round is logged and the next one comes."""

    def __init__(self, interval_s: float, *checks: Callable[[], Awaitable[None]]) -> None:
        self.interval_s, self.checks = interval_s, checks
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="+".join(c.__qualname__ for c in self.checks))

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                async with asyncio.timeout(self.interval_s):
                    await self._stopping.wait()
                return
            except TimeoutError:
                pass
            for check in self.checks:
                try:
                    await check()
                except Exception:  # noqa: BLE001 - the schedule must outlive a failed round (database busy, ...)
                    log.exception("%s failed; trying again in %ss", check.__qualname__, self.interval_s)
