"""Blue-green: a complete new pool beside the live one, smoke-tested before any user traffic, one switch of all
traffic, judged once; the old pool stays warm for a while (rollback is a switch back), then it is retired."""

from contracts.release import BlueGreenStrategy
from services.deployer.strategies.plan import (
    Action, AwaitVerdict, KeepWarm, RetirePool, Shift, Situation, SmokeTest, StartPool, all_to, finish, undo,
)


def plan(strategy: BlueGreenStrategy, situation: Situation) -> list[Action]:
    new, stable = situation.version, situation.stable_version
    # At weight 0 a pool is reached only by requests pinned to its version: the smoke test before the switch,
    # and switching back to the old pool while it is kept warm.
    beside = Shift(((stable, 100), (new, 0))) if stable else Shift(((new, 0),))
    switch = Shift(((new, 100), (stable, 0))) if stable else all_to(new)
    return [
        StartPool(new, situation.instances),
        beside,
        SmokeTest(new),
        switch,
        AwaitVerdict(0, 100),
        *finish(situation, strategy.keep_warm_s, old_still_routed=True),
    ]


def rollback(strategy: BlueGreenStrategy, situation: Situation, cursor: int) -> list[Action]:
    """Before success, undo what was done; after it, while the old pool is warm (kept, not yet retired), a switch
    back to it; once it may have been retired, nothing (the new version stays live)."""
    done = plan(strategy, situation)[:cursor + 1]
    warm = any(isinstance(a, KeepWarm) for a in done) and not any(isinstance(a, RetirePool) for a in done)
    if warm and situation.stable_version:
        return [all_to(situation.stable_version), RetirePool(situation.version)]
    return undo(situation, done)
