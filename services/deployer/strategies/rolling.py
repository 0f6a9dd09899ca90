"""Rolling: the live instances are replaced batch by batch, never more than `max_unavailable` of them missing nor
more than `max_surge` extra running; each batch's share of traffic is judged before the next batch. A failing batch
stops the roll: the replaced instances are started again and take back all traffic."""

from contracts.release import RollingStrategy
from services.deployer.strategies.plan import (
    Action, AwaitVerdict, RetirePool, Shift, Situation, StartInstances, StartPool, StopInstances, Succeed, all_to,
    split, undo,
)


def plan(strategy: RollingStrategy, situation: Situation) -> list[Action]:
    new, old, wanted = situation.version, situation.stable_version, situation.instances
    if old is None or situation.stable_instances == 0:
        return [StartPool(new, wanted), all_to(new), AwaitVerdict(0, 100), Succeed()]
    batch, unavailable = strategy.max_surge + strategy.max_unavailable, strategy.max_unavailable
    old_up, new_up = situation.stable_instances, 0
    actions: list[Action] = []
    for index, first in enumerate(range(0, wanted, batch)):
        replaced = tuple(slot for slot in range(first, first + batch) if slot < situation.stable_instances)
        # Up to max_unavailable old instances go before their replacements start, the rest once they run.
        early, late = replaced[:unavailable], replaced[unavailable:]
        if early:
            old_up -= len(early)
            actions.append(StopInstances(old, early, split(new, new_up, old, old_up)))
        started = tuple(range(first, min(first + batch, wanted)))
        new_up += len(started)
        actions += [StartInstances(new, started), Shift(split(new, new_up, old, old_up))]
        if late:
            old_up -= len(late)
            actions.append(StopInstances(old, late, split(new, new_up, old, old_up)))
        actions.append(AwaitVerdict(index, dict(split(new, new_up, old, old_up)).get(new, 0)))
    if old_up:  # more old instances than new ones: the last of them go once the new pool is judged
        actions.append(all_to(new))
    return actions + [Succeed(), RetirePool(old)]


def rollback(strategy: RollingStrategy, situation: Situation, cursor: int) -> list[Action]:
    return undo(situation, plan(strategy, situation)[:cursor + 1])
