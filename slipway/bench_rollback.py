"""`make bench`, blue-green rollback while the old pool is warm: a failing verdict after success -> traffic back on
the old version, beside what the same machine takes to start a router and an app bare (what a rollback that had
to start the old version again would wait for), measured in the same run.

    python -m slipway.bench_rollback

The deployer runs in this process on the local target (real router and app processes) against an embedded
nats-server; this process plays the gatekeeper, the health-watcher (verdicts pass at once) and the
rollback-controller (a RollbackRequested the moment it decides).
"""

import asyncio
import hashlib
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from contracts.envelope import new_event_id
from contracts.events import ReleaseApproved, ReleaseRequested, RollbackRequested, StepStarted
from contracts.release import ReleaseSpec
from examples.build_sample import build as build_sample
from libs.bus import ensure_streams
from libs.embedded_nats import EmbeddedNats
from libs.settings import Settings
from services.deployer.app import build
from services.deployer.local.driver import stop_all
from slipway.bench_deployer import Bus, bare_pairs, ms

ROUNDS = 5  # services released twice (1.0.0, then 2.0.0 by blue-green) and switched back
console = Console()


def approved(service: str, version: str, artifact: Path, digest: str, strategy: dict,
             instances: int | None = None) -> ReleaseApproved:
    request = ReleaseRequested(
        event_id=new_event_id(), release_id=f"{service}-{version}-{new_event_id()}", service=service,
        environment="bench", actor="ci:bench", source="ci", version=version, team="bench",
        artifact={"uri": str(artifact), "digest": digest}, commit={"sha": "abc1234", "committed_at": datetime.now(UTC)},
        strategy=strategy, requested_by="ci:bench", instances=instances,
    )
    return ReleaseApproved.caused_by(request, "gatekeeper", release=ReleaseSpec.model_validate(request.model_dump()),
                                     reasons=["bench"])


async def served_by(http: httpx.AsyncClient, router_url: str, version: str, deadline_s: float = 30) -> float:
    """When a request through the router is first answered by `version` (perf_counter seconds)."""
    ends = time.perf_counter() + deadline_s
    while time.perf_counter() < ends:
        try:
            if (await http.get(f"{router_url}/")).headers.get("x-slipway-served-by") == version:
                return time.perf_counter()
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.002)
    raise TimeoutError(f"{router_url} never answered as {version}")


async def one_round(bus: Bus, http: httpx.AsyncClient, n: int, artifacts: dict[str, tuple[Path, str]]
                    ) -> tuple[float, float]:
    """Seconds from the failing verdict to RollbackCompleted, and to the first request the old version answers."""
    service = f"warm{n:02d}"
    first = approved(service, "1.0.0", *artifacts["1.0.0"], {"kind": "all-at-once", "analysis_interval_s": 1.0})
    await bus.publish(first)
    await bus.when("DeploymentSucceeded", first.release_id)
    second = approved(service, "2.0.0", *artifacts["2.0.0"],
                      {"kind": "blue-green", "analysis_interval_s": 1.0, "keep_warm_s": 600.0})
    await bus.publish(second)
    _, started = await bus.when("DeploymentStarted", second.release_id)
    _, step = await bus.when("StepStarted", second.release_id)
    await bus.when("DeploymentSucceeded", second.release_id)
    await served_by(http, started["router_url"], "2.0.0")
    failed_at = datetime.now(UTC)
    clock = time.perf_counter()
    step_event = StepStarted.model_validate(step)
    await bus.publish(RollbackRequested.caused_by(
        step_event, "rollback-controller", deployment_id=second.release_id, bad_version="2.0.0",
        restore_version="1.0.0", reason="bench: a late failing verdict", failed_at=failed_at))
    completed, _ = await bus.when("RollbackCompleted", second.release_id)
    answered = await served_by(http, started["router_url"], "1.0.0")
    return completed - clock, answered - clock


async def run(scratch: Path) -> None:
    artifacts = {}
    for version in ("1.0.0", "2.0.0"):
        path = build_sample(version, scratch / "artifacts" / version)
        artifacts[version] = (path, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())
    with EmbeddedNats(scratch / "nats") as server:
        await ensure_streams(server.url)
        settings = Settings(nats_url=server.url, data_dir=scratch / "local", log_level="WARNING",
                            artifact_dirs=[scratch])
        async with Bus(server.url) as bus, httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
            bus.auto_pass = True
            app = build(settings)
            await app.start()
            try:
                rounds = [await one_round(bus, http, n, artifacts) for n in range(ROUNDS)]
            finally:
                await app.stop()
                stop_all(settings.data_dir / "run")
        bare, _ = await bare_pairs(artifacts["1.0.0"][0], scratch, 1)
        bare += [(await bare_pairs(artifacts["1.0.0"][0], scratch, 1))[0][0] for _ in range(ROUNDS - 1)]
    table = Table(title=f"blue-green rollback while the old pool is warm ({ROUNDS} releases, local target)")
    for column in ("path", "deployer (p50)", "ceiling (same run, p50)", "ceiling path"):
        table.add_column(column)
    table.add_row("failing verdict -> RollbackCompleted (traffic back on the warm pool)",
                  ms(statistics.median(r[0] for r in rounds)), ms(statistics.median(bare)),
                  "a router and an app started bare to readiness: what a cold rollback would wait for")
    table.add_row("failing verdict -> first request answered by the old version", ms(statistics.median(
        r[1] for r in rounds)), "", "")
    console.print(table)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="slipway-bench-rollback-") as scratch:
        asyncio.run(run(Path(scratch)))


if __name__ == "__main__":
    main()
