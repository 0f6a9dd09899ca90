"""Events about environments rather than releases: drift from a declaration and its reconciling, preview
environments expiring.

StandaloneEvents: they name their environment (and, for drift, the service), no release.
"""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from contracts import subjects
from contracts.commands import SignedCommand
from contracts.envelope import ITEMS_MAX, Model, Name, Text, ZonedDatetime
from contracts.events import StandaloneEvent

Short = Annotated[str, Field(max_length=200)]


class DriftFinding(Model):
    """One way what runs differs from what is declared."""

    kind: Literal["instances", "over-quota", "stray-version", "instance-down", "undeclared-environment", "config"]
    expected: Short
    actual: Short
    detail: Text = ""
    region: Name | None = Field(default=None, description="The region the finding is about (instances per region, "
                                "an instance's configuration), when it is about one")


class DriftDetected(StandaloneEvent):
    """What the deployer runs of `service` in `environment` differs from the environment's declaration."""

    subject: ClassVar[str] = subjects.DRIFT_DETECTED
    thread_field: ClassVar[str | None] = "environment"
    service: Name
    environment: Name
    findings: list[DriftFinding] = Field(min_length=1, max_length=ITEMS_MAX)
    trigger: Literal["schedule", "command"] = Field(description="The periodic check, or a person's `slipway env drift`")
    declaration: Annotated[str, Field(max_length=500)] = Field(default="", description="The declaration file compared")
    signed_command: SignedCommand | None = Field(default=None, description="The person's CheckDrift, when one asked")


class PreviewExpired(StandaloneEvent):
    """A preview environment outlived its template's ttl: what ran there was stopped."""

    subject: ClassVar[str] = subjects.PREVIEW_EXPIRED
    thread_field: ClassVar[str | None] = "environment"
    environment: Name = Field(description="The preview environment that expired")
    template: Name = Field(description="The ephemeral declaration it was made from")
    started_at: ZonedDatetime
    ttl_s: int = Field(ge=1, le=10**9)
    stopped: list[Annotated[str, Field(max_length=200)]] = Field(
        default=[], max_length=ITEMS_MAX, description="The instances stopped, as service@version")
    routers_stopped: list[Name] = Field(
        default=[], max_length=ITEMS_MAX, description="The services whose router in the preview was stopped")


Done = list[Annotated[str, Field(max_length=300)]]


class DriftReconciled(StandaloneEvent):
    """What the deployer did to put `service` in `environment` back as declared, and what it left and why.

    The actor is the deployer (its schedule, where the declaration says `drift.reconcile: auto`) or the person
    who ran `slipway env drift ENV --reconcile`."""

    subject: ClassVar[str] = subjects.DRIFT_RECONCILED
    thread_field: ClassVar[str | None] = "environment"
    service: Name
    environment: Name
    trigger: Literal["schedule", "command"]
    version: Name | None = Field(default=None, description="The live version whose instances were started or stopped")
    started: Done = Field(default=[], max_length=ITEMS_MAX, description="Instances started, as `version slot N in REGION`")
    stopped: Done = Field(default=[], max_length=ITEMS_MAX, description="Instances stopped (surplus, or not live)")
    restarted: Done = Field(default=[], max_length=ITEMS_MAX,
                            description="Instances restarted because their configuration differed from the declaration")
    left: Done = Field(default=[], max_length=ITEMS_MAX, description="Drift not reconciled, each with why")
    declaration: Annotated[str, Field(max_length=500)] = Field(default="", description="The declaration file followed")
    signed_command: SignedCommand | None = Field(default=None, description="The person's CheckDrift, when one asked")
