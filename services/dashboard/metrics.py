"""The Prometheus exposition at /metrics, counted from the same live events the page shows.

An own CollectorRegistry, not prometheus_client's global one: two dashboards in one process (tests)
do not share counters, and nothing is registered at import time. Counters start at zero when the
dashboard starts (Prometheus's rate() handles the reset); the event log holds the history.
"""

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.dashboard.progress import OUTCOMES, Progress, duration_s

CONTENT_TYPE = CONTENT_TYPE_LATEST
# From a few seconds (an all-at-once release of a small app) to an hour (a slow canary with approvals).
DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


class DashboardMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deployments = Counter("slipway_deployments", "Deployments that ended, by outcome",
                                   ("service", "environment", "outcome"), registry=self.registry)
        self.rollbacks = Counter("slipway_rollbacks", "Rollbacks completed", ("service", "environment"),
                                 registry=self.registry)
        self.verdicts = Counter("slipway_verdicts", "Step verdicts of the health-watcher", ("verdict",),
                                registry=self.registry)
        self.duration = Histogram("slipway_release_duration_seconds",
                                  "From the release request to DeploymentSucceeded, DeploymentFailed or RollbackCompleted",
                                  ("outcome",), buckets=DURATION_BUCKETS, registry=self.registry)

    def observe(self, event: dict[str, Any], progress: Progress | None) -> None:
        kind = event.get("type")
        service, environment = str(event.get("service") or ""), str(event.get("environment") or "")
        if kind == "StepVerdict":
            self.verdicts.labels(str(event.get("verdict") or "unknown")).inc()
        if kind == "RollbackCompleted":
            self.rollbacks.labels(service, environment).inc()
        if outcome := OUTCOMES.get(str(kind)):
            self.deployments.labels(service, environment, outcome).inc()
            # Only for a release whose request this dashboard saw: a guess at its start would skew the histogram.
            seconds = duration_s(progress.requested_at, event.get("occurred_at")) if progress else None
            if seconds is not None:
                self.duration.labels(outcome).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
