"""Each strategy with real processes and real traffic through the router: a small bounded load generator asks
the service all along; a healthy version ends with all of it, a faulty one leaves it on the stable version."""

import asyncio
import contextlib
import os
import signal
import time
from datetime import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from examples.build_sample import build as build_sample
from libs.client import publish_event
from services.deployer.local.processes import marked_groups
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
TERMINAL = {"DeploymentSucceeded", "RollbackCompleted", "DeploymentFailed"}
TRIGGERS = {"max_error_rate": 0.05, "max_p99_latency_ms": 250.0, "min_requests": 10}


@dataclass
class Load:
    """Requests sent one after another through the router: (HTTP status, the version that served it)."""

    answers: list[tuple[int, str]] = field(default_factory=list)
    at: list[float] = field(default_factory=list)  # when each answer came (time.monotonic())

    def first_served_by(self, version: str) -> float | None:
        return next((at for at, (_, served) in zip(self.at, self.answers) if served == version), None)

    def served_by(self, since: int) -> set[str]:
        return {version for _, version in self.answers[since:]}

    def failures(self) -> list[tuple[int, str]]:
        return [answer for answer in self.answers if answer[0] >= 500]


@contextlib.asynccontextmanager
async def load_on(router_url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Load]:
    load, stop = Load(), asyncio.Event()

    async def send() -> None:
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as http:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = await http.get(f"{router_url}/orders/{n}", headers=headers)
                    load.answers.append((response.status_code, response.headers.get("x-slipway-served-by", "")))
                except httpx.HTTPError:
                    load.answers.append((599, ""))
                load.at.append(time.monotonic())
                await asyncio.sleep(0.01)

    task = asyncio.create_task(send())
    try:
        yield load
    finally:
        stop.set()
        await task


async def traffic_after(load: Load, what: str) -> int:
    """Where the answers stood, once twenty more have come in after that. The load sends one request at a time:
    the one in flight when traffic moved was routed before, and it is left out."""
    mark = len(load.answers) + 1
    await eventually(lambda: len(load.answers) > mark + 20, 10, f"traffic after {what}")
    return mark


async def ship(stack: Stack, watcher: EventWatcher, artifact: Path, version: str, **extra: object) -> dict:
    release = release_for(artifact, version, rollback_triggers=TRIGGERS, **extra)
    await publish_event(stack.nats_url, release, ci_of(stack))
    [outcome] = await watcher.wait_for(
        lambda _s, b: b.get("release_id") == release.release_id and b.get("type") in TERMINAL, 60)
    print_timings(watcher, release.release_id, release.strategy.kind)
    return outcome


def print_timings(watcher: EventWatcher, release_id: str, kind: str) -> None:
    """Approval to all traffic on the new version, and a failing verdict to traffic restored, from event times."""
    def first(match) -> datetime | None:  # noqa: ANN001 - a predicate on an event body
        times = [datetime.fromisoformat(b["occurred_at"]) for b in watcher.matching(
            lambda _s, b: b.get("release_id") == release_id and match(b))]
        return min(times) if times else None

    approved = first(lambda b: b["type"] == "ReleaseApproved")
    all_traffic = first(lambda b: b["type"] == "StepStarted" and b["weight"] == 100)
    succeeded = first(lambda b: b["type"] == "DeploymentSucceeded")
    failed = first(lambda b: b["type"] == "StepVerdict" and b["verdict"] == "fail")
    restored = first(lambda b: b["type"] == "RollbackCompleted")
    figures = []
    if approved and all_traffic:
        figures.append(f"approval to 100%: {(all_traffic - approved).total_seconds() * 1000:.0f} ms")
    if approved and succeeded:
        figures.append(f"approval to DeploymentSucceeded: {(succeeded - approved).total_seconds() * 1000:.0f} ms")
    if failed and restored:
        figures.append(f"failing verdict to traffic restored: {(restored - failed).total_seconds() * 1000:.0f} ms")
    print(f"\n[{kind}] {'; '.join(figures) or 'no figures'}")


def running_versions(stack: Stack) -> set[str]:
    """The versions with an instance process running, from the marks the local driver puts on its processes."""
    return {name.split(".")[3] for name in marked_groups(stack.run_dir).values() if name.startswith("app.")}


async def live_v1(stack: Stack, watcher: EventWatcher, tmp_path: Path) -> str:
    v1 = build_sample("1.0.0", tmp_path / "artifacts")
    first = await ship(stack, watcher, v1, "1.0.0", strategy={"kind": "all-at-once", "analysis_interval_s": 1.0},
                       instances=2)
    assert first["type"] == "DeploymentSucceeded", first
    started = await watcher.wait_type("DeploymentStarted", release_id=first["release_id"])
    return started["router_url"]


async def test_blue_green_healthy_takes_all_traffic_in_one_switch_and_retires_the_warm_pool(
    stack: Stack, tmp_path: Path
) -> None:
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    async with EventWatcher(stack.nats_url) as watcher:
        router_url = await live_v1(stack, watcher, tmp_path)
        async with load_on(router_url) as load:
            outcome = await ship(stack, watcher, v2, "2.0.0", instances=2,
                                 strategy={"kind": "blue-green", "analysis_interval_s": 1.0, "keep_warm_s": 3.0})
            assert outcome["type"] == "DeploymentSucceeded", outcome
            assert running_versions(stack) == {"1_0_0", "2_0_0"}, "the old pool is kept warm after the switch"
            settled = len(load.answers)
            await eventually(lambda: running_versions(stack) == {"2_0_0"}, 20, "the warm pool retired")
            await eventually(lambda: len(load.answers) > settled + 20, 10, "traffic after the retirement")
        assert load.served_by(settled) == {"2.0.0"}
        assert load.failures() == [], "no request failed across the switch and the retirement"
        assert {"1.0.0", "2.0.0"} <= load.served_by(0)


async def test_blue_green_faulty_is_switched_back_to_the_warm_pool(stack: Stack, tmp_path: Path) -> None:
    slow = build_sample("2.0.0", tmp_path / "faulty", extra_latency_ms=600)
    async with EventWatcher(stack.nats_url) as watcher:
        router_url = await live_v1(stack, watcher, tmp_path)
        async with load_on(router_url) as load:
            outcome = await ship(stack, watcher, slow, "2.0.0", instances=2,
                                 strategy={"kind": "blue-green", "analysis_interval_s": 1.0, "keep_warm_s": 3.0})
            assert outcome["type"] == "RollbackCompleted", outcome
            restored = await traffic_after(load, "the rollback")
        assert outcome["restored_version"] == "1.0.0"
        assert load.served_by(restored) == {"1.0.0"}
        assert "2.0.0" in load.served_by(0), "the faulty version had the traffic before it was switched back"
        await eventually(lambda: running_versions(stack) == {"1_0_0"}, 10, "the faulty pool stopped")


async def test_blue_green_failing_its_smoke_test_never_gets_user_traffic(stack: Stack, tmp_path: Path) -> None:
    broken = build_sample("2.0.0", tmp_path / "faulty", error_rate=1.0)
    async with EventWatcher(stack.nats_url) as watcher:
        router_url = await live_v1(stack, watcher, tmp_path)
        async with load_on(router_url) as load:
            outcome = await ship(stack, watcher, broken, "2.0.0",
                                 strategy={"kind": "blue-green", "analysis_interval_s": 1.0})
            after = await traffic_after(load, "the refusal")
        assert outcome["type"] == "DeploymentFailed" and "smoke test of 2.0.0" in outcome["reason"], outcome
        assert load.served_by(0) == {"1.0.0"} and load.failures() == []
        await eventually(lambda: running_versions(stack) == {"1_0_0"}, 10, "the refused pool stopped")


def instances_of(stack: Stack, version: str) -> int:
    return sum(1 for name in marked_groups(stack.run_dir).values()
               if name.startswith("app.") and name.split(".")[3] == version.replace(".", "_"))


ROLLING = {"kind": "rolling", "analysis_interval_s": 1.0, "max_surge": 1, "max_unavailable": 0}


async def test_rolling_healthy_replaces_every_instance_without_a_failed_request(stack: Stack, tmp_path: Path) -> None:
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    async with EventWatcher(stack.nats_url) as watcher:
        router_url = await live_v1(stack, watcher, tmp_path)
        async with load_on(router_url) as load:
            outcome = await ship(stack, watcher, v2, "2.0.0", strategy=ROLLING, instances=2)
            assert outcome["type"] == "DeploymentSucceeded", outcome
            done = await traffic_after(load, "the roll")
        steps = watcher.matching(lambda _s, b: b.get("release_id") == outcome["release_id"]
                                 and b.get("type") == "StepStarted")
        assert sorted({(s["step_index"], s["weight"]) for s in steps}) == [(0, 50), (1, 100)]
        assert load.served_by(done) == {"2.0.0"} and load.failures() == []
        await eventually(lambda: running_versions(stack) == {"2_0_0"}, 10, "the old instances gone")
        assert instances_of(stack, "2.0.0") == 2


async def test_rolling_faulty_stops_at_its_first_batch_and_restores_the_replaced_instance(
    stack: Stack, tmp_path: Path
) -> None:
    slow = build_sample("2.0.0", tmp_path / "faulty", extra_latency_ms=600)
    async with EventWatcher(stack.nats_url) as watcher:
        router_url = await live_v1(stack, watcher, tmp_path)
        async with load_on(router_url) as load:
            outcome = await ship(stack, watcher, slow, "2.0.0", strategy=ROLLING, instances=2)
            assert outcome["type"] == "RollbackCompleted", outcome
            restored = await traffic_after(load, "the rollback")
        assert load.served_by(restored) == {"1.0.0"}
        assert "2.0.0" in load.served_by(0), "the first batch had its share of traffic"
        await eventually(lambda: running_versions(stack) == {"1_0_0"}, 10, "the faulty batch stopped")
        assert instances_of(stack, "1.0.0") == 2


CANARY = {"kind": "canary", "steps": [{"weight": 20}, {"weight": 60}], "analysis_interval_s": 1.0}
IMMUTABLE = {"kind": "immutable", "analysis_interval_s": 1.0}


@pytest.mark.parametrize("strategy", [CANARY, IMMUTABLE], ids=lambda strategy: strategy["kind"])
async def test_a_healthy_version_takes_all_traffic_and_a_faulty_one_gives_it_back(
    stack: Stack, tmp_path: Path, strategy: dict
) -> None:
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    slow = build_sample("3.0.0", tmp_path / "faulty", extra_latency_ms=600)
    async with EventWatcher(stack.nats_url) as watcher:
        router_url = await live_v1(stack, watcher, tmp_path)
        async with load_on(router_url) as load:
            healthy = await ship(stack, watcher, v2, "2.0.0", strategy=strategy, instances=2)
            assert healthy["type"] == "DeploymentSucceeded", healthy
            await eventually(lambda: running_versions(stack) == {"2_0_0"}, 10, "the old pool gone")
            switched = len(load.answers)
            faulty = await ship(stack, watcher, slow, "3.0.0", strategy=strategy, instances=2)
            assert faulty["type"] == "RollbackCompleted", faulty
            restored = await traffic_after(load, "the rollback")
        assert load.served_by(switched) >= {"2.0.0", "3.0.0"}, "the faulty version had traffic before its rollback"
        assert load.served_by(restored) == {"2.0.0"} and load.failures() == []
        await eventually(lambda: running_versions(stack) == {"2_0_0"}, 10, "only 2.0.0 left running")


async def test_a_deployer_killed_mid_rollout_resumes_each_strategy_from_its_saved_plan(
    stack: Stack, tmp_path: Path
) -> None:
    """Killed while a rolling release waits for its first batch's verdict, then while a blue-green release keeps
    its old pool warm: the roll carries on with no instance started twice, and the warm pool is still retired."""
    v2 = build_sample("2.0.0", tmp_path / "artifacts")
    v3 = build_sample("3.0.0", tmp_path / "artifacts")
    deployer = stack.services["deployer"]
    async with EventWatcher(stack.nats_url) as watcher:
        await live_v1(stack, watcher, tmp_path)
        rolling = release_for(v2, "2.0.0", rollback_triggers=TRIGGERS, strategy=ROLLING, instances=2)
        await publish_event(stack.nats_url, rolling, ci_of(stack))
        await watcher.wait_type("StepStarted", 60, release_id=rolling.release_id, step_index=0)
        os.killpg(deployer.pid, signal.SIGKILL)
        await asyncio.to_thread(deployer.wait, 10)
        await asyncio.to_thread(stack.restart, "deployer")
        [rolled] = await watcher.wait_for(
            lambda _s, b: b.get("release_id") == rolling.release_id and b.get("type") in TERMINAL, 60)
        assert rolled["type"] == "DeploymentSucceeded", rolled
        await eventually(lambda: running_versions(stack) == {"2_0_0"}, 10, "1.0.0 replaced")
        assert instances_of(stack, "2.0.0") == 2, "no instance started twice"

        blue_green = {"kind": "blue-green", "analysis_interval_s": 1.0, "keep_warm_s": 4.0}
        switched = await ship(stack, watcher, v3, "3.0.0", strategy=blue_green, instances=2)
        assert switched["type"] == "DeploymentSucceeded", switched
        assert running_versions(stack) == {"2_0_0", "3_0_0"}
        deployer = stack.services["deployer"]
        os.killpg(deployer.pid, signal.SIGKILL)
        await asyncio.to_thread(deployer.wait, 10)
        await asyncio.to_thread(stack.restart, "deployer")
        await eventually(lambda: running_versions(stack) == {"3_0_0"}, 20, "the warm pool retired after the restart")
        assert instances_of(stack, "3.0.0") == 2
