"""Readiness checklists: a release's answers as a rule, and which items left undone came before bad outcomes."""

from typing import Any

from services.gatekeeper.policy import Policy
from services.gatekeeper.rules.checklist import Ended, checklist_outcomes, item_records, refinements
from services.gatekeeper.rules.evaluate import Verdict, evaluate
from services.gatekeeper.rules.outcome import Effect
from services.gatekeeper.rules.state import GateState
from tests.unit.test_gatekeeper_rules import NOW, POLICY, release

ITEMS = [{"item": "load-tested", "question": "Load-tested at twice the peak?"},
         {"item": "rollback-rehearsed"}]


def checklist_policy(required: bool = False) -> Policy:
    data: dict[str, Any] = POLICY.model_dump()
    data["classes"]["standard"]["checklist"] = [ITEMS[0] | {"required": required}, ITEMS[1]]
    return Policy.model_validate(data)


def test_a_class_without_a_checklist_asks_nothing() -> None:
    assert checklist_outcomes(release(), POLICY) == []


def test_undone_items_are_noted_and_a_fully_done_checklist_passes() -> None:
    [noted] = checklist_outcomes(release(checklist={"load-tested": "skipped"}), checklist_policy())
    assert noted.effect is Effect.NOTE
    assert noted.reason == ("0 of 2 standard checklist item(s) done or not applicable; load-tested: skipped; "
                            "rollback-rehearsed: not answered")
    done = release(checklist={"load-tested": "done", "rollback-rehearsed": "not-applicable"})
    [passed] = checklist_outcomes(done, checklist_policy())
    assert (passed.effect, passed.reason) == (Effect.PASS, "2 of 2 standard checklist item(s) done or not applicable")


def test_a_required_item_not_done_refuses_the_release_with_the_item_named() -> None:
    decision = evaluate(release(checklist={"load-tested": "skipped"}), checklist_policy(required=True), GateState(), NOW)
    assert decision.verdict is Verdict.REFUSED
    assert "checklist: a standard release must have done load-tested (skipped)" in decision.reasons()


def ended(outcome: str, **answers: str) -> Ended:
    return Ended("standard", answers, outcome)


def test_an_item_skipped_before_failures_is_suggested_as_required() -> None:
    history = ([ended("failed", **{"load-tested": "skipped"})] * 4 + [ended("succeeded", **{"load-tested": "skipped"})]
               + [ended("succeeded", **{"load-tested": "done"})] * 5 + [ended("blocked", **{"load-tested": "done"})])
    records = item_records(history, checklist_policy())
    [load] = [r for r in records if r.item == "load-tested"]
    assert (load.undone, load.bad_when_undone, load.done, load.bad_when_done) == (5, 4, 6, 1)
    assert round(load.lift, 3) == round(4 / 5 - 1 / 6, 3)
    assert refinements(records) == [
        "standard: make load-tested required: 4 of 5 releases without it failed or were blocked, against 1 of 6 "
        "with it"]


def test_an_item_that_tells_nothing_is_suggested_for_rewording_and_few_releases_suggest_nothing() -> None:
    same = [ended("failed", **{"rollback-rehearsed": "done"}), ended("succeeded", **{"rollback-rehearsed": "done"})] * 3
    same += [ended("failed"), ended("succeeded")] * 3
    suggestions = refinements(item_records(same, checklist_policy()))
    assert suggestions == ["standard: rollback-rehearsed did not tell good releases from bad ones (3 of 6 went wrong "
                           "with it, 3 of 6 without): sharpen or replace the question"]
    assert refinements(item_records(same[:4], checklist_policy())) == []


def test_releases_of_an_unknown_class_or_still_running_are_left_out() -> None:
    assert item_records([Ended("experimental", {}, "failed")], checklist_policy()) == []
