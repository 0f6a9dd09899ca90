from datetime import UTC, datetime, timedelta

from services.gatekeeper.domain import Freeze, freeze_problem

NOW = datetime(2024, 11, 29, 12, 0, tzinfo=UTC)


def freeze(environment: str = "prod", *, starts: timedelta = timedelta(hours=-1), ends: timedelta = timedelta(hours=2),
           lifted: bool = False, freeze_id: str = "frz-black-friday") -> Freeze:
    return Freeze(
        freeze_id=freeze_id, environment=environment, starts_at=NOW + starts, ends_at=NOW + ends,
        reason="black friday traffic", actor="alice", lifted=lifted,
    )


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
