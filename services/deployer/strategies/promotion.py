"""Promoting a release: the rest of its plan without the analysis, straight to all traffic (pure).

The promoted plan keeps every index of the strategy's plan, so a saved cursor means the same
thing before and after; the steps past the promoted one become `Skipped`, as do traffic shifts
that another shift would replace at once (a canary's 50% on the way to 100%). What is needed to
reach all traffic safely stays: instances started and stopped batch by batch, smoke tests and
health checks, success, keeping the old pool warm, retiring it.
"""

from dataclasses import dataclass

from services.deployer.strategies.plan import Action, AwaitVerdict, Bake, Shift


@dataclass(frozen=True)
class Skipped:
    """An action of the plan a promotion went past: nothing is done for it."""

    action: Action


def promoted(plan: list[Action], after: int) -> list[Action]:
    """`plan` promoted once its action `after` was done (or accepted): what follows goes on without verdicts."""
    # A regional release's bakes between waves are skipped too: they wait for nothing but time.
    steps: list[Action] = [Skipped(a) if i > after and isinstance(a, AwaitVerdict | Bake) else a
                           for i, a in enumerate(plan)]
    for i in range(len(steps) - 1, after, -1):
        if isinstance(steps[i], Shift) and isinstance(_next_done(steps, i), Shift):
            steps[i] = Skipped(steps[i])
    return steps


def skipped_steps(plan: list[Action], after: int) -> int:
    """How many judged steps a promotion after action `after` leaves unjudged."""
    return sum(1 for a in plan[after + 1:] if isinstance(a, AwaitVerdict))


def _next_done(steps: list[Action], i: int) -> Action | None:
    return next((a for a in steps[i + 1:] if not isinstance(a, Skipped)), None)
