"""Drift over NATS: the deployer (real nats-server, real SQLite, a real sample-app process) compares what runs with
edited declarations on demand (`slipway env drift`, a signed CheckDrift) and on its schedule, and reconciles it: on the
schedule where the declaration says auto, only on a person's `slipway env drift --reconcile` in production, never
while a release is in flight or where the declaration says off (the MemoryTarget for those decisions, real sample-app
processes for configuration)."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from contracts import subjects
from contracts.commands import CheckDrift
from examples.build_sample import build as build_sample
from libs.client import publish_event
from libs.settings import Settings
from services.deployer.app import build
from services.deployer.environments import declared_config
from services.deployer.local import processes
from services.deployer.local.driver import stop_all
from services.deployer.memory_target import MemoryTarget
from tests.component.test_deployer import approve, deploy_live, recorded, step_seen
from tests.component.test_deployer_plans import ship
from tests.conftest import running
from tests.support.people import People
from tests.support.releases import release_for
from tests.support.watch import EventWatcher
from tests.support.yaml_files import copy_of, edit

@pytest.fixture
def envs(tmp_path: Path) -> Path:
    return copy_of("environments", tmp_path)


@pytest.fixture
def drift_settings(settings: Settings, envs: Path) -> Iterator[Settings]:
    try:
        yield settings.model_copy(update={"environments_dir": envs, "drift_interval_s": 0.3})
    finally:
        stop_all(settings.data_dir / "run")


def declare_prod_instances(envs: Path, eu_west: int, us_east: int) -> None:
    prod = envs / "prod.yaml"
    text = prod.read_text()
    start = text.index("instances:")
    end = text.index("config:")
    prod.write_text(text[:start] + f"instances:\n  eu-west: {eu_west}\n  us-east: {us_east}\n" + text[end:])


async def test_drift_on_demand_follows_the_edited_declaration_and_is_recorded(
    drift_settings: Settings, envs: Path, watcher: EventWatcher, people: People, tmp_path: Path
) -> None:
    artifact = build_sample("1.0.0", tmp_path / "dist")
    async with running(build(drift_settings)):
        await deploy_live(drift_settings, watcher, artifact, "1.0.0")  # shop 1.0.0: one instance in prod

        asked = await people.send("sam", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="prod"))
        assert asked.ok, asked.message
        assert "1 of 1 service(s) in prod drifted" in asked.message
        # One pool for the whole environment, compared with the declared total; the instance runs with prod's
        # declared configuration, so that is no drift.
        assert [(f["kind"], f["region"], f["expected"], f["actual"]) for f in asked.data["drift"]["shop"]] == [
            ("instances", None, "4", "1")]
        recorded = await watcher.wait_type("DriftDetected", trigger="command")
        assert (recorded["service"], recorded["environment"], recorded["actor"]) == ("shop", "prod", "person:sam")
        assert recorded["signed_command"]["signer"] == "person:sam"
        assert recorded["declaration"] == str(envs / "prod.yaml")

        declare_prod_instances(envs, 1, 0)  # what runs is now what is declared
        settled = await people.send("alice", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="prod"))
        assert settled.ok and settled.message == "no drift in prod (shop)" and not settled.data["drift"], settled

        (envs / "prod.yaml").write_text((envs / "prod.yaml").read_text().replace("regions:", "regionz:"))
        broken = await people.send("sam", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="prod"))
        assert not broken.ok and f"{envs / 'prod.yaml'}:" in broken.message and "regionz" in broken.message

        by_developer = await people.send("dev", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="prod"))
        assert not by_developer.ok and "role release-manager or sre needed" in by_developer.message


async def test_the_schedule_records_drift_once_it_appears(
    drift_settings: Settings, envs: Path, watcher: EventWatcher, tmp_path: Path
) -> None:
    declare_prod_instances(envs, 1, 0)
    artifact = build_sample("1.0.0", tmp_path / "dist")
    async with running(build(drift_settings)):
        await deploy_live(drift_settings, watcher, artifact, "1.0.0")
        assert not watcher.matching(lambda _s, body: body.get("type") == "DriftDetected")

        declare_prod_instances(envs, 2, 2)
        found = await watcher.wait_type("DriftDetected", trigger="schedule", timeout=10)
        assert (found["service"], found["actor"], found["signed_command"]) == ("shop", "deployer", None)
        assert [(f["kind"], f["region"], f["expected"], f["actual"]) for f in found["findings"]] == [
            ("instances", None, "4", "1")]
        assert not watcher.matching(lambda _s, body: body.get("type") == "DriftReconciled"), \
            "prod is reconciled on demand only"


async def test_slipway_env_drift_prints_the_findings_and_exits_1(
    drift_settings: Settings, watcher: EventWatcher, tmp_path: Path
) -> None:
    from tests.component.test_cli_identity import slipway

    data, url = drift_settings.data_dir, ["--nats-url", drift_settings.nats_url]
    assert (await slipway(data, "identity", "create", "rita", "--roles", "release-manager"))[0] == 0
    artifact = build_sample("1.0.0", tmp_path / "dist")
    async with running(build(drift_settings)):
        await deploy_live(drift_settings, watcher, artifact, "1.0.0")
        code, out, err = await slipway(data, "env", "drift", "prod", "--as", "rita", *url)
        assert code == 1, (out, err)
        assert "shop: instances expected 4, actual 1: shop 1.0.0: 1 instance(s) for the whole environment, 4 declared " \
               "over all regions (eu-west 2, us-east 2)" in out
        assert "1 of 1 service(s) in prod drifted from the declaration" in err
        code, out, err = await slipway(data, "env", "drift", "staging", "--as", "rita", *url)
        assert (code, out.strip()) == (0, "ok: no drift in staging (nothing runs there)"), err


async def test_an_old_pool_kept_warm_after_a_blue_green_switch_is_not_drift_until_it_outstays_its_time(
    drift_settings: Settings, envs: Path, watcher: EventWatcher, people: People, tmp_path: Path
) -> None:
    declare_prod_instances(envs, 1, 0)
    artifact = build_sample("1.0.0", tmp_path / "dist")
    target = MemoryTarget()
    async with running(build(drift_settings, target=target)):
        await ship(drift_settings, watcher, artifact, "1.0.0")
        await ship(drift_settings, watcher, artifact, "2.0.0",
                   strategy={"kind": "blue-green", "analysis_interval_s": 1.0, "keep_warm_s": 30})
        assert target.live_instances("1.0.0") == [0], "the old pool is kept warm"
        asked = await people.send("sam", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="prod"))
        assert asked.ok and asked.message == "no drift in prod (shop)", asked.message


STAGING_CONFIG = {"LOG_LEVEL": "info", "REQUEST_TIMEOUT_S": "5", "PAYMENTS_PROVIDER": "sandbox"}


def places(done: list[str]) -> list[str]:
    """`1.0.0 slot 1 in us-east (memory-instance 7)` -> `1.0.0 slot 1 in us-east`: what was done, where."""
    return sorted(item.split(" (")[0] for item in done)


def reconciled(watcher: EventWatcher, verb: str):  # noqa: ANN201
    return watcher.wait_for(lambda _s, body: body.get("type") == "DriftReconciled" and bool(body.get(verb)))


async def test_the_schedule_reconciles_a_non_production_environment_instances_and_configuration(
    drift_settings: Settings, envs: Path, watcher: EventWatcher, tmp_path: Path
) -> None:
    target = MemoryTarget(declared_config(envs))
    artifact = build_sample("1.0.0", tmp_path / "dist")
    async with running(build(drift_settings, target=target)):
        await ship(drift_settings, watcher, artifact, "1.0.0", environment="staging")  # one instance; 1 + 1 declared

        [started] = await reconciled(watcher, "started")
        assert (started["actor"], started["trigger"], started["version"]) == ("deployer", "schedule", "1.0.0")
        assert places(started["started"]) == ["1.0.0 slot 1 for the whole environment"]
        assert started["stopped"] == started["restarted"] == started["left"] == []
        assert target.live_instances("1.0.0") == [0, 1] and target.split("shop", "staging") == {"1.0.0": 100}
        [routed] = [pools for pools in target.routed.values()]
        assert sorted(h.data["slot"] for h in routed[0]) == [0, 1], "the router routes to the whole live pool"

        edit(envs / "staging.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug")
        [restarted] = await reconciled(watcher, "restarted")
        assert places(restarted["restarted"]) == ["1.0.0 slot 0 for the whole environment",
                                                  "1.0.0 slot 1 for the whole environment"]
        [found] = [d for d in watcher.matching(lambda _s, b: b.get("type") == "DriftDetected")
                   if any(f["kind"] == "config" for f in d["findings"])]
        assert [(f["kind"], f["expected"], f["actual"]) for f in found["findings"]] == [
            ("config", "LOG_LEVEL=debug", "LOG_LEVEL=info")] * 2
        runs_with = [target.configs[h.identity] for h in target.running.values() if h.kind == "memory-instance"]
        assert runs_with == [{**STAGING_CONFIG, "LOG_LEVEL": "debug"}] * 2

        edit(envs / "staging.yaml", "  us-east: 1\n", "  us-east: 0\n")
        [stopped] = await reconciled(watcher, "stopped")
        assert places(stopped["stopped"]) == ["1.0.0 slot 1 for the whole environment"] and stopped["started"] == []
        assert target.live_instances("1.0.0") == [0]


async def test_production_is_reconciled_when_a_person_asks_never_in_flight_nor_where_declared_off(
    drift_settings: Settings, envs: Path, watcher: EventWatcher, people: People, tmp_path: Path
) -> None:
    target = MemoryTarget(declared_config(envs))
    artifact = build_sample("1.0.0", tmp_path / "dist")
    async with running(build(drift_settings, target=target)):
        await ship(drift_settings, watcher, artifact, "1.0.0")  # prod: one instance of 2 + 2 declared
        await watcher.wait_type("DriftDetected", trigger="schedule", environment="prod")

        asked = await people.send("sam", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="prod", reconcile=True))
        assert asked.ok and asked.message.endswith("drifted from the declaration; reconciled 1 service(s)"), asked
        assert places(asked.data["reconciled"]["shop"]["started"]) == [
            f"1.0.0 slot {slot} for the whole environment" for slot in (1, 2, 3)]
        recorded_event = await watcher.wait_type("DriftReconciled", trigger="command")
        assert (recorded_event["actor"], recorded_event["signed_command"]["signer"]) == ("person:sam", "person:sam")
        assert recorded_event["declaration"] == str(envs / "prod.yaml")
        triggers = [b["trigger"] for b in watcher.matching(lambda _s, b: b.get("type") == "DriftReconciled")]
        assert triggers == ["command"], "the schedule never reconciles prod"

        # A release in flight: what runs is neither compared nor reconciled.
        second = approve(release_for(artifact, "2.0.0"))
        await publish_event(drift_settings.nats_url, second)
        await step_seen(watcher, second.release_id, 0)
        starts = len(target.started)
        in_flight = await people.send("sam", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="prod", reconcile=True))
        assert in_flight.ok and in_flight.message.startswith("no drift in prod (shop)"), in_flight
        assert len(target.started) == starts

        edit(envs / "prod.yaml", "allowed_differences:", "drift:\n  reconcile: off\nallowed_differences:")
        refused = await people.send("sam", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="prod", reconcile=True))
        assert not refused.ok and refused.message.startswith("not reconciled: prod.yaml says drift.reconcile: off")


async def test_a_real_instance_runs_with_the_declared_configuration_and_is_restarted_with_an_edited_one(
    drift_settings: Settings, envs: Path, watcher: EventWatcher, tmp_path: Path
) -> None:
    edit(envs / "staging.yaml", "  us-east: 1\n", "  us-east: 0\n")  # what one release starts: no other drift
    artifact = build_sample("1.0.0", tmp_path / "dist")
    async with running(build(drift_settings)):
        await deploy_live(drift_settings, watcher, artifact, "1.0.0", environment="staging")
        router, before = await recorded(drift_settings)
        assert before["1.0.0"].config == STAGING_CONFIG
        assert {k: processes.environ_of(before["1.0.0"].pid)[k] for k in STAGING_CONFIG} == STAGING_CONFIG

        edit(envs / "staging.yaml", "REQUEST_TIMEOUT_S: 5", "REQUEST_TIMEOUT_S: 7")
        [done] = await reconciled(watcher, "restarted")
        assert places(done["restarted"]) == ["1.0.0 slot 0 for the whole environment"]
        _, after = await recorded(drift_settings)
        restarted = after["1.0.0"]
        assert (restarted.port, restarted.config["REQUEST_TIMEOUT_S"]) == (before["1.0.0"].port, "7")
        assert restarted.pid != before["1.0.0"].pid and not processes.is_alive(before["1.0.0"].pid)
        assert processes.environ_of(restarted.pid)["REQUEST_TIMEOUT_S"] == "7", "read from the process itself"
        async with httpx.AsyncClient(trust_env=False) as http:
            served = await http.get(f"{router.url}/orders/1")
        assert (served.status_code, served.json()["version"]) == (200, "1.0.0")


async def regional_layout(settings: Settings, target: MemoryTarget, regions: dict[str, int]) -> None:
    """What a release rolled out region by region leaves (instances whose handles name their region), in place of
    the whole-environment pool a release leaves here: its instances stopped, the regional ones recorded."""
    from libs.store import Database
    from services.deployer import store

    db = Database(settings.database_url_for("deployer"))
    try:
        async with db.transaction() as tx:
            [old] = await store.pool(tx.session, "shop", "staging", "1.0.0")
        await target.stop_instance(old.handle)
        slots = iter(range(100))
        async with db.transaction() as tx:
            await store.forget_instance(tx.session, old)
            for region, count in regions.items():
                for _ in range(count):
                    slot = next(slots)
                    handle = await target.start_instance("shop", "staging", "1.0.0", slot, old.artifact_path,
                                                         region=region)
                    await store.save_instance(tx.session, store.Running("shop", "staging", "1.0.0", slot,
                                                                        old.artifact_path, handle))
    finally:
        await db.dispose()


async def test_instances_running_region_by_region_are_compared_and_reconciled_per_region(
    drift_settings: Settings, envs: Path, watcher: EventWatcher, people: People, tmp_path: Path
) -> None:
    edit(envs / "staging.yaml", "quotas:", "drift:\n  reconcile: on-demand\nquotas:")
    target = MemoryTarget(declared_config(envs))
    artifact = build_sample("1.0.0", tmp_path / "dist")
    async with running(build(drift_settings, target=target)):
        await ship(drift_settings, watcher, artifact, "1.0.0", environment="staging")
        await regional_layout(drift_settings, target, {"eu-west": 2})  # staging declares eu-west 1, us-east 1

        asked = await people.send("sam", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="staging", reconcile=True))
        assert asked.ok, asked.message
        assert [(f["region"], f["expected"], f["actual"]) for f in asked.data["drift"]["shop"]] == [
            ("eu-west", "1", "2"), ("us-east", "1", "0")]
        done = asked.data["reconciled"]["shop"]
        assert (places(done["started"]), places(done["stopped"]), done["left"]) == (
            ["1.0.0 slot 2 in us-east"], ["1.0.0 slot 1 in eu-west"], [])
        assert sorted((h.data["region"], h.data["slot"]) for h in target.running.values()
                      if h.kind == "memory-instance") == [("eu-west", 0), ("us-east", 2)]
        settled = await people.send("sam", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="staging"))
        assert settled.ok and settled.message == "no drift in staging (shop)", settled.message


async def test_a_regional_release_is_reconciled_through_its_regions_router(
    drift_settings: Settings, envs: Path, watcher: EventWatcher, people: People, tmp_path: Path
) -> None:
    edit(envs / "staging.yaml", "quotas:", "drift:\n  reconcile: on-demand\nquotas:")
    target = MemoryTarget(declared_config(envs))
    artifact = build_sample("1.0.0", tmp_path / "dist")
    async with running(build(drift_settings, target=target)):
        await ship(drift_settings, watcher, artifact, "1.0.0", environment="staging",
                   scope={"kind": "regional", "bake_s": 0.1})
        west_before = target.weights[("shop", "staging", "eu-west")][:]
        edit(envs / "staging.yaml", "us-east: 1", "us-east: 2")

        asked = await people.send("sam", subjects.CMD_CHECK_DRIFT, CheckDrift(environment="staging", reconcile=True))
        assert asked.ok, asked.message
        assert len(asked.data["reconciled"]["shop"]["started"]) == 1
        east = next(h for h in target.running.values() if h.kind == "memory-router" and h.data.get("region") == "us-east")
        assert [len(pool) for pool in target.routed[east.identity]] == [2], "us-east's router routes both"
        assert target.split("shop", "staging", "us-east") == {"1.0.0": 100}
        assert target.weights[("shop", "staging", "eu-west")] == west_before, "eu-west's router left alone"
