"""Which rollouts in flight an open incident pauses and which paused ones go on (rules.pauses), under the
committed policy and variations of it; and what the deployer does with a paused release's verdicts."""

from datetime import UTC, datetime, timedelta

from contracts.events import Verdict
from services.deployer.domain import Deployment, Hold, Next, Status, after_pause_lifted, after_verdict
from services.gatekeeper.policy import IncidentsPolicy, Severity
from services.gatekeeper.policy_files import load_policy
from services.gatekeeper.rules.pauses import Rollout, pause_changes, paused_reason, pausing
from services.gatekeeper.rules.state import Incident
from tests.unit.test_gatekeeper_rules import SAMPLE

POLICY = load_policy(SAMPLE).incidents  # halt_at: error, pause_in_flight: true, emergency_may_pass: true
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
FIRST = Incident("inc-1", "prod", Severity.ERROR, NOW - timedelta(minutes=5), "checkout errors")
SECOND = Incident("inc-2", "prod", Severity.CRITICAL, NOW - timedelta(minutes=1))
SHOP, BASKET = Rollout("r1", "shop", "prod"), Rollout("r2", "basket", "staging")


def test_a_halting_incident_pauses_the_rollouts_in_its_environment_only() -> None:
    changes = pause_changes(POLICY, (FIRST,), (SHOP, BASKET), {})
    [pause] = changes.pause
    assert (pause.rollout, pause.incidents) == (SHOP, (FIRST,))
    assert changes.resume == changes.forget == changes.extend == ()
    assert paused_reason(pause).startswith("incident inc-1 (error) open in prod: checkout errors; the rollout holds")


def test_pausing_twice_changes_nothing_and_a_minor_incident_pauses_nothing() -> None:
    assert pause_changes(POLICY, (FIRST,), (SHOP,), {"r1": ("inc-1",)}) == pause_changes(POLICY, (), (), {})
    warning = Incident("inc-3", "prod", Severity.WARNING, NOW)
    assert pause_changes(POLICY, (warning,), (SHOP,), {}).pause == ()


def test_the_rollout_resumes_only_when_the_last_halting_incident_is_resolved() -> None:
    [pause] = pause_changes(POLICY, (FIRST, SECOND), (SHOP,), {}).pause
    assert [i.incident_id for i in pause.incidents] == ["inc-1", "inc-2"]  # oldest first: paused for inc-1
    assert "(and 1 more)" in paused_reason(pause)
    assert pause_changes(POLICY, (SECOND,), (SHOP,), {"r1": ("inc-1", "inc-2")}).resume == ()
    assert pause_changes(POLICY, (), (SHOP,), {"r1": ("inc-1", "inc-2")}).resume == ("r1",)


def test_an_incident_opened_while_paused_is_named_too() -> None:
    changes = pause_changes(POLICY, (FIRST, SECOND), (SHOP,), {"r1": ("inc-1",)})
    [extended] = changes.extend
    assert (extended.rollout, changes.pause, changes.resume) == (SHOP, (), ())


def test_a_pause_of_a_release_no_longer_in_flight_is_forgotten_not_resumed() -> None:
    changes = pause_changes(POLICY, (FIRST,), (), {"r1": ("inc-1",)})
    assert (changes.forget, changes.resume, changes.pause) == (("r1",), (), ())


def test_policy_decides_whether_rollouts_pause_and_whether_the_fix_passes() -> None:
    assert pausing(IncidentsPolicy(pause_in_flight=False), (FIRST,), SHOP) == ()
    # A policy turned off pauses nothing more and lets what it paused go on.
    assert pause_changes(IncidentsPolicy(pause_in_flight=False), (FIRST,), (SHOP,), {"r1": ("inc-1",)}).resume == ("r1",)
    assert pausing(IncidentsPolicy(halt_at=Severity.CRITICAL), (FIRST,), SHOP) == ()
    fix = Rollout("r9", "shop", "prod", fixes="inc-1")
    assert pausing(POLICY, (FIRST,), fix) == ()
    assert pausing(POLICY, (FIRST, SECOND), fix) == (SECOND,)  # it fixes one incident, not every one
    assert pausing(IncidentsPolicy(emergency_may_pass=False), (FIRST,), fix) == (FIRST,)


# --- the deployer's side ----------------------------------------------------------------------------

CANARY = Deployment("r1", "shop", "prod", "2.0.0", "1.0.0", [20, 50, 100], 0, Status.DEPLOYING)


def hold(step_index: int = 0, verdict_event_id: str = "v1") -> Hold:
    return Hold("r1", step_index, ["incident inc-1"], NOW, verdict_event_id)


def test_a_paused_release_holds_after_a_passing_verdict_but_a_failing_one_still_rolls_back() -> None:
    assert after_verdict(CANARY, 0, Verdict.PASS, paused=True)[0] is Next.PAUSE
    assert after_verdict(CANARY, 0, Verdict.MARGINAL, paused=True)[0] is Next.PAUSE
    last = Deployment("r1", "shop", "prod", "2.0.0", "1.0.0", [20, 50, 100], 2, Status.DEPLOYING)
    assert after_verdict(last, 2, Verdict.PASS, paused=True)[0] is Next.PAUSE  # not promoted to 100% either
    assert after_verdict(CANARY, 0, Verdict.FAIL, paused=True)[0] is Next.AWAIT_ROLLBACK
    assert after_verdict(CANARY, 0, Verdict.INCONCLUSIVE, paused=True)[0] is Next.HOLD
    assert after_verdict(CANARY, 0, Verdict.PASS, paused=False)[0] is Next.ADVANCE


def test_lifting_a_pause_moves_on_only_a_step_the_pause_held() -> None:
    assert after_pause_lifted(CANARY, hold(), "v1")[0] is Next.ADVANCE
    last = Deployment("r1", "shop", "prod", "2.0.0", "1.0.0", [20, 50, 100], 2, Status.DEPLOYING)
    assert after_pause_lifted(last, hold(2), "v1")[0] is Next.COMPLETE
    action, why = after_pause_lifted(CANARY, None, None)
    assert action is Next.IGNORE and "still being judged" in why
    # An inconclusive verdict held it for a person meanwhile: lifting the pause leaves that hold to them.
    action, why = after_pause_lifted(CANARY, hold(verdict_event_id="v2"), "v1")
    assert action is Next.IGNORE and "waits for a person" in why
    done = Deployment("r1", "shop", "prod", "2.0.0", "1.0.0", [20, 50, 100], 0, Status.ROLLED_BACK)
    assert after_pause_lifted(done, None, None)[0] is Next.IGNORE
