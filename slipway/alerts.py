"""`slipway alerts tail`: what an on-call engineer watches, filtered by severity, team and service."""

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from slipway.context import DataDirOption, NatsUrlOption, globals_of, run, say
from slipway.render import alert_line

alerts_app = typer.Typer(help="Watch alerts.", no_args_is_help=True)


async def tail_alerts(
    nats_url: str, subject: str, on_alert: Callable[[dict[str, Any]], None],
    count: int | None = None, timeout: float | None = None, since_start: bool = False,
) -> int:
    """Deliver alerts on `subject` to `on_alert`; returns how many arrived before count/timeout."""
    from nats.js.api import DeliverPolicy

    from contracts.subjects import ALERTS_STREAM
    from libs.bus import ensure_streams
    from libs.client import connected, current_credentials

    async with connected(nats_url) as nc:
        await ensure_streams(nats_url, current_credentials())  # so tailing can start before any service has
        done = asyncio.Event()
        seen = 0

        async def on_message(msg: Any) -> None:
            nonlocal seen
            if done.is_set():
                return
            try:
                body = json.loads(msg.data)
            except ValueError:
                body = {"summary": msg.data.decode(errors="replace")[:200]}
            if not isinstance(body, dict):
                body = {"summary": str(body)[:200]}
            on_alert(body)
            seen += 1
            if count is not None and seen >= count:
                done.set()

        policy = DeliverPolicy.ALL if since_start else DeliverPolicy.NEW
        sub = await nc.jetstream().subscribe(
            subject, stream=ALERTS_STREAM, cb=on_message, ordered_consumer=True, deliver_policy=policy,
        )
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            await sub.unsubscribe()
        return seen


@alerts_app.command("tail")
def tail(
    ctx: typer.Context,
    severity: Annotated[str | None, typer.Option(help="critical | warning | info")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team's alerts")] = None,
    service: Annotated[str | None, typer.Option(help="Only this service's alerts")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many alerts")] = None,
    timeout: Annotated[float | None, typer.Option(min=0, help="Stop after this many seconds")] = None,
    since_start: Annotated[bool, typer.Option("--since-start", help="Replay every stored alert first")] = False,
    nats_url: NatsUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print alerts as they are raised (Ctrl-C to stop)."""
    from contracts.subjects import alert_filter

    url = globals_of(ctx, nats_url, data_dir).nats_url
    subject = alert_filter(severity, team, service)
    say(f"[dim]watching {subject} on {url}" + (" from the start" if since_start else "") + "[/]")
    seen = run(tail_alerts(url, subject, lambda alert: say(alert_line(alert)), count, timeout, since_start), url)
    if count is not None and seen < count:
        say(f"[yellow]timed out:[/] {seen} of {count} alerts within {timeout:g}s")
        raise typer.Exit(1)
