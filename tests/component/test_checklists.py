"""Readiness checklists against a real nats-server and gatekeeper: a release's answers are among its rules, and
`checklist report` learns from how releases ended which undone item to make required."""

from pathlib import Path

from contracts import subjects
from contracts.events import DeploymentFailed, DeploymentSucceeded
from contracts.governance import ChecklistReport
from libs.client import publish_event, send_command
from libs.settings import Settings
from services.gatekeeper.app import build
from tests.component.test_release_workflow import artifact, verified  # noqa: F401 - `artifact` is a fixture
from tests.conftest import running
from tests.support.policies import policy_for_tests
from tests.support.watch import EventWatcher

CLASSES = """\
standard:
  risk_approvals: false
  checklist:
    - item: load-tested
      question: Load-tested at twice the peak?
"""


async def test_the_report_suggests_requiring_the_item_skipped_before_failures(
    settings: Settings, watcher: EventWatcher, artifact: Path, tmp_path: Path  # noqa: F811
) -> None:
    policy = policy_for_tests(tmp_path / "checklist", classes=CLASSES)
    settings = settings.model_copy(update={"policy_dir": policy})
    # Five releases skipped load testing, four of them failed; five did it and all went well.
    history = [("skipped", i < 4) for i in range(5)] + [("done", False) for _ in range(5)]
    async with running(build(settings)):
        for n, (answer, fails) in enumerate(history):
            release = verified(artifact, f"1.0.{n}", checklist={"load-tested": answer})
            await publish_event(settings.nats_url, release)
            approved = await watcher.wait_type("ReleaseApproved", release_id=release.release_id)
            [rule] = [r for r in approved["rules"] if r["rule"] == "checklist"]
            assert rule["effect"] == ("note" if answer == "skipped" else "pass"), rule
            if fails:
                ended = DeploymentFailed.caused_by(release, "deployer", version=f"1.0.{n}", reason="error rate 30%")
            else:
                ended = DeploymentSucceeded.caused_by(release, "deployer", version=f"1.0.{n}", previous_version=None)
            await publish_event(settings.nats_url, ended)
            await watcher.wait_for(lambda _s, b, e=ended: b.get("event_id") == e.event_id)

        async def report() -> dict:
            reply = await send_command(settings.nats_url, subjects.CMD_CHECKLIST_REPORT, ChecklistReport())
            assert reply.ok, reply.message
            return reply.data

        # Deployment outcomes reach the gatekeeper on their own consumer: ask until all ten are counted.
        data = await _until(report, lambda d: d["releases"] == 10)
    [item] = data["items"]
    assert (item["item"], item["undone"], item["bad_when_undone"], item["done"], item["bad_when_done"]) == (
        "load-tested", 5, 4, 5, 0)
    assert data["suggestions"] == ["standard: make load-tested required: 4 of 5 releases without it failed or were "
                                   "blocked, against 0 of 5 with it"]


async def _until(ask, done, timeout: float = 20.0):  # noqa: ANN001, ANN202
    from tests.support.poll import eventually

    async def attempt():  # noqa: ANN202
        data = await ask()
        return data if done(data) else None

    return await eventually(attempt, timeout, "all ten releases counted by the checklist report")
