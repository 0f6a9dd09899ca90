"""Which deployment strategy fits a service, and why: a pure function of its catalogue entry.

The rules go from what rules strategies out to what merely prefers one:
1. breaking schema migrations: old and new cannot run side by side, so nothing progressive works;
2. a stateful service is replaced in place, a batch at a time (rolling), never in a second pool;
3. session affinity: weighted routing would move users between versions at every request, so one
   switch (blue-green) when there is room for a second pool, else rolling;
4. a tight RTO with room for a second pool: blue-green, whose rollback is one switch back;
5. a service many users see: canary, a fraction of them first with an analysis at each step;
6. room for a second pool: immutable, a fresh instance set and the old one destroyed;
7. otherwise rolling, or all-at-once for an experimental (tier 4) service.
A profile field left out is assumed, and the reasons say so.
"""

from dataclasses import dataclass, field

from pydantic import TypeAdapter

from contracts.release import Strategy
from libs.service_catalogue import DeliveryProfile, Migrations, Reach, ServiceEntry, Visibility

TIGHT_RTO_S = 300  # recovering within five minutes leaves no time to start a pool again


@dataclass(frozen=True)
class Recommendation:
    strategy: str  # blue-green | canary | rolling | immutable | all-at-once
    reasons: list[str]
    assumed: list[str] = field(default_factory=list)


def recommend(entry: ServiceEntry | None) -> Recommendation:
    profile = (entry.delivery if entry is not None else None) or DeliveryProfile()
    assumed = [text for value, text in (
        (profile.migrations, "no schema migrations"), (profile.stateful, "stateless"),
        (profile.session_affinity, "no session affinity"), (profile.spare_capacity, "no room for a second pool"),
        (profile.rto_s, "no tight RTO"),
    ) if value is None]
    strategy, reasons = _decide(entry, profile)
    return Recommendation(strategy, reasons, assumed)


# What a recommended strategy runs with: the contract's defaults, and for a canary these steps.
RECOMMENDED_CANARY_STEPS = (10, 50, 100)


def strategy_of(recommendation: Recommendation) -> Strategy:
    """The recommended strategy as a release's `strategy`, with its documented defaults."""
    fields: dict[str, object] = {"kind": recommendation.strategy}
    if recommendation.strategy == "canary":
        fields["steps"] = [{"weight": weight} for weight in RECOMMENDED_CANARY_STEPS]
    return TypeAdapter(Strategy).validate_python(fields)


def explained(recommendation: Recommendation, service: str, entry: ServiceEntry | None) -> list[str]:
    """The reasons a release's audit trail keeps for a strategy it did not name."""
    found = [f"{service} names no strategy: {recommendation.strategy} is recommended because {reason}"
             for reason in recommendation.reasons]
    if entry is None:
        found.append(f"{service} is not in the service catalogue: add it with a `delivery` profile")
    elif recommendation.assumed:
        found.append(f"assumed, as its delivery profile does not say: {', '.join(recommendation.assumed)}")
    return found


def _decide(entry: ServiceEntry | None, profile: DeliveryProfile) -> tuple[str, list[str]]:
    spare, tight = bool(profile.spare_capacity), profile.rto_s is not None and profile.rto_s <= TIGHT_RTO_S
    if profile.migrations is Migrations.BREAKING:
        return "all-at-once", ["its schema migrations break the previous version, so the two cannot serve side by "
                               "side and every progressive strategy would run both; split the migration into "
                               "expand/contract steps to unlock them"]
    if profile.stateful:
        return "rolling", ["it is stateful: instances are replaced a batch at a time, the others keep serving with "
                           "their state; a second pool would need that state copied"]
    if profile.session_affinity:
        if spare:
            return "blue-green", ["sessions are sticky: weighted routing would move users between versions, one "
                                  "switch moves each session once", "there is room for a second full pool"]
        return "rolling", ["sessions are sticky and there is no room for a second pool: instances are drained and "
                           "replaced one batch at a time"]
    if tight and spare:
        return "blue-green", [f"its RTO ({profile.rto_s}s) is at most {TIGHT_RTO_S}s: rollback must be a switch back "
                              "to the warm old pool", "there is room for a second full pool"]
    if exposure := _exposure(entry):
        return "canary", [f"{exposure}: a fraction of its users get the new version first, with an analysis at "
                          "each step before more do"]
    if spare:
        return "immutable", ["there is room for a fresh instance set: the new version never modifies the old in "
                             "place, and the old set stays until the new one is healthy"]
    if entry is not None and entry.tier == 4:
        return "all-at-once", ["it is experimental (tier 4) and few users see it: speed over caution"]
    return "rolling", ["no room for a second pool: instances are replaced a batch at a time, each batch "
                       "health-checked before the next"]


def _exposure(entry: ServiceEntry | None) -> str | None:
    """Why a bad release of this service would be widely seen; None when it would not."""
    if entry is None:
        return "it is not in the catalogue, so it is treated as one that matters (as the risk score does)"
    if entry.visibility is not Visibility.INTERNAL:
        return "it is customer-facing" if entry.visibility is not None else "its visibility is not described"
    if entry.reach in (Reach.MANY, Reach.ALL):
        return f"a bad release reaches {entry.reach.value} of its users"
    if (entry.tier or 1) <= 2:
        return f"it is tier {entry.tier or 'unknown'}"
    return None
