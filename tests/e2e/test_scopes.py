"""Each rollout scope with real processes and real traffic through the routers (the bounded load generator of
test_strategies): regional waves over prod's declared regions, and an opt-in pilot group ahead of everyone else."""

from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from slipway.supervisor import Stack
from tests.e2e.test_strategies import load_on, running_versions, ship, traffic_after
from tests.support.poll import eventually
from tests.support.watch import EventWatcher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
ALL_AT_ONCE = {"kind": "all-at-once", "analysis_interval_s": 0.5}
CANARY = {"kind": "canary", "steps": [{"weight": 50}], "analysis_interval_s": 1.0}
REGIONAL = {"kind": "regional", "bake_s": 0.2}
PILOT = {"kind": "pilot", "header": "X-Slipway-Pilot", "cookie": "slipway-pilot", "analysis_interval_s": 1.0}


async def test_regional_waves_go_region_by_region_and_a_faulty_wave_never_reaches_the_next_region(
    stack: Stack, tmp_path: Path
) -> None:
    v1, v2 = build_sample("1.0.0", tmp_path / "artifacts"), build_sample("2.0.0", tmp_path / "artifacts")
    slow = build_sample("3.0.0", tmp_path / "faulty", extra_latency_ms=600)
    async with EventWatcher(stack.nats_url) as watcher:
        first = await ship(stack, watcher, v1, "1.0.0", strategy=ALL_AT_ONCE, scope=REGIONAL)
        assert first["type"] == "DeploymentSucceeded", first
        routers = {step["region"]: step["router_url"] for step in watcher.matching(
            lambda _s, b: b.get("release_id") == first["release_id"] and b.get("type") == "StepStarted")}
        assert list(routers) == ["eu-west", "us-east"] and len(set(routers.values())) == 2, routers

        async with load_on(routers["eu-west"]) as west, load_on(routers["us-east"]) as east:
            healthy = await ship(stack, watcher, v2, "2.0.0", strategy=ALL_AT_ONCE, scope=REGIONAL)
            assert healthy["type"] == "DeploymentSucceeded", healthy
            west_done, east_done = await traffic_after(west, "the waves"), await traffic_after(east, "the waves")
            faulty = await ship(stack, watcher, slow, "3.0.0", strategy=ALL_AT_ONCE, scope=REGIONAL)
            assert (faulty["type"], faulty["regions"]) == ("RollbackCompleted", ["eu-west"]), faulty
            restored = await traffic_after(west, "the rollback")
            east_after = await traffic_after(east, "the rollback")

        assert west.first_served_by("2.0.0") < east.first_served_by("2.0.0"), "eu-west went first"
        assert west.served_by(west_done) >= {"2.0.0", "3.0.0"}, "the faulty wave had eu-west's traffic"
        assert west.served_by(restored) == {"2.0.0"}
        assert east.served_by(east_done) == {"2.0.0"} and east.served_by(east_after) == {"2.0.0"}, \
            "us-east never saw the faulty version"
        assert west.failures() == [] and east.failures() == []
        await eventually(lambda: running_versions(stack) == {"2_0_0"}, 10, "only 2.0.0 left running, in each region")


async def test_a_pilot_group_gets_the_new_version_first_and_a_faulty_one_never_reaches_the_public(
    stack: Stack, tmp_path: Path
) -> None:
    v1, v2 = build_sample("1.0.0", tmp_path / "artifacts"), build_sample("2.0.0", tmp_path / "artifacts")
    slow = build_sample("3.0.0", tmp_path / "faulty", extra_latency_ms=600)
    async with EventWatcher(stack.nats_url) as watcher:
        first = await ship(stack, watcher, v1, "1.0.0", strategy=ALL_AT_ONCE)
        assert first["type"] == "DeploymentSucceeded", first
        router_url = (await watcher.wait_type("DeploymentStarted", release_id=first["release_id"]))["router_url"]

        async with (load_on(router_url) as public, load_on(router_url, {"X-Slipway-Pilot": "1"}) as by_header,
                    load_on(router_url, {"Cookie": "slipway-pilot=yes"}) as by_cookie):
            healthy = await ship(stack, watcher, v2, "2.0.0", strategy=CANARY, scope=PILOT)
            assert healthy["type"] == "DeploymentSucceeded", healthy
            widened = await traffic_after(public, "the widening")
            faulty = await ship(stack, watcher, slow, "3.0.0", strategy=CANARY, scope=PILOT)
            assert faulty["type"] == "RollbackCompleted", faulty
            restored = await traffic_after(by_cookie, "the rollback")
            public_after = await traffic_after(public, "the rollback")

        steps = watcher.matching(lambda _s, b: b.get("release_id") == healthy["release_id"]
                                 and b.get("type") == "StepStarted")
        assert [(s["step_index"], s["weight"], s["pilot"]) for s in steps] == [(0, 0, True), (1, 50, False)]
        assert by_header.first_served_by("2.0.0") < public.first_served_by("2.0.0"), "the pilot group went first"
        assert by_cookie.first_served_by("2.0.0") < public.first_served_by("2.0.0")
        assert "3.0.0" in by_cookie.served_by(widened), "the faulty version reached its pilot group"
        assert public.served_by(widened) == {"2.0.0"} and public.served_by(public_after) == {"2.0.0"}, \
            "the public never saw the faulty version"
        assert by_cookie.served_by(restored) == {"2.0.0"}, "the pilot group is back on the stable version"
        assert public.failures() == []
        await eventually(lambda: running_versions(stack) == {"2_0_0"}, 10, "the faulty pool stopped")
