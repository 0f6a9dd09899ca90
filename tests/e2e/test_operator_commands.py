"""What on-call engineers and release managers type, against the running system."""

import re
from pathlib import Path

import pytest

from examples.build_sample import build as build_sample
from slipway.supervisor import Stack
from tests.e2e.conftest import slipway
from tests.support.poll import eventually_sync

pytestmark = pytest.mark.e2e


def request_release(stack: Stack, artifact: Path, version: str, *extra: str):  # noqa: ANN201
    return slipway(
        "release", "request", "--nats-url", stack.nats_url, "--service", "shop", "--environment", "prod",
        "--version", version, "--team", "payments", "--artifact", str(artifact), "--commit", "abc1234",
        "--committed-at", "2026-11-01T10:00:00Z", "--requested-by", "ci:e2e", "--interval", "1", "--timeout", "90",
        # One instance, not the four prod declares: these tests are about other things than pool sizes.
        "--instances", "1", *extra, data_dir=stack.data_dir,
    )


def test_freeze_blocks_then_lifting_lets_releases_through_and_reports_answer(stack: Stack, tmp_path: Path) -> None:
    def cli(*args: str):  # noqa: ANN202
        return slipway(*args, "--nats-url", stack.nats_url, data_dir=stack.data_dir, timeout=60)

    person = slipway("identity", "create", "rita", "--roles", "release-manager", data_dir=stack.data_dir)
    assert person.returncode == 0, person.stdout + person.stderr
    # `slipway up` made a first person (the login name, every role): rita signs, chosen with --as.
    created = cli("freeze", "create", "--environment", "prod", "--duration", "1h", "--reason", "quarter close",
                  "--as", "rita")
    assert created.returncode == 0, created.stdout + created.stderr
    freeze_id = re.search(r"frz-[0-9a-z]+", created.stdout).group(0)  # type: ignore[union-attr]
    listed = cli("freeze", "list")
    assert freeze_id in listed.stdout and "quarter close" in listed.stdout and "person:rita" in listed.stdout

    artifacts = tmp_path / "artifacts"
    # The committed policy queues a release behind a freeze (windows.yaml freeze_action: queue): it waits,
    # status says for what, and it goes once the freeze is lifted.
    frozen = build_sample("1.0.0", artifacts)
    queued = request_release(stack, frozen, "1.0.0", "--strategy", "all-at-once", "--release-id", "shop-frozen-1",
                             "--no-wait")
    assert queued.returncode == 0, queued.stdout + queued.stderr
    waiting = eventually_sync(
        lambda: "queued for window" in (done := cli("status", "--release-id", "shop-frozen-1")).stdout and done,
        30, "status showing the release queued behind the freeze")
    assert "quarter close" in " ".join(waiting.stdout.split()), waiting.stdout

    assert cli("freeze", "lift", freeze_id, "--as", "rita").returncode == 0
    # The CI job run again follows the release its first request started, which now deploys.
    deployed = request_release(stack, frozen, "1.0.0", "--strategy", "all-at-once", "--release-id", "shop-frozen-1")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    faulty = build_sample("1.1.0", artifacts, error_rate=0.5)
    rolled_back = request_release(stack, faulty, "1.1.0", "--strategy", "canary", "--steps", "20,50",
                                  "--release-id", "shop-faulty-1")
    assert rolled_back.returncode == 1 and "RollbackCompleted" in rolled_back.stdout, rolled_back.stdout

    alert = cli("alerts", "tail", "--severity", "critical", "--team", "payments", "--since-start",
                "--count", "1", "--timeout", "20")
    assert alert.returncode == 0 and "shop" in alert.stdout and "1.1.0" in alert.stdout, alert.stdout + alert.stderr

    # The collector logs asynchronously: the CLI saw RollbackCompleted, the log follows shortly.
    status = eventually_sync(lambda: (done := cli("status")).returncode == 0 and "rolled back" in done.stdout and done,
                             30, "status showing the rollback")
    for state in ("succeeded", "rolled back"):
        assert state in status.stdout, status.stdout
    # A blameless post-mortem from the log: timeline, detection and recovery, the trigger, the review it owes.
    written = cli("postmortem", "shop-faulty-1", "--output", str(tmp_path / "pm.md"))
    assert written.returncode == 0, written.stdout + written.stderr
    report = (tmp_path / "pm.md").read_text()
    assert report.startswith("# Post-mortem: shop 1.1.0 to prod") and "- **Outcome**: rolled back to 1.0.0" in report
    assert "| error rate |" in report and "StepVerdict: fail at step 1" in report, report
    assert "the e2e CI pipeline" in report and "health-watcher" in report and "rita" not in report, report
    assert "slipway pir record shop-faulty-1" in report, report  # a rollback in prod owes a review
    # The same release as pipeline stages with their timings, above its events.
    shown = cli("status", "--release-id", "shop-faulty-1").stdout
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in shown.split("stages", 1)[1].splitlines()
            if line.count("│") == 6]
    assert [(row[0], row[3]) for row in rows] == [
        ("artifact verification", "passed"), ("governance", "approved"), ("new version started", "passed"),
        ("step 1/2: 20%", "fail"), ("rollback", "restored"), ("request to end", "rolled back")], shown
    audit = cli("audit", "verify")
    assert audit.returncode == 0 and "intact" in audit.stdout, audit.stdout + audit.stderr
    assert "2 signed commands verified" in audit.stdout, audit.stdout  # the freeze and its lifting
    # Everything the six services and the CLI sent is what the contracts declare: nothing is flagged.
    assert "flagged" not in audit.stdout, audit.stdout
    dora = cli("metrics", "dora", "--service", "shop")
    assert dora.returncode == 0, dora.stdout + dora.stderr
    assert "50.0%" in dora.stdout  # two changes went out, one failed
