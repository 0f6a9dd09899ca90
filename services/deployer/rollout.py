"""How a release is laid out over an environment's regions: its waves and each wave's pool sizes (pure).

Worked out once when the deployment starts, from the release, its environment's declaration and the
stable pools recorded by region, and saved with the plan (`plans.layout`): a restarted deployer rebuilds the
same plan even if the declaration changed meanwhile.
"""

import json
from dataclasses import dataclass

from collections.abc import Mapping

from contracts.release import MAX_STEPS, PilotScope, RegionalScope, ReleaseSpec, Scope, Strategy
from libs.environments import Environment
from services.deployer.strategies import scopes
from services.deployer.strategies.plan import Action, Situation, steps_of
from services.deployer.strategies.scopes import WHOLE, Wave


class LayoutRefused(ValueError):
    """The release cannot be laid out over its environment (the reason says why)."""


@dataclass(frozen=True)
class Layout:
    """Each wave's region and pool sizes, and where the sizes came from (release, declaration or default)."""

    waves: tuple[tuple[str, int, int], ...]  # (region, instances of the new version, instances of the stable one)
    source: str

    def to_json(self) -> str:
        return json.dumps({"waves": [list(w) for w in self.waves], "source": self.source})

    @classmethod
    def from_json(cls, raw: str) -> "Layout":
        parsed = json.loads(raw)
        return cls(tuple((str(r), int(n), int(s)) for r, n, s in parsed["waves"]), str(parsed["source"]))

    @property
    def instances(self) -> dict[str, int]:
        return {region: count for region, count, _ in self.waves}

    @property
    def regions(self) -> list[str]:
        return [region for region, _, _ in self.waves if region != WHOLE]


def lay_out(spec: ReleaseSpec, environment: str, declared: Environment | None,
            stable_by_region: Mapping[str, int]) -> Layout:
    """The release's waves; `stable_by_region` counts the stable version's recorded instances per region
    (WHOLE for those behind the environment's one router). LayoutRefused when it cannot go out that way."""
    if spec.instances is not None:
        source = "release"
    else:
        source = "declaration" if declared is not None else "default"
    regional = isinstance(spec.scope, RegionalScope)
    if stable_by_region and regional != (WHOLE not in stable_by_region):
        now, then = ("region by region", "for the whole environment") if regional else (
            "for the whole environment", "region by region")
        raise LayoutRefused(f"{environment} runs its live version {then}; a release {now} cannot take over from it "
                            "(switching an environment between regional and other scopes is not supported)")
    if not regional:
        count = spec.instances or (declared.total_instances if declared else 1)
        return Layout(((WHOLE, count, stable_by_region.get(WHOLE, 0)),), source)
    if declared is None:
        raise LayoutRefused(f"regional waves need a declaration of {environment} (infra/environments/"
                            f"{environment}.yaml) listing its regions in rollout order")
    waves = tuple((region, spec.instances or declared.instances[region], stable_by_region.get(region, 0))
                  for region in declared.regions)
    if empty := [region for region, count, _ in waves if count == 0]:
        raise LayoutRefused(f"{environment} declares no instances in {', '.join(empty)}: a wave there cannot be judged")
    return Layout(waves, source)


def waves_of(layout: Layout, version: str, stable_version: str | None) -> list[Wave]:
    """A wave per region; a region where the stable version has no instance is that version's first deployment."""
    return [Wave(region, Situation(version, stable_version if stable else None, count, stable))
            for region, count, stable in layout.waves]


def rollout_for(spec: ReleaseSpec, environment: str, declared: Environment | None, stable_version: str | None,
                stable_by_region: Mapping[str, int]) -> tuple[Layout, "Rollout"]:
    """The release's layout and plan; LayoutRefused when it cannot go out that way."""
    layout = lay_out(spec, environment, declared, stable_by_region)
    rollout = Rollout(spec.strategy, spec.scope, waves_of(layout, spec.version, stable_version))
    if len(steps := steps_of(rollout.plan())) > MAX_STEPS:
        raise LayoutRefused(f"{len(steps)} steps to judge over {len(layout.waves)} wave(s): at most {MAX_STEPS} "
                            "(fewer canary steps or regions)")
    return layout, rollout


@dataclass(frozen=True)
class Rollout:
    """A release's plan over its layout: the strategy in each wave, within its scope."""

    strategy: Strategy
    scope: Scope
    waves: list[Wave]

    def plan(self) -> list[Action]:
        return scopes.plan(self.strategy, self.scope, self.waves)

    def rollback(self, cursor: int) -> list[Action]:
        return scopes.rollback(self.strategy, self.scope, self.waves, cursor)

    def analysis_interval_s(self, pilot: bool) -> float:
        if pilot and isinstance(self.scope, PilotScope) and self.scope.analysis_interval_s is not None:
            return self.scope.analysis_interval_s
        return self.strategy.analysis_interval_s
