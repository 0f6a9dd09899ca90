"""`make bench`, the deployer's part: how much time orchestration adds to a release, beside the time the same
machine takes to start the same processes bare, measured in the same run.

    python -m slipway.bench_deployer

The deployer runs in this process against an embedded nats-server; this process plays the gatekeeper
(approvals) and the health-watcher (a passing verdict the moment a step starts), so what is timed is
the deployer alone: approval -> StepStarted and verdict -> DeploymentSucceeded, first deployments of
distinct services, all-at-once.
"""

import asyncio
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from rich.console import Console
from rich.table import Table

from contracts import subjects
from contracts.envelope import Event, new_event_id
from contracts.events import ReleaseApproved, ReleaseRequested, StepStarted, StepVerdict
from contracts.release import ReleaseSpec
from examples.build_sample import build as build_sample
from libs.bus import ensure_streams
from libs.embedded_nats import EmbeddedNats
from libs.settings import Settings
from services.deployer.app import build
from services.deployer.local.admin_auth import TOKEN_ENV
from services.deployer.local.driver import stop_all
from services.deployer.local.processes import free_ports, stop, wait_http_ok
from services.deployer.memory_target import MemoryTarget

SEQUENTIAL = 20  # releases one after another, for latencies
AT_ONCE = 50  # releases requested together, for throughput (each is a router and an application process)
console = Console()


class Bus:
    """One connection: publishes approvals and verdicts, and notes when each event of interest arrives."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.arrived = asyncio.Condition()
        self.auto_pass = False

    async def __aenter__(self) -> "Bus":
        self.nc = await nats.connect(self.url)
        self.js = self.nc.jetstream()
        await self.nc.subscribe("slipway.evt.>", cb=self._on)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.nc.drain()

    async def _on(self, msg: Any) -> None:  # noqa: ANN401 - a nats-py message
        body = json.loads(msg.data)
        self.seen.setdefault((body.get("type", ""), body.get("release_id", "")), (time.perf_counter(), body))
        if self.auto_pass and body.get("type") == "StepStarted":
            asyncio.create_task(self.publish(passing(StepStarted.model_validate(body))))
        async with self.arrived:
            self.arrived.notify_all()

    async def publish(self, event: Event) -> None:
        await self.js.publish(event.address(), event.model_dump_json().encode(), headers=event.headers(),
                              stream=subjects.EVENTS_STREAM, timeout=5)

    async def when(self, kind: str, release_id: str, timeout: float = 60) -> tuple[float, dict[str, Any]]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: (kind, release_id) in self.seen), timeout)
        return self.seen[(kind, release_id)]


def approval(artifact: Path, digest: str, service: str) -> ReleaseApproved:
    request = ReleaseRequested(
        event_id=new_event_id(), release_id=f"{service}-1.0.0-{new_event_id()}", service=service, environment="bench",
        actor="ci:bench", source="ci", version="1.0.0", team="bench", artifact={"uri": str(artifact), "digest": digest},
        commit={"sha": "abc1234", "committed_at": datetime.now(UTC)},
        strategy={"kind": "all-at-once", "analysis_interval_s": 1.0}, requested_by="ci:bench",
    )
    return ReleaseApproved.caused_by(request, "gatekeeper", release=ReleaseSpec.model_validate(request.model_dump()),
                                     reasons=["bench"])


def passing(step: StepStarted) -> StepVerdict:
    return StepVerdict.caused_by(
        step, "health-watcher", deployment_id=step.deployment_id, step_index=step.step_index, version=step.version,
        stable_version=step.stable_version, team=step.team, verdict="pass", reasons=["bench"], requests=20, errors=0,
        error_rate=0.0, p99_latency_ms=1.0)


async def sequential(bus: Bus, artifact: Path, digest: str, prefix: str) -> tuple[list[float], list[float]]:
    """Approval -> StepStarted and verdict -> DeploymentSucceeded of releases one after another, in seconds."""
    to_step, to_success = [], []
    for n in range(SEQUENTIAL):
        approved = approval(artifact, digest, f"{prefix}{n:02d}")
        started = time.perf_counter()
        await bus.publish(approved)
        stepped, body = await bus.when("StepStarted", approved.release_id)
        verdict_at = time.perf_counter()
        await bus.publish(passing(StepStarted.model_validate(body)))
        succeeded, _ = await bus.when("DeploymentSucceeded", approved.release_id)
        to_step.append(stepped - started)
        to_success.append(succeeded - verdict_at)
    return to_step, to_success


async def at_once(bus: Bus, artifact: Path, digest: str) -> float:
    """Releases per second completed with AT_ONCE requested together; the verdicts pass at once."""
    approvals = [approval(artifact, digest, f"load{n:02d}") for n in range(AT_ONCE)]
    bus.auto_pass = True
    started = time.perf_counter()
    await asyncio.gather(*(bus.publish(approved) for approved in approvals))
    await asyncio.gather(*(bus.when("DeploymentSucceeded", approved.release_id, 300) for approved in approvals))
    bus.auto_pass = False
    return AT_ONCE / (time.perf_counter() - started)


async def bare_pair(artifact: Path, scratch: Path, n: int, http: httpx.AsyncClient) -> tuple[float, list[int]]:
    """A router and an application started bare, in parallel, to readiness: seconds, and their pids."""
    router_port, admin_port, app_port = free_ports(3)
    env = {**os.environ, TOKEN_ENV: secrets.token_urlsafe(32)}
    started = time.perf_counter()
    router = subprocess.Popen(
        [sys.executable, "-m", "services.deployer.local.router", "--port", str(router_port), "--admin-port",
         str(admin_port), "--state-file", str(scratch / f"bare-{n}.json")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    app = subprocess.Popen([sys.executable, str(artifact), "--port", str(app_port)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    # Polled the way the deployer polls, so the ceiling is the processes' start and not a costlier poller's.
    for url in (f"http://127.0.0.1:{admin_port}/healthz", f"http://127.0.0.1:{app_port}/healthz"):
        await wait_http_ok(url, 60, client=http)
    return time.perf_counter() - started, [router.pid, app.pid]


async def bare_pairs(artifact: Path, scratch: Path, count: int) -> tuple[list[float], float]:
    """`count` pairs started together: each pair's seconds to readiness, and pairs per second over all."""
    # One client, like the deployer's driver: building one loads a CA bundle (~100 ms of CPU each).
    async with httpx.AsyncClient(trust_env=False, timeout=2.0, verify=False) as http:
        started = time.perf_counter()
        results = await asyncio.gather(*(bare_pair(artifact, scratch, n, http) for n in range(count)))
        rate = count / (time.perf_counter() - started)
    for _, pids in results:
        for pid in pids:
            stop(pid)
    return [seconds for seconds, _ in results], rate


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def run(scratch: Path) -> None:
    artifact = build_sample("1.0.0", scratch / "artifacts")
    digest = "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()
    with EmbeddedNats(scratch / "nats") as server:
        await ensure_streams(server.url)
        table = Table(title=f"deployer bench ({SEQUENTIAL} releases in turn, {AT_ONCE} at once; all-at-once, "
                            "first deployments; verdicts pass at once)")
        for column in ("path", "deployer", "ceiling (same run)", "ceiling path"):
            table.add_column(column)
        async with Bus(server.url) as bus:
            memory = Settings(nats_url=server.url, data_dir=scratch / "memory", log_level="WARNING",
                              artifact_dirs=[scratch])
            app = build(memory, target=MemoryTarget())
            await app.start()
            try:
                to_step, to_success = await sequential(bus, artifact, digest, "mem")
            finally:
                await app.stop()
            overhead = [a + b for a, b in zip(to_step, to_success)]
            table.add_row("orchestration: approval -> StepStarted + verdict -> DeploymentSucceeded, in-memory target "
                          "(p50)", ms(statistics.median(overhead)), "50 ms", "issue 8's target")

            local = Settings(nats_url=server.url, data_dir=scratch / "local", log_level="WARNING",
                             artifact_dirs=[scratch])
            bare = [(await bare_pairs(artifact, scratch, 1))[0][0] for _ in range(5)]  # one pair at a time
            app = build(local)
            await app.start()
            try:
                to_step, to_success = await sequential(bus, artifact, digest, "loc")
                rate = await at_once(bus, artifact, digest)
            finally:
                await app.stop()
                stop_all(local.data_dir / "run")
            bare += [(await bare_pairs(artifact, scratch, 1))[0][0] for _ in range(5)]
            _, bare_rate = await bare_pairs(artifact, scratch, AT_ONCE)
            table.add_row("approval -> StepStarted, local target: router and app started (p50)",
                          ms(statistics.median(to_step)), ms(statistics.median(bare)),
                          "a router and an app started bare in parallel to readiness, one pair at a time (p50)")
            table.add_row("verdict -> DeploymentSucceeded, local target (p50)", ms(statistics.median(to_success)),
                          "", "")
            table.add_row(f"releases completed per second, {AT_ONCE} requested at once, local target",
                          f"{rate:.2f} /s", f"{bare_rate:.2f} /s",
                          f"{AT_ONCE} router+app pairs started bare at once, to readiness")
        console.print(table)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="slipway-bench-deployer-") as scratch:
        asyncio.run(run(Path(scratch)))


if __name__ == "__main__":
    main()
