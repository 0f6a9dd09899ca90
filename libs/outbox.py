"""The relay that publishes committed outbox rows to JetStream, in commit order."""

import asyncio
import logging

from faststream.nats import NatsBroker
from sqlalchemy import select, update

from libs.signing import Signer
from libs.store import Database, now, outbox
from libs.telemetry import attach_trace, detach_trace

log = logging.getLogger("slipway.outbox")


class OutboxRelay:
    def __init__(
        self, db: Database, broker: NatsBroker, signer: Signer | None = None, poll_interval: float = 1.0, batch: int = 100
    ) -> None:
        self.db = db
        self.broker = broker
        # Signed as the bytes leave: the signature covers exactly the subject and payload sent.
        self.signer = signer
        self.poll_interval = poll_interval
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Called after a commit that emitted events, so they go out now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        # A flag rather than Task.cancel(): on Python 3.11 wait_for() can swallow a cancellation
        # that races with the wake-up, leaving the relay running forever.
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task
        # Whatever was committed but not yet published goes out now, or at the next start.
        try:
            await self.publish_pending()
        except Exception as exc:  # noqa: BLE001 - shutting down; rows stay for the next start
            log.warning("outbox rows left for the next start: %s", exc)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            try:
                while await self.publish_pending():
                    pass
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the relay must outlive a broker outage
                failures += 1
                log.warning("outbox publish failed (attempt %d), will retry: %s", failures, exc)
                try:  # back-off that a stop request cuts short
                    async with asyncio.timeout(min(5.0, 0.2 * 2**failures)):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def publish_pending(self) -> int:
        async with self.db.sessions() as session:
            rows = (
                await session.execute(
                    select(outbox).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id).limit(self.batch)
                )
            ).all()
        published: list[int] = []
        try:
            for row in rows:
                token = attach_trace(row.headers)
                payload = row.payload.encode()
                headers = dict(row.headers)
                if self.signer is not None:
                    headers.update(self.signer.headers(row.subject, payload))
                try:
                    await self.broker.publish(payload, row.subject, stream=row.stream, headers=headers, timeout=5.0)
                finally:
                    detach_trace(token)
                published.append(row.id)
        finally:
            # One commit for the rows sent, not one each: fifty releases at once emit hundreds of events. A crash
            # before it sends them again, as it would between one publish and its own commit; consumers
            # de-duplicate by event id, and JetStream by Nats-Msg-Id within its window.
            if published:
                async with self.db.transaction() as tx:  # in turn with the service's other writers
                    await tx.session.execute(update(outbox).where(outbox.c.id.in_(published)).values(published_at=now()))
        return len(rows)
