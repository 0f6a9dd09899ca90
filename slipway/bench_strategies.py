"""`make bench`, each strategy on the local target (real router and application processes): time from approval to
all traffic on the new version, and from a failing verdict to traffic restored, beside a router and an app started
bare (what any rollout of a new version waits for at least), measured in the same run.

    python -m slipway.bench_strategies

The deployer runs in this process against an embedded nats-server; this process plays the gatekeeper (approvals),
the health-watcher (a verdict the moment a step starts: passing, or failing for the rollback rounds) and the
rollback-controller (a RollbackRequested the moment a verdict fails). Each release runs as two instances over a
stable version of two, so rolling replaces in batches and blue-green and immutable build a whole second pool.
"""

import asyncio
import hashlib
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from rich.console import Console
from rich.table import Table

from contracts.subjects import STEP_STARTED
from contracts.events import ReleaseApproved, RollbackRequested, StepStarted, StepVerdict
from examples.build_sample import build as build_sample
from libs.bus import ensure_streams
from libs.embedded_nats import EmbeddedNats
from libs.settings import Settings
from services.deployer.app import build
from services.deployer.local.driver import stop_all
from slipway.bench_deployer import Bus, bare_pairs, ms
from slipway.bench_rollback import approved

ROUNDS = 3  # per strategy: services released over a stable version, once passing and once failing
INSTANCES = 2
STRATEGIES: dict[str, dict[str, Any]] = {
    "canary 10/50/100%": {"kind": "canary", "steps": [{"weight": 10}, {"weight": 50}, {"weight": 100}],
                          "analysis_interval_s": 1.0},
    "blue-green": {"kind": "blue-green", "analysis_interval_s": 1.0, "keep_warm_s": 0.0},
    "rolling (surge 1)": {"kind": "rolling", "analysis_interval_s": 1.0, "max_surge": 1, "max_unavailable": 0},
    "immutable": {"kind": "immutable", "analysis_interval_s": 1.0},
}
ALL_AT_ONCE = {"kind": "all-at-once", "analysis_interval_s": 1.0}
console = Console()


def approval(service: str, version: str, artifact: tuple[Path, str], strategy: dict[str, Any]) -> ReleaseApproved:
    return approved(service, version, *artifact, strategy, instances=INSTANCES)


class AllTraffic:
    """When each release's new version first has all the traffic (a StepStarted at 100%)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def on_step(self, msg: Any) -> None:  # noqa: ANN401 - a nats-py message
        body = StepStarted.model_validate_json(msg.data)
        if body.weight == 100:
            self.at.setdefault(body.release_id, time.perf_counter())


def failing(step: StepStarted) -> StepVerdict:
    return StepVerdict.caused_by(
        step, "health-watcher", deployment_id=step.deployment_id, step_index=step.step_index, version=step.version,
        stable_version=step.stable_version, team=step.team, verdict="fail", reasons=["bench: error rate 50%"],
        requests=20, errors=10, error_rate=0.5, p99_latency_ms=1.0)


async def one_round(bus: Bus, full: AllTraffic, service: str, strategy: dict[str, Any],
                    artifacts: dict[str, tuple[Path, str]]) -> tuple[float, float]:
    """Seconds from approval to all traffic on 2.0.0 (verdicts passing), and from a failing verdict on 3.0.0's
    first step to RollbackCompleted (traffic back on 2.0.0)."""
    bus.auto_pass = True
    first = approval(service, "1.0.0", artifacts["1.0.0"], ALL_AT_ONCE)
    await bus.publish(first)
    await bus.when("DeploymentSucceeded", first.release_id)
    second = approval(service, "2.0.0", artifacts["2.0.0"], strategy)
    approved_at = time.perf_counter()
    await bus.publish(second)
    await bus.when("DeploymentSucceeded", second.release_id)
    to_all = full.at[second.release_id] - approved_at
    bus.auto_pass = False
    third = approval(service, "3.0.0", artifacts["1.0.0"], strategy)
    await bus.publish(third)
    _, body = await bus.when("StepStarted", third.release_id)
    step = StepStarted.model_validate(body)
    failed_at = time.perf_counter()
    await bus.publish(failing(step))
    await bus.publish(RollbackRequested.caused_by(
        step, "rollback-controller", deployment_id=step.deployment_id, bad_version=step.version,
        restore_version=step.stable_version, reason="bench: error rate 50%", failed_at=datetime.now(UTC)))
    restored, _ = await bus.when("RollbackCompleted", third.release_id)
    return to_all, restored - failed_at


async def run(scratch: Path) -> None:
    artifacts = {}
    for version in ("1.0.0", "2.0.0"):
        path = build_sample(version, scratch / "artifacts" / version)
        artifacts[version] = (path, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())
    figures: dict[str, list[tuple[float, float]]] = {}
    with EmbeddedNats(scratch / "nats") as server:
        await ensure_streams(server.url)
        settings = Settings(nats_url=server.url, data_dir=scratch / "local", log_level="WARNING",
                            artifact_dirs=[scratch])
        full = AllTraffic()
        watcher = await nats.connect(server.url)
        await watcher.subscribe(STEP_STARTED, cb=full.on_step)
        try:
            async with Bus(server.url) as bus:
                app = build(settings)
                await app.start()
                try:
                    for n, (name, strategy) in enumerate(STRATEGIES.items()):
                        figures[name] = [await one_round(bus, full, f"strat{n}r{r}", strategy, artifacts)
                                         for r in range(ROUNDS)]
                finally:
                    await app.stop()
                    stop_all(settings.data_dir / "run")
        finally:
            await watcher.drain()
        bare = [(await bare_pairs(artifacts["1.0.0"][0], scratch, 1))[0][0] for _ in range(ROUNDS)]
    table = Table(title=f"each strategy, local target ({ROUNDS} releases each of {INSTANCES} instances over a stable "
                        "version; verdicts at once)")
    table.caption = (f"ceiling: a router and an app started bare in parallel to readiness, {ms(statistics.median(bare))} "
                     "p50 in the same run (a rollout starts at least that much; a rollback that switches back starts "
                     "nothing)")
    for column in ("strategy", "approval -> all traffic (p50)", "failing verdict -> traffic restored (p50)"):
        table.add_column(column)
    for name, rounds in figures.items():
        table.add_row(name, ms(statistics.median(r[0] for r in rounds)), ms(statistics.median(r[1] for r in rounds)))
    console.print(table)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="slipway-bench-strategies-") as scratch:
        asyncio.run(run(Path(scratch)))


if __name__ == "__main__":
    main()
