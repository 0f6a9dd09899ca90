"""The health-watcher alone, judging real traffic through a real router in front of real sample apps."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.events import StepStarted
from examples.build_sample import build as build_sample
from libs.client import publish_event
from libs.settings import Settings
from services.deployer.local.driver import LocalDriver, RouterHandle, stop_all
from services.deployer.local.processes import free_port
from services.health_watcher.app import build
from tests.conftest import running
from tests.support.watch import EventWatcher

SERVICE, ENV, TEAM = "shop", "prod", "payments"
ALERT_SUBJECT = f"slipway.alert.critical.{TEAM}.{SERVICE}"


@pytest.fixture
async def router(settings: Settings, tmp_path: Path) -> AsyncIterator[RouterHandle]:
    """Healthy 1.0.0 takes 90% of traffic, faulty 2.0.0 (every other request fails) 10%."""
    run_dir = settings.data_dir / "run"
    driver = LocalDriver(run_dir)
    try:
        handle = await driver.ensure_router(SERVICE, ENV, None)
        stable = await driver.start_instance(SERVICE, ENV, "1.0.0", build_sample("1.0.0", tmp_path / "dist"))
        faulty = await driver.start_instance(
            SERVICE, ENV, "2.0.0", build_sample("2.0.0", tmp_path / "dist", error_rate=0.5)
        )
        await driver.set_weights(handle, [(stable, 90), (faulty, 10)])
        yield handle
    finally:
        stop_all(run_dir)


def step(release_id: str, version: str, stable_version: str | None, router_url: str, metrics_url: str) -> StepStarted:
    return StepStarted(
        release_id=release_id, service=SERVICE, environment=ENV, actor="ci:test", source="deployer",
        deployment_id=release_id, step_index=0, step_count=2, weight=10, version=version,
        stable_version=stable_version, team=TEAM, analysis_interval_s=1.0, max_error_rate=0.05,
        max_p99_latency_ms=500.0, min_requests=5, router_url=router_url, metrics_url=metrics_url,
    )


def verdict_of(release_id: str):  # noqa: ANN201 - a watcher predicate
    return lambda _s, b: b.get("type") == "StepVerdict" and b.get("release_id") == release_id


def alert_of(release_id: str):  # noqa: ANN201 - a watcher predicate
    return lambda s, b: s.startswith("slipway.alert.") and b.get("release_id") == release_id


async def test_faulty_version_fails_with_an_alert_and_healthy_one_passes(
    settings: Settings, watcher: EventWatcher, router: RouterHandle
) -> None:
    faulty = step("shop-2.0.0", "2.0.0", "1.0.0", router.url, router.metrics_url)
    healthy = step("shop-1.0.0", "1.0.0", None, router.url, router.metrics_url)
    nowhere = f"http://127.0.0.1:{free_port()}"
    blind = step("shop-9.0.0", "9.0.0", "1.0.0", nowhere, f"{nowhere}/metrics")
    async with running(build(settings)):
        await publish_event(settings.nats_url, faulty)
        await publish_event(settings.nats_url, healthy)
        [failed] = await watcher.wait_for(verdict_of(faulty.release_id))
        [passed] = await watcher.wait_for(verdict_of(healthy.release_id))
        [alert] = await watcher.wait_for(alert_of(faulty.release_id))
        # Marker: a verdict emitted after the healthy one; an alert for it would have come before.
        await publish_event(settings.nats_url, blind)
        [unavailable] = await watcher.wait_for(verdict_of(blind.release_id))
        await watcher.wait_for(alert_of(blind.release_id))

    assert failed["verdict"] == "fail"
    assert failed["causation_id"] == faulty.event_id
    assert failed["requests"] >= faulty.min_requests
    assert 0.4 <= failed["error_rate"] <= 0.6
    assert failed["errors"] == round(failed["error_rate"] * failed["requests"])
    assert any(
        f"error rate {failed['error_rate']:.1%} exceeds 5.0% ({failed['errors']}/{failed['requests']})" in reason
        for reason in failed["reasons"]
    ), failed["reasons"]

    [(subject, alert_body)] = [(s, b) for s, b in watcher.seen if alert_of(faulty.release_id)(s, b)]
    assert subject == ALERT_SUBJECT
    assert alert["severity"] == "critical" and alert["team"] == TEAM
    assert "2.0.0" in alert["summary"] and "fail" in alert["summary"]
    assert alert["details"]["error_rate"] == failed["error_rate"]
    assert alert_body["causation_id"] == failed["event_id"]

    assert passed["verdict"] == "pass", passed["reasons"]
    assert passed["errors"] == 0 and passed["requests"] >= healthy.min_requests
    assert "within limits" in passed["reasons"][0]
    assert watcher.matching(alert_of(healthy.release_id)) == []

    assert unavailable["verdict"] == "fail"
    assert unavailable["requests"] == 0
    assert "metrics of 9.0.0 unavailable" in unavailable["reasons"][0]


async def test_metrics_that_make_no_sense_fail_the_step_instead_of_stalling_it(
    settings: Settings, watcher: EventWatcher, router: RouterHandle
) -> None:
    # The admin /healthz answers 200 with JSON, but not with metrics.
    confused = step("shop-2.0.1", "1.0.0", None, router.url, router.health_url)
    async with running(build(settings)):
        await publish_event(settings.nats_url, confused)
        [verdict] = await watcher.wait_for(verdict_of(confused.release_id), timeout=10)
    assert verdict["verdict"] == "fail"
    assert "metrics of 1.0.0 unavailable" in verdict["reasons"][0]
