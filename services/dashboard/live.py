"""The live side: ordered, ephemeral consumers on the event and alert streams, new messages only.

Each message is folded into the releases' progress and the Prometheus counters, kept (alerts) for
/api/alerts, and fanned out to every connected page (server-sent events). Nothing here acknowledges
or publishes: an ordered consumer is the server's read-only replay, gone when the dashboard is.
"""

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from contracts import subjects
from services.dashboard.metrics import DashboardMetrics
from services.dashboard.progress import Releases

log = logging.getLogger("slipway.dashboard.live")
ALERTS_KEPT = 200
QUEUE_MAX = 1000  # messages waiting for one page; a page that falls this far behind is told to reload


class LiveFeed:
    def __init__(self, metrics: DashboardMetrics, releases: Releases | None = None) -> None:
        self.metrics, self.releases = metrics, releases or Releases()
        self.alerts: deque[dict[str, Any]] = deque(maxlen=ALERTS_KEPT)
        self._pages: set[asyncio.Queue[dict[str, Any]]] = set()
        self._subscriptions: list[Any] = []

    async def start(self, connection: Client) -> None:
        js = connection.jetstream()
        for stream, subject in ((subjects.EVENTS_STREAM, subjects.EVENTS_WILDCARD),
                                (subjects.ALERTS_STREAM, subjects.ALERTS_WILDCARD)):
            self._subscriptions.append(await js.subscribe(
                subject, stream=stream, cb=self._on_message, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW,
            ))

    async def stop(self) -> None:
        for subscription in self._subscriptions:
            await subscription.unsubscribe()
        self._subscriptions.clear()

    async def _on_message(self, msg: Msg) -> None:
        try:
            body = json.loads(msg.data)
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            log.warning("a message on %s is not a JSON object; the page does not show it", msg.subject)
            return
        self.receive(msg.subject, body)

    def receive(self, subject: str, body: dict[str, Any]) -> None:
        """Fold one message in and tell every page."""
        if subject.startswith("slipway.alert."):
            self.alerts.appendleft(body)
            self._tell({"kind": "alert", "alert": body})
            return
        progress = self.releases.apply(body)
        self.metrics.observe(body, progress)
        about = {name: body.get(name) for name in ("event_id", "type", "occurred_at", "release_id")}
        self._tell({"kind": "release", "event": about, "release": progress.as_data() if progress else None})

    def _tell(self, message: dict[str, Any]) -> None:
        for page in list(self._pages):
            try:
                page.put_nowait(message)
            except asyncio.QueueFull:
                # A page that cannot keep up is told to fetch the state again rather than shown a gap.
                page.get_nowait()
                page.put_nowait({"kind": "resync"})

    @asynccontextmanager
    async def page(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """One connected page's messages, from now until it leaves."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_MAX)
        self._pages.add(queue)
        try:
            yield queue
        finally:
            self._pages.discard(queue)
