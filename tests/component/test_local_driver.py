"""LocalDriver, router and sample app as real processes talking real HTTP on 127.0.0.1."""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from examples.build_sample import build
from services.deployer.local.admin_auth import TOKEN_ENV
from services.deployer.local.driver import LocalDriver, LocalDriverError, RouterHandle, stop_all
from services.deployer.local.processes import free_port, is_alive
from tests.support.poll import eventually, eventually_sync

SERVICE, ENV = "shop", "staging"
SLIPWAY = str(Path(sys.executable).parent / "slipway")


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    await eventually(condition, timeout)


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[LocalDriver]:
    run_dir = tmp_path / "run"
    try:
        yield LocalDriver(run_dir)
    finally:
        stop_all(run_dir)


@pytest.fixture
def artifacts(tmp_path: Path) -> dict[str, Path]:
    return {
        "1.0.0": build("1.0.0", tmp_path / "dist"),
        "2.0.0": build("2.0.0", tmp_path / "dist", error_rate=0.5),
    }


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
        yield http


async def routes_of(client: httpx.AsyncClient, router: RouterHandle) -> list[dict]:
    return (await client.get(f"{router.admin_url}/routes")).json()["backends"]


def bearer(driver: LocalDriver, router: RouterHandle) -> dict[str, str]:
    return {"Authorization": f"Bearer {driver.token_file(router.service, router.environment).read_text()}"}


async def test_weighted_traffic_metrics_adoption_and_router_restart(
    driver: LocalDriver, artifacts: dict[str, Path], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    router = await driver.ensure_router(SERVICE, ENV, None)
    v1 = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"])
    v2 = await driver.start_instance(SERVICE, ENV, "2.0.0", artifacts["2.0.0"])
    await driver.set_weights(router, [(v1, 50), (v2, 50)])
    since = time.time()

    served = Counter()
    for n in range(40):
        response = await client.get(f"{router.url}/orders/{n}?q=1")
        served[response.headers["x-slipway-served-by"]] += 1
        if response.status_code == 200:
            assert response.json() == {"version": response.headers["x-slipway-served-by"],
                                       "path": f"/orders/{n}?q=1", "greeting": "hello"}
    assert set(served) == {"1.0.0", "2.0.0"}
    for version in ("1.0.0", "2.0.0"):  # pinned traffic guarantees enough samples per version
        for _ in range(20):
            pinned = await client.get(f"{router.url}/pilot", headers={"x-slipway-version": version})
            assert pinned.headers["x-slipway-served-by"] == version

    metrics = (await client.get(router.metrics_url, params={"since": since})).json()
    stats = metrics["versions"]
    assert stats["1.0.0"]["requests"] == served["1.0.0"] + 20
    assert stats["1.0.0"]["error_rate"] == 0.0
    assert stats["2.0.0"]["requests"] == served["2.0.0"] + 20
    assert abs(stats["2.0.0"]["error_rate"] - 0.5) <= 0.05
    assert stats["2.0.0"]["p99_ms"] >= stats["2.0.0"]["p50_ms"] > 0
    assert metrics["now"] >= since

    # A live, healthy known handle is adopted, not duplicated.
    assert await driver.ensure_router(SERVICE, ENV, router) == router
    assert await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"], v1) == v1

    os.kill(router.pid, signal.SIGKILL)
    await wait_for(lambda: not driver.is_alive(router))
    restarted = await driver.ensure_router(SERVICE, ENV, router)
    assert restarted.pid != router.pid
    assert (restarted.port, restarted.admin_port) == (router.port, router.admin_port)
    assert [(b["version"], b["weight"]) for b in await routes_of(client, restarted)] == [
        ("1.0.0", 50), ("2.0.0", 50),
    ]
    pinned = await client.get(f"{restarted.url}/again", headers={"x-slipway-version": "1.0.0"})
    assert (pinned.status_code, pinned.headers["x-slipway-served-by"]) == (200, "1.0.0")

    assert stop_all(tmp_path / "run") == 3
    assert not any(driver.is_alive(handle) for handle in (restarted, v1, v2))
    assert not list((tmp_path / "run" / "pids").iterdir())


async def test_router_rejects_bad_routes_and_reports_unavailable_backends(
    driver: LocalDriver, client: httpx.AsyncClient
) -> None:
    router = await driver.ensure_router(SERVICE, ENV, None)
    no_routes = await client.get(f"{router.url}/anything")
    assert no_routes.status_code == 503
    assert "error" in no_routes.json()

    bad = await client.put(f"{router.admin_url}/routes", headers=bearer(driver, router), json={"backends": [
        {"version": "1.0.0", "url": "http://127.0.0.1:1", "weight": 70},
    ]})
    assert bad.status_code == 400
    assert "sum to 100 (or all be 0), got 70" in bad.json()["error"]
    assert await routes_of(client, router) == []

    nothing_listening = f"http://127.0.0.1:{free_port()}"
    await client.put(f"{router.admin_url}/routes", headers=bearer(driver, router), json={"backends": [
        {"version": "9.9.9", "url": nothing_listening, "weight": 100},
    ]})
    since = time.time()
    unreachable = await client.post(f"{router.url}/submit", content=b"payload")
    assert unreachable.status_code == 502
    assert unreachable.headers["x-slipway-served-by"] == "9.9.9"
    stats = (await client.get(router.metrics_url, params={"since": since})).json()["versions"]
    assert stats["9.9.9"] == {**stats["9.9.9"], "requests": 1, "errors": 1, "error_rate": 1.0}


async def test_only_the_deployers_token_changes_routes_and_refusals_are_recorded(
    driver: LocalDriver, artifacts: dict[str, Path], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    router = await driver.ensure_router(SERVICE, ENV, None)
    v1 = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"])
    await driver.set_weights(router, [(v1, 100)])
    token_file = driver.token_file(SERVICE, ENV)
    token = token_file.read_text()
    assert len(token) >= 32
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.parent.stat().st_mode & 0o777 == 0o700
    assert token.encode() not in Path(f"/proc/{router.pid}/cmdline").read_bytes()
    assert f"{TOKEN_ENV}={token}".encode() in Path(f"/proc/{router.pid}/environ").read_bytes()

    takeover = {"backends": [{"version": "6.6.6", "url": "http://127.0.0.1:1", "weight": 100}]}
    guess = "x" * len(token)
    refused = [
        await client.put(f"{router.admin_url}/routes", json=takeover),
        await client.put(f"{router.admin_url}/routes", json=takeover, headers={"Authorization": f"Bearer {guess}"}),
        await client.put(f"{router.admin_url}/routes", json=takeover, headers={"Authorization": f"Basic {token}"}),
        await client.post(f"{router.admin_url}/anything", json=takeover),
    ]
    assert [response.status_code for response in refused] == [401] * 4
    assert [response.json()["error"] for response in refused[:3]] == [
        "refused: no Authorization header: the deployer's bearer token is required",
        "refused: wrong bearer token",
        "refused: Authorization is not a bearer token",
    ]
    assert not any(guess in r.text or token in r.text for r in refused)
    assert await routes_of(client, router) == [{"version": "1.0.0", "urls": [v1.url], "weight": 100}]
    assert (await client.get(f"{router.url}/still")).headers["x-slipway-served-by"] == "1.0.0"

    reported = await driver.admin_refusals(router)
    assert reported.count == 4
    assert [(r.remote, r.reason) for r in reported.recent[:2]] == [
        ("127.0.0.1", "no Authorization header: the deployer's bearer token is required"),
        ("127.0.0.1", "wrong bearer token"),
    ]
    log = (tmp_path / "run" / "logs" / "router.shop.staging.log").read_text()
    assert "refused PUT /routes from 127.0.0.1: wrong bearer token" in log
    assert token not in log and guess not in log

    allowed = await client.put(f"{router.admin_url}/routes", json=takeover, headers=bearer(driver, router))
    assert allowed.status_code == 200
    assert (await driver.admin_refusals(router)).count == 4


async def test_a_router_without_its_token_is_restarted_with_one_on_adoption(
    driver: LocalDriver, artifacts: dict[str, Path], client: httpx.AsyncClient, tmp_path: Path
) -> None:
    router = await driver.ensure_router(SERVICE, ENV, None)
    v1 = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"])
    await driver.set_weights(router, [(v1, 100)])
    old_token = driver.token_file(SERVICE, ENV).read_text()
    # As a router started before tokens existed looks to a restarted deployer: no token file.
    driver.token_file(SERVICE, ENV).unlink()

    adopted = await LocalDriver(tmp_path / "run").ensure_router(SERVICE, ENV, router)
    assert adopted.pid != router.pid and not is_alive(router.pid)
    assert (adopted.port, adopted.admin_port) == (router.port, router.admin_port)
    new_token = driver.token_file(SERVICE, ENV).read_text()
    assert new_token != old_token
    assert [b["version"] for b in await routes_of(client, adopted)] == ["1.0.0"]
    stale = await client.put(f"{adopted.admin_url}/routes", json={"backends": []},
                             headers={"Authorization": f"Bearer {old_token}"})
    assert stale.status_code == 401
    await driver.set_weights(adopted, [(v1, 100)])

    # A router that holds its token is adopted as it is; a dead one comes back with the same token.
    assert await driver.ensure_router(SERVICE, ENV, adopted) == adopted
    os.kill(adopted.pid, signal.SIGKILL)
    await wait_for(lambda: not driver.is_alive(adopted))
    revived = await driver.ensure_router(SERVICE, ENV, adopted)
    assert revived.pid != adopted.pid
    assert driver.token_file(SERVICE, ENV).read_text() == new_token
    await driver.set_weights(revived, [(v1, 100)])


async def test_driver_restarts_dead_instance_on_same_port_and_reports_rejections(
    driver: LocalDriver, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    router = await driver.ensure_router(SERVICE, ENV, None)
    v1 = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"])
    os.kill(v1.pid, signal.SIGKILL)
    await wait_for(lambda: not driver.is_alive(v1))
    restarted = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"], v1)
    assert (restarted.port, driver.is_alive(restarted)) == (v1.port, True)
    assert restarted.pid != v1.pid

    with pytest.raises(LocalDriverError, match="sum to 100"):
        await driver.set_weights(router, [(restarted, 40)])

    await driver.stop_instance(restarted)
    assert not driver.is_alive(restarted)
    assert not (tmp_path / "run" / "pids" / "app.shop.staging.1_0_0.pid").exists()


async def test_instance_that_cannot_start_fails_fast_with_its_log(
    driver: LocalDriver, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit('missing configuration')\n")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="missing configuration"):
        await driver.start_instance(SERVICE, ENV, "0.0.1", broken)
    assert time.monotonic() - started < 10  # did not wait out the 20 s readiness timeout


async def test_processes_nobody_recorded_are_found_and_stopped(
    driver: LocalDriver, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    # A start whose handle was lost (the deployer died before recording it), then a second start of
    # the same version that took over its pid file.
    lost = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"])
    kept = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"])
    router = await driver.ensure_router(SERVICE, ENV, None)
    assert (tmp_path / "run" / "pids" / "app.shop.staging.1_0_0.pid").read_text().strip() == str(kept.pid)

    assert await driver.stop_unrecorded([kept, router]) == [f"app.shop.staging.1_0_0 (pid {lost.pid})"]
    assert not driver.is_alive(lost)
    assert driver.is_alive(kept) and driver.is_alive(router)

    another = await LocalDriver(tmp_path / "run").start_instance(SERVICE, ENV, "2.0.0", artifacts["2.0.0"])
    (tmp_path / "run" / "pids" / "app.shop.staging.2_0_0.pid").unlink()
    assert stop_all(tmp_path / "run") == 3
    assert not any(driver.is_alive(handle) for handle in (kept, router, another))


def test_slipway_down_stops_processes_nobody_recorded(artifacts: dict[str, Path], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    async def start_twice() -> list[int]:
        driver = LocalDriver(data_dir / "run")
        return [(await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"])).pid for _ in range(2)]

    pids = asyncio.run(start_twice())
    try:
        env = {**os.environ, "SLIPWAY_DATA_DIR": str(data_dir)}
        down = subprocess.run([SLIPWAY, "down"], capture_output=True, text=True, timeout=60, env=env)
        assert down.returncode == 0, down.stderr
        assert "stopped 2 deployed workload(s)" in down.stdout
        eventually_sync(lambda: not any(is_alive(pid) for pid in pids), 10, "both instances exiting")
    finally:
        stop_all(data_dir / "run")


async def test_a_router_not_waited_for_boots_while_its_instance_starts_and_is_ready_before_its_first_routes(
    driver: LocalDriver, artifacts: dict[str, Path], client: httpx.AsyncClient
) -> None:
    router = await driver.ensure_router(SERVICE, ENV, None, ready=False)
    v1 = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"])
    await driver.set_weights(router, [(v1, 100)])  # waits for the router, whether or not it answered yet
    assert [(b["version"], b["weight"]) for b in await routes_of(client, router)] == [("1.0.0", 100)]
    assert (await client.get(f"{router.url}/")).headers["x-slipway-served-by"] == "1.0.0"
    assert await driver.ensure_router(SERVICE, ENV, router, ready=False) == router  # booted: adopted as it is


async def test_a_router_not_waited_for_that_never_answers_fails_its_first_use_with_its_log(
    driver: LocalDriver, artifacts: dict[str, Path]
) -> None:
    exited = subprocess.Popen(["true"])
    exited.wait()
    with socket.socket() as taken, socket.socket() as admin_taken:  # its ports are held: it cannot listen
        taken.bind(("127.0.0.1", 0))
        admin_taken.bind(("127.0.0.1", 0))
        dead = RouterHandle(SERVICE, ENV, exited.pid, taken.getsockname()[1], admin_taken.getsockname()[1])
        router = await driver.ensure_router(SERVICE, ENV, dead, ready=False)
        v1 = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"])
        with pytest.raises(TimeoutError, match="failed to become ready"):
            await driver.set_weights(router, [(v1, 100)])
    assert not is_alive(router.pid)


async def test_an_instance_runs_in_its_region_with_its_configuration_and_a_router_can_be_stopped_for_good(
    driver: LocalDriver, artifacts: dict[str, Path], tmp_path: Path
) -> None:
    router = await driver.ensure_router(SERVICE, ENV, None)
    v1 = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"], slot=1, region="us-east",
                                     config={"LOG_LEVEL": "info"})
    assert (v1.region, v1.config, driver.running_config(v1)) == ("us-east", {"LOG_LEVEL": "info"}, {"LOG_LEVEL": "info"})
    await driver.stop_instance(v1)
    assert driver.running_config(v1) is None
    # Started again from its handle: same port and region, the configuration given now.
    again = await driver.start_instance(SERVICE, ENV, "1.0.0", artifacts["1.0.0"], v1, slot=1,
                                        config={"LOG_LEVEL": "debug"})
    assert (again.port, again.region, driver.running_config(again)) == (v1.port, "us-east", {"LOG_LEVEL": "debug"})

    await driver.stop_router(router)
    assert not driver.is_alive(router)
    assert not driver.token_file(SERVICE, ENV).exists()
    assert not list((tmp_path / "run" / "routers").glob("*.json")), "no routes left for a restart to restore"
