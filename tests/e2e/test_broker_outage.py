"""The nats-server SIGKILLed during a step and started again: the release completes, nothing is lost."""

import asyncio
import signal
import time
from pathlib import Path

import pytest

from contracts import subjects
from contracts.commands import QueryReleases
from examples.build_sample import build as build_sample
from libs.client import publish_event, send_command
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of
from tests.e2e.recovery import TERMINAL, release_events
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = pytest.mark.e2e
OUTAGE_S = 2.0  # how long the broker stays dead: the fault itself, not a wait for anything


async def test_broker_killed_during_a_step_the_release_still_completes(stack: Stack, tmp_path: Path) -> None:
    v1 = build_sample("1.0.0", tmp_path / "artifacts")
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    first = release_for(v1, "1.0.0", strategy={"kind": "all-at-once", "analysis_interval_s": 0.5})
    second = release_for(v2, "2.0.0", strategy={"kind": "canary", "steps": [{"weight": 30}, {"weight": 60}],
                                                "analysis_interval_s": 2.0})
    async with EventWatcher(stack.nats_url) as watcher:
        await publish_event(stack.nats_url, first, ci_of(stack))
        await watcher.wait_type("DeploymentSucceeded", 60, release_id=first.release_id)
        await publish_event(stack.nats_url, second, ci_of(stack))
        await watcher.wait_type("StepStarted", 60, release_id=second.release_id, step_index=0)
    stack.kill_nats()
    await asyncio.sleep(OUTAGE_S)
    restarted = time.monotonic()
    stack.start_nats_again()
    async with EventWatcher(stack.nats_url) as after:  # a new connection: the old one died with the server
        outcome = await after.wait_for(
            lambda _s, b: b.get("release_id") == second.release_id and b.get("type") in TERMINAL, timeout=90
        )
        print(f"\nbroker down {OUTAGE_S:g} s; release ended {time.monotonic() - restarted:.1f} s after the restart")
        assert outcome[0]["type"] == "DeploymentSucceeded", outcome
        assert stack.dead_service() is None

        async def logged() -> bool:
            reply = await send_command(stack.nats_url, subjects.CMD_RELEASE_STATUS,
                                       QueryReleases(release_id=second.release_id))
            return reply.ok and reply.data["releases"][0]["state"] == "succeeded"

        await eventually(logged, timeout=30, what="the collector's status shows the release succeeded")
    seen = {b["event_id"] for _, _, b in release_events(watcher, second.release_id) + release_events(after, second.release_id)}
    steps = [b for _, _, b in release_events(after, second.release_id) if b["type"] == "StepStarted"]
    assert len(seen) >= 5 and len({s["step_index"] for s in steps}) == len(steps)


def test_every_service_stops_cleanly_while_the_broker_is_down(stack: Stack) -> None:
    """An operator stopping slipway during an outage: each service stops on its SIGTERM, with no traceback.

    The dashboard's uvicorn ends by the signal it was sent once it has shut down (-SIGTERM), the others exit 0."""
    stack.kill_nats()
    stack.stop()
    codes = {name: proc.returncode for name, proc in stack.services.items()}
    tracebacks = [name for name in stack.services if "Traceback" in stack.log_path(name).read_text(errors="replace")]
    assert codes == {name: -signal.SIGTERM if name == "dashboard" else 0 for name in codes}, codes
    assert not tracebacks, f"tracebacks in the logs of {tracebacks}"
