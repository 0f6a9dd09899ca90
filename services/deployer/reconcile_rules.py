"""Reconciling drift: whether policy lets the deployer put a service back as declared, and what that takes. Pure.

Only the live version is ever started, where it runs (in each region, or for the whole environment), and
only instances of the live version beyond the declared count, or of a version that is not live, are
stopped; an instance whose configuration differs is restarted with the declared one. A dead instance is
the upkeep loop's to restart; instances serving the whole environment beside regional pools are left
(the deployer does not move an environment between the two); nothing is done while a rollout is in
flight (it changes what runs on purpose) or when nothing is live (there is no version to start).
"""

from dataclasses import dataclass

from libs.environments import Environment
from services.deployer.drift import Instance, Running, config_differences, groups, where


@dataclass(frozen=True)
class Reconciliation:
    version: str | None  # the live version
    start: tuple[tuple[str | None, int], ...] = ()  # (region or None: the whole environment, slot) of the live version
    stop: tuple[Instance, ...] = ()  # surplus live instances, then every instance of another version
    restart: tuple[Instance, ...] = ()  # live instances whose configuration differs from the declaration
    left: tuple[str, ...] = ()  # drift this does not put back, each with why

    @property
    def acts(self) -> bool:
        return bool(self.start or self.stop or self.restart)


def reconcile_refusal(declared: Environment | None, environment: str, *, on_demand: bool) -> str | None:
    """Why drift in `environment` is not to be reconciled now (on the schedule, or because a person asked); None if it is."""
    if declared is None:
        return f"{environment} is not declared: there is nothing to reconcile it to"
    mode = declared.reconcile
    if mode == "off":
        return (f"{declared.name}.yaml says drift.reconcile: off: drift in {environment} is recorded, never "
                f"reconciled by the deployer; change what runs with a release, or change the declaration")
    if not on_demand and mode != "auto":
        return (f"{declared.name}.yaml says drift.reconcile: {mode}: a person reconciles {environment} with "
                f"`slipway env drift {environment} --reconcile`")
    return None


def reconciliation(declared: Environment, running: Running) -> Reconciliation:
    live = running.live_version
    if running.in_flight:
        return Reconciliation(live, left=(f"a rollout of {running.service} is in flight in {declared.name}: what runs "
                                          "is not reconciled until it ends",))
    down = tuple(f"{i.version} instance {i.slot} is down: the deployer's upkeep restarts it"
                 for i in running.instances if not i.alive)
    if live is None:
        left = (f"nothing of {running.service} is live: there is no version to start or keep",) if running.instances \
            or declared.total_instances else ()
        return Reconciliation(None, left=left + down)
    start: list[tuple[str | None, int]] = []
    surplus: list[Instance] = []
    left: list[str] = []
    used = {i.slot for i in running.live()}
    free = (slot for slot in range(len(used) + declared.total_instances + 1) if slot not in used)
    found = groups(declared, running)
    for group in found:
        if group.region is None and len(found) > 1:
            if group.instances:
                left.append(f"{len(group.instances)} instance(s) of {live} {where(None)} beside its regional pools: "
                            "not moved; release again to lay the environment out one way")
            continue
        surplus.extend(group.instances[group.wanted:])  # the highest slots go first
        start.extend((group.region, next(free)) for _ in range(group.wanted - len(group.instances)))
    strays = tuple(i for i in sorted(running.instances, key=lambda i: (i.version, i.slot)) if i.version != live)
    restart = tuple(i for i in sorted(running.live(), key=lambda i: i.slot)
                    if i not in surplus and i.alive and i.config is not None and config_differences(declared, i.config))
    return Reconciliation(live, tuple(start), (*surplus, *strays), restart, (*left, *down))
