"""DORA figures of one team from its services' figures, the same definitions for every team. Pure.

Counts add up; medians do not, so a team's medians are taken over its services' pooled samples
(the collector lists each sample). When the collector answers DORA per team itself, this goes.
"""

from statistics import median
from typing import Any


def team_figures(team: str, per_service: dict[str, dict[str, Any]]) -> dict[str, Any]:
    replies = list(per_service.values())
    deployments = sum(int(r.get("deployments") or 0) for r in replies)
    changes = sum(int(r.get("changes") or 0) for r in replies)
    failed = sum(int(r.get("failed_changes") or 0) for r in replies)
    lead_times = [s["seconds"] for r in replies for s in r.get("lead_times") or [] if _is_sample(s)]
    restores = [s["seconds"] for r in replies for s in r.get("restores") or [] if _is_sample(s)]
    return {
        "team": team,
        "services": sorted(per_service),
        "deployments": deployments,
        "deployment_frequency_per_day": sum(float(r.get("deployment_frequency_per_day") or 0) for r in replies),
        "lead_time_median_s": median(lead_times) if lead_times else None,
        "changes": changes,
        "failed_changes": failed,
        "change_failure_rate": failed / changes if changes else 0.0,
        "time_to_restore_median_s": median(restores) if restores else None,
    }


def _is_sample(sample: object) -> bool:
    return isinstance(sample, dict) and isinstance(sample.get("seconds"), int | float)
