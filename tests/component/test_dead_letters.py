"""A handler that keeps failing ends on a dead-letter subject with its reason; the consumer goes on."""

from contracts.events import ReleaseBlocked
from libs.bus import ensure_streams, make_broker
from libs.consume import consume
from libs.client import connected, publish_event, publish_raw
from libs.settings import Settings
from tests.support.poll import eventually
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


HOSTILE = {
    "nested 20,000 deep": b"[" * 20_000 + b"]" * 20_000,
    "a 5,000-digit integer": b'{"release_id": ' + b"9" * 5_000 + b"}",
    "not UTF-8": b"\xff\xfe{}",
}


async def test_payloads_the_framework_cannot_decode_are_dead_lettered_with_their_reason(
    settings: Settings, watcher: EventWatcher
) -> None:
    """Before: FastStream's own JSON decoding raised first, so these were redelivered, then dropped silently."""
    await ensure_streams(settings.nats_url)
    handled: list[str] = []

    async def handle(event: ReleaseBlocked) -> None:
        handled.append(event.release_id)

    broker = make_broker("test", settings)
    consume(broker, settings, subject=ReleaseBlocked.subject, durable=DURABLE, model=ReleaseBlocked, handle=handle)
    async with broker:
        await broker.start()
        for n, payload in enumerate(HOSTILE.values()):
            await publish_raw(settings.nats_url, ReleaseBlocked.subject, payload, {"Nats-Msg-Id": f"hostile-{n}"})
        await publish_event(settings.nats_url, blocked("after-the-hostile-ones"))
        letters = await watcher.wait_for(
            lambda subject, _b: subject == f"slipway.dlq.{DURABLE}", count=len(HOSTILE), timeout=30
        )
        await eventually(lambda: handled, what="the valid event after the hostile ones handled")
    errors = sorted(letter["error"] for letter in letters)
    assert all(letter["deliveries"] == 1 for letter in letters)
    assert any("recursion limit" in e for e in errors), errors
    assert any("number out of range" in e for e in errors), errors
    assert any("Invalid JSON" in e for e in errors), errors
    assert handled == ["after-the-hostile-ones"]


async def test_commands_with_undecodable_payloads_get_an_error_reply(settings: Settings) -> None:
    """Before: the command subscriber failed in decoding and the requester got no reply at all."""
    from contracts.commands import CommandResult, ListFreezes
    from libs.commands import serve_command

    async def answer(_: ListFreezes) -> CommandResult:
        return CommandResult(ok=True, message="fine")

    broker = make_broker("test", settings)
    serve_command(broker, "slipway.cmd.test.list", ListFreezes, answer)
    async with broker:
        await broker.start()
        async with connected(settings.nats_url) as nc:
            replies = {what: CommandResult.model_validate_json((await nc.request("slipway.cmd.test.list", body, timeout=5)).data)
                       for what, body in HOSTILE.items()}
            still = CommandResult.model_validate_json((await nc.request("slipway.cmd.test.list", b"{}", timeout=5)).data)
    for what, reply in replies.items():
        assert not reply.ok and "ListFreezes" in reply.message, (what, reply)
    assert "recursion limit" in replies["nested 20,000 deep"].message
    assert still.ok


async def test_a_command_whose_failure_would_overflow_the_reply_still_gets_one(settings: Settings) -> None:
    from contracts.commands import CommandResult, ListFreezes
    from libs.commands import serve_command

    async def fails_verbosely(_: ListFreezes) -> CommandResult:
        raise RuntimeError("x" * 100_000)

    broker = make_broker("test", settings)
    serve_command(broker, "slipway.cmd.test.list", ListFreezes, fails_verbosely)
    async with broker:
        await broker.start()
        async with connected(settings.nats_url) as nc:
            reply = CommandResult.model_validate_json((await nc.request("slipway.cmd.test.list", b"{}", timeout=5)).data)
    assert not reply.ok and reply.message.startswith("slipway.cmd.test.list failed: RuntimeError: xxx")
    assert reply.message.endswith("characters in all)")
