"""A step with too little traffic to judge holds the release for a person, who decides through the CLI."""

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from libs.client import publish_event
from libs.settings import Settings
from services.deployer.local.driver import stop_all
from slipway.supervisor import Stack
from tests.e2e.conftest import ci_of, operate, slipway
from tests.support.poll import eventually
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

pytestmark = pytest.mark.e2e
TERMINAL = {"DeploymentSucceeded", "RollbackCompleted", "DeploymentFailed"}
# The health-watcher sends at most MAX_PROBES (2000) probes over 80% of a 1 s window, one at a time, and with
# no extension it concludes then: far fewer than 2000 requests can reach the new version, so it is held.
THIN = {"min_requests": 2000}


@pytest.fixture
def pausing_stack(tmp_path: Path) -> Iterator[Stack]:
    env = {"SLIPWAY_ANALYSIS_INCONCLUSIVE": "pause", "SLIPWAY_ANALYSIS_MAX_EXTENSIONS": "0"}
    running = Stack(tmp_path / "stack", service_env={"health_watcher": env})
    running.start()
    operate(running)
    try:
        yield running
    finally:
        running.stop()
        stop_all(running.run_dir)


def of_release(release_id: str, types: set[str]):  # noqa: ANN201 - a watcher predicate
    return lambda _s, body: body.get("release_id") == release_id and body.get("type") in types


def row(stack: Stack, service: str, query: str, release_id: str) -> tuple | None:
    path = Settings(data_dir=stack.data_dir).database_url_for(service).split("///", 1)[1]
    with sqlite3.connect(path, timeout=5) as db:
        return db.execute(query, (release_id,)).fetchone()


async def held(stack: Stack, watcher: EventWatcher, release_id: str) -> dict:
    """The inconclusive verdict, once the deployer holds the release and the rollback-controller knows it in flight."""
    verdict = await watcher.wait_type("StepVerdict", 60, release_id=release_id)
    assert verdict["verdict"] == "inconclusive", verdict
    await eventually(lambda: row(stack, "deployer", "SELECT step_index FROM holds WHERE release_id = ?", release_id),
                     10, "the deployer holding the release")
    await eventually(lambda: row(stack, "rollback-controller", "SELECT version FROM releases WHERE release_id = ?",
                                 release_id), 10, "the rollback-controller knowing the release")
    return verdict


async def cli(stack: Stack, *args: str):  # noqa: ANN201
    return await asyncio.to_thread(slipway, *args, "--nats-url", stack.nats_url, data_dir=stack.data_dir, timeout=60)


async def test_a_held_release_is_resumed_and_another_aborted_through_the_cli(
    pausing_stack: Stack, tmp_path: Path
) -> None:
    stack = pausing_stack
    # ana may resume and abort the releases of team payments, whose service these are (tests.support.releases).
    person = slipway("identity", "create", "ana", "--roles", "developer", "--team", "payments", data_dir=stack.data_dir)
    assert person.returncode == 0, person.stdout + person.stderr
    # dora develops another team's services: nats-server itself refuses her commands on payments' releases.
    other = slipway("identity", "create", "dora", "--roles", "developer", "--team", "discovery", data_dir=stack.data_dir)
    assert other.returncode == 0, other.stdout + other.stderr
    artifacts = tmp_path / "artifacts"
    first = release_for(build_sample("1.0.0", artifacts), "1.0.0", rollback_triggers=THIN)
    second = release_for(build_sample("2.0.0", artifacts), "2.0.0", rollback_triggers=THIN,
                         strategy={"kind": "canary", "steps": [{"weight": 50}], "analysis_interval_s": 1.0})
    async with EventWatcher(stack.nats_url) as watcher:
        await publish_event(stack.nats_url, first, ci_of(stack))
        verdict = await held(stack, watcher, first.release_id)
        assert verdict["reasons"][0].startswith("inconclusive:") and verdict["requests"] < 2000, verdict

        async def shown_held() -> bool:
            # The collector logs asynchronously: the status follows the verdict shortly.
            status = await cli(stack, "status", "--release-id", first.release_id)
            return "held at step 1: waiting for a person" in " ".join(status.stdout.split())

        await eventually(shown_held, 30, "status showing the release held")

        intruder = await cli(stack, "release", "abort", first.release_id, "--reason", "mine now", "--as", "dora")
        assert intruder.returncode == 1, intruder.stdout + intruder.stderr
        assert ('NATS refused person:dora: permissions violation for publish to '
                '"slipway.cmd.rollback.abort_release.payments.shop"') in " ".join(intruder.stderr.split()), intruder.stderr
        resumed = await cli(stack, "release", "resume", first.release_id, "--comment", "quiet hour, checked by hand",
                            "--as", "ana")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "resumed" in resumed.stdout and "1.0.0 now takes all traffic" in resumed.stdout, resumed.stdout
        [outcome] = await watcher.wait_for(of_release(first.release_id, TERMINAL), 30)
        assert outcome["type"] == "DeploymentSucceeded", outcome
        [note] = watcher.matching(of_release(first.release_id, {"ReleaseResumed"}))
        assert (note["actor"], note["comment"]) == ("person:ana", "quiet hour, checked by hand")
        assert note["signed_command"]["signer"] == "person:ana"
        again = await cli(stack, "release", "resume", first.release_id, "--comment", "twice", "--as", "ana")
        assert again.returncode == 1 and "nothing to resume" in again.stderr, again.stdout + again.stderr

        await publish_event(stack.nats_url, second, ci_of(stack))
        await held(stack, watcher, second.release_id)
        aborted = await cli(stack, "release", "abort", second.release_id, "--reason", "not tonight", "--as", "ana")
        assert aborted.returncode == 0, aborted.stdout + aborted.stderr
        [outcome] = await watcher.wait_for(of_release(second.release_id, TERMINAL), 30)
        assert outcome["type"] == "RollbackCompleted", outcome
        assert (outcome["root_cause"], outcome["restored_version"]) == ("aborted by person:ana: not tonight", "1.0.0")
        again = await cli(stack, "release", "abort", second.release_id, "--reason", "twice", "--as", "ana")
        assert again.returncode == 1 and "already being rolled back" in again.stderr, again.stdout + again.stderr
    assert not watcher.matching(lambda subject, _b: subject.startswith("slipway.dlq."))
    assert stack.dead_service() is None
