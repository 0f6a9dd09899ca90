"""Performance bands for DORA figures, shown only when asked. Pure.

The thresholds are the last published tiers: the 2024 Accelerate State of DevOps report (DORA,
Google Cloud), its software delivery performance levels elite / high / medium / low. The 2025
report replaced the tiers with team archetypes and gives none. The report's levels are clusters of
all four figures together, so one figure alone does not always single out a level:

- its change failure rates are not ordered (elite 5%, high 20%, medium 10%, low 40%): by that
  figure alone slipway says "elite" up to 5%, "high or medium" up to 20%, "low" above;
- high and medium both recover in under a day: "high or medium" below a day, "elite" below an hour;
  the report's low level recovers in one week to one month, and names none between a day and a week,
  so slipway says "low" for a day or more;
- rework rate came with the 2025 report, after the last tiers: it has no band.
"""

from dataclasses import dataclass

SOURCE = "DORA, Accelerate State of DevOps report 2024 (software delivery performance levels)"
YEAR = 2024
ELITE, HIGH, HIGH_OR_MEDIUM, MEDIUM, LOW = "elite", "high", "high or medium", "medium", "low"
HOUR, DAY, WEEK, MONTH = 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0


@dataclass(frozen=True)
class Bands:
    deployment_frequency: str | None
    lead_time: str | None
    change_failure_rate: str | None
    recovery_time: str | None
    source: str = SOURCE
    year: int = YEAR


def deployment_frequency_band(per_day: float, deployments: int) -> str | None:
    """Elite: on demand (a deployment a day or more); high: once a day to once a week; medium: once a week to
    once a month; low: less often."""
    if not deployments:
        return None
    if per_day >= 1:
        return ELITE
    if per_day >= 1 / 7:
        return HIGH
    if per_day >= 1 / 30:
        return MEDIUM
    return LOW


def lead_time_band(median_s: float | None) -> str | None:
    """Elite: under a day; high: a day to a week; medium: a week to a month; low: longer."""
    if median_s is None:
        return None
    for limit, band in ((DAY, ELITE), (WEEK, HIGH), (MONTH, MEDIUM)):
        if median_s < limit:
            return band
    return LOW


def change_failure_rate_band(rate: float, changes: int) -> str | None:
    if not changes:
        return None
    if rate <= 0.05:
        return ELITE
    if rate <= 0.20:
        return HIGH_OR_MEDIUM
    return LOW


def recovery_time_band(median_s: float | None) -> str | None:
    if median_s is None:
        return None
    if median_s < HOUR:
        return ELITE
    if median_s < DAY:
        return HIGH_OR_MEDIUM
    return LOW


def bands(per_day: float, deployments: int, lead_time_median_s: float | None, change_failure_rate: float,
          changes: int, recovery_median_s: float | None) -> Bands:
    """Each figure's band by itself; None where the window has nothing to band."""
    return Bands(deployment_frequency_band(per_day, deployments), lead_time_band(lead_time_median_s),
                 change_failure_rate_band(change_failure_rate, changes), recovery_time_band(recovery_median_s))
