"""Drift: how what the deployer runs of one service in one environment differs from the environment's declaration.

Pure: the use case (services.deployer.environments) reads what runs from the deployer's store and
the declaration from infra/environments, and hands both here. A service in the middle of a rollout
is not compared: a rollout changes what runs on purpose. The deploy target records no regions yet
(the local driver runs every instance on this machine), so instances are compared in total, the
declared per-region counts named in the finding.
"""

from dataclasses import dataclass, field

from contracts.environment_events import DriftFinding
from libs.environments import Environment


@dataclass(frozen=True)
class Running:
    """What the deployer's store records for one service in one environment."""

    service: str
    live_version: str | None
    instances: dict[str, int]  # version -> instances recorded
    down: list[str] = field(default_factory=list)  # versions with a recorded instance whose process is gone
    in_flight: bool = False


def drift(declared: Environment | None, environment: str, running: Running) -> list[DriftFinding]:
    if running.in_flight:
        return []
    if declared is None:
        return [DriftFinding(kind="undeclared-environment", expected=f"a declaration of {environment}",
                             actual=f"{running.service} runs there", detail=f"no infra/environments/{environment}.yaml "
                             "declares it (nor an ephemeral template it is a preview of)")]
    found = []
    live = running.instances.get(running.live_version, 0) if running.live_version else 0
    if live != declared.total_instances:
        per_region = ", ".join(f"{region} {declared.instances[region]}" for region in declared.regions)
        found.append(DriftFinding(
            kind="instances", expected=str(declared.total_instances), actual=str(live),
            detail=f"{running.service} {running.live_version or '(nothing live)'}: {live} instance(s) running, "
                   f"{declared.total_instances} declared ({per_region})"))
    total = sum(running.instances.values())
    if declared.quotas.max_instances is not None and total > declared.quotas.max_instances:
        found.append(DriftFinding(kind="over-quota", expected=f"at most {declared.quotas.max_instances}",
                                  actual=str(total), detail=f"{running.service} runs {total} instance(s) over every "
                                  f"version, above quotas.max_instances {declared.quotas.max_instances}"))
    for version, count in sorted(running.instances.items()):
        if version != running.live_version and count:
            found.append(DriftFinding(kind="stray-version", expected=f"only {running.live_version or 'nothing'}",
                                      actual=f"{version} x{count}", detail=f"{running.service} {version} runs but is "
                                      "not live and no rollout is in flight"))
    for version in sorted(running.down):
        found.append(DriftFinding(kind="instance-down", expected="running", actual="not running",
                                  detail=f"{running.service} {version}: the recorded process is gone"))
    return found
