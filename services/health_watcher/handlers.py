"""Use cases of the health-watcher: watch each step for its interval, then give a verdict.

The analysis runs as a task so the consumer is not held for the interval; it is recorded before
it starts, so a restart resumes it, and closed in the same transaction as its verdict.
"""

import asyncio
import logging
from datetime import UTC, datetime

import httpx

from contracts.events import AlertRaised, StepStarted, StepVerdict, Verdict
from contracts.subjects import alert_subject
from libs.runtime import Runtime
from libs.store import Transaction
from services.health_watcher import store
from services.health_watcher.domain import Observed, Triggers, alert_severity, judge, probe_schedule

log = logging.getLogger("slipway.health_watcher")
SOURCE = CONSUMER = "health-watcher"
PIN_HEADER = "x-slipway-version"  # the router's header that sends a request to one version


class Handlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tasks: set[asyncio.Task[None]] = set()

    async def on_step_started(self, step: StepStarted) -> None:
        async def record(tx: Transaction) -> None:
            await store.add(tx.session, step)

        if await self.runtime.process_once(CONSUMER, step, record):
            self._watch(step)

    async def resume(self) -> None:
        async with self.runtime.db.transaction() as tx:
            for step in await store.pending(tx.session):
                log.info("resuming the analysis of %s step %d", step.release_id, step.step_index)
                self._watch(step)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()  # unfinished analyses stay pending and resume at the next start
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _watch(self, step: StepStarted) -> None:
        task = asyncio.create_task(self._analyse(step), name=f"analyse-{step.release_id}-{step.step_index}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _analyse(self, step: StepStarted) -> None:
        window_start = step.occurred_at.timestamp()
        window_end = window_start + step.analysis_interval_s
        try:
            # The router is on loopback: a proxy from the environment must not sit in between.
            async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
                await self._probe(client, step, window_end)
                await asyncio.sleep(max(0.0, window_end - datetime.now(UTC).timestamp()))  # the window itself
                observed, stable = await self._observe(client, step, window_start)
            verdict, reasons = judge(observed, Triggers(step.max_error_rate, step.max_p99_latency_ms, step.min_requests), stable)
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Without evidence a step cannot pass: unreachable or unreadable metrics fail it. Anything
            # escaping here would end the task silently and leave the step without a verdict.
            observed = Observed(0, 0, 0.0, 0.0)
            verdict, reasons = Verdict.FAIL, [f"metrics of {step.version} unavailable: {type(exc).__name__}: {exc}"]
        await self._conclude(step, verdict, reasons, observed)

    async def _probe(self, client: httpx.AsyncClient, step: StepStarted, window_end: float) -> None:
        count, gap = probe_schedule(step.analysis_interval_s, step.min_requests, self.runtime.settings.probe_rate_per_s)
        for _ in range(count):
            if datetime.now(UTC).timestamp() >= window_end:
                break
            try:
                await client.get(f"{step.router_url}/", headers={PIN_HEADER: step.version})
            except httpx.HTTPError:
                pass  # the router records what the user would have seen; a failed probe is in its metrics
            await asyncio.sleep(gap)  # pacing the synthetic traffic, not waiting for an event

    async def _observe(self, client: httpx.AsyncClient, step: StepStarted, since: float) -> tuple[Observed, Observed | None]:
        response = await client.get(step.metrics_url, params={"since": since})
        response.raise_for_status()
        versions = response.json()["versions"]
        return _observed(versions.get(step.version)), (
            _observed(versions[step.stable_version]) if step.stable_version in versions else None
        )

    async def _conclude(self, step: StepStarted, verdict: Verdict, reasons: list[str], observed: Observed) -> None:
        result = StepVerdict.caused_by(
            step, SOURCE, deployment_id=step.deployment_id, step_index=step.step_index, version=step.version,
            stable_version=step.stable_version, team=step.team, verdict=verdict, reasons=reasons,
            requests=observed.requests, errors=observed.errors, error_rate=observed.error_rate,
            p99_latency_ms=observed.p99_ms,
        )
        severity = alert_severity(verdict)
        async with self.runtime.db.transaction() as tx:
            if not await store.finish(tx.session, step):
                return
            await tx.emit(result)
            if severity is not None:
                alert = AlertRaised.caused_by(
                    result, SOURCE, severity=severity, team=step.team,
                    summary=f"{step.service} {step.version} in {step.environment}: step {step.step_index + 1} "
                    f"at {step.weight}% is {verdict.value}: {'; '.join(reasons)}",
                    details={"error_rate": observed.error_rate, "p99_latency_ms": observed.p99_ms,
                             "requests": observed.requests, "weight": step.weight},
                )
                await tx.emit(alert, subject=alert_subject(severity.value, step.team, step.service))
        self.runtime.relay.wake()
        log.info("release %s step %d: %s (%s)", step.release_id, step.step_index, verdict.value, "; ".join(reasons))


def _observed(stats: dict | None) -> Observed:
    if not stats:
        return Observed(0, 0, 0.0, 0.0)
    return Observed(stats["requests"], stats["errors"], stats["error_rate"], stats["p99_ms"])
