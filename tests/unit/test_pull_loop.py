"""libs.pull_loop without a server: both TimeoutErrors mean "nothing came", other fetch errors are
retried, a stop during a fetch is immediate, and a stop during a batch lets the batch finish."""

import asyncio
import time
from typing import Any

import nats.errors

from libs.pull_loop import PullLoop


class FakeSubscription:
    """Plays back fetch outcomes in order (an exception is raised, a list returned), then waits forever."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes, self.unsubscribed = outcomes, False

    async def fetch(self, batch: int, timeout: float) -> list[str]:
        if not self.outcomes:
            await asyncio.Event().wait()  # a fetch in flight, as long as the test lets it be
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def unsubscribe(self) -> None:
        self.unsubscribed = True


class FakeConnection:
    def jetstream(self) -> "FakeConnection":
        return self

    async def add_consumer(self, stream: str, config: Any) -> None:
        pass


def fetching_from(loop: PullLoop, subscription: FakeSubscription) -> PullLoop:
    """`loop`, fetching from `subscription` instead of a puller on a server."""
    async def subscribe(nc: Any, inbox_prefix: Any) -> FakeSubscription:
        return subscription

    loop.subscribe = subscribe  # type: ignore[method-assign]
    return loop


def loop_over(subscription: FakeSubscription, handle: Any) -> PullLoop:
    return fetching_from(PullLoop(stream="S", subject="s.>", durable="d", handle=handle), subscription)


async def test_timeouts_of_both_kinds_and_a_failed_fetch_do_not_stop_the_loop() -> None:
    handled: list[list[str]] = []
    done = asyncio.Event()

    async def handle(batch: list[str]) -> None:
        handled.append(batch)
        if len(handled) == 2:
            done.set()

    outcomes = [asyncio.TimeoutError(), ["a"], nats.errors.TimeoutError(), ConnectionError("server gone"), ["b", "c"]]
    subscription = FakeSubscription(outcomes)
    loop = loop_over(subscription, handle)
    await loop.start(FakeConnection())  # type: ignore[arg-type]
    await asyncio.wait_for(done.wait(), 5)
    began = time.monotonic()
    await loop.stop()  # the loop sits in a fetch that never returns
    assert time.monotonic() - began < 0.5
    assert handled == [["a"], ["b", "c"]] and subscription.unsubscribed


async def test_a_stop_during_a_batch_lets_the_batch_finish_and_fetches_nothing_more() -> None:
    started, release, finished = asyncio.Event(), asyncio.Event(), []

    async def handle(batch: list[str]) -> None:
        started.set()
        await release.wait()  # the commit and acks, taking their time
        finished.append(batch)

    subscription = FakeSubscription([["a"], ["b"]])
    loop = loop_over(subscription, handle)
    await loop.start(FakeConnection())  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), 5)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0)  # let stop() see a batch in hand
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert finished == [["a"]] and subscription.outcomes == [["b"]]
