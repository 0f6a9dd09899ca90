"""A handler that keeps failing ends on a dead-letter subject with its reason; the consumer goes on."""

from contracts.events import ReleaseBlocked
from libs.bus import consume, ensure_streams, make_broker
from libs.client import publish_event, publish_raw
from libs.settings import Settings
from tests.support.watch import EventWatcher

DURABLE = "test-fragile-consumer"


def blocked(release_id: str) -> ReleaseBlocked:
    return ReleaseBlocked(release_id=release_id, service="shop", environment="prod", source="test", reasons=["x"])


async def test_failing_handler_is_retried_then_dead_lettered_and_others_still_flow(
    settings: Settings, watcher: EventWatcher
) -> None:
    await ensure_streams(settings.nats_url)
    attempts: dict[str, int] = {}
    handled: list[str] = []

    async def handle(event: ReleaseBlocked) -> None:
        attempts[event.release_id] = attempts.get(event.release_id, 0) + 1
        if event.release_id == "poison":
            raise RuntimeError("database said no")
        handled.append(event.release_id)

    broker = make_broker("test", settings)
    consume(broker, settings, subject=ReleaseBlocked.subject, durable=DURABLE, model=ReleaseBlocked, handle=handle)
    async with broker:
        await broker.start()
        await publish_event(settings.nats_url, blocked("poison"))
        await publish_raw(settings.nats_url, ReleaseBlocked.subject, b'{"type": "ReleaseBlocked"}', {"Nats-Msg-Id": "bad-1"})
        await publish_event(settings.nats_url, blocked("fine"))
        letters = await watcher.wait_for(lambda subject, _b: subject == f"slipway.dlq.{DURABLE}", count=2, timeout=30)
    poison = next(letter for letter in letters if "database said no" in letter["error"])
    assert poison["deliveries"] == settings.max_deliver
    assert attempts["poison"] == settings.max_deliver
    assert '"poison"' in poison["payload"]
    invalid = next(letter for letter in letters if letter is not poison)
    assert invalid["deliveries"] == 1 and "release_id: Field required" in invalid["error"]
    assert handled == ["fine"]
