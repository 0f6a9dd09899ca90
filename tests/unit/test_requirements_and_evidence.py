"""Dependencies across services (rules.requirements) and evidence for promotion gates: who may submit it,
whose it counts for, and how a CDEvents testsuiterun.finished event becomes slipway evidence."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.cdevents import NotATestSuiteRun, evidence_fields
from contracts.events import ALL_SERVICES, EvidenceSubmitted
from contracts.identity import Kind, Role
from contracts.permissions import permissions_for
from contracts.release import Requirement
from services.gatekeeper.evidence import evidence_refusal
from services.gatekeeper.policy import WaitKind
from services.gatekeeper.rules.evaluate import Verdict, evaluate
from services.gatekeeper.rules.outcome import Effect
from services.gatekeeper.rules.promotion import promotion_outcome
from services.gatekeeper.rules.requirements import requirement_outcome
from services.gatekeeper.rules.state import Evidence, GateState, Live, Slot, Success
from tests.unit.test_gatekeeper_rules import DIGEST, NOW, POLICY, release
from tests.unit.test_permissions import record

LEDGER_2 = Live("ledger", "prod", "2.3.0", "ledger-2.3.0")


def needs_ledger(versions: str = ">=2.1,<3", service: str = "shop"):  # noqa: ANN201 - a Candidate
    return release(service, requires=[{"service": "ledger", "versions": versions}])


# --- requirements --------------------------------------------------------------------------------

def test_a_release_that_requires_nothing_passes() -> None:
    outcome = requirement_outcome(release("shop"), GateState())
    assert (outcome.effect, outcome.reason) == (Effect.PASS, "requires no other service")


def test_a_requirement_met_by_the_live_version_passes_and_says_what_is_live() -> None:
    outcome = requirement_outcome(needs_ledger(), GateState(live=(LEDGER_2,)))
    assert outcome.effect is Effect.PASS
    assert outcome.reason == "requirements live in prod: ledger 2.3.0 (>=2.1,<3)"


@pytest.mark.parametrize(("live", "why"), [
    ((), "requires ledger >=2.1,<3 in prod, but no version of ledger is live there"),
    ((Live("ledger", "prod", "2.0.9"),), "requires ledger >=2.1,<3 in prod; live is ledger 2.0.9"),
    ((Live("ledger", "prod", "3.0.0"),), "requires ledger >=2.1,<3 in prod; live is ledger 3.0.0"),
    ((Live("ledger", "staging", "2.3.0"),), "requires ledger >=2.1,<3 in prod, but no version of ledger is live there"),
    ((Live("ledger", "prod", "build-7"),),
     "requires ledger >=2.1,<3 in prod; live is build-7, which is not a PEP 440 version"),
])
def test_an_unmet_requirement_waits_naming_it_and_what_is_live(live: tuple[Live, ...], why: str) -> None:
    outcome = requirement_outcome(needs_ledger(), GateState(live=live))
    assert (outcome.effect, outcome.wait, outcome.reason) == (Effect.WAIT, WaitKind.REQUIREMENTS, why)


def test_every_unmet_requirement_is_named() -> None:
    two = release("shop", requires=[{"service": "ledger", "versions": ">=2.1"}, {"service": "auth", "versions": "==1.*"}])
    outcome = requirement_outcome(two, GateState(live=(LEDGER_2, Live("auth", "prod", "2.0.0"))))
    assert outcome.reason == "requires auth ==1.* in prod; live is auth 2.0.0"


def test_a_specifier_that_is_not_pep_440_is_refused_in_the_release_itself() -> None:
    with pytest.raises(ValidationError, match="not a PEP 440 version specifier set"):
        Requirement(service="ledger", versions="^2.1")


def test_services_tied_either_way_are_not_deployed_into_one_environment_at_once() -> None:
    ledger_in_flight = Slot("ledger-2.4.0", "ledger", "prod", NOW)
    # shop requires ledger: it waits while ledger is being deployed, even though its requirement is met.
    outcome = requirement_outcome(needs_ledger(), GateState(live=(LEDGER_2,), in_flight=(ledger_in_flight,)))
    assert (outcome.effect, outcome.wait) == (Effect.WAIT, WaitKind.REQUIREMENTS)
    assert outcome.reason == ("shop and ledger (ledger-2.4.0) depend on each other and the latter is being deployed "
                              "to prod: waits until it ends")
    # ledger waits while a release that requires it (shop) is in flight: the tie is read from that release.
    shop_in_flight = GateState(in_flight=(Slot("shop-2", "shop", "prod", NOW),), ties={"shop-2": frozenset({"ledger"})})
    assert requirement_outcome(release("ledger"), shop_in_flight).effect is Effect.WAIT
    # Elsewhere, or unrelated, nothing waits.
    elsewhere = GateState(live=(LEDGER_2,), in_flight=(Slot("l", "ledger", "staging", NOW), Slot("x", "search", "prod", NOW)))
    assert requirement_outcome(needs_ledger(), elsewhere).effect is Effect.PASS


def test_a_declared_dependent_ties_too() -> None:
    tied = release("ledger", dependents=["shop"])
    assert requirement_outcome(tied, GateState(in_flight=(Slot("s", "shop", "prod", NOW),))).effect is Effect.WAIT


def test_a_release_waiting_for_its_requirements_has_that_verdict_and_its_deadline() -> None:
    low_risk = needs_ledger(service="demo-shop")  # pre-approved: nothing else holds it
    decision = evaluate(low_risk, POLICY, GateState(), NOW)
    assert (decision.verdict, decision.wait) == (Verdict.WAITING_FOR_REQUIREMENTS, WaitKind.REQUIREMENTS)
    assert POLICY.deadlines.of(WaitKind.REQUIREMENTS) == timedelta(hours=24)
    assert evaluate(low_risk, POLICY, GateState(live=(LEDGER_2,)), NOW).verdict is Verdict.APPROVED


# --- evidence: whose it counts for -----------------------------------------------------------------

def proven(*evidence: Evidence) -> GateState:
    return GateState(successes=(Success(DIGEST, "staging", NOW),), evidence=evidence)


def test_only_the_release_teams_evidence_for_its_service_or_any_counts() -> None:
    ledger = release("ledger")  # team payments
    ok = [Evidence(DIGEST, "performance", True, NOW, team="payments", service="ledger"),
          Evidence(DIGEST, "security", True, NOW, team="payments", service=ALL_SERVICES)]
    assert promotion_outcome(ledger, POLICY, proven(*ok), NOW).effect is Effect.PASS
    other_team = Evidence(DIGEST, "security", True, NOW, team="discovery", service=ALL_SERVICES)
    outcome = promotion_outcome(ledger, POLICY, proven(ok[0], other_team), NOW)
    assert outcome.effect is Effect.REFUSE and outcome.reason.endswith(f"no security evidence for {DIGEST}")
    other_service = Evidence(DIGEST, "security", True, NOW, team="payments", service="shop")
    assert promotion_outcome(ledger, POLICY, proven(ok[0], other_service), NOW).effect is Effect.REFUSE


# --- evidence: who may submit it ------------------------------------------------------------------

def submitted(team: str = "payments", service: str = "ledger", **fields: object) -> EvidenceSubmitted:
    return EvidenceSubmitted(release_id=DIGEST, service=service, environment="staging", team=team, digest=DIGEST,
                             kind="performance", outcome="pass", **fields)


def test_the_team_is_a_subject_token_its_ci_alone_may_publish() -> None:
    assert submitted().address() == "slipway.evt.evidence.submitted.payments.ledger"
    rights = permissions_for(record(Kind.CI, "payments", teams=("payments",)))
    assert "slipway.evt.evidence.submitted.payments.*" in rights.publish
    assert not any(s.startswith("slipway.evt.evidence.submitted.discovery") for s in rights.publish)


@pytest.mark.parametrize(("evidence", "subject", "owner", "publisher", "why"), [
    (submitted(), "slipway.evt.evidence.submitted.payments.ledger", "payments",
     record(Kind.CI, "payments", teams=("payments",)), None),
    (submitted(service=ALL_SERVICES), "slipway.evt.evidence.submitted.payments.all-services", None,
     record(Kind.CI, "payments", teams=("payments",)), None),
    (submitted(), "slipway.evt.evidence.submitted.payments.other", "payments",
     record(Kind.CI, "payments", teams=("payments",)), "subject and body disagree"),
    (submitted(team="discovery"), "slipway.evt.evidence.submitted.discovery.ledger", "payments",
     record(Kind.CI, "payments", teams=("payments",)), "ci:payments may not submit evidence for team discovery"),
    (submitted(team="discovery", service="ledger"), "slipway.evt.evidence.submitted.discovery.ledger", "payments",
     record(Kind.CI, "discovery", teams=("discovery",)),
     "ci:discovery may not submit evidence for ledger: the service catalogue gives it to team payments"),
    (submitted(), "slipway.evt.evidence.submitted.payments.ledger", "payments",
     record(Kind.PERSON, "dev", roles=(Role.DEVELOPER,), teams=("payments",)),
     "person:dev may not submit evidence for team payments"),
])
def test_evidence_is_refused_unless_the_owning_teams_ci_sent_it(evidence, subject, owner, publisher, why) -> None:  # noqa: ANN001
    refusal = evidence_refusal(evidence, subject, owner, publisher)
    assert refusal == why if why is None else why in (refusal or "")


# --- CDEvents testsuiterun.finished -----------------------------------------------------------------

def cdevent(**content: object) -> dict:
    return {
        "context": {"version": "0.4.1", "id": "run-42", "source": "ci/perf", "timestamp": "2026-11-27T11:00:00Z",
                    "type": "dev.cdevents.testsuiterun.finished.0.2.0"},
        "subject": {"id": "run-42", "content": {"outcome": "pass", "url": "https://ci/run/42",
                                                "testSuite": {"id": "perf", "name": "load test"},
                                                "environment": {"id": "staging"}, **content}},
        "customData": {"digest": DIGEST, "kind": "performance"},
    }


def test_a_cdevent_maps_onto_evidence() -> None:
    fields = evidence_fields(cdevent())
    assert fields == {"outcome": "pass", "url": "https://ci/run/42", "reason": "", "test_suite": "load test",
                      "cdevent_id": "run-42", "finished_at": "2026-11-27T11:00:00Z", "environment": "staging",
                      "digest": DIGEST, "kind": "performance"}
    evidence = EvidenceSubmitted(release_id=DIGEST, service=ALL_SERVICES, team="payments", **fields)
    assert evidence.passed and evidence.finished_at == datetime(2026, 11, 27, 11, tzinfo=UTC)


def test_given_values_win_over_the_cdevent_and_a_failure_is_not_a_pass() -> None:
    fields = evidence_fields(cdevent(outcome="fail", reason="p99 too high"), kind="security", url="https://x/1")
    assert (fields["kind"], fields["url"], fields["outcome"], fields["reason"]) == ("security", "https://x/1", "fail",
                                                                                    "p99 too high")


@pytest.mark.parametrize(("document", "why"), [
    ([], "a JSON object"),
    ({"subject": {}}, "`context` and a `subject`"),
    ({**cdevent(), "context": {"type": "dev.cdevents.build.finished.0.2.0"}}, "not dev.cdevents.testsuiterun.finished."),
    ({**cdevent(), "subject": {"content": {}}}, "subject.content.outcome is missing"),
    ({**cdevent(), "customData": {"kind": "performance"}}, "no digest: give it with --digest or as customData.digest"),
])
def test_a_document_that_is_not_a_usable_testsuiterun_is_refused_with_the_reason(document: object, why: str) -> None:
    with pytest.raises(NotATestSuiteRun, match=why.replace(".", r"\.").replace("`", "`")):
        evidence_fields(document)
