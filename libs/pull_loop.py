"""A durable JetStream pull consumer that hands over whole batches, with a lifecycle of its own.

Its fetches go through libs.pull_fetch (one pull request at a time, no task per message), not nats-py's
`fetch`, which spent most of the client's time per message.

FastStream 0.7.8's batch pull catches `nats.errors.TimeoutError` while nats-py 2.16's fetch
raises the builtin `asyncio.TimeoutError` when nothing arrives: the error escapes its fill loop
and the subscriber falls silent. This loop owns its fetches instead:

- an empty fetch (either TimeoutError) just fetches again, so an idle period of any length is fine;
- any other fetch error (the server restarting, the connection reconnecting) is logged and retried
  after a short back-off; nats-py re-subscribes the pull inbox after a reconnect;
- `stop()` cancels a fetch in flight at once, but lets a batch being handled finish (its commit
  and acks), so stopping takes at most one batch's handling time, never a fetch timeout.

Messages of a cancelled fetch were never handed over or acknowledged: JetStream redelivers them
after the ack wait.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from libs.pull_fetch import JetStreamPuller

log = logging.getLogger("slipway.pull_loop")

BatchHandler = Callable[[list[Msg]], Awaitable[None]]
RETRY_S = 0.5  # back-off after a failed fetch (server down, reconnecting)


class PullLoop:
    def __init__(
        self,
        *,
        stream: str,
        subject: str,
        durable: str,
        handle: BatchHandler,
        batch_size: int = 100,
        fetch_timeout_s: float = 1.0,
        max_deliver: int = 5,
        ack_wait_s: float = 30.0,
    ) -> None:
        self.stream, self.subject, self.durable = stream, subject, durable
        self.handle, self.batch_size, self.fetch_timeout_s = handle, batch_size, fetch_timeout_s
        self.config = ConsumerConfig(
            durable_name=durable, name=durable, filter_subject=subject, ack_policy=AckPolicy.EXPLICIT,
            max_deliver=max_deliver, ack_wait=ack_wait_s,
        )
        self._task: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self._stopping = asyncio.Event()
        self._fetching = False

    async def start(self, nc: NATS, inbox_prefix: bytes | None = None) -> None:
        """Create or update the durable, bind to it, and start pulling (the connection must be up).

        `inbox_prefix`: where pull replies come, when the server lets this identity read only its own inboxes.
        """
        await nc.jetstream().add_consumer(self.stream, self.config)  # create-or-update: the config in code wins
        subscription = await self.subscribe(nc, inbox_prefix)
        self._stopping.clear()
        self._subscription = subscription
        self._task = asyncio.create_task(self._run(subscription), name=f"pull-loop {self.durable}")

    async def subscribe(self, nc: NATS, inbox_prefix: bytes | None) -> Any:
        """What the loop fetches from: a puller on the durable (tests put a fake in its place)."""
        return await JetStreamPuller(nc, self.stream, self.durable, inbox_prefix).subscribe()

    async def stop(self, grace_s: float = 15.0) -> None:
        """Stop pulling; a batch in hand gets up to `grace_s` to finish before it is cancelled too."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        if self._fetching:
            task.cancel()
        _, pending = await asyncio.wait({task}, timeout=grace_s)
        if pending:
            log.warning("%s: the batch in hand did not finish within %.0f s; cancelled", self.durable, grace_s)
            task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        # Unsubscribed here, the pull inbox is not left to the connection's drain, which would wait
        # out its whole timeout on the messages of a cancelled fetch.
        subscription, self._subscription = self._subscription, None
        with suppress(Exception):  # a connection already closed has nothing left to unsubscribe
            await subscription.unsubscribe()

    async def _run(self, subscription: Any) -> None:
        while not self._stopping.is_set():
            self._fetching = True
            try:
                messages = await subscription.fetch(self.batch_size, timeout=self.fetch_timeout_s)
            except TimeoutError:  # asyncio.TimeoutError and nats.errors.TimeoutError alike: nothing came
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the server went away or the connection is reconnecting
                log.warning("%s: fetch failed (%s: %s); retrying", self.durable, type(exc).__name__, exc)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), RETRY_S)
                continue
            finally:
                self._fetching = False
            try:
                await self.handle(messages)
            except Exception:  # noqa: BLE001 - unacked messages come back after the ack wait
                log.exception("%s: a batch of %d failed; it is redelivered", self.durable, len(messages))
