"""Parity between two declared environments: every difference, and whether either declaration allows it.

Both declarations are flattened to paths (`runtime`, `regions`, `instances.eu-west`,
`config.LOG_LEVEL`, `data_sources`, `quotas.max_instances`, ...); a path whose values differ is a
difference, allowed when it matches a pattern of `allowed_differences` in either file (a pattern
also covers what is under it: `config` allows every `config.*`). Names and the ephemeral template
are what makes two environments two: they are not compared.
"""

from dataclasses import dataclass
from typing import Any

from libs.environments import Environment

MISSING = "(not declared)"


@dataclass(frozen=True)
class Difference:
    path: str
    left: Any
    right: Any
    allowed: bool


def flatten(environment: Environment) -> dict[str, Any]:
    flat: dict[str, Any] = {
        "production": environment.production,
        "runtime": environment.runtime,
        "regions": list(environment.regions),
        "data_sources": sorted(source.name for source in environment.data_sources),
        "quotas.max_instances": environment.quotas.max_instances,
    }
    flat |= {f"instances.{region}": count for region, count in environment.instances.items()}
    flat |= {f"config.{key}": value for key, value in environment.config.items()}
    return flat


def parity(left: Environment, right: Environment) -> list[Difference]:
    """Every path whose value differs between `left` and `right`, in path order."""
    ours, theirs = flatten(left), flatten(right)
    found = []
    for path in sorted(ours.keys() | theirs.keys()):
        a, b = ours.get(path, MISSING), theirs.get(path, MISSING)
        if a != b:
            found.append(Difference(path, a, b, left.may_differ(path) or right.may_differ(path)))
    return found
