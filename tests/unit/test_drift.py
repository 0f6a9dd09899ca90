"""Drift of one service from its environment's declaration: the pure comparison."""

from pathlib import Path

from libs.environments import load_environments
from services.deployer.drift import Running, drift

DECLARED = load_environments(Path(__file__).resolve().parents[2] / "infra" / "environments")
STAGING = DECLARED.environments["staging"]  # eu-west 1 + us-east 1, quota 4


def kinds(running: Running, environment: str = "staging") -> list[tuple[str, str, str]]:
    return [(f.kind, f.expected, f.actual) for f in drift(DECLARED.get(environment), environment, running)]


def test_what_matches_the_declaration_has_no_drift() -> None:
    assert kinds(Running("shop", "1.0.0", {"1.0.0": 2})) == []


def test_instance_counts_quota_strays_and_dead_processes_are_each_a_finding() -> None:
    [short] = drift(STAGING, "staging", Running("shop", "1.0.0", {"1.0.0": 1}))
    assert (short.kind, short.expected, short.actual) == ("instances", "2", "1")
    assert "eu-west 1, us-east 1" in short.detail
    assert kinds(Running("shop", "2.0.0", {"1.0.0": 3, "2.0.0": 2}, down=["1.0.0"])) == [
        ("over-quota", "at most 4", "5"), ("stray-version", "only 2.0.0", "1.0.0 x3"),
        ("instance-down", "running", "not running"),
    ]
    assert kinds(Running("shop", None, {})) == [("instances", "2", "0")]


def test_a_rollout_in_flight_is_not_compared_and_an_undeclared_environment_is_drift() -> None:
    assert kinds(Running("shop", "1.0.0", {"1.0.0": 1, "2.0.0": 1}, in_flight=True)) == []
    [(kind, _, actual)] = kinds(Running("shop", "1.0.0", {"1.0.0": 2}), "qa")
    assert (kind, actual) == ("undeclared-environment", "shop runs there")
    # A preview environment is compared with its template.
    assert kinds(Running("shop", "1.0.0", {"1.0.0": 1}), "preview-pr-7") == []
