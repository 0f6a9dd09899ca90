"""Use cases of the health-watcher: watch each step for its interval, then give a verdict.

The analysis runs as a task so the consumer is not held for the interval; it is recorded before
it starts, so a restart resumes it, and closed in the same transaction as its verdict. Its window
opens when this process starts observing, never at a time carried in the event: an event that
arrives late, or an analysis resumed after a restart, is judged on traffic from then on.
"""

import asyncio
import logging
import time

import httpx

from contracts.events import AlertRaised, StepStarted, StepVerdict, Verdict
from contracts.subjects import alert_subject
from libs.runtime import Runtime
from libs.store import Transaction
from services.health_watcher import store
from services.health_watcher.domain import (
    Conclude, Observed, Patience, Routing, Triggers, alert_severity, assess, probe_schedule, routing,
)

log = logging.getLogger("slipway.health_watcher")
SOURCE = CONSUMER = "health-watcher"
PIN_HEADER = "x-slipway-version"  # the router's header that sends a request to one version
# The deployer sets the weights before it announces the step; this only covers a router that is
# slow to answer or a step announced while its weights are changing.
ROUTES_DEADLINE_S = 2.0
ROUTES_RETRY_S = 0.1
HTTP_ERRORS = (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError)


class Handlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the health-watcher's HTTP client is used before start()")
        return self._client

    async def start(self) -> None:
        # The router is on loopback: a proxy from the environment must not sit in between.
        self._client = httpx.AsyncClient(timeout=10.0, trust_env=False)
        async with self.runtime.db.transaction() as tx:
            for step in await store.pending(tx.session):
                log.info("resuming the analysis of %s step %d with a fresh window", step.release_id, step.step_index)
                self._watch(step)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()  # unfinished analyses stay pending and resume at the next start
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def on_step_started(self, step: StepStarted) -> None:
        recorded = False

        async def record(tx: Transaction) -> None:
            nonlocal recorded
            recorded = await store.add(tx.session, step)

        if not await self.runtime.process_once(CONSUMER, step, record):
            return
        if recorded:
            self._watch(step)
        else:
            log.info("release %s step %d is already being analysed: StepStarted %s is a duplicate",
                     step.release_id, step.step_index, step.event_id)

    def _watch(self, step: StepStarted) -> None:
        task = asyncio.create_task(self._analyse(step), name=f"analyse-{step.release_id}-{step.step_index}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(_report_crash)

    async def _analyse(self, step: StepStarted) -> None:
        try:
            verdict, reasons, observed = await self._judge(step)
        except HTTP_ERRORS as exc:
            # Without evidence a step cannot pass: unreachable or unreadable metrics fail it. Anything
            # escaping here would end the task silently and leave the step without a verdict.
            observed = Observed(0, 0, 0.0, 0.0)
            verdict, reasons = Verdict.FAIL, [f"metrics of {step.version} unavailable: {type(exc).__name__}: {exc}"]
        await self._conclude(step, verdict, reasons, observed)

    async def _judge(self, step: StepStarted) -> tuple[Verdict, list[str], Observed]:
        if not await self._routed(step):
            reason = f"the router at {step.router_url} has no backend for {step.version}: it cannot be judged"
            return Verdict.FAIL, [reason], Observed(0, 0, 0.0, 0.0)
        settings = self.runtime.settings
        triggers = Triggers(step.max_error_rate, step.max_p99_latency_ms, step.min_requests)
        patience = Patience(settings.analysis_max_extensions, settings.analysis_inconclusive)
        since, opened = time.time(), time.monotonic()  # the router stamps its samples with wall-clock time
        extensions = 0
        while True:
            await self._probe(step, opened + (extensions + 1) * step.analysis_interval_s)
            observed, stable = await self._observe(step, since)
            outcome = assess(observed, triggers, stable, extensions=extensions,
                             observed_s=time.monotonic() - opened, patience=patience)
            if isinstance(outcome, Conclude):
                return outcome.verdict, outcome.reasons, observed
            log.info("release %s step %d: %s", step.release_id, step.step_index, outcome.reason)
            extensions += 1

    async def _routed(self, step: StepStarted) -> bool:
        """Whether the router routes the new version, given a short while to show the step's weight."""
        url = str(httpx.URL(step.metrics_url).join("routes"))
        deadline = time.monotonic() + ROUTES_DEADLINE_S
        while True:
            try:
                response = await self.client.get(url)
                response.raise_for_status()
                where: Routing | None = routing(response.json(), step.version, step.weight)
            except HTTP_ERRORS:
                if time.monotonic() >= deadline:
                    raise
                where = None
            if where is Routing.WEIGHTED:
                return True
            if time.monotonic() >= deadline:
                if where is Routing.PRESENT:
                    log.warning("release %s step %d: the router gives %s another weight than %d%%; judging it anyway",
                                step.release_id, step.step_index, step.version, step.weight)
                return where is Routing.PRESENT
            await asyncio.sleep(ROUTES_RETRY_S)  # polling the router, which announces nothing

    async def _probe(self, step: StepStarted, window_end: float) -> None:
        """Synthetic traffic to the new version over one interval, then the rest of the interval itself."""
        count, gap = probe_schedule(step.analysis_interval_s, step.min_requests, self.runtime.settings.probe_rate_per_s)
        for _ in range(count):
            if time.monotonic() >= window_end:
                break
            try:
                await self.client.get(f"{step.router_url}/", headers={PIN_HEADER: step.version})
            except httpx.HTTPError:
                pass  # the router records what the user would have seen; a failed probe is in its metrics
            await asyncio.sleep(gap)  # pacing the synthetic traffic, not waiting for an event
        await asyncio.sleep(max(0.0, window_end - time.monotonic()))  # the window itself

    async def _observe(self, step: StepStarted, since: float) -> tuple[Observed, Observed | None]:
        response = await self.client.get(step.metrics_url, params={"since": since})
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


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        # The analysis stays pending in the store and is resumed at the next start.
        log.error("%s crashed and stays pending until the next start: %r", task.get_name(), exc, exc_info=exc)


def _observed(stats: dict | None) -> Observed:
    if not stats:
        return Observed(0, 0, 0.0, 0.0)
    return Observed(stats["requests"], stats["errors"], stats["error_rate"], stats["p99_ms"])
