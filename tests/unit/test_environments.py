"""Environment declarations: loading with file/line/field errors, isolation, quotas, parity and the `slipway env` CLI."""

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from libs.env_parity import parity
from libs.environments import load_environments
from libs.policy_yaml import PolicyError
from slipway.cli import app
from tests.support.yaml_files import INFRA, copy_of, edit, line_of

SHIPPED = INFRA / "environments"


@pytest.fixture
def envs(tmp_path: Path) -> Path:
    return copy_of("environments", tmp_path)


def problems(directory: Path) -> list[str]:
    with pytest.raises(PolicyError) as broken:
        load_environments(directory)
    return [str(p) for p in broken.value.problems]


def test_the_shipped_declarations_load_with_regions_in_order_and_a_preview_template() -> None:
    declared = load_environments(SHIPPED)
    assert {"dev", "staging", "prod", "preview"} <= set(declared.environments)
    prod = declared.environments["prod"]
    assert prod.production and prod.regions == ["eu-west", "us-east"] and prod.total_instances == 4
    assert declared.get("preview-pr-42") is declared.environments["preview"]
    assert declared.environments["preview"].ephemeral.ttl == timedelta(hours=4)
    assert declared.get("qa") is None


def test_a_non_production_environment_using_production_data_is_refused_with_file_and_line(envs: Path) -> None:
    staging = envs / "staging.yaml"
    edit(staging, "  - name: orders-db-staging\n", "  - name: orders-db-staging\n    production: true\n")
    [problem] = problems(envs)
    assert problem.startswith(f"{staging}:{line_of(staging, 'production: true')}: data_sources.0.production: ")
    assert "holds production data" in problem and "isolation" in problem


def test_a_data_source_prod_uses_is_production_data_whatever_staging_calls_it(envs: Path) -> None:
    staging = envs / "staging.yaml"
    edit(staging, "name: orders-db-staging", "name: orders-db-prod")
    [problem] = problems(envs)
    assert problem.startswith(f"{staging}:{line_of(staging, 'orders-db-prod')}: data_sources.0.name: ")
    assert "used by production environment prod" in problem


def test_quotas_are_required_outside_production_and_hold_the_declared_instances(envs: Path) -> None:
    staging, dev = envs / "staging.yaml", envs / "dev.yaml"
    edit(staging, "  eu-west: 1\n", "  eu-west: 4\n")
    edit(dev, "quotas:\n  max_instances: 2\n", "")
    found = problems(envs)
    assert f"{staging}:{line_of(staging, 'instances:')}: instances: 5 instances over all regions exceed " \
           "quotas.max_instances 4" in found
    assert any(p.startswith(f"{dev}:1: quotas: a non-production environment must have quotas.max_instances")
               for p in found), found


def test_unknown_fields_regions_and_names_are_reported_where_they_are(envs: Path) -> None:
    prod = envs / "prod.yaml"
    edit(prod, "runtime: python3.12", "runtime: python3.12\nregionz: [x]")
    edit(envs / "staging.yaml", "  us-east: 1\n", "  us-east: 1\n  ap-south: 1\n")
    (envs / "qa.yaml").write_text((envs / "dev.yaml").read_text())
    found = problems(envs)
    assert f"{prod}:{line_of(prod, 'regionz')}: regionz: unknown field (did you mean 'regions'?)" in found
    assert any("instances.ap-south: ap-south is not one of the regions (eu-west, us-east)" in p for p in found)
    assert any(p.startswith(f"{envs / 'qa.yaml'}:") and "'dev' is declared in qa.yaml" in p for p in found)


def test_parity_lists_every_difference_and_only_unallowed_ones_count(envs: Path) -> None:
    declared = load_environments(envs)
    assert not [d for d in parity(declared.environments["staging"], declared.environments["prod"]) if not d.allowed]
    edit(envs / "staging.yaml", "REQUEST_TIMEOUT_S: 5", "REQUEST_TIMEOUT_S: 60")
    edit(envs / "staging.yaml", "runtime: python3.12", "runtime: python3.11")
    declared = load_environments(envs)
    refused = [(d.path, d.left, d.right) for d in parity(declared.environments["staging"], declared.environments["prod"])
               if not d.allowed]
    assert refused == [("config.REQUEST_TIMEOUT_S", 60, 5), ("runtime", "python3.11", "python3.12")]


def test_env_cli_check_show_and_parity(envs: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["env", "check", str(envs)])
    assert good.exit_code == 0 and "prod: ok (production" in good.output, good.output
    assert "drift reconciled on-demand)" in good.output and "staging: ok" in good.output, good.output
    assert "instance(s) in eu-west, us-east; drift reconciled auto)" in good.output, good.output
    shown = runner.invoke(app, ["env", "show", "staging", "--dir", str(envs)])
    assert shown.exit_code == 0 and "max_instances: 4" in shown.output, shown.output
    same = runner.invoke(app, ["env", "parity", "staging", "prod", "--dir", str(envs)])
    assert same.exit_code == 0 and "differ only where allowed" in same.output, same.output

    edit(envs / "staging.yaml", "REQUEST_TIMEOUT_S: 5", "REQUEST_TIMEOUT_S: 60")
    drifted = runner.invoke(app, ["env", "parity", "staging", "prod", "--dir", str(envs)])
    assert drifted.exit_code == 1 and "NOT ALLOWED  config.REQUEST_TIMEOUT_S: staging=60  prod=5" in drifted.output

    edit(envs / "staging.yaml", "name: orders-db-staging", "name: orders-db-prod")
    refused = runner.invoke(app, ["env", "check", str(envs / "staging.yaml")])
    assert refused.exit_code == 2 and "used by production environment prod" in refused.output, refused.output
    empty = runner.invoke(app, ["env", "check", str(envs.parent / "nowhere")])
    assert empty.exit_code == 2 and "no such file or directory" in empty.output
    (envs.parent / "empty").mkdir()
    assert runner.invoke(app, ["env", "check", str(envs.parent / "empty")]).exit_code == 2


def test_configuration_names_are_environment_variable_names_and_not_reserved(envs: Path) -> None:
    dev = envs / "dev.yaml"
    edit(dev, "  LOG_LEVEL: debug\n", "  LOG_LEVEL: debug\n  log-level: x\n  PYTHONPATH: /tmp\n")
    found = problems(envs)
    assert any(p.startswith(f"{dev}:{line_of(dev, 'log-level')}: config.log-level: 'log-level': a configuration "
                            "name is an environment variable name") for p in found), found
    assert any("config.PYTHONPATH: PYTHONPATH is reserved" in p for p in found), found


def test_drift_is_reconciled_on_demand_in_production_and_on_the_schedule_elsewhere_unless_declared(envs: Path) -> None:
    declared = load_environments(envs).environments
    assert (declared["prod"].reconcile, declared["staging"].reconcile) == ("on-demand", "auto")
    edit(envs / "staging.yaml", "quotas:", "drift:\n  reconcile: off\nquotas:")
    assert load_environments(envs).environments["staging"].reconcile == "off"
    edit(envs / "staging.yaml", "reconcile: off", "reconcile: sometimes")
    [problem] = problems(envs)
    assert "drift.reconcile" in problem and "'auto', 'on-demand' or 'off'" in problem, problem


def test_configuration_reaches_instances_as_environment_variable_strings() -> None:
    from libs.environments import config_environment

    assert config_environment({"DEBUG": True, "CACHE": False, "TIMEOUT_S": 5, "RATIO": 0.5, "NAME": "x"}) == {
        "DEBUG": "true", "CACHE": "false", "TIMEOUT_S": "5", "RATIO": "0.5", "NAME": "x"}
