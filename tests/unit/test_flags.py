"""Feature flags as flagd files: exposure rendered as flagd targeting (and evaluated by flagd's own evaluator),
declarations added only when absent, and the reasons a change is refused."""

import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from pydantic import ValidationError

from contracts.flags import ChangeFlag
from contracts.release import FlagDeclaration, ReleaseSpec
from services.gatekeeper.flags import Flag, change_refusal, flagd_document, targeting, undeclared
from tests.support.flagd_buckets import served_on

USERS = [f"user-{n}" for n in range(400)]


def evaluated(flag: Flag) -> list[bool]:
    """What flagd's reference evaluator serves each user for `flag` rendered as slipway renders it."""
    core = FlagdCore()
    core.set_flags(flagd_document([flag]))
    return [core.resolve_boolean_value(flag.key, False, EvaluationContext(targeting_key=user)).value for user in USERS]


def test_off_and_on_are_the_default_variant_without_targeting() -> None:
    off, on = flagd_document([Flag("new-greeting", "staging", 0)]), flagd_document([Flag("new-greeting", "staging", 100)])
    assert off["flags"]["new-greeting"] == {"state": "ENABLED", "variants": {"on": True, "off": False},
                                            "defaultVariant": "off", "targeting": {},
                                            "metadata": {"description": "", "declaredBy": ""}}
    assert (on["flags"]["new-greeting"]["defaultVariant"], on["flags"]["new-greeting"]["targeting"]) == ("on", {})
    assert evaluated(Flag("new-greeting", "staging", 0)) == [False] * len(USERS)
    assert evaluated(Flag("new-greeting", "staging", 100)) == [True] * len(USERS)


@pytest.mark.parametrize("percent", [1, 25, 50, 99])
def test_a_percent_is_fractional_targeting_that_buckets_users_by_flag_and_targeting_key(percent: int) -> None:
    assert targeting(percent) == {"fractional": [["on", percent], ["off", 100 - percent]]}
    served = evaluated(Flag("new-greeting", "prod", percent))
    assert served == [served_on("new-greeting", user, percent) for user in USERS]
    assert 0 < sum(served) < len(USERS)


def test_a_user_served_on_stays_on_while_the_percent_grows() -> None:
    at_10, at_50 = evaluated(Flag("new-greeting", "prod", 10)), evaluated(Flag("new-greeting", "prod", 50))
    assert all(later for earlier, later in zip(at_10, at_50, strict=True) if earlier)


def test_a_request_without_a_targeting_key_gets_off_during_a_rollout() -> None:
    core = FlagdCore()
    core.set_flags(flagd_document([Flag("new-greeting", "prod", 50)]))
    assert core.resolve_boolean_value("new-greeting", False, EvaluationContext()).value is False


def test_flags_are_listed_by_key_with_their_description() -> None:
    document = flagd_document([Flag("zeta", "dev", 0, "last"), Flag("alpha", "dev", 0, "first")])
    assert list(document["flags"]) == ["alpha", "zeta"]
    assert document["flags"]["alpha"]["metadata"]["description"] == "first"


def test_only_declarations_the_environment_lacks_are_added() -> None:
    declared = [FlagDeclaration(key="new-greeting"), FlagDeclaration(key="dark-checkout", description="new checkout")]
    assert undeclared(declared, ["new-greeting"]) == [declared[1]]
    assert undeclared(declared, ["new-greeting", "dark-checkout"]) == []


def test_changes_are_refused_for_an_undeclared_environment_or_flag() -> None:
    assert change_refusal("new-greeting", "qa", ["dev", "prod"], []) == (
        "environment qa is not declared (declared: dev, prod); flags change only in declared environments")
    assert change_refusal("nope", "prod", ["dev", "prod"], ["new-greeting"]) == (
        "flag nope is not declared in prod (flags there: new-greeting); a release declares its flags in `flags:` "
        "and they are added, off, when it is approved")
    assert change_refusal("new-greeting", "prod", ["dev", "prod"], ["new-greeting"]) is None


def test_a_percent_outside_0_to_100_and_repeated_flag_keys_are_invalid() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 100"):
        ChangeFlag(flag="new-greeting", environment="prod", percent=150)
    with pytest.raises(ValidationError, match="flag keys must be unique"):
        ReleaseSpec.model_validate({
            "version": "1.0.0", "team": "payments", "requested_by": "ci:test",
            "artifact": {"uri": "a.pyz", "digest": "sha256:" + "0" * 64},
            "commit": {"sha": "abc1234", "committed_at": "2026-01-01T00:00:00Z"}, "strategy": {"kind": "all-at-once"},
            "flags": [{"key": "new-greeting"}, {"key": "new-greeting"}],
        })
