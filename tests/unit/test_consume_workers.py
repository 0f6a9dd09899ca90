"""libs.consume.PullConsumer without a server: with one worker a fetched batch is handled in order before
the next fetch; with more, up to that many messages run at once and a slow one holds back none behind it."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from libs.consume import PullConsumer
from tests.unit.test_pull_loop import FakeConnection, FakeSubscription, fetching_from


def consumer_of(handle_one: Callable[[Any], Awaitable[None]], workers: int, subscription: FakeSubscription) -> PullConsumer:
    consumer = PullConsumer(handle_one, workers=workers, inbox_prefix=None, stream="S", subject="s.>", durable="d")
    fetching_from(consumer.loop, subscription)
    return consumer


async def test_with_one_worker_a_batch_is_handled_in_order_before_the_next_fetch() -> None:
    subscription = FakeSubscription([["a", "b"], ["c"]])
    seen: list[tuple[str, int]] = []  # each message with the fetches still to come when it was handled
    done = asyncio.Event()

    async def handle_one(msg: str) -> None:
        await asyncio.sleep(0)  # a handler that yields, as real ones do
        seen.append((msg, len(subscription.outcomes)))
        if msg == "c":
            done.set()

    consumer = consumer_of(handle_one, workers=1, subscription=subscription)
    await consumer.start(FakeConnection())  # type: ignore[arg-type]
    await asyncio.wait_for(done.wait(), 5)
    await consumer.stop(grace_s=1)
    assert seen == [("a", 1), ("b", 1), ("c", 0)]


async def test_with_several_workers_a_slow_message_holds_back_none_and_no_more_than_that_run_at_once() -> None:
    subscription = FakeSubscription([["slow", "x"], ["y", "z"], ["w"]])
    release, done = asyncio.Event(), asyncio.Event()
    running: set[str] = set()
    peak, finished = [0], []

    async def handle_one(msg: str) -> None:
        running.add(msg)
        peak[0] = max(peak[0], len(running))
        if msg == "slow":
            await release.wait()  # held until everything fetched after it is through
        else:
            await asyncio.sleep(0.01)
        running.discard(msg)
        finished.append(msg)
        if msg == "w":
            release.set()
        if len(finished) == 5:
            done.set()

    consumer = consumer_of(handle_one, workers=2, subscription=subscription)
    await consumer.start(FakeConnection())  # type: ignore[arg-type]
    await asyncio.wait_for(done.wait(), 5)
    await consumer.stop(grace_s=1)
    assert finished[-1] == "slow" and sorted(finished[:-1]) == ["w", "x", "y", "z"]
    assert peak[0] == 2
