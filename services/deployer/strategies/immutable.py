"""Immutable: a fresh instance set for the new version, each instance health-checked, then all traffic moved to it
and judged; the old set is destroyed, never modified in place."""

from contracts.release import ImmutableStrategy
from services.deployer.strategies.plan import (
    Action, AwaitVerdict, HealthCheck, Situation, StartPool, all_to, finish, undo,
)


def plan(strategy: ImmutableStrategy, situation: Situation) -> list[Action]:
    new = situation.version
    return [StartPool(new, situation.instances), HealthCheck(new), all_to(new), AwaitVerdict(0, 100),
            *finish(situation)]


def rollback(strategy: ImmutableStrategy, situation: Situation, cursor: int) -> list[Action]:
    return undo(situation, plan(strategy, situation)[:cursor + 1])
