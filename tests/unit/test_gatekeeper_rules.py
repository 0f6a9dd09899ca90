"""The gatekeeper's rules, one by one and together, over the committed policy and small variations of it."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts.identity import Role
from contracts.release import ReleaseSpec
from libs.service_catalogue import ServiceCatalogue
from services.gatekeeper.domain import Freeze
from services.gatekeeper.policy import Policy, RecurringWindow, Severity, WaitKind
from services.gatekeeper.policy_files import load_policy
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.approvals import approval_refusal, outstanding, required_approvals
from services.gatekeeper.rules.concurrency import admitted, slot_outcome
from services.gatekeeper.rules.evaluate import Verdict, evaluate
from services.gatekeeper.rules.incidents import incident_outcomes
from services.gatekeeper.rules.outcome import Effect, RuleOutcome
from services.gatekeeper.rules.pauses import Rollout, pausing
from services.gatekeeper.rules.promotion import promotion_outcome
from services.gatekeeper.rules.readiness import class_outcomes
from services.gatekeeper.rules.risk import assess_risk
from services.gatekeeper.rules.state import Approval, Evidence, Failure, GateState, Incident, Slot, Success
from services.gatekeeper.rules.windows import expected_start, opening_at, window_outcomes

SAMPLE = Path(__file__).resolve().parents[2] / "infra" / "policies"
POLICY = load_policy(SAMPLE)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # a Friday, noon
DIGEST = "sha256:" + "d" * 64


def release(service: str = "demo-shop", environment: str = "prod", release_class: str = "standard",
            requested_by: str = "ci:payments", release_id: str = "r1", at: datetime = NOW, **terms: Any) -> Candidate:
    spec = ReleaseSpec.model_validate({
        "version": "2.0.0", "team": "payments", "artifact": {"uri": "/tmp/app.pyz", "digest": DIGEST},
        "commit": {"sha": "abc1234", "committed_at": NOW - timedelta(hours=1)}, "release_class": release_class,
        "strategy": {"kind": "all-at-once"}, "requested_by": requested_by, **terms,
    })
    return Candidate(release_id, service, environment, spec, at)


def with_policy(**parts: Any) -> Policy:
    """The committed policy with some files replaced by the given data, validated as the loader would."""
    data = POLICY.model_dump()
    data.update(parts)
    return Policy.model_validate(data)


def approval(approver: str, *roles: Role, teams: tuple[str, ...] = (), release_id: str = "r1") -> Approval:
    return Approval(release_id, approver, roles, teams, NOW)


# --- risk -------------------------------------------------------------------------------------------

def test_risk_shows_every_factor_and_its_points() -> None:
    risk = assess_risk(release("shop", migrations=["add-column", "backfill"], irreversible_steps=["drop table"],
                               dependents=["a", "b", "c", "d", "e"]), POLICY, GateState(), NOW)
    points = {c.factor: c.points for c in risk.contributions}
    # tier 1: 40, reach all: 15, customer-facing: 15, 2 migrations: 20, one irreversible step: 25, 5 dependents capped at 20
    assert points == {"tier": 40, "reach": 15, "visibility": 15, "migrations": 20, "irreversible_steps": 25,
                      "dependents": 20, "known_issues": 0, "pir_risk_factors": 0, "unplanned": 0}
    assert (risk.score, risk.level) == (135, "critical")
    assert "risk.migrations: 2 database migration(s): +20" in [f"{o.rule}: {o.reason}" for o in risk.outcomes()]


def test_risk_factors_named_by_the_last_review_add_points() -> None:
    reviewed = GateState(pir_risk_factors={"demo-shop": ("no canary for config changes", "alert too late"),
                                           "shop": ("x",)})
    risk = assess_risk(release("demo-shop"), POLICY, reviewed, NOW)
    [pir] = [c for c in risk.contributions if c.factor == "pir_risk_factors"]
    assert (pir.points, risk.score) == (10, 40)
    assert pir.detail == ("2 risk factor(s) from the latest post-implementation review: no canary for config changes; "
                          "alert too late")
    assert risk.level == "medium"


def test_the_demo_service_is_low_risk() -> None:
    risk = assess_risk(release("demo-shop"), POLICY, GateState(), NOW)
    assert (risk.score, risk.level, risk.raised_by) == (30, "low", None)


def test_a_service_not_in_the_catalogue_is_scored_as_policy_assumes() -> None:
    risk = assess_risk(release("unknown-thing"), POLICY, GateState(), NOW)
    assert risk.score == 40 + 15 + 15
    assert "tier 1 (assumed) (unknown-thing is not in the service catalogue)" in [c.detail for c in risk.contributions]


def test_an_internal_service_scores_less_than_a_customer_facing_one() -> None:
    internal = ServiceCatalogue.model_validate(
        {"services": {"tool": {"team": "payments", "tier": 3, "visibility": "internal", "reach": "few"}}})
    risk = assess_risk(release("tool"), with_policy(services=internal.model_dump()), GateState(), NOW)
    assert (risk.score, risk.level) == (10, "low")


def test_a_recent_failure_raises_the_level_from_the_level_policy_names() -> None:
    failed = GateState(recent_failures=(Failure("search", "staging", NOW - timedelta(hours=3), "r0"),))
    medium = assess_risk(release("search"), POLICY, failed, NOW)  # tier 2 + many + customer-facing = 50
    assert medium.level == "high"
    assert medium.raised_by is not None and "raised from medium: search failed in staging" in medium.raised_by
    # A low-risk fix-forward right after a rollback stays low (applies_from: medium).
    assert assess_risk(release("demo-shop"), POLICY,
                       GateState(recent_failures=(Failure("demo-shop", "prod", NOW - timedelta(minutes=5)),)),
                       NOW).level == "low"


def test_a_failure_outside_the_window_or_of_another_service_does_not_count() -> None:
    old = Failure("search", "prod", NOW - timedelta(hours=25))
    other = Failure("shop", "prod", NOW - timedelta(minutes=1))
    assert assess_risk(release("search"), POLICY, GateState(recent_failures=(old, other)), NOW).level == "medium"


def test_raising_stops_at_the_top_level() -> None:
    everything = with_policy(risk={**POLICY.risk.model_dump(), "recent_failure": {"within": "1d", "raise_levels": 5}})
    risk = assess_risk(release("demo-shop"), everything,
                       GateState(recent_failures=(Failure("demo-shop", "prod", NOW - timedelta(hours=1)),)), NOW)
    assert risk.level == "critical"


# --- approvals and four eyes --------------------------------------------------------------------------

def needs_for(candidate: Candidate, policy: Policy = POLICY, state: GateState = GateState()) -> list[Any]:
    return required_approvals(candidate, policy, assess_risk(candidate, policy, state, NOW))


def test_the_level_picks_authority_and_quorum() -> None:
    assert needs_for(release("demo-shop")) == []
    [lead] = needs_for(release("search"))
    assert (lead.role, lead.quorum, lead.same_team, lead.purpose) == (Role.TEAM_LEAD, 1, True, "risk level medium")
    [cab] = needs_for(release("shop", migrations=["m"]))  # 70 + 10 = 80: critical
    assert (cab.role, cab.quorum) == (Role.CAB_MEMBER, 2)


def test_a_major_release_needs_each_sign_off_and_its_level_approvals() -> None:
    needs = needs_for(release("demo-shop", release_class="major", known_issues=[]))
    assert [n.role for n in needs] == [Role.OPERATIONS, Role.SECURITY, Role.BUSINESS]


def test_an_emergency_release_skips_risk_approvals() -> None:
    assert needs_for(release("shop", release_class="emergency")) == []


def test_quorum_counts_distinct_people_and_never_one_person_twice() -> None:
    candidate = release("shop", migrations=["m"])
    needs = needs_for(candidate)
    one = (approval("person:ann", Role.CAB_MEMBER),)
    assert [n.quorum for n in outstanding(needs, one, candidate)] == [1]
    twice = (*one, approval("person:ann", Role.CAB_MEMBER))
    assert [n.quorum for n in outstanding(needs, twice, candidate)] == [1]
    assert outstanding(needs, (*one, approval("person:bob", Role.CAB_MEMBER)), candidate) == []


def test_one_person_with_several_roles_signs_off_once() -> None:
    candidate = release("demo-shop", release_class="major", known_issues=[])
    needs = needs_for(candidate)
    everything = approval("person:ann", Role.OPERATIONS, Role.SECURITY, Role.BUSINESS)
    assert len(outstanding(needs, (everything,), candidate)) == 2
    # The versatile approver is spent where nobody else can serve: security goes to ann, the rest to others.
    given = (everything, approval("person:ops", Role.OPERATIONS), approval("person:biz", Role.BUSINESS))
    assert outstanding(needs, given, candidate) == []


def test_same_team_approvals_must_come_from_the_release_team() -> None:
    candidate = release("search")
    needs = needs_for(candidate)
    assert outstanding(needs, (approval("person:lee", Role.TEAM_LEAD, teams=("discovery",)),), candidate) != []
    assert outstanding(needs, (approval("person:lee", Role.TEAM_LEAD, teams=("payments",)),), candidate) == []


def test_approvals_of_another_release_do_not_count() -> None:
    candidate = release("search")
    other = approval("person:lee", Role.TEAM_LEAD, teams=("payments",), release_id="r2")
    assert outstanding(needs_for(candidate), (other,), candidate) != []


def test_four_eyes_the_requester_never_approves() -> None:
    candidate = release("search", requested_by="person:lee")
    needs = needs_for(candidate)
    assert approval_refusal(candidate, "person:lee", [Role.TEAM_LEAD], ["payments"], needs, ()) == (
        "four eyes: person:lee requested release r1 and may not approve it")
    # Even if such an approval were recorded, it would not count.
    assert outstanding(needs, (approval("person:lee", Role.TEAM_LEAD, teams=("payments",)),), candidate) != []


def test_refusals_name_the_second_approval_the_wrong_role_and_a_release_not_waiting() -> None:
    candidate = release("shop", migrations=["m"])
    needs = needs_for(candidate)
    ann = approval("person:ann", Role.CAB_MEMBER)
    assert approval_refusal(candidate, "person:ann", [Role.CAB_MEMBER], [], needs, (ann,)) == (
        "person:ann has already approved release r1")
    assert approval_refusal(candidate, "person:dev", [Role.DEVELOPER], ["payments"], needs, (ann,)) == (
        "release r1 waits for 1 cab-member; person:dev has developer in teams payments")
    assert approval_refusal(candidate, "person:bob", [Role.CAB_MEMBER], [], needs, (ann,)) is None
    low = release("demo-shop")
    assert approval_refusal(low, "person:bob", [Role.CAB_MEMBER], [], needs_for(low), ()) == (
        "release r1 is not waiting for an approval")


# --- recurring windows and freezes ------------------------------------------------------------------

def window(rrule: str = "FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0;BYSECOND=0", duration: str = "64h",
           **more: Any) -> RecurringWindow:
    fields = {"name": "weekend", "rrule": rrule, "start": "2026-01-02T16:00:00", "timezone": "UTC",
              "duration": duration, **more}
    return RecurringWindow.model_validate(fields)


def test_a_weekly_window_covers_its_weekend_and_ends_on_monday() -> None:
    weekend = window()
    assert opening_at(weekend, NOW) is None  # Friday noon: not yet
    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    opening = opening_at(weekend, saturday)
    assert opening is not None
    assert (opening.starts, opening.ends) == (datetime(2026, 11, 27, 16, 0, tzinfo=UTC),
                                              datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert opening_at(weekend, datetime(2026, 11, 30, 8, 0, tzinfo=UTC)) is None  # the end is not inside


def test_a_window_in_a_time_zone_keeps_its_wall_clock_across_daylight_saving() -> None:
    nightly = window("FREQ=DAILY;BYHOUR=2;BYMINUTE=0;BYSECOND=0", "2h", start="2026-01-01T02:00:00",
                     timezone="Europe/Berlin")
    winter = opening_at(nightly, datetime(2026, 1, 15, 1, 30, tzinfo=UTC))  # 02:30 in Berlin (UTC+1)
    summer = opening_at(nightly, datetime(2026, 7, 15, 0, 30, tzinfo=UTC))  # 02:30 in Berlin (UTC+2)
    assert winter is not None and winter.starts == datetime(2026, 1, 15, 1, 0, tzinfo=UTC)
    assert summer is not None and summer.starts == datetime(2026, 7, 15, 0, 0, tzinfo=UTC)
    assert opening_at(nightly, datetime(2026, 7, 15, 2, 30, tzinfo=UTC)) is None  # 04:30 in Berlin: over


def test_back_to_back_openings_end_at_the_last_one() -> None:
    hourly = window("FREQ=HOURLY;BYMINUTE=0;BYSECOND=0;COUNT=3", "90m", start="2026-11-27T11:00:00")
    opening = opening_at(hourly, NOW)  # 11:00-12:30, 12:00-13:30, 13:00-14:30 chain into one
    assert opening is not None and opening.ends == datetime(2026, 11, 27, 14, 30, tzinfo=UTC)
    endless = window("FREQ=HOURLY", "2h", start="2026-11-27T11:00:00")
    never = opening_at(endless, NOW)
    assert never is not None and never.ends is None


def windows_policy(*windows: dict[str, Any], freeze_action: str = "queue") -> Policy:
    return with_policy(windows={"windows": list(windows), "freeze_action": freeze_action})


WEEKEND = {"name": "weekend", "rrule": "FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0;BYSECOND=0",
           "start": "2026-01-02T16:00:00", "duration": "64h", "scope": {"environments": ["prod"]}}
SATURDAY = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def test_a_release_inside_a_queueing_window_waits_until_it_ends() -> None:
    [outcome] = window_outcomes(release(), windows_policy(WEEKEND), (), SATURDAY)
    assert (outcome.effect, outcome.wait, outcome.until) == (Effect.WAIT, WaitKind.WINDOW,
                                                              datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert "queued inside weekend until 2026-11-30T08:00:00+00:00" in outcome.reason


def test_a_refusing_window_refuses() -> None:
    [outcome] = window_outcomes(release(), windows_policy({**WEEKEND, "action": "refuse"}), (), SATURDAY)
    assert outcome.effect is Effect.REFUSE


def test_scope_and_actor_limit_what_a_window_blocks() -> None:
    automation_only = windows_policy({**WEEKEND, "blocks": ["automation"]})
    assert window_outcomes(release(requested_by="ci:payments"), automation_only, (), SATURDAY)[0].effect is Effect.WAIT
    assert window_outcomes(release(requested_by="person:ann"), automation_only, (), SATURDAY)[0].effect is Effect.PASS
    assert window_outcomes(release(environment="staging"), automation_only, (), SATURDAY)[0].effect is Effect.PASS
    other_team = windows_policy({**WEEKEND, "scope": {"teams": ["discovery"]}})
    assert window_outcomes(release(), other_team, (), SATURDAY)[0].effect is Effect.PASS
    by_pattern = windows_policy({**WEEKEND, "scope": {"services": ["demo-*"]}})
    assert window_outcomes(release(), by_pattern, (), SATURDAY)[0].effect is Effect.WAIT


def test_the_expected_start_skips_a_window_that_opens_as_another_ends() -> None:
    monday = {"name": "monday-close", "rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8;BYMINUTE=0;BYSECOND=0",
              "start": "2026-01-05T08:00:00", "duration": "1h"}
    assert expected_start(release(), windows_policy(WEEKEND, monday), (), SATURDAY) == \
        datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_one_off_freezes_block_as_policy_says() -> None:
    freeze = Freeze("frz-1", "prod", NOW - timedelta(hours=1), NOW + timedelta(hours=2), "black friday", "person:rm")
    [queued] = window_outcomes(release(), windows_policy(), (freeze,), NOW)
    assert (queued.effect, queued.until) == (Effect.WAIT, NOW + timedelta(hours=2))
    assert "freeze frz-1" in queued.reason and "black friday (declared by person:rm)" in queued.reason
    [refused] = window_outcomes(release(), windows_policy(freeze_action="refuse"), (freeze,), NOW)
    assert refused.effect is Effect.REFUSE
    lifted = Freeze("frz-1", "prod", NOW - timedelta(hours=1), NOW + timedelta(hours=2), "x", "y", lifted=True)
    assert window_outcomes(release(), windows_policy(), (lifted,), NOW)[0].effect is Effect.PASS


def test_an_emergency_inside_a_window_needs_the_exception_role() -> None:
    [outcome] = window_outcomes(release(release_class="emergency"), windows_policy(WEEKEND), (), SATURDAY)
    assert outcome.effect is Effect.NEEDS_APPROVAL
    assert outcome.reason.endswith("passes only with an exception approved by executive")


# --- incidents ---------------------------------------------------------------------------------------

INCIDENT = Incident("INC-7", "prod", Severity.ERROR, NOW - timedelta(minutes=10), "checkout errors")


def test_an_open_incident_halts_releases_in_its_environment_only() -> None:
    [waits] = incident_outcomes(release(), POLICY, (INCIDENT,))
    assert (waits.effect, waits.wait) == (Effect.WAIT, WaitKind.INCIDENT)
    assert "incident INC-7 (error) open in prod" in waits.reason
    assert incident_outcomes(release(environment="staging"), POLICY, (INCIDENT,))[0].effect is Effect.PASS
    assert pausing(POLICY.incidents, (INCIDENT,), Rollout("r0", "demo-shop", "prod")) == (INCIDENT,)
    assert pausing(POLICY.incidents, (INCIDENT,), Rollout("r0", "demo-shop", "staging")) == ()


def test_a_minor_incident_does_not_halt() -> None:
    warning = Incident("INC-8", "prod", Severity.WARNING, NOW)
    assert incident_outcomes(release(), POLICY, (warning,))[0].effect is Effect.PASS
    assert pausing(POLICY.incidents, (warning,), Rollout("r0", "demo-shop", "prod")) == ()


def test_an_emergency_that_names_the_incident_passes_and_others_wait() -> None:
    fixes = release(release_class="emergency", incident="INC-7")
    assert incident_outcomes(fixes, POLICY, (INCIDENT,))[0].effect is Effect.PASS
    assert incident_outcomes(release(incident="INC-7"), POLICY, (INCIDENT,))[0].effect is Effect.WAIT
    other = Incident("INC-9", "prod", Severity.CRITICAL, NOW)
    effects = [o.effect for o in incident_outcomes(fixes, POLICY, (INCIDENT, other))]
    assert effects == [Effect.PASS, Effect.WAIT]


# --- concurrency -------------------------------------------------------------------------------------

def slot(release_id: str, service: str, minutes: int = 0, environment: str = "prod",
         release_class: str = "standard") -> Slot:
    from contracts.release import ReleaseClass

    return Slot(release_id, service, environment, NOW + timedelta(minutes=minutes), ReleaseClass(release_class))


def test_the_limit_per_environment_and_one_per_service() -> None:
    busy = GateState(in_flight=(slot("r0", "shop"),))
    waits = slot_outcome(release(), POLICY, busy)  # prod allows 1
    assert (waits.effect, waits.wait) == (Effect.WAIT, WaitKind.SLOT)
    assert waits.reason == "1 of 1 deployment slot(s) in prod are in use; position 1 in the queue"
    staging = GateState(in_flight=(slot("r0", "shop", environment="staging"),))
    assert slot_outcome(release(environment="staging"), POLICY, staging).effect is Effect.PASS  # staging allows 3
    same = GateState(in_flight=(slot("r0", "demo-shop", environment="staging"),))
    same_service = slot_outcome(release(environment="staging"), POLICY, same)
    assert same_service.effect is Effect.WAIT
    assert same_service.reason.startswith("release r0 of demo-shop is in flight in staging")


def test_first_come_first_served_with_emergencies_first() -> None:
    queue = [slot("a", "s1", 1), slot("b", "s2", 2), slot("c", "s3", 3, release_class="emergency")]
    assert admitted("prod", 1, (), queue) == ["c"]
    assert admitted("staging", 1, (), queue) == []
    assert admitted("prod", 2, (), queue) == ["c", "a"]
    # Two of one service never start together: the second waits even with a free slot.
    assert admitted("prod", 3, (), [slot("a", "s1", 1), slot("b", "s1", 2), slot("c", "s2", 3)]) == ["a", "c"]
    assert admitted("prod", 3, (slot("x", "s1"),), [slot("a", "s1", 1), slot("c", "s2", 3)]) == ["c"]


def test_a_later_release_waits_behind_the_queue() -> None:
    ahead = GateState(waiting_for_slot=(slot("r0", "shop", -5),))
    outcome = slot_outcome(release(), POLICY, ahead)
    assert outcome.effect is Effect.WAIT and outcome.reason.endswith("position 2 in the queue")
    assert slot_outcome(release(release_class="emergency"), POLICY, ahead).effect is Effect.PASS


# --- promotion gates ---------------------------------------------------------------------------------

def test_a_gated_digest_needs_its_earlier_success_and_passing_evidence() -> None:
    ledger = release("ledger")
    refused = promotion_outcome(ledger, POLICY, GateState(), NOW)
    assert refused.effect is Effect.REFUSE
    assert refused.reason == (f"promotion gate of prod: no successful deployment of {DIGEST} in staging; "
                              f"no performance evidence for {DIGEST}; no security evidence for {DIGEST}")
    proven = GateState(successes=(Success(DIGEST, "staging", NOW - timedelta(hours=1)),),
                       evidence=(Evidence(DIGEST, "performance", True, NOW - timedelta(hours=1)),
                                 Evidence(DIGEST, "security", True, NOW - timedelta(hours=2))))
    assert promotion_outcome(ledger, POLICY, proven, NOW).effect is Effect.PASS


def test_the_latest_evidence_decides_and_old_evidence_expires() -> None:
    ledger = release("ledger")
    base = (Success(DIGEST, "staging", NOW),)
    failed_after = (Evidence(DIGEST, "performance", True, NOW - timedelta(hours=3)),
                    Evidence(DIGEST, "performance", False, NOW - timedelta(hours=1), "https://ci/run/9"),
                    Evidence(DIGEST, "security", True, NOW))
    outcome = promotion_outcome(ledger, POLICY, GateState(successes=base, evidence=failed_after), NOW)
    assert "latest performance evidence" in outcome.reason and "failed" in outcome.reason
    stale = (Evidence(DIGEST, "performance", True, NOW - timedelta(days=8)), Evidence(DIGEST, "security", True, NOW))
    outcome = promotion_outcome(ledger, POLICY, GateState(successes=base, evidence=stale), NOW)
    assert outcome.effect is Effect.REFUSE and "older than 7 days" in outcome.reason
    other_digest = (Success("sha256:" + "e" * 64, "staging", NOW),)
    assert promotion_outcome(ledger, POLICY, GateState(successes=other_digest), NOW).effect is Effect.REFUSE


def test_gates_apply_to_their_services_and_can_wait_instead() -> None:
    assert promotion_outcome(release("demo-shop"), POLICY, GateState(), NOW).effect is Effect.PASS
    waiting = with_policy(promotion={"environments": {"prod": {"after": ["staging"], "on_missing": "queue"}}})
    outcome = promotion_outcome(release("demo-shop"), waiting, GateState(), NOW)
    assert (outcome.effect, outcome.wait) == (Effect.WAIT, WaitKind.PROMOTION)


# --- class rules -------------------------------------------------------------------------------------

def test_a_major_release_must_list_known_issues() -> None:
    [refused] = [o for o in class_outcomes(release(release_class="major"), POLICY, GateState())
                 if o.effect is Effect.REFUSE]
    assert refused.rule == "class.known_issues"
    listed = release(release_class="major", known_issues=[{"summary": "slow search", "workaround": "retry"}])
    assert not [o for o in class_outcomes(listed, POLICY, GateState()) if o.effect is Effect.REFUSE]


def test_a_major_release_waits_while_its_service_owes_a_review() -> None:
    owed = GateState(owed_pirs=frozenset({"demo-shop"}))
    [waits] = class_outcomes(release(release_class="major", known_issues=[]), POLICY, owed)
    assert (waits.effect, waits.wait) == (Effect.WAIT, WaitKind.PIR)
    assert class_outcomes(release(), POLICY, owed) == []  # a standard release does not wait for it


def test_an_emergency_is_flagged_and_owes_a_review() -> None:
    rules = {o.rule for o in class_outcomes(release(release_class="emergency"), POLICY, GateState())}
    assert rules == {"class.pir_owed", "class.flagged"}


# --- all together ------------------------------------------------------------------------------------

def test_a_standard_low_risk_release_of_the_demo_is_approved_at_once() -> None:
    decision = evaluate(release(), POLICY, GateState(), NOW)
    assert decision.verdict is Verdict.APPROVED
    assert "approvals: no approval needed: pre-approved by policy" in decision.reasons()
    # The demo's v3 follows v2's rollback at once: still pre-approved.
    after_rollback = GateState(recent_failures=(Failure("demo-shop", "prod", NOW - timedelta(seconds=30)),))
    assert evaluate(release(), POLICY, after_rollback, NOW).verdict is Verdict.APPROVED


def test_a_medium_risk_release_waits_for_a_team_lead_then_goes() -> None:
    pending = evaluate(release("search"), POLICY, GateState(), NOW)
    assert pending.verdict is Verdict.PENDING_APPROVAL
    assert [(n.role, n.quorum) for n in pending.outstanding] == [(Role.TEAM_LEAD, 1)]
    approved = GateState(approvals=(approval("person:lee", Role.TEAM_LEAD, teams=("payments",)),))
    assert evaluate(release("search"), POLICY, approved, NOW).verdict is Verdict.APPROVED


def test_refusal_beats_approval_and_waits() -> None:
    decision = evaluate(release("ledger", release_class="major"), POLICY,
                        GateState(incidents=(INCIDENT,)), NOW)
    assert decision.verdict is Verdict.REFUSED
    assert {o.rule for o in decision.outcomes if o.effect is Effect.REFUSE} == {
        "class.known_issues", "promotion", "change-record"}


def test_an_approved_release_in_a_window_is_queued_with_its_expected_start() -> None:
    decision = evaluate(release(), windows_policy(WEEKEND), GateState(), SATURDAY)
    assert (decision.verdict, decision.wait, decision.until) == (
        Verdict.QUEUED_FOR_WINDOW, WaitKind.WINDOW, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert not any(o.rule == "concurrency" for o in decision.outcomes)  # no slot is asked for while it waits


def test_an_emergency_passes_a_window_once_the_exception_is_approved() -> None:
    emergency = release(release_class="emergency", requested_by="person:sam")
    policy = windows_policy(WEEKEND)
    pending = evaluate(emergency, policy, GateState(), SATURDAY)
    assert pending.verdict is Verdict.PENDING_APPROVAL
    assert [(n.role, n.purpose) for n in pending.outstanding] == [(Role.EXECUTIVE, "exception to pass a freeze or window")]
    self_approved = GateState(approvals=(approval("person:sam", Role.EXECUTIVE),))
    assert evaluate(emergency, policy, self_approved, SATURDAY).verdict is Verdict.PENDING_APPROVAL
    excepted = evaluate(emergency, policy, GateState(approvals=(approval("person:eve", Role.EXECUTIVE),)), SATURDAY)
    assert excepted.verdict is Verdict.APPROVED
    assert any("exception approved, the release passes (recorded)" in r for r in excepted.reasons())


def test_an_exception_with_a_quorum_of_two_takes_a_second_approver_after_the_first() -> None:
    emergency = release(release_class="emergency", requested_by="person:sam")
    data = windows_policy(WEEKEND).model_dump()
    data["classes"]["emergency"]["exception_quorum"] = 2
    policy = Policy.model_validate(data)
    first = (approval("person:eve", Role.EXECUTIVE),)
    decision = evaluate(emergency, policy, GateState(approvals=first), SATURDAY)
    assert decision.verdict is Verdict.PENDING_APPROVAL
    [missing] = decision.outstanding
    assert (missing.role, missing.quorum) == (Role.EXECUTIVE, 1)
    # What the approve command checks a second executive against: every need with its whole quorum.
    assert approval_refusal(emergency, "person:max", (Role.EXECUTIVE,), (), list(decision.needs), first) is None
    both = (*first, approval("person:max", Role.EXECUTIVE))
    assert evaluate(emergency, policy, GateState(approvals=both), SATURDAY).verdict is Verdict.APPROVED


def test_incidents_then_slots() -> None:
    assert evaluate(release(), POLICY, GateState(incidents=(INCIDENT,)), NOW).verdict is Verdict.WAITING_FOR_INCIDENT
    busy = GateState(in_flight=(slot("r0", "shop"),))
    assert evaluate(release(), POLICY, busy, NOW).verdict is Verdict.WAITING_FOR_SLOT


@pytest.mark.parametrize("kind", list(WaitKind))
def test_every_wait_has_a_deadline(kind: WaitKind) -> None:
    assert POLICY.deadlines.of(kind).total_seconds() > 0


# --- change records (changes.yaml: a major release into prod needs its own) ---------------------

def change(number: str = "CHG0000001", approved: bool = True, opens: timedelta = timedelta(hours=-1),
           closes: timedelta = timedelta(hours=1)):  # noqa: ANN201 - a ChangeRecord
    from services.gatekeeper.changes import ChangeRecord, ChangeState

    return ChangeRecord(number=number, source="slipway", state=ChangeState.SCHEDULED,
                        approval="approved" if approved else "requested", starts_at=NOW + opens, ends_at=NOW + closes,
                        type="normal", risk="moderate")


def change_rule(candidate: Candidate, state: GateState = GateState()) -> RuleOutcome:
    from services.gatekeeper.rules.changes import change_outcome

    return change_outcome(candidate, POLICY, state, NOW)


def test_a_standard_release_needs_no_change_record() -> None:
    assert change_rule(release()).effect is Effect.PASS


def test_a_major_release_to_prod_must_name_a_change_record() -> None:
    outcome = change_rule(release(release_class="major"))
    assert outcome.effect is Effect.REFUSE and "must name an approved change record" in outcome.reason


def test_an_approved_change_whose_window_covers_now_lets_it_through() -> None:
    named = release(release_class="major", change="CHG0000001")
    assert change_rule(named, GateState(changes={"CHG0000001": change()})).effect is Effect.PASS


def test_a_change_not_approved_yet_or_not_open_yet_is_waited_for() -> None:
    named = release(release_class="major", change="CHG0000001")
    pending = change_rule(named, GateState(changes={"CHG0000001": change(approved=False)}))
    assert pending.effect is Effect.WAIT and "not approved" in pending.reason
    later = change_rule(named, GateState(changes={"CHG0000001": change(opens=timedelta(hours=2),
                                                                       closes=timedelta(hours=3))}))
    assert later.effect is Effect.WAIT and later.until == NOW + timedelta(hours=2)


def test_a_closed_window_or_an_unknown_change_refuses_and_an_unreachable_source_waits() -> None:
    named = release(release_class="major", change="CHG0000001")
    closed = change_rule(named, GateState(changes={"CHG0000001": change(opens=timedelta(hours=-3),
                                                                        closes=timedelta(hours=-1))}))
    assert closed.effect is Effect.REFUSE and "closed at" in closed.reason
    assert change_rule(named, GateState(changes={"CHG0000001": None})).effect is Effect.REFUSE
    down = change_rule(named, GateState(unreachable_changes={"CHG0000001": "ServiceNow answered 503"}))
    assert down.effect is Effect.WAIT and "503" in down.reason
