from datetime import UTC, datetime, timedelta

import pytest

from contracts.envelope import ITEMS_MAX
from contracts.events import ReleaseBlocked
from contracts.release import ReleaseClass, ReleaseSpec
from services.gatekeeper.domain import Freeze, decide, freeze_problem

NOW = datetime(2024, 11, 29, 12, 0, tzinfo=UTC)


def spec(release_class: str = "standard") -> ReleaseSpec:
    return ReleaseSpec.model_validate({
        "version": "2.0.0",
        "team": "payments",
        "artifact": {"uri": "/tmp/app.pyz", "digest": "sha256:" + "a" * 64},
        "commit": {"sha": "abc1234", "committed_at": NOW - timedelta(hours=1)},
        "release_class": release_class,
        "strategy": {"kind": "all-at-once"},
        "requested_by": "ci:test",
    })


def freeze(environment: str = "prod", *, starts: timedelta = timedelta(hours=-1), ends: timedelta = timedelta(hours=2),
           lifted: bool = False, freeze_id: str = "frz-black-friday") -> Freeze:
    return Freeze(
        freeze_id=freeze_id, environment=environment, starts_at=NOW + starts, ends_at=NOW + ends,
        reason="black friday traffic", actor="alice", lifted=lifted,
    )


def test_standard_release_without_freeze_is_approved_with_a_reason() -> None:
    decision = decide(spec(), "prod", [], NOW)
    assert decision.approved is True
    assert decision.reasons == ["standard release with no freeze on prod: approved automatically"]


def test_active_freeze_on_the_environment_blocks_and_names_freeze_actor_and_end() -> None:
    active = freeze()
    decision = decide(spec(), "prod", [active], NOW)
    assert decision.approved is False
    [reason] = decision.reasons
    assert "frz-black-friday" in reason
    assert "alice" in reason
    assert "black friday traffic" in reason
    assert active.ends_at.isoformat() in reason
    assert "prod" in reason


def test_every_covering_freeze_is_named() -> None:
    decision = decide(spec(), "prod", [freeze(freeze_id="frz-1"), freeze(freeze_id="frz-2")], NOW)
    assert decision.approved is False
    assert len(decision.reasons) == 2
    assert "frz-1" in decision.reasons[0] and "frz-2" in decision.reasons[1]


def test_more_freezes_than_a_verdict_can_name_are_counted() -> None:
    many = [freeze(freeze_id=f"frz-{n}") for n in range(ITEMS_MAX + 50)]
    decision = decide(spec(), "prod", many, NOW)
    assert len(decision.reasons) == ITEMS_MAX and decision.reasons[-1] == "and 51 more freezes on prod"
    ReleaseBlocked(release_id="r-1", service="shop", environment="prod", reasons=decision.reasons)


def test_freeze_window_includes_its_start_and_excludes_its_end() -> None:
    assert decide(spec(), "prod", [freeze(starts=timedelta(0))], NOW).approved is False
    assert decide(spec(), "prod", [freeze(starts=timedelta(hours=-2), ends=timedelta(0))], NOW).approved is True


@pytest.mark.parametrize(
    "ignored",
    [
        pytest.param(freeze("staging"), id="other-environment"),
        pytest.param(freeze(lifted=True), id="lifted"),
        pytest.param(freeze(starts=timedelta(days=-2), ends=timedelta(days=-1)), id="past"),
        pytest.param(freeze(starts=timedelta(minutes=1), ends=timedelta(days=1)), id="future"),
    ],
)
def test_freezes_that_do_not_cover_now_and_this_environment_are_ignored(ignored: Freeze) -> None:
    decision = decide(spec(), "prod", [ignored], NOW)
    assert decision.approved is True
    assert "approved automatically" in decision.reasons[0]


@pytest.mark.parametrize("release_class", [ReleaseClass.EMERGENCY, ReleaseClass.MAJOR])
def test_non_standard_release_classes_are_blocked_with_a_reason(release_class: ReleaseClass) -> None:
    decision = decide(spec(release_class.value), "prod", [], NOW)
    assert decision.approved is False
    [reason] = decision.reasons
    assert f"release class {release_class.value}" in reason
    assert "manual approval" in reason


def test_a_freeze_is_reported_before_the_release_class() -> None:
    decision = decide(spec("emergency"), "prod", [freeze()], NOW)
    assert decision.approved is False
    assert "frz-black-friday" in decision.reasons[0]


def test_freeze_covers() -> None:
    active = freeze()
    assert active.covers("prod", NOW)
    assert not active.covers("staging", NOW)
    assert not active.covers("prod", NOW + timedelta(hours=2))
    assert not active.covers("prod", NOW - timedelta(hours=1, seconds=1))


def test_freeze_problem_rejects_a_freeze_that_is_already_over() -> None:
    ends = NOW - timedelta(minutes=5)
    problem = freeze_problem(NOW - timedelta(hours=1), ends, NOW)
    assert problem is not None
    assert "already be over" in problem
    assert ends.isoformat() in problem
    assert freeze_problem(NOW - timedelta(hours=1), NOW, NOW) is not None  # ending right now is over too


def test_freeze_problem_accepts_current_and_upcoming_freezes() -> None:
    assert freeze_problem(NOW - timedelta(hours=1), NOW + timedelta(hours=1), NOW) is None
    assert freeze_problem(NOW + timedelta(days=1), NOW + timedelta(days=2), NOW) is None
