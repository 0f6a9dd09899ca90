"""Feature flags: the commands that change a flag's exposure in an environment, and the events they leave.

A release declares its flags (contracts.release.FlagDeclaration); they are added off to each environment it
is approved for (FlagsDeclared). A person then exposes a flag to a share of users without a deployment
(ChangeFlag -> FlagChanged). Exposure is one number, the percent of targeting keys served "on": 0 is off,
100 is on, anything between is a fractional rollout.
"""

from typing import Annotated, ClassVar

from pydantic import Field

from contracts import subjects
from contracts.commands import SignedCommand
from contracts.envelope import ITEMS_MAX, NAME_PATTERN, Model, Name, ReleaseEvent
from contracts.events import SIGNED_COMMAND_DESCRIPTION, StandaloneEvent
from contracts.release import FlagDeclaration

FlagKey = Annotated[str, Field(pattern=NAME_PATTERN, description="The flag key the code evaluates")]
Percent = Annotated[int, Field(ge=0, le=100, description="Share of targeting keys served `on`: 0 off, 100 on")]


class ChangeFlag(Model):
    """Expose `flag` in `environment` to `percent` of targeting keys (`slipway flags set` sends 0 or 100)."""

    flag: FlagKey
    environment: Name
    percent: Percent


class ListFlags(Model):
    """The flags known in one environment, or in all, with their exposure."""

    environment: Name | None = None


class FlagChanged(StandaloneEvent):
    """A person changed a flag's exposure in one environment; `actor` is who (signed)."""

    subject: ClassVar[str] = subjects.FLAG_CHANGED
    thread_field: ClassVar[str | None] = "flag"
    flag: FlagKey
    environment: Name
    before: Percent = Field(description="The exposure before the change")
    percent: Percent = Field(description="The exposure after the change")
    signed_command: SignedCommand | None = Field(default=None, description=SIGNED_COMMAND_DESCRIPTION)


class FlagsDeclared(ReleaseEvent):
    """An approved release's declared flags that its environment did not have yet, added off (dark)."""

    subject: ClassVar[str] = subjects.FLAGS_DECLARED
    flags: list[FlagDeclaration] = Field(min_length=1, max_length=ITEMS_MAX)
