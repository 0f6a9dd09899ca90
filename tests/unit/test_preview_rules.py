"""Preview environments: expiry after the template's ttl and the quota of concurrent previews. Pure."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from libs.environments import load_environments
from services.deployer.preview_rules import Preview, admission_refusal, expired

DECLARED = load_environments(Path(__file__).resolve().parents[2] / "infra" / "environments")  # preview: 4h, 3 at once
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_a_preview_expires_when_its_ttl_has_passed_and_only_then() -> None:
    alive = [Preview("preview-pr-1", NOW - timedelta(hours=4)), Preview("preview-pr-2", NOW - timedelta(hours=3, minutes=59)),
             Preview("staging", NOW - timedelta(days=30))]
    [expiry] = expired(DECLARED, alive, NOW)
    assert (expiry.environment, expiry.template, expiry.ttl_s) == ("preview-pr-1", "preview", 4 * 3600)
    assert expired(DECLARED, alive[1:3], NOW) == []


def test_the_quota_of_concurrent_previews_refuses_one_more_but_not_one_already_alive() -> None:
    alive = ["preview-a", "preview-b", "staging"]
    assert admission_refusal(DECLARED, "preview-c", alive) is None
    alive.append("preview-c")
    refusal = admission_refusal(DECLARED, "preview-d", alive)
    assert refusal is not None and "3 preview(s) of preview are alive (preview-a, preview-b, preview-c)" in refusal
    assert "at most 3 at once" in refusal
    assert admission_refusal(DECLARED, "preview-b", alive) is None  # a new version into a live preview
    assert admission_refusal(DECLARED, "staging", alive) is None  # not a preview
