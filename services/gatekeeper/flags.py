"""Feature flags as flagd serves them: pure rules, no I/O.

A flag in one environment has one number, its exposure: the percent of targeting keys served the `on`
variant. 0 and 100 are plain off and on (the default variant, no targeting); anything between is flagd's
`fractional` operator, which buckets each evaluation by the flag key and the targeting key, so one user
keeps their answer while the percent grows.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.release import FlagDeclaration

ON, OFF = "on", "off"


@dataclass(frozen=True)
class Flag:
    key: str
    environment: str
    percent: int
    description: str = ""
    declared_by: str = ""  # the release whose approval added it

    @property
    def exposure(self) -> str:
        return OFF if self.percent == 0 else ON if self.percent == 100 else f"{self.percent}%"

    def as_data(self) -> dict[str, Any]:
        return {"flag": self.key, "environment": self.environment, "percent": self.percent,
                "exposure": self.exposure, "description": self.description, "declared_by": self.declared_by}


def targeting(percent: int) -> dict[str, Any]:
    """flagd targeting that serves `on` to `percent` of targeting keys; none at 0 or 100."""
    if percent in (0, 100):
        return {}
    # No bucketing expression: flagd's default buckets by the flag key and the targeting key together.
    return {"fractional": [[ON, percent], [OFF, 100 - percent]]}


def flag_definition(flag: Flag) -> dict[str, Any]:
    return {
        "state": "ENABLED",
        "variants": {ON: True, OFF: False},
        "defaultVariant": ON if flag.percent == 100 else OFF,
        "targeting": targeting(flag.percent),
        # flagd's schema has no description: what it is and who declared it travel as metadata.
        "metadata": {"description": flag.description, "declaredBy": flag.declared_by},
    }


def flagd_document(flags: Iterable[Flag]) -> dict[str, Any]:
    """One environment's flags as a flagd flag-definition file."""
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "flags": {flag.key: flag_definition(flag) for flag in sorted(flags, key=lambda f: f.key)},
    }


def undeclared(declared: Sequence[FlagDeclaration], known: Iterable[str]) -> list[FlagDeclaration]:
    """The declarations an environment does not have yet; a flag it has keeps its exposure."""
    present = set(known)
    return [flag for flag in declared if flag.key not in present]


def change_refusal(flag: str, environment: str, declared: Sequence[str], flags: Sequence[str]) -> str | None:
    """Why `flag` may not be changed in `environment`: unless it is one of the `declared` environments (a preview
    counts as declared when its template is), and `flag` one of the `flags` there."""
    if environment not in declared:
        return (f"environment {environment} is not declared (declared: {', '.join(sorted(declared)) or 'none'}); "
                f"flags change only in declared environments")
    if flag not in flags:
        there = ", ".join(sorted(flags)) or "none"
        return (f"flag {flag} is not declared in {environment} (flags there: {there}); a release declares its flags "
                f"in `flags:` and they are added, off, when it is approved")
    return None
