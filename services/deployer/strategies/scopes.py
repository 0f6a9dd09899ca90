"""Where a release goes first (its scope), around its strategy's plan: the whole environment, region by region
(regional waves), or an opt-in pilot group first. Pure, like the strategies.

A wave is the strategy's plan in one region, up to the point where it would announce success: every wave's
steps are judged (numbered on from the wave before, so a release's step indices stay unique), a bake time
separates two waves, and only once the last wave passed is the release announced and the old pools retired,
region by region. Rolling back at any point undoes the wave in progress and every wave before it.
"""

from dataclasses import dataclass, replace

from contracts.release import FullScope, PilotScope, RegionalScope, Scope, Strategy
from services.deployer.strategies import plan_for, rollback_for
from services.deployer.strategies.plan import (
    Action, AwaitVerdict, Bake, ClearPilot, EnterRegion, KeepWarm, RetirePool, RoutePilot, Shift, Situation,
    StartInstances, StartPool, Succeed, all_to, undo,
)

WHOLE = ""  # the region of a release that is not rolled out by region: the environment's one router and pool


@dataclass(frozen=True)
class Wave:
    """One region's part of a release: its situation there (its pools' sizes)."""

    region: str
    situation: Situation


def plan(strategy: Strategy, scope: Scope, waves: list[Wave]) -> list[Action]:
    match scope:
        case RegionalScope():
            return _regional(strategy, scope, waves)
        case PilotScope():
            return _pilot(strategy, scope, _one(waves))
        case FullScope():
            return plan_for(strategy, _one(waves).situation)
    raise ValueError(f"no planner for scope {scope.kind!r}")


def rollback(strategy: Strategy, scope: Scope, waves: list[Wave], cursor: int) -> list[Action]:
    """What puts traffic back where it was in every region reached, given the actions up to `cursor` were (or may
    have been) executed: the wave in progress first, then the ones before it, latest first. After success, only
    while old pools are kept warm (blue-green): a switch back to them."""
    if isinstance(scope, FullScope):
        return rollback_for(strategy, _one(waves).situation, cursor)
    actions = plan(strategy, scope, waves)
    done = actions[:cursor + 1]
    if any(isinstance(action, Succeed) for action in done):
        warm = any(isinstance(a, KeepWarm) for a in done) and not any(isinstance(a, RetirePool) for a in done)
        return _switch_back(waves) if warm else []
    if isinstance(scope, PilotScope):
        clear: list[Action] = [ClearPilot()] if any(isinstance(a, RoutePilot) for a in done) else []
        return clear + undo(_one(waves).situation, done)
    undoing: list[Action] = []
    for wave, segment in reversed(_segments(done, waves)):
        if steps := undo(wave.situation, segment):
            undoing += [EnterRegion(wave.region), *steps] if wave.region != WHOLE else steps
    return undoing


def region_at(actions: list[Action], cursor: int) -> str:
    """The region the action at `cursor` acts on: the last one entered before it."""
    return next((a.region for a in reversed(actions[:cursor + 1]) if isinstance(a, EnterRegion)), WHOLE)


def regions_of(actions: list[Action]) -> list[str]:
    """The regions `actions` act on, in order, each once."""
    return list(dict.fromkeys(a.region for a in actions if isinstance(a, EnterRegion)))


def _switch_back(waves: list[Wave]) -> list[Action]:
    """Traffic back on the old pools still kept warm, in every region where one runs; the new pools retired."""
    actions: list[Action] = []
    for wave in waves:
        if (stable := wave.situation.stable_version) is not None:
            region: list[Action] = [EnterRegion(wave.region)] if wave.region != WHOLE else []
            actions += [*region, all_to(stable), RetirePool(wave.situation.version)]
    return actions


def _one(waves: list[Wave]) -> Wave:
    if len(waves) != 1:
        raise ValueError(f"one wave expected, got {len(waves)}")
    return waves[0]


def _until_success(actions: list[Action]) -> tuple[list[Action], list[Action]]:
    """A strategy's plan cut where it announces success: (the rollout, what follows the announcement)."""
    at = next(i for i, action in enumerate(actions) if isinstance(action, Succeed))
    return actions[:at], actions[at + 1:]


def _renumbered(actions: list[Action], offset: int) -> list[Action]:
    return [replace(a, step_index=a.step_index + offset) if isinstance(a, AwaitVerdict) else a for a in actions]


def _regional(strategy: Strategy, scope: RegionalScope, waves: list[Wave]) -> list[Action]:
    actions: list[Action] = []
    afterwards: list[tuple[str, list[Action]]] = []
    judged = 0
    for number, wave in enumerate(waves):
        rollout, after = _until_success(plan_for(strategy, wave.situation))
        if number and scope.bake_s > 0:
            actions.append(Bake(scope.bake_s))
        actions += [EnterRegion(wave.region), *_renumbered(rollout, judged)]
        judged += sum(isinstance(a, AwaitVerdict) for a in rollout)
        afterwards.append((wave.region, after))
    actions.append(Succeed())
    # An old pool kept warm is kept so in every region at once, not one region after another.
    warm = max((a.seconds for _, after in afterwards for a in after if isinstance(a, KeepWarm)), default=0.0)
    actions += [KeepWarm(warm)] if warm > 0 else []
    for region, after in afterwards:
        if rest := [a for a in after if not isinstance(a, KeepWarm)]:
            actions += [EnterRegion(region), *rest]
    return actions


def _pilot(strategy: Strategy, scope: PilotScope, wave: Wave) -> list[Action]:
    widen = plan_for(strategy, wave.situation)
    new, stable = wave.situation.version, wave.situation.stable_version
    if stable is None:
        # A first deployment has no stable version to keep everyone else on: everyone is its pilot group.
        return widen
    # The pool the strategy starts anyway (a rolling release starts its first new instance early, as the pilot's).
    first = widen[0] if isinstance(widen[0], StartPool) else StartInstances(new, (0,))
    rollout, after = _until_success(widen)
    return [
        first, Shift(((stable, 100), (new, 0))), RoutePilot(new, scope.header, scope.cookie),
        AwaitVerdict(0, 0, pilot=True),
        *_renumbered(rollout, 1),
        # Cleared once the new version takes all traffic: a rule naming it must not outlive it as the stable version.
        ClearPilot(), Succeed(), *after,
    ]


def _segments(done: list[Action], waves: list[Wave]) -> list[tuple[Wave, list[Action]]]:
    """The actions of each wave that was begun, cut at the end of `done`."""
    if not any(isinstance(a, EnterRegion) for a in done):
        return [(waves[0], done)] if waves and waves[0].region == WHOLE else []
    by_region = {wave.region: wave for wave in waves}
    found: list[tuple[Wave, list[Action]]] = []
    for action in done:
        if isinstance(action, EnterRegion):
            found.append((by_region[action.region], []))
        elif found and not isinstance(action, Bake):
            found[-1][1].append(action)
    return found
