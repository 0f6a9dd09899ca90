"""Environments as code: `infra/environments/<env>.yaml`, read into strict models with errors naming file, line, field.

A declaration says what an environment should be: its regions in rollout order, how many instances of
each service run per region, its runtime and configuration values, its quotas, whether it is
production, the data sources it may use, and which differences from another environment are
intended (`allowed_differences`, for `slipway env parity`). An ephemeral declaration (`ephemeral:`)
is the template of preview environments named `<name>-<anything>`, each living `ttl` at most.

Isolation is checked where the declarations are read: a non-production environment may not use a
data source marked production, nor one that a production environment of the same directory uses.
"""

import fnmatch
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.envelope import NAME_PATTERN
from libs.policy_yaml import KeyPath, PolicyError, Problem, load_model, line_of

ConfigValue = str | int | float | bool
# Configuration values reach instances as environment variables of these names; names the runtime itself
# reads (PATH, PYTHON*, LD_*) or slipway marks its processes with (SLIPWAY_*) would change more than the app.
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
RESERVED_CONFIG = re.compile(r"^(PATH|HOME|PYTHON.*|LD_.*|SLIPWAY_.*)$")
DURATION = re.compile(r"^([0-9]+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    production: bool = Field(default=False, description="Holds production data: only production environments use it")
    url: str | None = Field(default=None, max_length=500)


class Quotas(Strict):
    max_instances: int | None = Field(default=None, ge=1, description="Instances of one service over all regions")


class Ephemeral(Strict):
    """This declaration is the template of preview environments `<name>-*`, each torn down `ttl` after it started."""

    ttl: timedelta
    max_concurrent: int = Field(ge=1, description="Preview environments of this template alive at once")

    @field_validator("ttl", mode="before")
    @classmethod
    def human_duration(cls, value: object) -> object:
        # "4h" is what people write; pydantic alone wants seconds or ISO 8601 (PT4H).
        if isinstance(value, str) and (found := DURATION.match(value.strip())):
            return timedelta(**{UNITS[found.group(2)]: int(found.group(1))})
        return value

    @field_validator("ttl")
    @classmethod
    def positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("ttl must be positive (e.g. 30m, 4h, 2d)")
        return value


class DriftPolicy(Strict):
    """What the deployer does about drift: `auto` reconciles on its schedule (and on demand), `on-demand` only when
    a person runs `slipway env drift ENV --reconcile`, `off` never (drift is only recorded)."""

    reconcile: Literal["auto", "on-demand", "off"] | None = Field(
        default=None, description="Default: on-demand for a production environment, auto otherwise")

    @field_validator("reconcile", mode="before")
    @classmethod
    def yaml_off(cls, value: object) -> object:
        # YAML reads an unquoted `off` as false (and `on`, `yes` as true).
        return {False: "off", True: "auto"}.get(value, value) if isinstance(value, bool) else value


class Environment(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    production: bool
    runtime: str = Field(min_length=1, max_length=100, description="What instances run on, e.g. python3.12")
    regions: list[str] = Field(min_length=1, description="In rollout order: regional waves go first to last")
    instances: dict[str, int] = Field(description="Instances of each service per region")
    config: dict[str, ConfigValue] = {}
    data_sources: list[DataSource] = []
    quotas: Quotas = Quotas()
    ephemeral: Ephemeral | None = None
    drift: DriftPolicy = DriftPolicy()
    allowed_differences: list[str] = Field(
        default=[], description="Parity paths (fnmatch patterns) that may differ from another environment: "
        "`instances`, `config.LOG_LEVEL`, `data_sources`, ...")

    def problems(self) -> list[tuple[KeyPath, str]]:
        """What makes this declaration unusable, each with the path of the field at fault."""
        return [*self._region_problems(), *self._quota_problems(), *self._isolation_problems(),
                *self._config_problems()]

    def _region_problems(self) -> Iterable[tuple[KeyPath, str]]:
        if len(set(self.regions)) != len(self.regions):
            yield ("regions",), f"a region is named twice: {', '.join(self.regions)}"
        for region, count in self.instances.items():
            if region not in self.regions:
                yield ("instances", region), f"{region} is not one of the regions ({', '.join(self.regions)})"
            if count < 0:
                yield ("instances", region), f"{count} instances: a count cannot be negative"
        if missing := [r for r in self.regions if r not in self.instances]:
            yield ("instances",), f"no count for region(s) {', '.join(missing)}"

    def _quota_problems(self) -> Iterable[tuple[KeyPath, str]]:
        if not self.production and self.quotas.max_instances is None:
            yield ("quotas",), "a non-production environment must have quotas.max_instances"
        if self.quotas.max_instances is not None and self.total_instances > self.quotas.max_instances:
            yield ("instances",), (f"{self.total_instances} instances over all regions exceed "
                                   f"quotas.max_instances {self.quotas.max_instances}")
        if self.ephemeral is not None and self.production:
            yield ("ephemeral",), "a production environment cannot be a preview template"

    def _isolation_problems(self) -> Iterable[tuple[KeyPath, str]]:
        if self.production:
            return
        for index, source in enumerate(self.data_sources):
            if source.production:
                yield ("data_sources", str(index), "production"), (
                    f"{source.name} holds production data; non-production environment {self.name} may not use it "
                    f"(isolation)")

    def _config_problems(self) -> Iterable[tuple[KeyPath, str]]:
        for key in self.config:
            if not CONFIG_KEY.match(key):
                yield ("config", key), f"{key!r}: a configuration name is an environment variable name (A-Z, 0-9, _)"
            elif RESERVED_CONFIG.match(key):
                yield ("config", key), f"{key} is reserved (the runtime or slipway reads it); choose another name"

    @property
    def reconcile(self) -> str:
        """When drift is put back as declared: auto, on-demand or off (see DriftPolicy)."""
        return self.drift.reconcile or ("on-demand" if self.production else "auto")

    @property
    def total_instances(self) -> int:
        return sum(self.instances.values())

    def previews(self, environment: str) -> bool:
        """Whether `environment` is one of this template's preview environments."""
        return self.ephemeral is not None and environment.startswith(f"{self.name}-")

    def may_differ(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, p) or path.startswith(f"{p}.") for p in self.allowed_differences)


def config_environment(config: dict[str, ConfigValue]) -> dict[str, str]:
    """Declared configuration as an instance's environment variables: booleans as true/false, numbers as written."""
    return {key: (str(value).lower() if isinstance(value, bool) else str(value)) for key, value in config.items()}


class Declarations(BaseModel):
    """Every environment declared in one directory, by name."""

    model_config = ConfigDict(frozen=True)

    directory: Path
    environments: dict[str, Environment]

    def get(self, environment: str) -> Environment | None:
        """The declaration of `environment`, or of the preview template it is an instance of."""
        exact = self.environments.get(environment)
        if exact is not None:
            return exact
        return next((e for e in self.environments.values() if e.previews(environment)), None)


def load_environment(path: Path) -> tuple[Environment, dict[KeyPath, int]]:
    """One declaration; its file name must be its name (`staging.yaml` declares `staging`)."""
    environment, lines = load_model(path, Environment)
    found = environment.problems()
    if environment.name != path.stem:
        found.append((("name",), f"{environment.name!r} is declared in {path.name}: name the file "
                                 f"{environment.name}.yaml or the environment {path.stem!r}"))
    if found:
        raise PolicyError([Problem(str(path), line_of(lines, at), ".".join(at), message) for at, message in found])
    return environment, lines


def load_environments(directory: Path) -> Declarations:
    """Every `*.yaml` in `directory`, with isolation checked across them; PolicyError lists every problem."""
    loaded: dict[str, tuple[Path, Environment, dict[KeyPath, int]]] = {}
    problems: list[Problem] = []
    for path in sorted(directory.glob("*.y*ml")):
        try:
            environment, lines = load_environment(path)
        except PolicyError as broken:
            problems.extend(broken.problems)
            continue
        loaded[environment.name] = (path, environment, lines)
    problems.extend(_shared_with_production(loaded))
    if problems:
        raise PolicyError(problems)
    return Declarations(directory=directory, environments={name: env for name, (_, env, _) in loaded.items()})


def _shared_with_production(loaded: dict[str, tuple[Path, Environment, dict[KeyPath, int]]]) -> Iterable[Problem]:
    """A data source a production environment uses is production data, whatever another file calls it."""
    used_by_production = {source.name: name for name, (_, env, _) in loaded.items() if env.production
                          for source in env.data_sources}
    for name, (path, env, lines) in loaded.items():
        if env.production:
            continue
        for index, source in enumerate(env.data_sources):
            if source.name in used_by_production:
                owner = used_by_production[source.name]
                yield Problem(str(path), line_of(lines, ("data_sources", index, "name")), f"data_sources.{index}.name",
                              f"{source.name} is used by production environment {owner}; non-production environment "
                              f"{name} may not use it (isolation)")


class DeclarationSource:
    """The declarations in a directory, read again only when a file there changed (a few `stat` calls a read)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: tuple | None = None
        self._declarations: Declarations | None = None

    def current(self) -> Declarations:
        """What the files say now; PolicyError when one is broken (and again at every read until it is fixed)."""
        stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(self.directory.glob("*.y*ml")))
        if self._declarations is None or stamp != self._stamp:
            self._declarations = None  # a broken file is reported at every read, not hidden by the last good one
            self._declarations, self._stamp = load_environments(self.directory), stamp
        return self._declarations
