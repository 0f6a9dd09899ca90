"""Every service SIGKILLed at every point of a release, restarted as `slipway up` does: nothing lost,
nothing done twice, nothing left running, and the time from each kill to the release moving again.

`make chaos` runs the matrix SLIPWAY_CHAOS_ROUNDS times (default 3) and prints the table; `make test`
runs it once.
"""

import asyncio
import os
import time
from pathlib import Path

import pytest

from contracts import subjects
from contracts.commands import QueryReleases
from examples.build_sample import build as build_sample
from libs.client import publish_event, send_command
from services.deployer.local.processes import marked_groups
from slipway.supervisor import SERVICES, Stack
from tests.e2e.conftest import ci_of, operate
from tests.e2e.recovery import KILLS, TERMINAL, Kill, crash_spec, judge, kill_key, release_events, rounds, table
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
ROUND_DEADLINE_S = 120.0
REPEATS = int(os.environ.get("SLIPWAY_CHAOS_ROUNDS", "1"))


def live_instances(run_dir: Path, service: str) -> list[int]:
    """Every app process group the local driver started for `service`, recorded or not."""
    return [pgid for pgid, name in marked_groups(run_dir).items() if name.startswith(f"app.{service}.")]


async def run_round(stack: Stack, watcher: EventWatcher, plans: dict[str, tuple[Kill, object]]) -> None:
    await asyncio.gather(*(publish_event(stack.nats_url, release, ci_of(stack)) for _, release in plans.values()))

    def all_ended() -> bool:
        return all(any(body.get("type") in TERMINAL for _, _, body in release_events(watcher, rid)) for rid in plans)

    deadline = time.monotonic() + ROUND_DEADLINE_S
    while not all_ended():
        if time.monotonic() > deadline:
            raise AssertionError(f"releases {sorted(plans)} not all ended within {ROUND_DEADLINE_S}s")
        await asyncio.to_thread(stack.revive_dead)  # what `slipway up` does with a crashed service
        try:
            await watcher.wait_until(all_ended, timeout=0.3)
        except AssertionError:
            pass  # not yet: look for dead services again


async def test_every_service_killed_at_every_point_recovers(tmp_path: Path) -> None:
    healthy = build_sample("1.0.0", tmp_path / "artifacts")
    faulty = build_sample("1.0.1", tmp_path / "artifacts", error_rate=0.6)
    strategy = {"kind": "all-at-once", "analysis_interval_s": 1.0}
    kills = KILLS * REPEATS
    plans: dict[str, tuple[Kill, object]] = {}
    for n, kill in enumerate(kills):
        artifact, version = (faulty, "1.0.1") if kill.faulty else (healthy, "1.0.0")
        release = release_for(artifact, version, service=f"crash{n:02d}", strategy=strategy)
        plans[release.release_id] = (kill, release)
    keyed = {rid: (kill, release.service, release.version) for rid, (kill, release) in plans.items()}  # type: ignore[attr-defined]
    spec = crash_spec(keyed)
    # Every planned kill is a restart; the budget that stops a flapping stack must not stop this one.
    stack = Stack(tmp_path / "stack", service_env={name: {"SLIPWAY_CRASH_AT": spec} for name in SERVICES},
                  max_restarts=len(kills) + 1)
    stack.start()
    operate(stack)
    try:
        async with EventWatcher(stack.nats_url) as watcher:
            for group in rounds({rid: kill for rid, (kill, _) in plans.items()}):
                await run_round(stack, watcher, {rid: plans[rid] for rid in group})
            outcomes = [judge(watcher, kill, rid, kill_key(kill, rid, service, version), stack.data_dir)
                        for rid, (kill, service, version) in keyed.items()]

            async def audit_gaps() -> dict[str, str]:
                gaps = {}
                for rid in plans:
                    reply = await send_command(stack.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(release_id=rid))
                    seen = len(release_events(watcher, rid))
                    logged = reply.data["releases"][0]["events"] if reply.ok else 0
                    if logged != seen:
                        gaps[rid] = f"{logged} events in the audit trail, {seen} on the bus"
                return gaps

            gaps = await audit_gaps()
            deadline = time.monotonic() + 30
            while gaps and time.monotonic() < deadline:
                await asyncio.sleep(0.5)  # the collector catching up: poll its status, there is no event for it
                gaps = await audit_gaps()
            assert not gaps, f"audit trail incomplete: {gaps}"
        for rid, (kill, release) in plans.items():
            running = live_instances(stack.run_dir, release.service)  # type: ignore[attr-defined]
            expected = 0 if kill.faulty else 1
            if len(running) != expected:
                next(o for o in outcomes if o.release_id == rid).problems.append(
                    f"{len(running)} instances running, expected {expected}")
    finally:
        stack.stop()
    report = table(outcomes)
    print("\n" + report)
    assert not [o for o in outcomes if o.problems], report

