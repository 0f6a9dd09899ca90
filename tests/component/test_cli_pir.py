"""`slipway release show` and `slipway pir` as a user runs them, against a gatekeeper on a real nats-server."""

from pathlib import Path

from contracts.events import DeploymentFailed
from libs.client import publish_event
from libs.settings import Settings
from services.gatekeeper.app import build
from tests.component.test_cli_identity import slipway
from tests.component.test_pirs import pir_settings
from tests.component.test_release_workflow import artifact, verified  # noqa: F401 - a fixture
from tests.conftest import running
from tests.support.poll import eventually
from tests.support.watch import EventWatcher

WIDE = {"COLUMNS": "250"}  # rich folds long cells at the terminal's width; these lines are read whole


async def test_release_show_lists_known_issues_and_pir_record_lets_a_waiting_major_release_go(
    settings: Settings, watcher: EventWatcher, artifact: Path, tmp_path: Path  # noqa: F811
) -> None:
    settings = pir_settings(settings, tmp_path)
    data, url = settings.data_dir, ["--nats-url", settings.nats_url]
    assert (await slipway(data, "identity", "create", "sam", "--roles", "sre"))[0] == 0
    async with running(build(settings)):
        first = verified(artifact, "1.0.0")
        await publish_event(settings.nats_url, first)
        await watcher.wait_type("ReleaseApproved", release_id=first.release_id)
        await publish_event(settings.nats_url, DeploymentFailed.caused_by(first, "deployer", version="1.0.0",
                                                                          reason="error rate 30%"))

        async def listed_owed() -> str:
            code, out, err = await slipway(data, "pir", "list", *url, **WIDE)
            assert code == 0, err
            return out if "reviews owed" in out else ""

        owed = await eventually(listed_owed, what="the failed release listed as owing a review")
        assert first.release_id in owed and "failed or rolled back in prod" in owed

        major = verified(artifact, "2.0.0", release_class="major", known_issues=[
            {"summary": "first login after upgrade is slow", "workaround": "retry after 10 seconds"},
            {"summary": "old exports show UTC times"}])
        await publish_event(settings.nats_url, major)
        await watcher.wait_type("ReleaseWaiting", release_id=major.release_id)
        code, out, err = await slipway(data, "release", "show", major.release_id, *url, **WIDE)
        assert code == 0, err
        assert "known issues" in out and "first login after upgrade is slow" in out and "retry after 10 seconds" in out
        assert "old exports show UTC times" in out
        assert "waiting-for-pir" in out and "shop owes a post-implementation review" in out and "class.pir" in out

        code, out, err = await slipway(data, "pir", "record", first.release_id, "--summary", "canary too short",
                                       "--actions", "lengthen it", "--risk-factor", "no canary for config",
                                       "--as", "sam", *url)
        assert code == 0, err
        assert f"post-implementation review of {first.release_id} recorded by person:sam" in out
        await watcher.wait_type("ReleaseApproved", release_id=major.release_id)

        code, out, err = await slipway(data, "pir", "record", first.release_id, "--summary", "x", "--actions", "y",
                                       "--as", "sam", *url)
        assert code == 1 and "already recorded by person:sam" in err
        code, out, err = await slipway(data, "release", "show", "nope-1", *url)
        assert (code, err.strip()) == (1, "error: no release nope-1 has reached the gatekeeper")
        code, out, err = await slipway(data, "release", "show", major.release_id, *url, **WIDE)
        assert code == 0 and "approved" in out and "ReleaseApproved" in out, err
    for output in (out, err):
        assert "Traceback" not in output
