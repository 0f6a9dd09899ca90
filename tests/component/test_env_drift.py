"""Drift over NATS: the deployer (real nats-server, real SQLite, a real sample-app process) compares what runs with
edited declarations on demand (`slipway env drift`, a signed CheckDrift) and on its schedule."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import subjects
from contracts.commands import CheckDrift
from examples.build_sample import build as build_sample
from libs.settings import Settings
from services.deployer.app import build
from services.deployer.local.driver import stop_all
from tests.component.test_deployer import deploy_live
from tests.conftest import running
from tests.support.people import People
from tests.support.watch import EventWatcher
from tests.support.yaml_files import copy_of

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
        # Compared region by region; the instance runs with prod's declared configuration, so that is no drift.
        assert [(f["kind"], f["region"], f["expected"], f["actual"]) for f in asked.data["drift"]["shop"]] == [
            ("instances", "eu-west", "2", "1"), ("instances", "us-east", "2", "0")]
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
            ("instances", "eu-west", "2", "1"), ("instances", "us-east", "2", "0")]
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
        assert "shop: instances in eu-west expected 2, actual 1: shop 1.0.0: 1 instance(s) in eu-west, 2 declared" \
               in out
        assert "shop: instances in us-east expected 2, actual 0" in out
        assert "1 of 1 service(s) in prod drifted from the declaration" in err
        code, out, err = await slipway(data, "env", "drift", "staging", "--as", "rita", *url)
        assert (code, out.strip()) == (0, "ok: no drift in staging (nothing runs there)"), err


async def test_an_old_pool_kept_warm_after_a_blue_green_switch_is_not_drift_until_it_outstays_its_time(
    drift_settings: Settings, envs: Path, watcher: EventWatcher, people: People, tmp_path: Path
) -> None:
    from services.deployer.memory_target import MemoryTarget
    from tests.component.test_deployer_plans import ship

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
