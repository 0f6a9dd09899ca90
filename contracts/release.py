"""What a CI system asks for: the release specification."""

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from contracts.envelope import ACTOR_MAX, ID_PATTERN, NAME_PATTERN, Model, ZonedDatetime

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$"
VERSION_MAX = 64
SHA_PATTERN = r"^[0-9a-f]{7,64}$"
TEAM_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MAX_STEPS = 20

Version = Annotated[str, Field(min_length=1, max_length=VERSION_MAX, pattern=VERSION_PATTERN)]
Team = Annotated[str, Field(pattern=TEAM_PATTERN)]


def _kind_is_required(schema: dict[str, Any]) -> None:
    # pydantic cannot pick a strategy without `kind` (it is the discriminator), but its schema
    # lists a field with a default as optional; say what validation does.
    schema["required"] = ["kind", *(name for name in schema.get("required", []) if name != "kind")]


class ReleaseClass(StrEnum):
    STANDARD = "standard"
    EMERGENCY = "emergency"
    MAJOR = "major"


class Artifact(Model):
    uri: str = Field(min_length=1, max_length=2048, description="File path, file:// or http(s):// URL of the artifact")
    digest: str = Field(pattern=DIGEST_PATTERN, description="sha256:<64 lowercase hex> of the artifact bytes")


class Commit(Model):
    sha: str = Field(pattern=SHA_PATTERN)
    committed_at: ZonedDatetime


class CanaryStep(Model):
    weight: int = Field(ge=1, le=100, description="Percent of traffic sent to the new version")


class CanaryStrategy(Model):
    model_config = ConfigDict(json_schema_extra=_kind_is_required)

    kind: Literal["canary"] = "canary"
    steps: list[CanaryStep] = Field(
        min_length=1, max_length=MAX_STEPS,
        description="Traffic steps; weights must strictly increase "
        "(checked by slipway; JSON Schema can only refuse repeated steps)",
        json_schema_extra={"uniqueItems": True},
    )
    analysis_interval_s: float = Field(default=10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def weights_increase(self) -> "CanaryStrategy":
        weights = [s.weight for s in self.steps]
        if weights != sorted(set(weights)):
            raise ValueError(f"canary step weights must strictly increase, got {weights}")
        return self


class AllAtOnceStrategy(Model):
    model_config = ConfigDict(json_schema_extra=_kind_is_required)

    kind: Literal["all-at-once"] = "all-at-once"
    analysis_interval_s: float = Field(default=10.0, gt=0, le=3600)


class BlueGreenStrategy(Model):
    """A complete new pool beside the live one, smoke-tested before any traffic, then one switch of all traffic."""

    model_config = ConfigDict(json_schema_extra=_kind_is_required)

    kind: Literal["blue-green"] = "blue-green"
    analysis_interval_s: float = Field(default=10.0, gt=0, le=3600)
    keep_warm_s: float = Field(
        default=60.0, ge=0, le=86_400,
        description="How long the old pool keeps running after the switch succeeded, before it is retired")


MAX_INSTANCES = 20


class RollingStrategy(Model):
    """The live instances replaced in batches, each batch judged before the next."""

    model_config = ConfigDict(json_schema_extra=_kind_is_required)

    kind: Literal["rolling"] = "rolling"
    analysis_interval_s: float = Field(default=10.0, gt=0, le=3600)
    max_unavailable: int = Field(default=0, ge=0, le=MAX_INSTANCES,
                                 description="How many live instances may be missing while a batch is replaced")
    max_surge: int = Field(default=1, ge=0, le=MAX_INSTANCES,
                           description="How many instances may run beyond the pool's size while a batch is replaced")

    @model_validator(mode="after")
    def batches_move(self) -> "RollingStrategy":
        if self.max_unavailable + self.max_surge == 0:
            raise ValueError("max_unavailable and max_surge cannot both be 0: no batch could ever be replaced")
        return self


class ImmutableStrategy(Model):
    """A fresh instance set, health-checked, takes all traffic; the old set is destroyed, never changed in place."""

    model_config = ConfigDict(json_schema_extra=_kind_is_required)

    kind: Literal["immutable"] = "immutable"
    analysis_interval_s: float = Field(default=10.0, gt=0, le=3600)


Strategy = Annotated[
    CanaryStrategy | AllAtOnceStrategy | BlueGreenStrategy | RollingStrategy | ImmutableStrategy,
    Field(discriminator="kind"),
]


class FullScope(Model):
    """The whole environment at once: one router and one pool for it (today's behaviour)."""

    model_config = ConfigDict(json_schema_extra=_kind_is_required)

    kind: Literal["full"] = "full"


class RegionalScope(Model):
    """Region by region in the order the environment's declaration lists them (regional waves): each wave runs the
    release's strategy in its region with its own analysis, then bakes before the next. A failing wave rolls back
    itself and every wave before it."""

    model_config = ConfigDict(json_schema_extra=_kind_is_required)

    kind: Literal["regional"] = "regional"
    bake_s: float = Field(default=300.0, ge=0, le=86_400,
                          description="How long a wave that passed runs before the next region starts")


HEADER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
COOKIE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class PilotScope(Model):
    """An opt-in pilot group first: requests carrying `header` or `cookie` (any non-empty value) go to the new version
    while everyone else stays on the stable one; the pilot traffic is judged, then the release widens with its
    strategy."""

    model_config = ConfigDict(json_schema_extra=_kind_is_required)

    kind: Literal["pilot"] = "pilot"
    header: str = Field(default="X-Slipway-Pilot", pattern=HEADER_PATTERN,
                        description="A request with this header (non-empty) is in the pilot group")
    cookie: str = Field(default="slipway-pilot", pattern=COOKIE_PATTERN,
                        description="A request with this cookie (non-empty) is in the pilot group")
    analysis_interval_s: float | None = Field(
        default=None, gt=0, le=3600,
        description="How long the pilot phase is judged; the strategy's analysis interval when left out")


Scope = Annotated[FullScope | RegionalScope | PilotScope, Field(discriminator="kind")]


class RollbackTriggers(Model):
    max_error_rate: float = Field(default=0.05, ge=0, le=1)
    max_p99_latency_ms: float = Field(default=500.0, gt=0, le=3_600_000)
    min_requests: int = Field(default=10, ge=1, le=10_000, description="Fewer requests in a step than this is not enough evidence")


TERM_MAX = 500


class KnownIssue(Model):
    summary: str = Field(min_length=1, max_length=TERM_MAX)
    workaround: str = Field(default="", max_length=TERM_MAX)


class Requirement(Model):
    service: str = Field(pattern=NAME_PATTERN)
    versions: str = Field(min_length=1, max_length=200, description="PEP 440 specifiers, e.g. >=2.1,<3")

    @field_validator("versions")
    @classmethod
    def specifiers_parse(cls, versions: str) -> str:
        # Refused at the request, naming the field, rather than left for the gatekeeper to stumble on.
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            SpecifierSet(versions)
        except InvalidSpecifier:
            raise ValueError(f"{versions!r} is not a PEP 440 version specifier set (e.g. >=2.1,<3)") from None
        return versions


ChecklistAnswer = Literal["done", "skipped", "not-applicable"]


class FlagDeclaration(Model):
    """A feature flag the release's code reads; it ships off (dark launch) and is turned on without a deployment."""

    key: str = Field(pattern=NAME_PATTERN, description="The flag key the code evaluates, e.g. new-greeting")
    description: str = Field(default="", max_length=TERM_MAX)


class ReleaseSpec(Model):
    version: Version
    team: Team
    artifact: Artifact
    commit: Commit
    release_class: ReleaseClass = ReleaseClass.STANDARD
    strategy: Strategy | None = Field(
        default=None, description="How it rolls out; left out, the gatekeeper uses the strategy the service "
        "catalogue's delivery profile recommends (`slipway strategy recommend`) and its approval says so")
    instances: int | None = Field(
        default=None, ge=1, le=MAX_INSTANCES,
        description="Overrides the environment's declaration: how many instances the version runs as (in each region "
        "for a regional release). Left out: the declared instances (per region), or 1 where nothing is declared")
    scope: Scope = Field(default=FullScope(), description="Where the release goes first: the whole environment "
                         "(full), region by region (regional), or an opt-in pilot group first (pilot)")
    rollback_triggers: RollbackTriggers = RollbackTriggers()
    requested_by: str = Field(min_length=1, max_length=ACTOR_MAX)
    # What a governed release declares (the gatekeeper's policy reads them); all optional.
    known_issues: list[KnownIssue] | None = Field(
        default=None, max_length=100,
        description="Known issues and their workarounds, for support; null: not stated, []: stated that there are none",
    )
    migrations: list[Annotated[str, Field(max_length=TERM_MAX)]] = Field(
        default=[], max_length=100, description="Database migrations it runs")
    irreversible_steps: list[Annotated[str, Field(max_length=TERM_MAX)]] = Field(
        default=[], max_length=100, description="Steps a rollback cannot undo")
    dependents: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(
        default=[], max_length=200, description="Services that depend on this one")
    change: str | None = Field(default=None, max_length=64, pattern=ID_PATTERN,
                               description="The change record that covers it, e.g. CHG0012345")
    requires: list[Requirement] = Field(default=[], max_length=50,
                                        description="Versions of other services it needs live in its environment")
    incident: str | None = Field(default=None, max_length=128, pattern=ID_PATTERN,
                                 description="The incident an emergency release fixes")
    unplanned: bool = Field(default=False, description="Not in any plan: a fix for a user-facing problem (DORA rework)")
    flags: list[FlagDeclaration] = Field(
        default=[], max_length=50, json_schema_extra={"uniqueItems": True},
        description="Feature flags it ships dark: added off to its environment's flags when it is approved, "
        "never switched on by a deployment (`slipway flags set/rollout` does that)")
    checklist: dict[Annotated[str, Field(pattern=NAME_PATTERN)], ChecklistAnswer] = Field(
        default={}, max_length=50,
        description="Answers to its class's readiness checklist (classes.yaml `checklist`): item -> done, skipped "
        "or not-applicable; an item left out is unanswered")

    @field_validator("flags")
    @classmethod
    def flag_keys_unique(cls, flags: list[FlagDeclaration]) -> list[FlagDeclaration]:
        keys = [flag.key for flag in flags]
        if len(keys) != len(set(keys)):
            raise ValueError(f"flag keys must be unique, got {keys}")
        return flags


    def traffic_steps(self) -> list[int]:
        """Weights the new version receives at each analysed step, as far as the release alone tells (a rolling
        release's depend on the live pool too: the deployer's plan has them); others judge one step of 100%."""
        if isinstance(self.strategy, CanaryStrategy):
            return [s.weight for s in self.strategy.steps]
        return [100]
