"""A release that names no strategy gets the one the service catalogue recommends for its service (pure).

The gatekeeper reads the catalogue already (risk, ownership); the choice is made once, when the
release is approved, and travels on ReleaseApproved with its reasons, so the deployer never reads
the catalogue and the audit trail says the strategy was recommended, not asked for. A service the
catalogue does not describe gets the recommendation for an unknown service (canary, as one that
matters), and the reasons say to add a `delivery` profile.
"""

from contracts.release import ReleaseSpec
from libs.service_catalogue import ServiceCatalogue
from libs.strategy_advice import explained, recommend, strategy_of


def with_strategy(release: ReleaseSpec, service: str, catalogue: ServiceCatalogue) -> tuple[ReleaseSpec, list[str]]:
    """`release` as it is when it names a strategy (and no reasons); else with the recommended one, and why."""
    if release.strategy is not None:
        return release, []
    entry = catalogue.entry(service)
    advice = recommend(entry)
    return release.model_copy(update={"strategy": strategy_of(advice)}), explained(advice, service, entry)
