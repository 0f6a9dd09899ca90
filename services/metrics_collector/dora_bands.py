"""Performance bands for DORA figures, shown only when asked. Pure.

The thresholds are the last published tiers: the 2024 Accelerate State of DevOps report (DORA, Google
Cloud, v.2024.3), chapter "Software delivery performance", table "Software delivery performance levels"
on p. 13 (the report's errata page, dora.dev/research/2024/errata, corrects the colours of "the table" on
p. 13 and of its rows high and medium).
The 2025 report (State of AI-assisted Software Development) assesses team profiles instead and gives no tiers
(dora.dev/research/2025/team-profiles/questions).

Where each value was checked, and how far (the report's PDF itself could not be read here: dora.dev does not
resolve from this machine, and the PDF in DORA's site repository, dora-team/dora.dev
hugo/content/research/2024/dora-report/, is a Git LFS object absent from the stored copy; its infographic
has no tier table):

- the buckets the tiers are written in are the 2024 survey's own answers (dora-team/dora.dev
  hugo/data/survey_questions/2024.json): deployment frequency "On demand (multiple deploys per day)",
  "Between once per day and once per week", "... once per week and once per month", "... once per month and
  once every 6 months"; lead time and recovery "Less than one hour", "Less than one day", "Between one day
  and one week", "... one week and one month", "... one month and six months"; change failure rate a
  percentage;
- the report's text (a copy of v.2024.3, "Software delivery performance") says the clusters were computed
  on the original four metrics, so rework rate, which DORA introduced in 2024 (dora.dev/insights/
  dora-metrics-history, "From four keys to five (2024)"), has no tier: it has no band;
- the table's cells, as the secondary sources that reproduce it agree (none contradicts another; a page
  giving elite lead time "under 1 hour" and change failure rates 5/10/15/60% quotes other years):
  deployment frequency elite on demand (multiple deploys per day), high once a day to once a week, medium
  once a week to once a month, low once a month to once every six months; lead time elite under a day,
  high a day to a week, medium a week to a month, low a month to six months; change failure rate elite
  5%, high 20%, medium 10%, low 40%; failed deployment recovery time elite under an hour, high and medium
  under a day, low a week to a month.

The report's levels are clusters of all four figures together, so one figure alone does not always single
out a level, and slipway reads them as follows:

- deployment frequency: elite is more than one deployment a day ("multiple deploys per day"); exactly one
  a day is the top of high; less than once a month is low, rarer than once in six months too (the report
  has no level below low);
- lead time: the bounds as written; longer than six months is low too;
- change failure rates are not ordered (elite 5%, high 20%, medium 10%, low 40%: each cluster's typical
  rate, not a bound): by that figure alone slipway says "elite" up to 5%, "high or medium" up to 20%,
  "low" above;
- high and medium both recover in under a day: "high or medium" below a day, "elite" below an hour; the
  report's low level recovers in one week to one month and names none between a day and a week, so
  slipway says "low" for a day or more.
"""

from dataclasses import dataclass

SOURCE = "DORA, Accelerate State of DevOps report 2024 (software delivery performance levels, p. 13)"
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
    """Elite: on demand, multiple deployments a day; high: once a day to once a week; medium: once a week to once
    a month; low: less often."""
    if not deployments:
        return None
    if per_day > 1:
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
