"""`make bench`'s dashboard rows: first paint and bus-event-to-page latency, each beside a ceiling from the same run.

Ceilings: a bare HTML page served by the same uvicorn to the same browser, and the same events' JetStream
publish -> a Python ordered consumer. The dashboard runs in-process beside a metrics-collector, so the
page's first requests are answered by the collector's real queries. The browser reads as a person logged in
(the cookie a login link sets), the dashboard checking its token on every request as it always does.
"""

import asyncio
import json
import logging
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from rich.console import Console
from rich.table import Table

from contracts import subjects
from contracts.events import StepStarted
from contracts.identity import Kind, Role
from libs.dashboard_tokens import issue
from libs.identities import IdentityStore
from libs.settings import Settings
from services.dashboard.auth import COOKIE
from slipway.browser import CHROMIUM, CHROMIUM_ARGS, browser_missing

PAGE_LOADS = 3  # of each page, alternating; the median counts
BARE_PAGE = "<!doctype html><html><head><title>bare</title></head><body><p>bare page</p></body></html>"
PAINTED = "performance.getEntriesByName('first-contentful-paint').length > 0"
FIRST_PAINT = "performance.getEntriesByName('first-contentful-paint')[0].startTime"


@dataclass
class DashboardFigures:
    first_paint_ms: list[float]
    bare_paint_ms: list[float]
    live_ms: list[float]
    bare_load_ms: list[float]
    to_page_ms: list[float]
    to_python_ms: list[float]


def now_ms() -> float:
    return time.time() * 1000  # wall clock: the page stamps arrivals with Date.now() on the same machine


@asynccontextmanager
async def serving(server: uvicorn.Server, task_of: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(task_of)
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def bare_page_server() -> tuple[uvicorn.Server, str]:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.get("/", response_class=HTMLResponse)(lambda: BARE_PAGE)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    server.bare_socket = listening  # type: ignore[attr-defined]
    return server, f"http://127.0.0.1:{listening.getsockname()[1]}"


def logged_in_settings(settings: Settings) -> tuple[Settings, str]:
    """The dashboard's settings with a registry of one reader (an SRE: every team), and that reader's token."""
    store = IdentityStore(settings.data_dir / "dashboard-bench-credentials")
    store.ensure(Kind.PERSON, "bench", roles=(Role.SRE,))
    token = issue("person:bench", store.seed(Kind.PERSON, "bench"), timedelta(hours=1), datetime.now(UTC))
    return settings.model_copy(update={"identity_registry": store.registry_path}), token


async def logged_in(browser: Any, dashboard_url: str, token: str) -> Any:
    """A browser context holding the cookie the login link sets."""
    context = await browser.new_context()
    await context.add_cookies([{"name": COOKIE, "value": token, "url": dashboard_url}])
    return context


async def page_loads(browser: Any, dashboard_url: str, bare_url: str, token: str) -> tuple[list[float], ...]:
    paints, bare_paints, lives, bare_loads = [], [], [], []
    for _ in range(PAGE_LOADS):
        page = await browser.new_page()
        await page.goto(bare_url)
        await page.wait_for_function(PAINTED)
        bare_paints.append(await page.evaluate(FIRST_PAINT))
        bare_loads.append(await page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))
        await page.close()
        page = await (await logged_in(browser, dashboard_url, token)).new_page()
        await page.goto(dashboard_url)
        await page.wait_for_function(f"{PAINTED} && window.slipway && window.slipway.ready !== null")
        paints.append(await page.evaluate(FIRST_PAINT))
        lives.append(await page.evaluate("window.slipway.ready"))
        await page.close()
    return paints, bare_paints, lives, bare_loads


async def event_latencies(settings: Settings, page: Any, count: int) -> tuple[list[float], list[float]]:
    """Publish `count` events one after another; each one's arrival on the page and in a Python ordered consumer."""
    nc = await nats.connect(settings.nats_url)
    arrived: dict[str, float] = {}

    async def on_message(msg: Any) -> None:
        arrived[json.loads(msg.data).get("event_id", "")] = now_ms()

    await nc.jetstream().subscribe(subjects.EVENTS_WILDCARD, stream=subjects.EVENTS_STREAM, cb=on_message,
                                   ordered_consumer=True, deliver_policy=nats.js.api.DeliverPolicy.NEW)
    await nc.flush()
    to_page, to_python = [], []
    try:
        for n in range(count):
            step = StepStarted(
                release_id=f"bench-dashboard-{n}", service="bench", environment="prod", deployment_id=f"d-{n}",
                step_index=0, step_count=1, weight=10, version="1.0.1", stable_version="1.0.0", team="bench",
                analysis_interval_s=1, max_error_rate=0.05, max_p99_latency_ms=500, min_requests=10,
                router_url="http://127.0.0.1:9", metrics_url="http://127.0.0.1:9/metrics", source="bench", actor="bench")
            event_id = step.event_id
            sent = now_ms()
            await nc.jetstream().publish(step.address(), step.model_dump_json().encode(), headers=step.headers(),
                                         stream=subjects.EVENTS_STREAM)
            shown = await page.wait_for_function(
                f"window.slipway.shown.find(e => e.event_id === {event_id!r})?.shown_at", timeout=10_000)
            to_page.append(await shown.json_value() - sent)
            to_python.append(arrived[event_id] - sent)
    finally:
        await nc.close()
    return to_page, to_python


async def dashboard_figures(settings: Settings, count: int) -> DashboardFigures | str:
    """The figures, or why they could not be measured here."""
    if (missing := browser_missing()) is not None:
        return f"skipped: {missing}"
    from playwright.async_api import async_playwright

    from services.dashboard.app import DashboardServer
    from services.metrics_collector.app import build as build_collector

    collector = build_collector(settings)
    await collector.start()
    dashboard_settings, token = logged_in_settings(settings)
    dashboard = DashboardServer(dashboard_settings)
    bare, bare_url = await bare_page_server()
    try:
        async with serving(dashboard, dashboard.run_until_stopped()), \
                serving(bare, bare.serve(sockets=[bare.bare_socket])):  # type: ignore[attr-defined]
            await asyncio.wait_for(dashboard.ready.wait(), 20)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    loads = await page_loads(browser, dashboard.url, bare_url, token)
                    page = await (await logged_in(browser, dashboard.url, token)).new_page()
                    await page.goto(dashboard.url)
                    await page.wait_for_function("window.slipway && window.slipway.ready !== null")
                    to_page, to_python = await event_latencies(settings, page, count)
                finally:
                    await browser.close()
    finally:
        await collector.stop()
    return DashboardFigures(*loads, to_page, to_python)


def dashboard_rows(table: Any, figures: DashboardFigures | str) -> None:
    if isinstance(figures, str):
        table.add_row("dashboard first paint and event -> page latency", figures, "", "")
        return
    median = statistics.median
    table.add_row(f"dashboard first contentful paint (median of {PAGE_LOADS})", f"{median(figures.first_paint_ms):.0f} ms",
                  f"{median(figures.bare_paint_ms):.0f} ms", "a bare HTML page from the same uvicorn, same chromium")
    table.add_row(f"dashboard live: releases and alerts fetched, event stream open (median of {PAGE_LOADS})",
                  f"{median(figures.live_ms):.0f} ms", f"{median(figures.bare_load_ms):.0f} ms",
                  "the bare page's load event")
    table.add_row(f"event on the bus -> shown on the dashboard page (median of {len(figures.to_page_ms)})",
                  f"{median(figures.to_page_ms):.1f} ms", f"{median(figures.to_python_ms):.1f} ms",
                  "the same events: JetStream publish -> a Python ordered consumer")
    table.add_row("event on the bus -> shown on the dashboard page (max)", f"{max(figures.to_page_ms):.1f} ms",
                  f"{max(figures.to_python_ms):.1f} ms", "")


async def run_alone(scratch: Path, count: int) -> None:
    from libs.bus import ensure_streams
    from libs.embedded_nats import EmbeddedNats

    with EmbeddedNats(scratch / "nats") as server:
        settings = Settings(nats_url=server.url, data_dir=scratch / "data", log_level="WARNING")
        await ensure_streams(server.url)
        table = Table(title=f"slipway dashboard bench (embedded nats-server, {count} events)")
        for column in ("path", "slipway", "ceiling (same run)", "ceiling path"):
            table.add_column(column)
        dashboard_rows(table, await dashboard_figures(settings, count))
        Console(width=150).print(table)


def main() -> None:
    """`python -m slipway.bench_dashboard`: the dashboard's rows of `make bench` alone."""
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="slipway-bench-dashboard-") as scratch:
        asyncio.run(run_alone(Path(scratch), 30))


if __name__ == "__main__":
    main()
