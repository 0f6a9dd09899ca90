"""The health-watcher judges a step on traffic it observed itself: late events, thin traffic, restarts, retries."""

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest

from contracts.envelope import new_event_id
from contracts.events import StepStarted
from contracts.subjects import DLQ_STREAM, EVENTS_STREAM, STEP_VERDICT
from examples.build_sample import build as build_sample
from libs.bus import ensure_streams
from libs.client import publish_event
from libs.embedded_nats import EmbeddedNats
from libs.settings import Settings
from services.deployer.local.driver import LocalDriver, RouterHandle, stop_all
from services.health_watcher.app import build
from services.health_watcher.handlers import CONSUMER
from tests.component.test_health_watcher import ENV, SERVICE, alert_of, step, verdict_of
from tests.conftest import running
from tests.support.poll import eventually
from tests.support.watch import EventWatcher

REPO = Path(__file__).resolve().parents[2]
SLOW_MS = 150  # one probe at a time, so a window of 0.5 s holds at most four of them


@pytest.fixture
async def router(settings: Settings, tmp_path: Path) -> AsyncIterator[RouterHandle]:
    """Healthy 1.0.0 takes all traffic; healthy but slow 3.0.0 is routed only when asked for by name."""
    run_dir = settings.data_dir / "run"
    driver = LocalDriver(run_dir)
    try:
        handle = await driver.ensure_router(SERVICE, ENV, None)
        healthy = await driver.start_instance(SERVICE, ENV, "1.0.0", build_sample("1.0.0", tmp_path / "dist"))
        slow = await driver.start_instance(
            SERVICE, ENV, "3.0.0", build_sample("3.0.0", tmp_path / "dist", extra_latency_ms=SLOW_MS)
        )
        await driver.set_weights(handle, [(healthy, 100), (slow, 0)])
        yield handle
    finally:
        stop_all(run_dir)


def healthy_step(release_id: str, router: RouterHandle, **changes: object) -> StepStarted:
    return step(release_id, "1.0.0", None, router.url, router.metrics_url).model_copy(
        update={"weight": 100, "min_requests": 10, **changes}
    )


async def test_a_step_announced_late_is_judged_on_traffic_from_when_it_is_observed(
    settings: Settings, watcher: EventWatcher, router: RouterHandle
) -> None:
    late = healthy_step("shop-late", router, occurred_at=datetime.now(UTC) - timedelta(seconds=10))
    async with running(build(settings)):
        await publish_event(settings.nats_url, late)
        [verdict] = await watcher.wait_for(verdict_of(late.release_id))
    assert verdict["verdict"] == "pass", verdict["reasons"]
    assert verdict["requests"] >= late.min_requests


@pytest.mark.parametrize("mode", ["fail", "pause"])
async def test_too_few_requests_extend_the_window_then_conclude_inconclusive_as_configured(
    settings: Settings, watcher: EventWatcher, router: RouterHandle, mode: str
) -> None:
    thin = step("shop-thin", "3.0.0", "1.0.0", router.url, router.metrics_url).model_copy(
        update={"weight": 0, "analysis_interval_s": 0.5, "min_requests": 30}
    )
    patient = settings.model_copy(update={"analysis_max_extensions": 2, "analysis_inconclusive": mode})
    async with running(build(patient)):
        started = time.monotonic()
        await publish_event(settings.nats_url, thin)
        [verdict] = await watcher.wait_for(verdict_of(thin.release_id))
        took = time.monotonic() - started
        [alert] = await watcher.wait_for(alert_of(thin.release_id))

    assert verdict["verdict"] == ("fail" if mode == "fail" else "inconclusive"), verdict["reasons"]
    assert 0 < verdict["requests"] < thin.min_requests
    assert took >= 3 * thin.analysis_interval_s  # the first window and two extensions
    assert verdict["reasons"][0].startswith(
        f"inconclusive: {verdict['requests']} of the 30 requests needed reached the new version in "
    ), verdict["reasons"]
    assert verdict["reasons"][0].endswith("(window extended 2 times)")
    assert f"only {verdict['requests']} requests reached the new version; at least 30 needed" in verdict["reasons"]
    if mode == "pause":
        assert alert["severity"] == "warning"
        assert "a person must decide" in alert["summary"]
    else:
        assert alert["severity"] == "critical"


def analyses_recorded(database: Path, done: bool | None = None) -> int:
    where = "" if done is None else f" WHERE done = {int(done)}"
    try:
        with sqlite3.connect(database) as db:
            return db.execute(f"SELECT count(*) FROM analyses{where}").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def start_watcher_process(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NATS_URL": settings.nats_url, "SLIPWAY_DATA_DIR": str(settings.data_dir)}
    return subprocess.Popen([sys.executable, "-m", "services.health_watcher"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_a_step_whose_watcher_was_killed_is_observed_again_after_the_restart(
    settings: Settings, watcher: EventWatcher, router: RouterHandle
) -> None:
    # Short enough that the original window is over before a restarted process is up.
    first_step = healthy_step("shop-killed", router, analysis_interval_s=1.0, min_requests=20)
    await ensure_streams(settings.nats_url)  # the step is published before the process is up
    process = start_watcher_process(settings)
    try:
        await publish_event(settings.nats_url, first_step)
        await eventually(lambda: analyses_recorded(settings.data_dir / "health-watcher.db"), timeout=20,
                         what="the analysis recorded")
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
        process = start_watcher_process(settings)
        [verdict] = await watcher.wait_for(verdict_of(first_step.release_id), timeout=30)
    finally:
        process.kill()
        await asyncio.to_thread(process.wait, 10)
    assert verdict["verdict"] == "pass", verdict["reasons"]
    assert verdict["requests"] >= first_step.min_requests


async def test_a_second_step_started_for_the_same_release_and_step_is_a_duplicate(
    settings: Settings, watcher: EventWatcher, router: RouterHandle
) -> None:
    original = healthy_step("shop-retried", router)
    again = original.model_copy(update={"event_id": new_event_id()})
    async with running(build(settings)), await nats.connect(settings.nats_url) as nc:
        js = nc.jetstream()
        await publish_event(settings.nats_url, original)
        [verdict] = await watcher.wait_for(verdict_of(original.release_id))
        stored = await js.publish(again.subject, again.model_dump_json().encode(), headers=again.headers(),
                                  stream=EVENTS_STREAM)

        async def duplicate_acknowledged() -> bool:
            info = await js.consumer_info(EVENTS_STREAM, CONSUMER)
            return info.ack_floor.stream_seq >= stored.seq

        await eventually(duplicate_acknowledged, timeout=20, what="the duplicate StepStarted acknowledged")
        dead_letters = (await js.stream_info(DLQ_STREAM)).state.messages
    assert verdict["verdict"] == "pass", verdict["reasons"]
    assert dead_letters == 0
    assert {v["event_id"] for v in watcher.matching(verdict_of(original.release_id))} == {verdict["event_id"]}


async def stored_verdicts(nats_url: str, count: int, timeout: float = 30) -> dict[str, dict]:
    """Verdicts as the stream holds them: a subscriber that lived through the outage may have missed some."""
    async with await nats.connect(nats_url) as nc:
        subscription = await nc.jetstream().subscribe(STEP_VERDICT, ordered_consumer=True)
        found: dict[str, dict] = {}
        while len(found) < count:
            body = json.loads((await subscription.next_msg(timeout=timeout)).data)
            found[body["release_id"]] = body
        return found


async def test_a_broker_outage_during_a_step_delays_verdicts_and_loses_none(
    settings: Settings, nats_server: EmbeddedNats, router: RouterHandle
) -> None:
    database = settings.data_dir / "health-watcher.db"
    during = healthy_step("shop-during-outage", router, analysis_interval_s=2.0)
    async with running(build(settings)):
        await publish_event(settings.nats_url, during)
        await eventually(lambda: analyses_recorded(database), what="the analysis recorded")
        assert nats_server.process is not None
        nats_server.process.kill()
        await asyncio.to_thread(nats_server.process.wait, 10)
        # A step the deployer started while the broker was down reaches the watcher once it is back.
        after = step("shop-after-outage", "3.0.0", "1.0.0", router.url, router.metrics_url).model_copy(
            update={"weight": 0, "analysis_interval_s": 1.0, "min_requests": 3}
        )
        await eventually(lambda: analyses_recorded(database, done=True), what="the first step concluded")
        await asyncio.to_thread(nats_server.start)
        await publish_event(settings.nats_url, after)
        verdicts = await stored_verdicts(settings.nats_url, count=2)
    for release_id in (during.release_id, after.release_id):
        assert verdicts[release_id]["verdict"] == "pass", verdicts[release_id]["reasons"]
