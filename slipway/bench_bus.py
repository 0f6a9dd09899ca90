"""`make bench`: what the bus alone costs the metrics-collector, to read its append rate against.

The same backlog the collector drains, fetched and acknowledged through the same puller
(libs.pull_fetch) in batches of the same size, with nothing done in between: the most any consumer in
one Python process can take from JetStream here, whatever it does with the events.
"""

import time

import nats
from nats.js.api import AckPolicy, ConsumerConfig

from contracts import subjects
from libs.pull_fetch import JetStreamPuller

DURABLE = "bench-bus-alone"


async def bus_alone_rate(url: str, count: int, batch: int) -> float:
    """Messages per second: `count` already in the events stream, fetched and acked one by one."""
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_consumer(subjects.EVENTS_STREAM, ConsumerConfig(
            durable_name=DURABLE, name=DURABLE, filter_subject=subjects.EVENTS_WILDCARD, ack_policy=AckPolicy.EXPLICIT))
        puller = await JetStreamPuller(nc, subjects.EVENTS_STREAM, DURABLE).subscribe()
        start, taken = time.perf_counter(), 0
        while taken < count:
            for msg in await puller.fetch(batch, timeout=5.0):
                await msg.ack()
                taken += 1
        elapsed = time.perf_counter() - start
        await puller.unsubscribe()
        return count / elapsed
    finally:
        await nc.close()
