"""Post-implementation reviews against a real nats-server and gatekeeper: a failed production deployment makes
its service owe one, its next major release waits for it, `pir record` lets it go; each refusal with its
reason and an event; an approved emergency release owes one too; `release show` tells support what it knows."""

from pathlib import Path

from contextlib import AsyncExitStack

from contracts import subjects
from contracts.events import DeploymentFailed
from contracts.governance import ListPirs, RecordPir, ShowRelease
from contracts.identity import Role
from libs.client import publish_event, send_command
from libs.settings import Settings
from services.gatekeeper.app import build
from services.metrics_collector.app import build as collector
from tests.component.test_release_workflow import artifact, verified  # noqa: F401 - a fixture
from tests.conftest import running
from tests.support.audit import audit_once_logged
from tests.support.people import People
from tests.support.policies import policy_for_tests
from tests.support.poll import eventually
from tests.support.watch import EventWatcher

# Major releases without sign-offs or change records, so that the review is all they may wait for.
CLASSES = """\
major:
  risk_approvals: false
  known_issues_required: true
  waits_for_owed_pir: true
emergency:
  risk_approvals: false
  pir_owed: true
pir_after_failure_in: [prod]
"""


def pir_settings(settings: Settings, tmp_path: Path) -> Settings:
    policy = policy_for_tests(tmp_path / "pir", classes=CLASSES, changes="environments: []\n")
    return settings.model_copy(update={"policy_dir": policy})


async def owed(settings: Settings) -> list[str]:
    listed = await send_command(settings.nats_url, subjects.CMD_LIST_PIRS, ListPirs())
    assert listed.ok, listed.message
    return [row["release_id"] for row in listed.data["owed"]]


async def test_a_failed_prod_deployment_holds_the_next_major_release_until_its_review_is_recorded(
    settings: Settings, watcher: EventWatcher, artifact: Path, people: People, tmp_path: Path  # noqa: F811
) -> None:
    settings = pir_settings(settings, tmp_path)
    people.add("olga", Role.OPERATIONS)
    people.add("dora", Role.DEVELOPER, teams=("checkout",))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(build(settings)))
        await stack.enter_async_context(running(collector(settings)))  # keeps the audit trail
        first = verified(artifact, "1.0.0")
        await publish_event(settings.nats_url, first)
        await watcher.wait_type("ReleaseApproved", release_id=first.release_id)
        assert await owed(settings) == []
        await publish_event(settings.nats_url, DeploymentFailed.caused_by(first, "deployer", version="1.0.0",
                                                                          reason="error rate 30%"))
        await eventually(lambda: owed(settings), what="the failed release owes a review")
        assert await owed(settings) == [first.release_id]

        major = verified(artifact, "2.0.0", release_class="major",
                         known_issues=[{"summary": "first login is slow", "workaround": "retry after 10s"}])
        await publish_event(settings.nats_url, major)
        waiting = await watcher.wait_type("ReleaseWaiting", release_id=major.release_id)
        assert waiting["waiting_for"] == "waiting-for-pir"
        assert "shop owes a post-implementation review" in waiting["summary"]

        # Refused with the reason and an event, and nothing changes: an unknown release, one that owes
        # nothing, a role that may not record reviews, a developer of another team.
        review = {"summary": "canary too short", "actions": "lengthen the canary"}
        for name, release_id, reason in (
            ("sam", "nope-1", "no release nope-1 has reached the gatekeeper"),
            ("sam", major.release_id, f"release {major.release_id} owes no post-implementation review"),
            ("olga", first.release_id, "role "),
            ("dora", first.release_id, f"person:dora may record_pir only releases of their own teams (checkout); "
                                       f"release {first.release_id} is of team payments (role sre or release-manager "
                                       "acts on every team)"),
        ):
            answer = await people.send(name, subjects.CMD_RECORD_PIR, RecordPir(release_id=release_id, **review))
            assert not answer.ok and reason in answer.message, answer.message
            refused = await watcher.wait_type("CommandRefused", about=release_id, actor=f"person:{name}")
            assert refused["command"] == subjects.CMD_RECORD_PIR and reason in refused["reason"]
        assert not watcher.matching(lambda _s, b: b.get("type") == "PostImplementationReviewRecorded")
        assert await owed(settings) == [first.release_id]

        factors = ["no canary for config changes", "alert fired late"]
        answer = await people.send("sam", subjects.CMD_RECORD_PIR,
                                   RecordPir(release_id=first.release_id, risk_factors=factors, **review))
        assert answer.ok, answer.message
        recorded = await watcher.wait_type("PostImplementationReviewRecorded", release_id=first.release_id)
        assert (recorded["actor"], recorded["signed_command"]["signer"]) == ("person:sam", "person:sam")
        assert (recorded["risk_factors"], recorded["owed_because"]) == (factors, "failed or rolled back in prod")

        # The review lets the major release go, and its risk factors count in its risk score.
        approved = await watcher.wait_type("ReleaseApproved", release_id=major.release_id)
        [pir] = [f for f in approved["risk"]["factors"] if f["factor"] == "pir_risk_factors"]
        assert pir["points"] == 10 and "alert fired late" in pir["detail"]
        assert await owed(settings) == []

        again = await people.send("sam", subjects.CMD_RECORD_PIR, RecordPir(release_id=first.release_id, **review))
        assert not again.ok and "was already recorded by person:sam" in again.message
        twice = await watcher.wait_type("CommandRefused", about=first.release_id, actor="person:sam")
        assert "was already recorded by person:sam" in twice["reason"]
        assert len(watcher.matching(lambda _s, b: b.get("type") == "PostImplementationReviewRecorded")) == 1
        listed = await send_command(settings.nats_url, subjects.CMD_LIST_PIRS, ListPirs(service="shop"))
        [row] = listed.data["recorded"]
        assert (row["release_id"], row["recorded_by"], row["risk_factors"]) == (first.release_id, "person:sam", factors)

        shown = await send_command(settings.nats_url, subjects.CMD_SHOW_RELEASE, ShowRelease(release_id=major.release_id))
        assert shown.ok, shown.message
        assert (shown.data["state"], shown.data["spec"]["release_class"]) == ("approved", "major")
        assert shown.data["known_issues"] == [{"summary": "first login is slow", "workaround": "retry after 10s"}]
        assert shown.data["decision"]["type"] == "ReleaseApproved"
        assert [f["points"] for f in shown.data["decision"]["risk"]["factors"] if f["factor"] == "pir_risk_factors"] == [10]
        assert shown.data["decision"]["rules"] == approved["rules"]
        unknown = await send_command(settings.nats_url, subjects.CMD_SHOW_RELEASE, ShowRelease(release_id="nope-2"))
        assert (unknown.ok, unknown.message) == (False, "no release nope-2 has reached the gatekeeper")

        # The audit re-verifies the reviewer's signature and finds the command the cause of its event.
        report = await audit_once_logged(settings.nats_url, 1, "the recorded review logged")
        assert report.ok and report.data["unverified_count"] == 0, report.message


async def test_an_approved_emergency_release_owes_a_review_and_a_failure_outside_production_does_not(
    settings: Settings, watcher: EventWatcher, artifact: Path, tmp_path: Path  # noqa: F811
) -> None:
    settings = pir_settings(settings, tmp_path)
    async with running(build(settings)):
        emergency = verified(artifact, "1.0.1", release_class="emergency")
        staged = verified(artifact, "1.0.2", service="basket", environment="staging")
        for release in (emergency, staged):
            await publish_event(settings.nats_url, release)
            await watcher.wait_type("ReleaseApproved", release_id=release.release_id)
        await publish_event(settings.nats_url, DeploymentFailed.caused_by(staged, "deployer", version="1.0.2",
                                                                          reason="crashed"))
        listed = await send_command(settings.nats_url, subjects.CMD_LIST_PIRS, ListPirs())
        assert [(r["release_id"], r["reason"]) for r in listed.data["owed"]] == [(emergency.release_id,
                                                                                   "emergency release")]
        # The gatekeeper reads deployment news in order: once the emergency's own failure shows, the staging
        # failure before it was read too, and still owes nothing.
        await publish_event(settings.nats_url, DeploymentFailed.caused_by(emergency, "deployer", version="1.0.1",
                                                                          reason="crashed"))

        async def reasons() -> list[tuple[str, str]]:
            listed = await send_command(settings.nats_url, subjects.CMD_LIST_PIRS, ListPirs())
            found = [(r["release_id"], r["reason"]) for r in listed.data["owed"]]
            return found if found != [(emergency.release_id, "emergency release")] else []

        assert await eventually(reasons) == [(emergency.release_id, "failed or rolled back in prod")]
