"""The vocabulary of deployment plans: the actions a handler executes, and where a deployment stands in its plan.

A strategy is a pure planner (one module each beside this one): from the release's strategy and
the deployment's situation it gives the whole sequence of actions, so the next action is the one
at the deployment's cursor and the rollback actions follow from what was already done. The
cursor is persisted after every action, so a restarted deployer carries on where it stopped and
repeats at most the one action it was executing (every action is idempotent on the target).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Situation:
    """What a plan depends on besides the strategy: the versions and the sizes of their pools when it began."""

    version: str
    stable_version: str | None
    instances: int = 1
    stable_instances: int = 1


@dataclass(frozen=True)
class StartPool:
    """Run `count` instances of `version` (slots 0..count-1), adopting those already running; no traffic yet."""

    version: str
    count: int


@dataclass(frozen=True)
class StartInstances:
    """Run the instances `slots` of `version` (adopting those already running), beside what runs."""

    version: str
    slots: tuple[int, ...]


@dataclass(frozen=True)
class StopInstances:
    """Take the instances `slots` of `version` out of the router (traffic split `weights` over what is left),
    then stop them."""

    version: str
    slots: tuple[int, ...]
    weights: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class HealthCheck:
    """Ask every instance of `version` directly whether it is healthy; one that is not rolls back."""

    version: str


@dataclass(frozen=True)
class Shift:
    """Route traffic: percent per version, summing to 100; versions left out get none."""

    weights: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class SmokeTest:
    """Requests pinned to `version` through the router before it has any share of traffic; a failure rolls back."""

    version: str


@dataclass(frozen=True)
class AwaitVerdict:
    """Judge the current traffic split: the deployment waits here for a verdict (or a person)."""

    step_index: int
    weight: int  # percent of traffic the new version has while it is judged
    pilot: bool = False  # only the pilot group (and probes) reach the new version while it is judged


@dataclass(frozen=True)
class Succeed:
    """The new version is live: announce it (before anything old is retired)."""


@dataclass(frozen=True)
class KeepWarm:
    """Leave the old pool running this long after success, so switching back stays instant."""

    seconds: float


@dataclass(frozen=True)
class RetirePool:
    """Stop every instance of `version`."""

    version: str


@dataclass(frozen=True)
class EnterRegion:
    """The actions after this one act on `region`'s router and pool (a wave of a regional release)."""

    region: str


@dataclass(frozen=True)
class Bake:
    """A wave passed: let it run this long before the next region starts."""

    seconds: float


@dataclass(frozen=True)
class RoutePilot:
    """Send requests carrying `header` or `cookie` to `version`, whatever the weights."""

    version: str
    header: str
    cookie: str


@dataclass(frozen=True)
class ClearPilot:
    """No pilot group any more: every request is routed by weight."""


Action = (StartPool | StartInstances | StopInstances | HealthCheck | Shift | SmokeTest | AwaitVerdict | Succeed
          | KeepWarm | RetirePool | EnterRegion | Bake | RoutePilot | ClearPilot)

# Actions after which progress is saved (the others are repeated after a crash, harmlessly): a wait, or an announcement.
SAVED = (AwaitVerdict, Succeed, KeepWarm, Bake)


@dataclass(frozen=True)
class Progress:
    """Where a deployment is in its plan: the next action to execute, and whether it waits at a verdict there."""

    cursor: int = 0
    waiting: bool = False

    def accept(self, step_index: int, plan: list[Action]) -> "Progress":
        """The verdict (or the person) let step `step_index` go on; accepting it twice moves nothing."""
        here = plan[self.cursor] if self.cursor < len(plan) else None
        if self.waiting and isinstance(here, AwaitVerdict) and here.step_index == step_index:
            return Progress(self.cursor + 1)
        return self

    def after(self, action: Action) -> "Progress":
        """Where the deployment stands once `action` was executed."""
        if isinstance(action, AwaitVerdict):
            return Progress(self.cursor, waiting=True)
        return Progress(self.cursor + 1)


def reach(plan: list[Action], progress: Progress) -> int:
    """The furthest action that may have been executed, as saved progress knows it: the cursor when it waits there,
    else the next action that would have been saved (those before it are not saved one by one)."""
    if progress.waiting:
        return progress.cursor
    return next((i for i in range(progress.cursor, len(plan)) if isinstance(plan[i], SAVED)), len(plan) - 1)


def steps_of(plan: list[Action]) -> list[int]:
    """The weights judged step by step: what DeploymentStarted announces."""
    return [action.weight for action in plan if isinstance(action, AwaitVerdict)]


def all_to(version: str | None) -> Shift:
    return Shift(((version, 100),) if version else ())


def undo(situation: Situation, done: list[Action]) -> list[Action]:
    """Restart the stable instances that were replaced, put all traffic back on the stable version and stop the
    new pool; nothing to undo once the release succeeded. `done` ends with the action that may have been cut short."""
    if any(isinstance(action, Succeed) for action in done):
        return []
    new, stable = situation.version, situation.stable_version
    replaced = sorted({slot for action in done if isinstance(action, StopInstances) and action.version == stable
                       for slot in action.slots})
    started = any(isinstance(action, StartPool | StartInstances) and action.version == new for action in done)
    touched = started or replaced or any(isinstance(action, Shift) for action in done)
    actions: list[Action] = [StartInstances(stable, tuple(replaced))] if stable and replaced else []
    if touched:
        actions.append(all_to(stable))
    if started:
        actions.append(RetirePool(new))
    return actions


def split(new: str, new_up: int, old: str | None, old_up: int) -> tuple[tuple[str, int], ...]:
    """Traffic in proportion to the instances each version has up, so every instance carries about the same load."""
    if not old or old_up == 0:
        return ((new, 100),) if new_up else ()
    if new_up == 0:
        return ((old, 100),)
    weight = min(99, max(1, round(100 * new_up / (new_up + old_up))))
    return ((new, weight), (old, 100 - weight))


def finish(situation: Situation, keep_warm_s: float = 0.0, old_still_routed: bool = False) -> list[Action]:
    """The new version takes all traffic: announce it, then retire the old pool (once it was kept warm long enough)."""
    if situation.stable_version is None:
        return [Succeed()]
    warm: list[Action] = [KeepWarm(keep_warm_s)] if keep_warm_s > 0 else []
    unroute: list[Action] = [all_to(situation.version)] if old_still_routed else []
    return [Succeed(), *warm, *unroute, RetirePool(situation.stable_version)]
