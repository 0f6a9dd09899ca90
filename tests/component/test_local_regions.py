"""Regional routers and pools on the local driver, across deployer restarts: real processes, real NATS, real SQLite."""

import os
import signal
from pathlib import Path

import httpx

from libs.client import publish_event
from libs.settings import Settings
from libs.store import Database
from services.deployer import store
from services.deployer.app import build
from services.deployer.handlers import REGION_SLOTS
from services.deployer.local import processes
from services.deployer.local.driver import InstanceHandle, RouterHandle
from services.deployer.local.target import as_instance, as_router
from tests.component import test_deployer
from tests.component.test_deployer import served_by, until_dead
from tests.component.test_deployer_plans import pass_steps
from tests.conftest import running
from tests.support.deployer_events import approve
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

# The local deployer tests' fixtures: built sample artifacts, an HTTP client, and no process left behind.
artifacts, http, no_leftover_processes = test_deployer.artifacts, test_deployer.http, test_deployer.no_leftover_processes
REGIONAL = {"kind": "regional", "bake_s": 0.1}


async def by_region(settings: Settings) -> tuple[dict[str, RouterHandle], dict[int, InstanceHandle]]:
    """The routers the deployer recorded, by region, and its instances by slot."""
    db = Database(settings.database_url_for("deployer"))
    try:
        async with db.transaction() as tx:
            routers = {region: as_router(h) for region, h in (await store.routers_of(tx.session, "shop", "prod")).items()}
            instances = {i.slot: as_instance(i.handle) for i in await store.all_instances(tx.session)}
    finally:
        await db.dispose()
    return routers, instances


async def test_each_region_gets_its_router_and_pool_and_a_restarted_deployer_adopts_them_and_revives_the_dead(
    settings: Settings, watcher: EventWatcher, artifacts: dict[str, Path], http: httpx.AsyncClient
) -> None:
    async with running(build(settings)):
        approved = approve(release_for(artifacts["1.0.0"], "1.0.0", scope=REGIONAL))
        await publish_event(settings.nats_url, approved)
        assert (await pass_steps(settings, watcher, approved.release_id))["type"] == "DeploymentSucceeded"
    routers, instances = await by_region(settings)
    assert sorted(routers) == ["eu-west", "us-east"] and routers["us-east"].region == "us-east"
    assert len({router.port for router in routers.values()}) == 2
    assert {slot: i.region for slot, i in instances.items()} == {0: "eu-west", REGION_SLOTS: "us-east"}
    east = instances[REGION_SLOTS]
    os.kill(east.pid, signal.SIGKILL)  # dies while no deployer watches it
    await until_dead(east.pid)

    async with running(build(settings)):
        adopted, restarted = await by_region(settings)
        assert adopted == routers, "both regions' routers adopted as they run"
        revived = restarted[REGION_SLOTS]
        assert (revived.region, revived.port) == ("us-east", east.port) and revived.pid != east.pid
        assert processes.is_alive(revived.pid) and restarted[0] == instances[0]
        for router in routers.values():
            assert await served_by(http, router.url, 5) == [(200, "1.0.0")] * 5
