"""Canary: the new pool takes a growing share of traffic, judged at each step, then all of it."""

from contracts.release import AllAtOnceStrategy, CanaryStep, CanaryStrategy
from services.deployer.strategies.plan import (
    Action, AwaitVerdict, Shift, Situation, StartPool, all_to, finish, undo,
)


def plan(strategy: CanaryStrategy | AllAtOnceStrategy, situation: Situation) -> list[Action]:
    new, stable = situation.version, situation.stable_version
    steps = strategy.steps if isinstance(strategy, CanaryStrategy) else [CanaryStep(weight=100)]
    actions: list[Action] = [StartPool(new, situation.instances)]
    for index, step in enumerate(steps):
        weight = step.weight
        # With nothing stable to fall back on (a first deployment) the new version takes all traffic;
        # the steps still gate completion on a healthy verdict.
        if stable is None or weight == 100:
            shift, weight = all_to(new), 100
        else:
            shift = Shift(((new, weight), (stable, 100 - weight)))
        actions += [shift, AwaitVerdict(index, weight, person=step.pause)]
    if steps[-1].weight != 100 and stable is not None:
        actions.append(all_to(new))
    return actions + finish(situation)


def rollback(strategy: CanaryStrategy | AllAtOnceStrategy, situation: Situation, cursor: int) -> list[Action]:
    return undo(situation, plan(strategy, situation)[:cursor + 1])
