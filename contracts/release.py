"""What a CI system asks for: the release specification."""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from contracts.envelope import Model

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


class ReleaseClass(StrEnum):
    STANDARD = "standard"
    EMERGENCY = "emergency"
    MAJOR = "major"


class Artifact(Model):
    uri: str = Field(min_length=1, max_length=2048, description="File path, file:// or http(s):// URL of the artifact")
    digest: str = Field(pattern=DIGEST_PATTERN, description="sha256:<64 lowercase hex> of the artifact bytes")


class Commit(Model):
    sha: str = Field(pattern=r"^[0-9a-f]{7,64}$")
    committed_at: AwareDatetime


class CanaryStep(Model):
    weight: int = Field(ge=1, le=100, description="Percent of traffic sent to the new version")


class CanaryStrategy(Model):
    kind: Literal["canary"] = "canary"
    steps: list[CanaryStep] = Field(min_length=1, max_length=20)
    analysis_interval_s: float = Field(default=10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def weights_increase(self) -> "CanaryStrategy":
        weights = [s.weight for s in self.steps]
        if weights != sorted(set(weights)):
            raise ValueError(f"canary step weights must strictly increase, got {weights}")
        return self


class AllAtOnceStrategy(Model):
    kind: Literal["all-at-once"] = "all-at-once"
    analysis_interval_s: float = Field(default=10.0, gt=0, le=3600)


Strategy = Annotated[CanaryStrategy | AllAtOnceStrategy, Field(discriminator="kind")]


class RollbackTriggers(Model):
    max_error_rate: float = Field(default=0.05, ge=0, le=1)
    max_p99_latency_ms: float = Field(default=500.0, gt=0)
    min_requests: int = Field(default=10, ge=1, le=10_000, description="Fewer requests in a step than this is not enough evidence")


class ReleaseSpec(Model):
    version: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")
    team: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    artifact: Artifact
    commit: Commit
    release_class: ReleaseClass = ReleaseClass.STANDARD
    strategy: Strategy
    rollback_triggers: RollbackTriggers = RollbackTriggers()
    requested_by: str = Field(min_length=1, max_length=200)

    def traffic_steps(self) -> list[int]:
        """Weights the new version receives, step by step; all-at-once is one step of 100%."""
        if isinstance(self.strategy, CanaryStrategy):
            return [s.weight for s in self.strategy.steps]
        return [100]
