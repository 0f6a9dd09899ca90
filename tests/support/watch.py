"""Wait for the events you expect, with a timeout: the only synchronisation tests use."""

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats

from libs.client import current_credentials
from libs.nats_auth import connect_options


class EventWatcher:
    """Records every message on `slipway.>` (events, alerts, dead letters) from the moment it starts."""

    def __init__(self, nats_url: str, credentials: Path | None = None) -> None:
        self.nats_url = nats_url
        # Under authorization, watching everything takes the operator's identity (the e2e stack fixture sets it).
        self.credentials = credentials or current_credentials()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.arrived: list[float] = []  # wall-clock arrival of each message in `seen`
        self._changed = asyncio.Condition()
        self._nc: nats.NATS | None = None

    async def __aenter__(self) -> "EventWatcher":
        self._nc = await nats.connect(self.nats_url, **connect_options(self.credentials))
        await self._nc.subscribe("slipway.>", cb=self._on_message)
        await self._nc.flush()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._nc:
            await self._nc.close()

    async def _on_message(self, msg: Any) -> None:
        try:
            body = json.loads(msg.data)
        except ValueError:
            body = {"raw": msg.data.decode(errors="replace")}
        async with self._changed:
            self.seen.append((msg.subject, body))
            self.arrived.append(time.time())
            self._changed.notify_all()

    def matching(self, predicate: Callable[[str, dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [body for subject, body in self.seen if predicate(subject, body)]

    async def wait_for(
        self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = 20.0, count: int = 1
    ) -> list[dict[str, Any]]:
        async def enough() -> list[dict[str, Any]]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.matching(predicate)) >= count)
                return self.matching(predicate)

        try:
            return await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            kinds = [f"{s}:{b.get('type', '?')}" for s, b in self.seen[-15:]]
            raise AssertionError(f"expected event not seen within {timeout}s; last seen: {kinds}") from None

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until `condition()` holds over what has been seen so far."""

        async def holds() -> None:
            async with self._changed:
                await self._changed.wait_for(condition)

        try:
            await asyncio.wait_for(holds(), timeout)
        except TimeoutError:
            raise AssertionError(f"condition not met within {timeout}s; {len(self.seen)} messages seen") from None

    async def wait_type(self, event_type: str, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        def match(_subject: str, body: dict[str, Any]) -> bool:
            return body.get("type") == event_type and all(body.get(k) == v for k, v in fields.items())

        return (await self.wait_for(match, timeout))[0]
