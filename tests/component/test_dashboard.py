"""The dashboard process's live side against a real nats-server: server-sent events and /metrics over real HTTP,
read with a token signed by a person of the registry the dashboard reads."""

import asyncio
import json
import os
import signal
from datetime import UTC, datetime, timedelta
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest

from contracts.identity import Kind
from libs.bus import ensure_streams
from libs.dashboard_tokens import issue
from libs.settings import Settings
from services.dashboard.address import read_address
from services.dashboard.app import DashboardServer
from tests.component.test_cli import slipway
from tests.support.people import People


@pytest.fixture
async def dashboard(settings: Settings) -> AsyncIterator[DashboardServer]:
    await ensure_streams(settings.nats_url, None)
    server = DashboardServer(settings)
    serving = asyncio.create_task(server.run_until_stopped())
    await asyncio.wait_for(server.ready.wait(), timeout=20)
    try:
        yield server
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=10)


def token_of(people: People, name: str, hours: float = 1) -> str:
    store = people.store
    return issue(f"person:{name}", store.seed(Kind.PERSON, name), timedelta(hours=hours), datetime.now(UTC))


async def publish(nats_url: str, subject: str, body: dict[str, Any] | bytes) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(subject, body if isinstance(body, bytes) else json.dumps(body).encode())
    finally:
        await nc.close()


async def sse_messages(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    kind = ""
    async for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield kind, json.loads(line.removeprefix("data: "))


async def until(messages: AsyncIterator[tuple[str, dict[str, Any]]], wanted: str) -> dict[str, Any]:
    async for kind, data in messages:
        if kind == wanted:
            return data
    raise AssertionError(f"the stream ended before a {wanted} message")


def release_event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": f"01J{kind.upper()[:10]:0<23}", "release_id": "shop-7", "service": "shop",
            "environment": "prod", "occurred_at": "2026-11-01T10:00:00+00:00", **fields}


async def test_a_page_sees_events_and_alerts_as_they_pass_and_metrics_count_them(
    dashboard: DashboardServer, settings: Settings, people: People,
) -> None:
    assert read_address(settings.data_dir) == dashboard.url
    bearer = {"Authorization": f"Bearer {token_of(people, 'sam')}"}
    async with httpx.AsyncClient(base_url=dashboard.url, timeout=10, headers=bearer) as http:
        async with http.stream("GET", "/api/stream") as stream:
            messages = sse_messages(stream.aiter_lines())
            await asyncio.wait_for(until(messages, "hello"), timeout=10)
            await publish(settings.nats_url, "slipway.evt.deploy.step_started",
                          release_event("StepStarted", weight=25, step_index=0, step_count=4))
            # Something that is not an event must not stop the stream.
            await publish(settings.nats_url, "slipway.evt.deploy.step_started", b"\xff not json")
            await publish(settings.nats_url, "slipway.evt.health.step_verdict",
                          release_event("StepVerdict", step_index=0, verdict="pass"))
            await publish(settings.nats_url, "slipway.alert.critical.payments.shop",
                          {"severity": "critical", "summary": "error rate 40%", "team": "payments"})
            started = await asyncio.wait_for(until(messages, "release"), timeout=10)
            assert started["release"]["weight"] == 25 and started["event"]["type"] == "StepStarted"
            judged = await asyncio.wait_for(until(messages, "release"), timeout=10)
            assert [v["verdict"] for v in judged["release"]["verdicts"]] == ["pass"]
            alert = await asyncio.wait_for(until(messages, "alert"), timeout=10)
            assert alert["alert"]["summary"] == "error rate 40%"
        exposition = (await http.get("/metrics")).text
        assert 'slipway_verdicts_total{verdict="pass"} 1.0' in exposition
        assert (await http.get("/api/alerts")).json()["alerts"][0]["severity"] == "critical"
        assert (await http.get("/api/live")).json()["releases"][0]["release_id"] == "shop-7"
        # Nobody answers the collector's queries here: said plainly, not a hang or a crash.
        silent = await http.get("/api/releases")
        assert silent.status_code == 503 and "release_status" in silent.json()["detail"]
        spec = (await http.get("/openapi.json")).json()
        assert {"/api/releases", "/api/audit", "/api/dora", "/api/alerts", "/api/bottlenecks", "/metrics"} <= set(spec["paths"])


async def test_the_api_needs_a_token_of_the_registry_and_a_login_link_sets_a_cookie_the_page_reads_with(
    dashboard: DashboardServer, people: People,
) -> None:
    async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as http:
        anonymous = await http.get("/api/live")
        assert anonymous.status_code == 401 and "no credential" in anonymous.json()["detail"]
        assert (await http.get("/api/stream")).status_code == 401
        assert (await http.get("/metrics")).status_code == 200  # open on loopback: counters, no release data
        assert (await http.get("/")).status_code == 200  # the page itself holds no data
        forged = await http.get("/login", params={"token": token_of(people, "sam")[:-4] + "AAAA"})
        assert forged.status_code == 401 and "bad signature" in forged.json()["detail"]
        assert "slipway_token" not in http.cookies

        code, printed, errors = await slipway("dashboard", "login", "--as", "dev", "--minutes", "5",
                                              data_dir=people.store.directory.parent)
        assert code == 0, errors
        link, token = [line for line in printed.splitlines() if line.startswith(("http", "slw1."))]
        assert link.startswith(f"{dashboard.url}/login?token=") and link.endswith(token)
        bearer = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert bearer.json()["identity"] == "person:dev"

        logged_in = await http.get(link)
        assert logged_in.status_code == 303 and logged_in.headers["location"] == "/"
        cookie = logged_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        me = (await http.get("/api/me")).json()
        assert me["identity"] == "person:dev" and me["teams"] == ["payments"]
        refused = await http.get("/api/audit")
        assert refused.status_code == 403 and "covers every team" in refused.json()["detail"]

        people.store.revoke("person:dev")  # the registry on disk is read again: the cookie stops working
        revoked = await http.get("/api/me")
        assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


async def test_one_token_revoked_from_the_cli_is_refused_with_when_while_the_persons_other_token_reads_on(
    dashboard: DashboardServer, settings: Settings, people: People,
) -> None:
    data_dir = people.store.directory.parent
    issued = []
    for _ in range(2):
        code, printed, errors = await slipway("dashboard", "login", "--as", "dev", data_dir=data_dir)
        assert code == 0, errors
        issued.append(next(line for line in printed.splitlines() if line.startswith("slw1.")))
    kept, ended = ({"Authorization": f"Bearer {token}"} for token in issued)
    async with httpx.AsyncClient(base_url=dashboard.url, timeout=10) as http:
        ended_id = (await http.get("/api/me", headers=ended)).json()["token_id"]
        code, listed, errors = await slipway("dashboard", "tokens", data_dir=data_dir)
        assert code == 0 and ended_id in listed and listed.count("person:dev") == 2, listed + errors
        code, said, errors = await slipway("dashboard", "revoke", ended_id, data_dir=data_dir)
        assert code == 0 and f"token {ended_id} of person:dev revoked at" in said, said + errors
        refused = await http.get("/api/me", headers=ended)
        assert refused.status_code == 401 and f"token {ended_id} of person:dev was revoked at" in refused.json()["detail"]
        assert (await http.get("/login", params={"token": issued[1]})).status_code == 401
        assert (await http.get("/api/me", headers=kept)).json()["identity"] == "person:dev"
        code, listed, _ = await slipway("dashboard", "tokens", data_dir=data_dir)
        assert "revoked at" in listed and "valid" in listed
        code, again, _ = await slipway("dashboard", "revoke", ended_id, data_dir=data_dir)
        assert code == 0 and "already revoked" in again
        code, _, bad = await slipway("dashboard", "revoke", "not-an-id", data_dir=data_dir)
        assert code != 0 and "not a token id" in bad

    # A dashboard started afterwards (a restart) reads the same revocations.
    restarted = DashboardServer(settings)
    serving = asyncio.create_task(restarted.run_until_stopped())
    try:
        await asyncio.wait_for(restarted.ready.wait(), timeout=20)
        async with httpx.AsyncClient(base_url=restarted.url, timeout=10) as http:
            assert (await http.get("/api/me", headers=ended)).status_code == 401
            assert (await http.get("/api/me", headers=kept)).status_code == 200
    finally:
        restarted.should_exit = True
        await asyncio.wait_for(serving, timeout=10)


async def test_the_dashboard_process_says_where_it_listens_and_takes_the_address_away_on_sigterm(
    settings: Settings,
) -> None:
    await ensure_streams(settings.nats_url, None)
    env = {**os.environ, "NATS_URL": settings.nats_url, "SLIPWAY_DATA_DIR": str(settings.data_dir)}
    process = subprocess.Popen([sys.executable, "-m", "services.dashboard"], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    try:
        url = await asyncio.wait_for(_address_of(settings), timeout=30)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            assert (await http.get("/metrics")).status_code == 200
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.to_thread(process.wait), timeout=15)
        assert read_address(settings.data_dir) is None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def _address_of(settings: Settings) -> str:
    while (url := read_address(settings.data_dir)) is None:
        await asyncio.sleep(0.05)  # polling the file the process writes once it serves; wait_for bounds it
    return url
