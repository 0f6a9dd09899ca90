"""A release that names no strategy gets the service catalogue's recommendation, with its reasons (pure)."""

from pathlib import Path

from contracts.release import BlueGreenStrategy, CanaryStrategy, ReleaseSpec, RollingStrategy
from libs.service_catalogue import ServiceCatalogue
from libs.strategy_advice import RECOMMENDED_CANARY_STEPS
from services.gatekeeper.strategy_choice import with_strategy
from tests.support.releases import release_for

CATALOGUE = ServiceCatalogue.model_validate({"services": {
    "ledger": {"team": "payments", "tier": 1, "delivery": {"stateful": True}},
    "checkout": {"team": "payments", "visibility": "internal", "reach": "few", "tier": 3,
                 "delivery": {"spare_capacity": True, "rto_s": 60, "stateful": False, "session_affinity": False,
                              "migrations": "none"}},
}})


def spec(service: str, **extra: object) -> ReleaseSpec:
    release = release_for(Path(__file__), "2.0.0", service=service, digest="sha256:" + "0" * 64, **extra)
    data = release.model_dump()
    if "strategy" not in extra:
        data.pop("strategy")
    return ReleaseSpec.model_validate(data)


def test_a_named_strategy_is_kept_and_needs_no_reasons() -> None:
    named = spec("ledger", strategy={"kind": "canary", "steps": [{"weight": 5}]})
    assert with_strategy(named, "ledger", CATALOGUE) == (named, [])


def test_a_release_without_a_strategy_gets_the_recommended_one_and_says_why() -> None:
    release, reasons = with_strategy(spec("ledger"), "ledger", CATALOGUE)
    assert release.strategy == RollingStrategy()
    assert reasons[0].startswith("ledger names no strategy: rolling is recommended because it is stateful")
    assert reasons[-1] == ("assumed, as its delivery profile does not say: no schema migrations, no session affinity, "
                           "no room for a second pool, no tight RTO")
    quick, why = with_strategy(spec("checkout"), "checkout", CATALOGUE)
    assert quick.strategy == BlueGreenStrategy() and len(why) == 2, why


def test_a_service_the_catalogue_does_not_describe_gets_a_canary_and_is_told_what_to_add() -> None:
    release, reasons = with_strategy(spec("unknown-svc"), "unknown-svc", CATALOGUE)
    assert release.strategy == CanaryStrategy(steps=[{"weight": w} for w in RECOMMENDED_CANARY_STEPS])
    assert reasons[-1] == "unknown-svc is not in the service catalogue: add it with a `delivery` profile"
