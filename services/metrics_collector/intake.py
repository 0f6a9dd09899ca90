"""From fetched JetStream messages to the log: read each one as libs.bus reads it, append the batch in
one transaction, acknowledge after the commit.

A message that cannot be read as an event is dead-lettered with the reason, alone. When the
batch's transaction fails, each message is tried on its own, so one event the log cannot take
is retried and then dead-lettered without holding back the others.
"""

import logging

from faststream.nats import NatsBroker
from nats.aio.msg import Msg

from libs.bus import dead_letter_raw, describe, identity_store, receive
from libs.faults import crash_if_planned
from libs.settings import Settings
from services.metrics_collector.handlers import Arrival, Handlers, LoggedEvent, arrival

log = logging.getLogger("slipway.metrics_collector")
COMMITTED = "metrics-collector"  # the crash point's place once a batch is committed (libs.faults)


class Intake:
    def __init__(self, broker: NatsBroker, settings: Settings, handlers: Handlers, durable: str, batch_size: int) -> None:
        self.broker, self.settings, self.handlers, self.durable = broker, settings, handlers, durable
        self.store = identity_store(settings)
        self.batch_size = batch_size
        # A full batch fetched: more is waiting in the stream, and the projector gives way (projector.MAX_LAG_S).
        self.backlog = False

    async def __call__(self, messages: list[Msg]) -> None:
        self.backlog = len(messages) >= self.batch_size
        readable: list[tuple[Msg, Arrival]] = []
        for raw in messages:
            got = receive(self.store, LoggedEvent, raw)
            if isinstance(got.parsed, LoggedEvent):
                readable.append((raw, arrival(got.parsed, raw.subject, got.refused)))
                continue
            reason = got.unreadable or f"invalid LoggedEvent: {describe(got.invalid) if got.invalid else 'not an event'}"
            await dead_letter_raw(self.broker, self.durable, raw, 1, reason)
            await raw.ack()
        if not readable:
            return
        try:
            await self.handlers.append([a for _, a in readable])
        except Exception as exc:  # noqa: BLE001 - find the message that fails, below
            if len(readable) == 1:
                await self._retry_or_give_up(*readable[0], exc)
                return
            log.warning("%s: a batch of %d failed (%s: %s); appending one by one",
                        self.durable, len(readable), type(exc).__name__, exc)
            for raw, one in readable:
                await self._one(raw, one)
            return
        await self._done(readable)

    async def _one(self, raw: Msg, one: Arrival) -> None:
        try:
            await self.handlers.append([one])
        except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered with its reason
            await self._retry_or_give_up(raw, one, exc)
            return
        await self._done([(raw, one)])

    async def _done(self, committed: list[tuple[Msg, Arrival]]) -> None:
        points, data_dir = self.settings.crash_points, self.settings.data_dir
        for raw, one in committed:
            crash_if_planned(points, data_dir, "committed", COMMITTED, one.event.release_id or "")
        for raw, one in committed:
            crash_if_planned(points, data_dir, "handled", self.durable, one.event.release_id or "")
            await raw.ack()

    async def _retry_or_give_up(self, raw: Msg, one: Arrival, exc: Exception) -> None:
        reason, deliveries = f"{type(exc).__name__}: {exc}", raw.metadata.num_delivered
        if deliveries >= self.settings.max_deliver:
            await dead_letter_raw(self.broker, self.durable, raw, deliveries, reason)
            await raw.ack()
            return
        log.warning("%s: event %s failed (delivery %d of %d), retrying: %s",
                    self.durable, one.event.event_id, deliveries, self.settings.max_deliver, reason)
        await raw.nak(delay=min(10.0, 0.5 * 2 ** (deliveries - 1)))
