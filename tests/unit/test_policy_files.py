"""Policy files: the committed ones load, and every mistake is named by file, line and field."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from libs.policy_yaml import PolicyError
from libs.service_catalogue import CatalogueError, ServiceCatalogue
from services.gatekeeper.policy import Policy
from services.gatekeeper.policy_files import FILES, load_policy, load_policy_file
from slipway.cli import app
from tests.support.yaml_files import copy_of, edit, line_of

SAMPLE = Path(__file__).resolve().parents[2] / "infra" / "policies"


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return copy_of("policies", tmp_path)


def problems(directory: Path) -> list[str]:
    return problems_with(directory, None)


def problems_with(directory: Path, catalogue: Path | None) -> list[str]:
    with pytest.raises(PolicyError) as raised:
        load_policy(directory, catalogue)
    return [str(p) for p in raised.value.problems]


def test_the_committed_policy_loads_with_every_file() -> None:
    policy = load_policy(SAMPLE)
    assert sorted(p.name for p in SAMPLE.glob("*.yaml")) == sorted(FILES)
    assert list(policy.risk.levels) == list(policy.approvals.levels)
    assert policy.services.team_of("demo-shop") == "payments"


def test_an_empty_directory_is_the_defaults(tmp_path: Path) -> None:
    assert load_policy(tmp_path) == Policy()


def test_a_typo_in_a_field_name_names_file_line_and_a_suggestion(policies: Path) -> None:
    windows = policies / "windows.yaml"
    edit(windows, "    duration: 2h", "    duraton: 2h")
    found = problems(policies)
    assert f"{windows}:{line_of(windows, 'duraton')}: windows.0.duraton: unknown field (did you mean 'duration'?)" in found
    # The field it was meant to be is missing now, and said so at the window's line.
    assert f"{windows}:{line_of(windows, '- name: search-index-rebuild')}: windows.0.duration: Field required" in found


def test_an_unknown_top_level_field_fails(policies: Path) -> None:
    incidents = policies / "incidents.yaml"
    incidents.write_text(incidents.read_text() + "page_everyone: true\n")
    assert problems(policies) == [f"{incidents}:{line_of(incidents, 'page_everyone')}: page_everyone: unknown field"]


def test_a_bad_rrule_names_its_line(policies: Path) -> None:
    windows = policies / "windows.yaml"
    edit(windows, "FREQ=DAILY;", "FREQ=DAYLY;")
    [found] = problems(policies)
    assert found.startswith(f"{windows}:{line_of(windows, 'rrule:')}: windows.0.rrule: not a valid iCalendar RRULE")
    assert "DAYLY" in found


def test_a_dtstart_inside_the_rrule_is_refused(policies: Path) -> None:
    windows = policies / "windows.yaml"
    edit(windows, "rrule: FREQ=DAILY;", "rrule: DTSTART:20260101T020000Z RRULE:FREQ=DAILY;")
    [found] = problems(policies)
    assert "windows.0.rrule: give the first occurrence in `start`" in found


def test_an_unknown_role_is_named_with_the_closest_one(policies: Path) -> None:
    approvals = policies / "approvals.yaml"
    edit(approvals, "role: cab-member", "role: cab-membr")
    [found] = problems(policies)
    assert found.startswith(f"{approvals}:{line_of(approvals, 'cab-membr')}: levels.critical.0.role: 'cab-membr' is not one of")
    assert found.endswith("(did you mean 'cab-member'?)")


def test_a_wrong_type_and_an_unknown_time_zone(policies: Path) -> None:
    risk, windows = policies / "risk.yaml", policies / "windows.yaml"
    edit(risk, "  medium: 40", "  medium: forty")
    edit(windows, "timezone: Europe/Berlin", "timezone: Europe/Berlim")
    found = problems(policies)
    assert f"{risk}:{line_of(risk, 'medium: forty')}: levels.medium: Input should be a valid integer, " \
           "unable to parse string as an integer" in found
    assert f"{windows}:{line_of(windows, 'Berlim')}: windows.0.timezone: unknown time zone 'Europe/Berlim' " \
           "(an IANA name such as Europe/Berlin)" in found


def test_levels_must_ascend_from_zero(policies: Path) -> None:
    risk = policies / "risk.yaml"
    edit(risk, "  high: 60", "  high: 30")
    [found] = problems(policies)
    assert found == f"{risk}:{line_of(risk, 'levels:')}: levels: level thresholds must strictly increase, got [0, 40, 30, 80]"


def test_yaml_syntax_errors_name_their_line(policies: Path) -> None:
    concurrency = policies / "concurrency.yaml"
    concurrency.write_text("default: 1\nenvironments:\n  prod: [1\n")
    [found] = problems(policies)
    assert found.startswith(f"{concurrency}:4: not valid YAML")


def test_a_misspelt_file_name_is_not_ignored(policies: Path) -> None:
    (policies / "windows.yaml").rename(policies / "windws.yaml")
    [found] = problems(policies)
    assert found.startswith(f"{policies / 'windws.yaml'}: not a policy file (did you mean 'windows.yaml'?)")


def test_levels_must_match_across_risk_and_approvals(policies: Path) -> None:
    approvals = policies / "approvals.yaml"
    edit(approvals, "  high:", "  hihg:")
    found = problems(policies)
    assert f"{approvals}:{line_of(approvals, 'levels:')}: levels.high: risk level high (risk.yaml) has no approvals; " \
           "write `high: []` for none" in found
    assert f"{approvals}:{line_of(approvals, 'hihg:')}: levels.hihg: not a risk level of risk.yaml " \
           "(low, medium, high, critical) (did you mean 'high'?)" in found


def test_recent_failure_must_name_a_level(policies: Path) -> None:
    risk = policies / "risk.yaml"
    edit(risk, "applies_from: medium", "applies_from: meduim")
    [found] = problems(policies)
    assert found.startswith(f"{risk}:{line_of(risk, 'applies_from')}: recent_failure.applies_from: not a risk level")


def test_every_problem_of_every_file_is_reported_at_once(policies: Path) -> None:
    edit(policies / "approvals.yaml", "role: cab-member", "role: cab-membr")
    edit(policies / "deadlines.yaml", "slot: 2h", "slot: two hours")
    files = {Path(p.split(":", 1)[0]).name for p in problems(policies)}
    assert files == {"approvals.yaml", "deadlines.yaml"}


def test_durations_read_as_people_write_them(policies: Path) -> None:
    edit(policies / "deadlines.yaml", "slot: 2h", "slot: PT90M")
    edit(policies / "deadlines.yaml", "approval: 24h", "approval: 1.5d")
    deadlines = load_policy(policies).deadlines
    assert (deadlines.slot.total_seconds(), deadlines.approval.total_seconds()) == (5400, 129600)


def test_the_catalogue_can_come_from_elsewhere(policies: Path, tmp_path: Path) -> None:
    catalogue = tmp_path / "catalogue.yml"
    catalogue.write_text("services:\n  billing:\n    team: finance\n    tier: 2\n")
    assert load_policy(policies, catalogue).services.team_of("billing") == "finance"
    catalogue.write_text("services:\n  billing:\n    team: Finance\n")
    [found] = problems_with(policies, catalogue)
    assert found.startswith(f"{catalogue}:3: services.billing.team: String should match pattern")


def test_one_file_checks_alone(policies: Path) -> None:
    assert load_policy_file(policies / "risk.yaml") == load_policy(policies).risk
    with pytest.raises(PolicyError, match="not a policy file"):
        load_policy_file(policies / "README.yaml")


def test_the_catalogue_names_the_line_too(tmp_path: Path) -> None:
    catalogue = tmp_path / "services.yaml"
    catalogue.write_text("services:\n  shop:\n    team: payments\n    teir: 1\n")
    with pytest.raises(CatalogueError, match=r"services.yaml:4: services.shop.teir: unknown field \(did you mean 'tier'\?\)"):
        ServiceCatalogue.load(catalogue)


def test_cli_check_prints_file_line_field_and_exits_2(policies: Path) -> None:
    edit(policies / "approvals.yaml", "role: cab-member", "role: cab-membr")
    runner = CliRunner()
    broken = runner.invoke(app, ["policy", "check", str(policies)])
    assert broken.exit_code == 2
    assert f"{policies / 'approvals.yaml'}:12: levels.critical.0.role: 'cab-membr'" in broken.output
    good = runner.invoke(app, ["policy", "check", str(SAMPLE)])
    assert good.exit_code == 0, good.output
    assert "ok" in good.output
    one = runner.invoke(app, ["policy", "check", str(policies / "risk.yaml")])
    assert (one.exit_code, one.output.strip()) == (0, f"{policies / 'risk.yaml'}: ok")
