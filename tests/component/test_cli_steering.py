"""`slipway pause / resume / promote` as a person types them (the installed CLI, signed with their key) against a
deployer on the in-memory target: what they answer, and every refusal with its reason and exit status 1."""

from pathlib import Path

from libs.client import publish_event
from libs.settings import Settings
from services.deployer.app import build
from services.deployer.memory_target import MemoryTarget
from services.gatekeeper.app import build as gatekeeper
from tests.component.test_cli_identity import slipway
from tests.component.test_deployer_plans import (  # noqa: F401 - artifact and target are fixtures
    CANARY, artifact, outcome, ship, step_seen, target,
)
from tests.conftest import running
from tests.support.deployer_events import approve
from tests.support.releases import release_for
from tests.support.watch import EventWatcher


async def test_steering_from_the_cli_answers_and_refuses_with_reasons(
    settings: Settings, watcher: EventWatcher, artifact: Path, target: MemoryTarget  # noqa: F811
) -> None:
    data, url = settings.data_dir, ["--nats-url", settings.nats_url]
    assert (await slipway(data, "identity", "create", "dev", "--roles", "developer", "--team", "payments"))[0] == 0
    # The CLI asks the gatekeeper whose release it is, to address the command to that team.
    async with running(build(settings, target=target)), running(gatekeeper(settings)):
        code, _, err = await slipway(data, "pause", "nope", "--reason", "x", "--as", "dev", *url)
        assert (code, " ".join(err.split())) == (1, "error: no release nope is known to the deployer")

        await ship(settings, watcher, artifact, "1.0.0")
        approved = approve(release_for(artifact, "2.0.0", strategy=CANARY))
        await publish_event(settings.nats_url, approved)
        rid = approved.release_id
        await step_seen(watcher, rid, 0)

        code, out, err = await slipway(data, "pause", rid, "--reason", "dashboards first", "--as", "dev", *url)
        assert code == 0 and f"ok: release {rid} paused at step 1 of 2" in " ".join(out.split()), out + err
        code, _, err = await slipway(data, "pause", rid, "--reason", "again", "--as", "dev", *url)
        assert code == 1 and "is already paused by person:dev" in " ".join(err.split()), err
        code, out, err = await slipway(data, "release", "resume", rid, "--comment", "fine", "--as", "dev", *url)
        assert code == 0 and "pause lifted at step 1 of 2; its verdict moves it on" in " ".join(out.split()), out + err
        code, out, err = await slipway(data, "promote", rid, "--comment", "ship it", "--as", "dev", *url)
        assert code == 0 and "2.0.0 now takes all traffic" in " ".join(out.split()), out + err
        assert (await outcome(watcher, rid))["type"] == "DeploymentSucceeded"
        code, _, err = await slipway(data, "promote", rid, "--comment", "twice", "--as", "dev", *url)
        assert code == 1 and f"release {rid} succeeded: there is nothing to promote" in " ".join(err.split()), err
