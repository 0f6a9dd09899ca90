"""One planner per strategy; `plan_for` and `rollback_for` pick it by the strategy's kind."""

from contracts.release import (
    AllAtOnceStrategy, BlueGreenStrategy, CanaryStrategy, ImmutableStrategy, RollingStrategy, Strategy,
)
from services.deployer.strategies import blue_green, canary, immutable, rolling
from services.deployer.strategies.plan import Action, Situation


def plan_for(strategy: Strategy, situation: Situation) -> list[Action]:
    match strategy:
        case CanaryStrategy() | AllAtOnceStrategy():
            return canary.plan(strategy, situation)
        case BlueGreenStrategy():
            return blue_green.plan(strategy, situation)
        case RollingStrategy():
            return rolling.plan(strategy, situation)
        case ImmutableStrategy():
            return immutable.plan(strategy, situation)
    raise ValueError(f"no planner for strategy {strategy.kind!r}")


def rollback_for(strategy: Strategy, situation: Situation, cursor: int) -> list[Action]:
    """What puts traffic back where it was, given the actions up to `cursor` were (or may have been) executed."""
    match strategy:
        case CanaryStrategy() | AllAtOnceStrategy():
            return canary.rollback(strategy, situation, cursor)
        case BlueGreenStrategy():
            return blue_green.rollback(strategy, situation, cursor)
        case RollingStrategy():
            return rolling.rollback(strategy, situation, cursor)
        case ImmutableStrategy():
            return immutable.rollback(strategy, situation, cursor)
    raise ValueError(f"no planner for strategy {strategy.kind!r}")
