"""Strategy recommendation: each rule from a catalogue profile, the assumptions named, and the CLI."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from libs.service_catalogue import DeliveryProfile, ServiceEntry
from libs.strategy_advice import recommend
from slipway.cli import app


def entry(tier: int = 3, visibility: str = "internal", reach: str = "few", **delivery: object) -> ServiceEntry:
    return ServiceEntry(team="payments", tier=tier, visibility=visibility, reach=reach,
                        delivery=DeliveryProfile.model_validate(delivery))


FULL = {"stateful": False, "session_affinity": False, "spare_capacity": False, "rto_s": 3600, "migrations": "none"}


@pytest.mark.parametrize(("profile", "strategy", "why"), [
    ({**FULL, "migrations": "breaking", "stateful": True}, "all-at-once", "cannot serve side by side"),
    ({**FULL, "stateful": True, "spare_capacity": True}, "rolling", "stateful"),
    ({**FULL, "session_affinity": True, "spare_capacity": True}, "blue-green", "sticky"),
    ({**FULL, "session_affinity": True}, "rolling", "no room for a second pool"),
    ({**FULL, "rto_s": 60, "spare_capacity": True}, "blue-green", "RTO (60s)"),
    ({**FULL, "spare_capacity": True}, "immutable", "fresh instance set"),
    (FULL, "rolling", "batch"),
])
def test_each_rule_of_an_internal_low_reach_service(profile: dict, strategy: str, why: str) -> None:
    advice = recommend(entry(**profile))
    assert advice.strategy == strategy and why in " ".join(advice.reasons), advice
    assert advice.assumed == []


def test_a_widely_seen_stateless_service_gets_a_canary_and_an_experiment_goes_at_once() -> None:
    assert recommend(entry(visibility="customer-facing", **FULL)).strategy == "canary"
    assert recommend(entry(reach="all", **FULL)).strategy == "canary"
    assert recommend(entry(tier=4, **FULL)).strategy == "all-at-once"
    # A tight RTO without room for a second pool cannot be blue-green.
    assert recommend(entry(visibility="customer-facing", **{**FULL, "rto_s": 60})).strategy == "canary"


def test_what_the_profile_leaves_out_is_assumed_and_said() -> None:
    advice = recommend(None)
    assert advice.strategy == "canary" and "not in the catalogue" in advice.reasons[0]
    assert advice.assumed == ["no schema migrations", "stateless", "no session affinity", "no room for a second pool",
                              "no tight RTO"]
    assert recommend(entry(stateful=True)).assumed == ["no schema migrations", "no session affinity",
                                                        "no room for a second pool", "no tight RTO"]


def test_slipway_strategy_recommend_reads_the_catalogue(tmp_path: Path) -> None:
    runner = CliRunner()
    shipped = runner.invoke(app, ["strategy", "recommend", "ledger"])
    assert shipped.exit_code == 0 and "ledger: rolling" in shipped.output and "stateful" in shipped.output
    broken = tmp_path / "services.yaml"
    broken.write_text("services:\n  shop:\n    team: payments\n    delivery: {stateful: yes, rto: 5}\n")
    refused = runner.invoke(app, ["strategy", "recommend", "shop", "--catalogue", str(broken)])
    assert refused.exit_code == 2 and "services.yaml:4: services.shop.delivery.rto: unknown field (did you mean " \
        "'rto_s'?)" in refused.output, refused.output
