"""libs.pull_fetch against a real nats-server: a trickle is handed over as it comes, a backlog in full
batches, an idle fetch times out and the next one still works, the server holds none of the puller's
requests once a fetch has returned, a message sent late to an abandoned request is handed over, and a consumer
that goes away is an error with the server's words."""

import asyncio
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from libs.pull_fetch import JetStreamPuller, PullError
from tests.support.poll import eventually

STREAM, DURABLE = "PULLTEST", "puller"


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    connection = await nats.connect(nats_url)
    js = connection.jetstream()
    await js.add_stream(StreamConfig(name=STREAM, subjects=["pt.>"]))
    await js.add_consumer(STREAM, ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT))
    try:
        yield connection
    finally:
        await connection.close()


async def publish(nc: NATS, count: int) -> None:
    js = nc.jetstream()
    await asyncio.gather(*(js.publish(f"pt.{n}", str(n).encode()) for n in range(count)))


async def waiting_requests(nc: NATS) -> int:
    return (await nc.jetstream().consumer_info(STREAM, DURABLE)).num_waiting or 0


async def test_a_backlog_comes_in_full_batches_and_a_trickle_at_once(nc: NATS) -> None:
    puller = await JetStreamPuller(nc, STREAM, DURABLE).subscribe()
    await publish(nc, 250)
    sizes = []
    while sum(sizes) < 250:
        got = await puller.fetch(100, timeout=5)
        sizes.append(len(got))
        for msg in got:
            await msg.ack()
    assert sizes == [100, 100, 50]

    waiting = asyncio.create_task(puller.fetch(100, timeout=30))
    await eventually(lambda: waiting_requests(nc), what="the fetch's request on the server")
    await publish(nc, 1)
    # Handed over as soon as it came, not when the 30 s request expired.
    got = await asyncio.wait_for(waiting, 10)
    assert [m.data for m in got] == [b"0"]
    await puller.unsubscribe()


async def test_an_idle_fetch_times_out_and_the_next_one_still_delivers(nc: NATS) -> None:
    puller = await JetStreamPuller(nc, STREAM, DURABLE).subscribe()
    with pytest.raises(TimeoutError):
        await puller.fetch(10, timeout=0.3)
    await publish(nc, 3)
    got = await puller.fetch(10, timeout=5)
    assert sorted(m.data for m in got) == [b"0", b"1", b"2"]
    await puller.unsubscribe()


async def test_once_a_fetch_returns_the_server_holds_no_request_of_the_puller(nc: NATS) -> None:
    """So nothing is delivered between fetches, to wait in the inbox while its ack wait runs out."""
    puller = await JetStreamPuller(nc, STREAM, DURABLE).subscribe()
    for _ in range(3):  # a trickle: each fetch waits for one message
        fetching = asyncio.create_task(puller.fetch(100, timeout=30))
        await eventually(lambda: waiting_requests(nc), what="a request on the server")
        await publish(nc, 1)
        got = await asyncio.wait_for(fetching, 10)
        assert len(got) == 1 and await waiting_requests(nc) == 0
        await got[0].ack()
    await publish(nc, 30)  # a backlog: fetched in one go, and the request is over with it
    got = await puller.fetch(100, timeout=5)
    assert len(got) == 30 and await waiting_requests(nc) == 0
    await puller.unsubscribe()


async def test_a_consumer_deleted_under_a_waiting_fetch_is_an_error_saying_so(nc: NATS) -> None:
    puller = await JetStreamPuller(nc, STREAM, DURABLE).subscribe()
    fetching = asyncio.create_task(puller.fetch(10, timeout=30))
    await eventually(lambda: waiting_requests(nc), what="the fetch's request on the server")
    await nc.jetstream().delete_consumer(STREAM, DURABLE)
    with pytest.raises(PullError, match="409"):
        await asyncio.wait_for(fetching, 10)
    await puller.unsubscribe()


async def test_a_message_sent_late_to_an_abandoned_request_is_handed_over_by_the_next_fetch(nc: NATS) -> None:
    """An earlier fetch gave up on its request (deadline passed, or cancelled) just before the server answered it:
    the message is not left in the inbox to wait out its ack wait, nor dropped."""
    puller = await JetStreamPuller(nc, STREAM, DURABLE).subscribe()
    await publish(nc, 1)
    # The abandoned request, as the earlier fetch had sent it; its answer lands in the puller's inbox unasked.
    await nc.publish(puller.request_subject, b'{"batch": 1}', reply=puller.inbox)
    await eventually(lambda: len(puller._arrived) == 1, what="the late message in the inbox")  # noqa: SLF001
    got = await puller.fetch(10, timeout=5)
    assert [m.data for m in got] == [b"0"]
    await got[0].ack()
    await puller.unsubscribe()
