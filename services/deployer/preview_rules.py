"""Preview environments: when one has outlived its ttl, and whether another may start. Pure."""

from dataclasses import dataclass
from datetime import datetime

from libs.environments import Declarations


@dataclass(frozen=True)
class Preview:
    environment: str
    started_at: datetime


@dataclass(frozen=True)
class Expiry:
    environment: str
    template: str
    started_at: datetime
    ttl_s: int


def expired(declarations: Declarations, alive: list[Preview], now: datetime) -> list[Expiry]:
    """The previews whose template's ttl has passed since they started (a preview with no template any more: none)."""
    found = []
    for preview in alive:
        template = declarations.get(preview.environment)
        if template is None or template.ephemeral is None:
            continue
        if now - preview.started_at >= template.ephemeral.ttl:
            found.append(Expiry(preview.environment, template.name, preview.started_at,
                                int(template.ephemeral.ttl.total_seconds())))
    return found


def admission_refusal(declarations: Declarations, environment: str, alive: list[str]) -> str | None:
    """Why a release may not start preview `environment` now (its template's previews are all taken); None if it may."""
    template = declarations.get(environment)
    if template is None or template.ephemeral is None or environment in alive:
        return None
    siblings = sorted(name for name in alive if template.previews(name))
    if len(siblings) < template.ephemeral.max_concurrent:
        return None
    return (f"preview environment {environment} refused: {len(siblings)} preview(s) of {template.name} are alive "
            f"({', '.join(siblings)}), at most {template.ephemeral.max_concurrent} at once (quota in "
            f"{template.name}.yaml); one expires after {template.ephemeral.ttl} or when it is torn down")
