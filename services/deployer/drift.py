"""Drift: how what the deployer runs of one service in one environment differs from the environment's declaration.

Pure: the use case (services.deployer.environments) reads what runs from the deployer's store and the
deploy target and hands it here. A service in the middle of a rollout is not compared: a rollout changes
what runs on purpose. Instances are counted per region where their handles name one (a release rolled
out region by region runs a pool behind each region's router), and in total where none does: a release
to the whole environment runs one pool, behind the environment's one router, of the declared total
(in a single-region environment the two are the same count). Each live instance's configuration, as it
runs with it, is compared with the declared `config`.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from contracts.environment_events import DriftFinding
from libs.environments import Environment, config_environment

SHORT = 200  # DriftFinding.expected/actual


@dataclass(frozen=True)
class Instance:
    """One recorded instance: where it runs and, when the target can tell, the configuration it runs with."""

    version: str
    slot: int
    region: str | None = None  # None: it serves the whole environment (behind its one router)
    config: Mapping[str, str] | None = None  # None: unknown
    alive: bool = True


@dataclass(frozen=True)
class Running:
    """What the deployer's store (and its target) record for one service in one environment."""

    service: str
    live_version: str | None
    instances: tuple[Instance, ...] = ()
    in_flight: bool = False

    def live(self) -> list[Instance]:
        return [i for i in self.instances if i.version == self.live_version]


@dataclass(frozen=True)
class Group:
    """Live instances counted together: those in one region, or (region None) those serving the whole environment."""

    region: str | None
    wanted: int
    instances: list[Instance]


def groups(declared: Environment, running: Running) -> list[Group]:
    """The live instances per declared region (in rollout order) when any runs in a region, else all together."""
    live = sorted(running.live(), key=lambda i: i.slot)
    if not any(i.region for i in live):
        return [Group(None, declared.total_instances, live)]
    found: dict[str | None, list[Instance]] = {region: [] for region in declared.regions}
    for instance in live:
        found.setdefault(instance.region or None, []).append(instance)
    # Whole-environment instances beside regional pools are none of the declaration's: 0 of them are wanted.
    return [Group(region, declared.instances.get(region, 0) if region else 0, instances)
            for region, instances in found.items()]


def where(region: str | None) -> str:
    return f"in {region}" if region else "for the whole environment"


def config_differences(declared: Environment, actual: Mapping[str, str]) -> dict[str, tuple[str | None, str | None]]:
    """Name -> (declared, actual) for every configuration value that differs; None where one is not set."""
    wanted = config_environment(declared.config)
    return {key: (wanted.get(key), actual.get(key)) for key in sorted(wanted.keys() | actual.keys())
            if wanted.get(key) != actual.get(key)}


def drift(declared: Environment | None, environment: str, running: Running) -> list[DriftFinding]:
    if running.in_flight:
        return []
    if declared is None:
        return [DriftFinding(kind="undeclared-environment", expected=f"a declaration of {environment}",
                             actual=f"{running.service} runs there", detail=f"no infra/environments/{environment}.yaml "
                             "declares it (nor an ephemeral template it is a preview of)")]
    return [*_instances(declared, running), *_quota(declared, running), *_strays(running), *_down(running),
            *_config(declared, running)]


def _instances(declared: Environment, running: Running) -> list[DriftFinding]:
    found = []
    label = f"{running.service} {running.live_version or '(nothing live)'}"
    per_region = ", ".join(f"{region} {declared.instances[region]}" for region in declared.regions)
    for group in groups(declared, running):
        if len(group.instances) == group.wanted:
            continue
        if group.region is None:
            said = f"{group.wanted} declared over all regions ({per_region})" if group.wanted else \
                "0 declared: the others run region by region"
        else:
            said = f"{group.wanted} declared" + ("" if group.region in declared.instances else
                                                 f" ({group.region} is not a declared region)")
        found.append(DriftFinding(kind="instances", region=group.region, expected=str(group.wanted),
                                  actual=str(len(group.instances)),
                                  detail=f"{label}: {len(group.instances)} instance(s) {where(group.region)}, {said}"))
    return found


def _quota(declared: Environment, running: Running) -> list[DriftFinding]:
    total, quota = len(running.instances), declared.quotas.max_instances
    if quota is None or total <= quota:
        return []
    return [DriftFinding(kind="over-quota", expected=f"at most {quota}", actual=str(total),
                         detail=f"{running.service} runs {total} instance(s) over every version, above "
                                f"quotas.max_instances {quota}")]


def _strays(running: Running) -> list[DriftFinding]:
    counts: dict[str, int] = {}
    for instance in running.instances:
        if instance.version != running.live_version:
            counts[instance.version] = counts.get(instance.version, 0) + 1
    return [DriftFinding(kind="stray-version", expected=f"only {running.live_version or 'nothing'}",
                         actual=f"{version} x{count}", detail=f"{running.service} {version} runs but is not live and "
                         "no rollout is in flight") for version, count in sorted(counts.items())]


def _down(running: Running) -> list[DriftFinding]:
    return [DriftFinding(kind="instance-down", expected="running", actual="not running",
                         detail=f"{running.service} {i.version} instance {i.slot}: the recorded process is gone")
            for i in sorted(running.instances, key=lambda i: (i.version, i.slot)) if not i.alive]


def _config(declared: Environment, running: Running) -> list[DriftFinding]:
    found = []
    for instance in sorted(running.live(), key=lambda i: i.slot):
        if instance.config is None or not instance.alive:
            continue
        if differences := config_differences(declared, instance.config):
            found.append(DriftFinding(
                kind="config", region=instance.region, expected=_pairs({k: d for k, (d, _) in differences.items()}),
                actual=_pairs({k: a for k, (_, a) in differences.items()}),
                detail=f"{running.service} {instance.version} instance {instance.slot} {where(instance.region)} runs "
                       f"with a configuration other than {declared.name}.yaml declares ({', '.join(differences)})"))
    return found


def _pairs(values: Mapping[str, str | None]) -> str:
    text = ", ".join(f"{key}={value}" if value is not None else f"{key} unset" for key, value in values.items())
    return text if len(text) <= SHORT else text[:SHORT - 3] + "..."
