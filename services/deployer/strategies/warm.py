"""Whether an old pool is still kept warm, so that a rollback after success is a switch back to it (pure)."""

from datetime import datetime

from services.deployer.strategies.plan import Action, KeepWarm, Progress


def warm_reach(plan: list[Action], progress: Progress, wake_at: datetime | None, now: datetime) -> int | None:
    """The plan's KeepWarm action while its wait runs (nothing after it was done: the plan goes on only once
    `wake_at` passed); None when the plan is not keeping a pool warm, or its warm time is over."""
    if progress.waiting or progress.cursor == 0 or wake_at is None or now >= wake_at:
        return None
    return progress.cursor - 1 if isinstance(plan[progress.cursor - 1], KeepWarm) else None
