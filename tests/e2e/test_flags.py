"""Feature flags against the running system: a release file declares a flag, which ships off with the release;
a developer rolls it out with `slipway flags` through nats-server's permissions, the gatekeeper rewrites the
environment's flagd file, and `slipway audit verify` finds the change vouched for by its signature."""

import json
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from libs.flag_files import flags_file
from slipway.supervisor import Stack
from tests.e2e.conftest import slipway
from tests.e2e.test_operator_commands import request_release

pytestmark = pytest.mark.e2e


def test_a_declared_flag_ships_dark_and_a_developer_rolls_it_out_without_a_deployment(
    stack: Stack, tmp_path: Path
) -> None:
    def cli(*args: str):  # noqa: ANN202
        return slipway(*args, "--nats-url", stack.nats_url, data_dir=stack.data_dir, timeout=60)

    assert slipway("identity", "create", "dee", "--roles", "developer", "--team", "payments",
                   data_dir=stack.data_dir).returncode == 0
    release_file = tmp_path / "release.yaml"
    release_file.write_text("flags:\n  - key: new-greeting\n    description: the friendlier greeting\n")
    artifact = build_sample("1.0.0", tmp_path / "artifacts")
    deployed = request_release(stack, artifact, "1.0.0", "--strategy", "all-at-once", str(release_file))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    listed = cli("flags", "list", "--env", "prod")
    assert listed.returncode == 0 and "new-greeting" in listed.stdout and " off " in listed.stdout, listed.stdout
    rolled = cli("flags", "rollout", "new-greeting", "--env", "prod", "--percent", "50", "--as", "dee")
    assert rolled.returncode == 0 and "off -> 50% by person:dee" in rolled.stdout, rolled.stdout + rolled.stderr
    defined = json.loads(flags_file(stack.data_dir, "prod").read_text())["flags"]["new-greeting"]
    assert defined["targeting"] == {"fractional": [["on", 50], ["off", 50]]}

    audit = cli("audit", "verify")
    assert audit.returncode == 0 and "intact" in audit.stdout and "flagged" not in audit.stdout, audit.stdout
