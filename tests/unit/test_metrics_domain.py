import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from contracts.envelope import Event
from contracts.events import AlertRaised, ReleaseRequested, Severity
from services.metrics_collector.audit_rules import ChainWalk
from services.metrics_collector.domain import (
    GENESIS_HASH,
    UnvouchedCommand,
    canonical_json,
    chain_hash,
    dora,
    flag_reason,
    future_reason,
    human_duration,
    release_states,
    unvouched_commands,
)

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)


def at(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def evt(kind: str, release_id: str, when: datetime, service: str = "shop", environment: str = "prod", **fields):
    return {"type": kind, "release_id": release_id, "service": service, "environment": environment,
            "occurred_at": when.isoformat().replace("+00:00", "Z"), **fields}


def chained(payloads: list[str]) -> list[tuple[int, str, str, str]]:
    records, prev = [], GENESIS_HASH
    for seq, payload in enumerate(payloads, start=1):
        digest = chain_hash(prev, payload)
        records.append((seq, payload, prev, digest))
        prev = digest
    return records


# --- audit chain -----------------------------------------------------------------------------

def verify_chain(records: list[tuple[int, str, str, str]]) -> ChainWalk:
    """The whole chain walked from genesis in one chunk, as `audit verify --full` walks it chunk by chunk."""
    walk = ChainWalk()
    walk.feed(records)
    return walk


def test_chain_hash_is_sha256_of_prev_newline_payload() -> None:
    assert chain_hash(GENESIS_HASH, "{}") == hashlib.sha256(("0" * 64 + "\n{}").encode()).hexdigest()


def test_canonical_json_does_not_depend_on_key_order() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical_json({"a": [1, {"c": 3, "d": 2}], "b": 1})
    assert canonical_json({"b": 1, "a": "x"}) == '{"a":"x","b":1}'


def test_canonical_json_keeps_text_as_is_and_spells_an_integer_past_64_bits_too() -> None:
    assert canonical_json({"who": "Zoë", "n": 1.5}) == '{"n":1.5,"who":"Zoë"}'
    huge = 2**70
    assert canonical_json({"b": huge, "a": 1}) == f'{{"a":1,"b":{huge}}}', "refused by orjson: the standard library spells it"


def test_an_intact_chain_verifies() -> None:
    report = verify_chain(chained(['{"n":1}', '{"n":2}', '{"n":3}']))
    assert (report.ok, report.records, report.first_bad_seq, report.reason) == (True, 3, None, "")


def test_an_empty_log_is_intact() -> None:
    assert verify_chain([]).ok


def test_an_edited_payload_is_found_at_its_record() -> None:
    records = chained(['{"n":1}', '{"n":2}', '{"n":3}'])
    seq, _, prev, digest = records[1]
    records[1] = (seq, '{"n":20}', prev, digest)
    report = verify_chain(records)
    assert (report.ok, report.records, report.first_bad_seq) == (False, 2, 2)  # walked up to the break
    assert "does not match its hash" in report.reason


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link() -> None:
    records = chained(['{"n":1}', '{"n":2}', '{"n":3}'])
    seq, _, prev, _ = records[1]
    records[1] = (seq, '{"n":20}', prev, chain_hash(prev, '{"n":20}'))
    report = verify_chain(records)
    assert (report.ok, report.first_bad_seq) == (False, 3)
    assert "does not link to record 2" in report.reason


def test_a_wrong_hash_is_found_at_its_record() -> None:
    records = chained(['{"n":1}', '{"n":2}', '{"n":3}'])
    seq, payload, prev, _ = records[1]
    records[1] = (seq, payload, prev, "f" * 64)
    assert verify_chain(records).first_bad_seq == 2


@pytest.mark.parametrize(("deleted", "first_bad", "walked"), [(0, 2, 1), (1, 3, 2)])
def test_a_deleted_record_breaks_the_link_of_the_one_after_it(deleted: int, first_bad: int, walked: int) -> None:
    records = chained(['{"n":1}', '{"n":2}', '{"n":3}'])
    del records[deleted]
    report = verify_chain(records)
    assert (report.ok, report.records, report.first_bad_seq) == (False, walked, first_bad)
    assert "deleted" in report.reason


# --- DORA ------------------------------------------------------------------------------------

def history() -> list[dict]:
    a, b = at(days=2), at(days=1)
    return [
        # shop-1: canary that succeeds; lead time from the deployer's commit time (1h10m = 4200 s)
        evt("ReleaseRequested", "shop-1", a, version="1.0.0",
            commit={"sha": "abc1234", "committed_at": (a - timedelta(hours=5)).isoformat()}),
        evt("ArtifactVerified", "shop-1", a + timedelta(minutes=1)),
        evt("ReleaseApproved", "shop-1", a + timedelta(minutes=2), reasons=["no freeze"]),
        evt("DeploymentStarted", "shop-1", a + timedelta(minutes=3), version="1.0.0",
            committed_at=(a - timedelta(hours=1)).isoformat()),
        evt("StepStarted", "shop-1", a + timedelta(minutes=4), step_index=0, step_count=2, weight=10),
        evt("StepVerdict", "shop-1", a + timedelta(minutes=5), step_index=0, verdict="pass", reasons=["fine"]),
        evt("StepStarted", "shop-1", a + timedelta(minutes=6), step_index=1, step_count=2, weight=100),
        evt("DeploymentSucceeded", "shop-1", a + timedelta(minutes=10), version="1.0.0"),
        # shop-2: fails at the first step and is rolled back; restored 4 min after it took traffic
        evt("DeploymentStarted", "shop-2", b, version="1.1.0", committed_at=(b - timedelta(minutes=30)).isoformat()),
        evt("StepStarted", "shop-2", b + timedelta(minutes=1), step_index=0, step_count=2, weight=10),
        evt("StepVerdict", "shop-2", b + timedelta(minutes=3), step_index=0, verdict="fail",
            reasons=["error rate 0.2 > 0.05"]),
        evt("AlertRaised", "shop-2", b + timedelta(minutes=3), severity="critical", summary="shop 1.1.0 failing"),
        evt("RollbackRequested", "shop-2", b + timedelta(minutes=3, seconds=30), reason="step 1 failed"),
        evt("RollbackCompleted", "shop-2", b + timedelta(minutes=5), root_cause="error rate 0.2 > 0.05"),
        # pay-1 in staging: all at once, lead time 3h20m = 12000 s
        evt("DeploymentStarted", "pay-1", at(days=3), "pay", "staging", version="2.0.0",
            committed_at=(at(days=3) - timedelta(hours=3)).isoformat()),
        evt("DeploymentSucceeded", "pay-1", at(days=3) + timedelta(minutes=20), "pay", "staging", version="2.0.0"),
        # shop-3: the deployer gives up
        evt("DeploymentStarted", "shop-3", at(hours=6), version="1.2.0", committed_at=at(hours=7).isoformat()),
        evt("DeploymentFailed", "shop-3", at(hours=5), version="1.2.0", reason="router unreachable"),
        # shop-0: long before the window
        evt("DeploymentStarted", "shop-0", at(days=40), version="0.9.0", committed_at=at(days=41).isoformat()),
        evt("DeploymentSucceeded", "shop-0", at(days=40) + timedelta(minutes=1), version="0.9.0"),
    ]


def test_dora_over_thirty_days_for_everything() -> None:
    report = dora(history(), NOW, 30)
    assert report.deployments == 2
    assert report.deployment_frequency_per_day == pytest.approx(2 / 30)
    assert [(d.release_id, d.seconds) for d in report.lead_times] == [("pay-1", 12000.0), ("shop-1", 4200.0)]
    assert report.lead_time_median_s == 8100.0
    assert (report.changes, report.failed_changes, report.change_failure_rate) == (4, 2, 0.5)
    assert [(d.release_id, d.seconds) for d in report.restores] == [("shop-2", 240.0)]
    assert report.time_to_restore_median_s == 240.0


def test_dora_filters_by_service_and_environment() -> None:
    shop = dora(history(), NOW, 30, service="shop")
    assert shop.deployments == 1 and shop.lead_time_median_s == 4200.0
    assert (shop.changes, shop.failed_changes) == (3, 2)
    assert shop.change_failure_rate == pytest.approx(2 / 3)
    staging = dora(history(), NOW, 30, environment="staging")
    assert (staging.deployments, staging.changes, staging.failed_changes, staging.restores) == (1, 1, 0, ())
    assert dora(history(), NOW, 30, service="shop", environment="staging").changes == 0


def test_dora_on_a_short_window_and_no_data() -> None:
    day = dora(history(), NOW, 1)
    assert (day.deployments, day.lead_times, day.lead_time_median_s) == (0, (), None)
    assert (day.changes, day.failed_changes) == (2, 2)  # shop-2 started exactly at the window's start
    empty = dora([], NOW, 7)
    assert (empty.deployment_frequency_per_day, empty.change_failure_rate, empty.time_to_restore_median_s) == (
        0.0, 0.0, None)


def test_lead_time_falls_back_to_the_requested_commit() -> None:
    events = [
        evt("ReleaseRequested", "r", at(hours=3), commit={"committed_at": at(hours=4).isoformat()}),
        evt("DeploymentSucceeded", "r", at(hours=2)),
    ]
    assert [d.seconds for d in dora(events, NOW, 1).lead_times] == [7200.0]


def test_dora_data_has_the_reply_shape() -> None:
    data = dora(history(), NOW, 30).as_data()
    assert set(data) == {"window_days", "deployments", "deployment_frequency_per_day", "lead_time_median_s",
                         "lead_times", "changes", "failed_changes", "change_failure_rate",
                         "time_to_restore_median_s", "restores"}
    assert data["restores"] == [{"release_id": "shop-2", "seconds": 240.0}]
    summary = dora(history(), NOW, 30).summary("shop", None)
    assert summary.startswith("shop in all environments, last 30 days: 2 deployments")


@pytest.mark.parametrize(("seconds", "text"), [(None, "n/a"), (0, "0s"), (45, "45s"), (240, "4m"),
                                               (4200, "1h10m"), (90061, "1d1h")])
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text


# --- release states --------------------------------------------------------------------------

def test_release_states_newest_first_with_reasons() -> None:
    states = {s.release_id: s for s in release_states(history())}
    assert [s.release_id for s in release_states(history())] == ["shop-3", "shop-2", "shop-1", "pay-1", "shop-0"]
    one = states["shop-1"]
    assert (one.service, one.environment, one.version, one.state, one.last_event, one.reason, one.events) == (
        "shop", "prod", "1.0.0", "succeeded", "DeploymentSucceeded", "", 8)
    assert one.updated_at == at(days=2) + timedelta(minutes=10)
    two = states["shop-2"]
    assert (two.version, two.state, two.reason, two.events) == ("1.1.0", "rolled back", "error rate 0.2 > 0.05", 6)
    assert (states["shop-3"].state, states["shop-3"].reason) == ("failed", "router unreachable")


@pytest.mark.parametrize(
    ("last", "state", "reason"),
    [
        ({"type": "ArtifactVerified"}, "verified", ""),
        ({"type": "ArtifactRejected", "reason": "digest mismatch"}, "rejected", "digest mismatch"),
        ({"type": "ReleaseRequestRejected", "reason": "invalid"}, "rejected", "invalid"),
        ({"type": "ReleaseApproved", "reasons": ["ok"]}, "approved", ""),
        ({"type": "ReleaseBlocked", "reasons": ["freeze", "incident open"]}, "blocked", "freeze; incident open"),
        ({"type": "DeploymentStarted"}, "deploying", ""),
        ({"type": "StepStarted", "step_index": 1, "step_count": 3, "weight": 50}, "canary step 2/3 at 50%", ""),
        ({"type": "StepVerdict", "step_index": 0, "verdict": "marginal", "reasons": ["slow"]},
         "step 1 verdict marginal", "slow"),
        ({"type": "StepVerdict", "step_index": 1, "verdict": "inconclusive", "reasons": ["inconclusive: 3 of 20"]},
         "held at step 2: waiting for a person", "inconclusive: 3 of 20"),
        ({"type": "ReleaseResumed", "step_index": 1, "actor": "ana", "comment": "quiet night, looks fine"},
         "step 2 resumed by ana: quiet night, looks fine", ""),
        ({"type": "RollbackRequested", "reason": "step 2 failed"}, "rolling back", "step 2 failed"),
    ],
)
def test_state_follows_the_latest_release_event(last: dict, state: str, reason: str) -> None:
    events = [evt("ReleaseRequested", "r", at(hours=2), version="3.1.0"),
              evt(last.pop("type"), "r", at(hours=1), **last)]
    (only,) = release_states(events)
    assert (only.state, only.reason, only.version) == (state, reason, "3.1.0")


def test_alerts_do_not_change_the_state_and_alone_make_no_release() -> None:
    events = [
        evt("DeploymentStarted", "r", at(hours=2), version="3.0.0"),
        evt("AlertRaised", "r", at(hours=1), severity="warning", summary="slow"),
        evt("AlertRaised", "noise", at(hours=1), severity="info", summary="hello"),
        evt("FreezeDeclared", "freeze-1", at(hours=1), reason="holiday"),
    ]
    (only,) = release_states(events)
    assert (only.release_id, only.state, only.last_event, only.events) == ("r", "deploying", "AlertRaised", 2)
    assert only.updated_at == at(hours=1)


def test_a_retried_request_and_a_conflicting_one_do_not_move_the_release() -> None:
    """A CI retry (same spec) is a duplicate and another spec under the same id is refused: neither is
    the release's own story, which goes on from where it was."""
    events = [
        evt("ReleaseRequested", "r", at(hours=3), version="3.0.0", event_id="req-1"),
        evt("DeploymentStarted", "r", at(hours=2), version="3.0.0"),
        evt("ReleaseRequested", "r", at(hours=1, minutes=30), version="3.0.0", event_id="req-2"),
        evt("ReleaseRequestDuplicated", "r", at(hours=1, minutes=29), causation_id="req-2"),
        evt("ReleaseRequested", "r", at(hours=1), version="9.9.9", event_id="req-3"),
        evt("ReleaseRequestRejected", "r", at(minutes=59), causation_id="req-3", reason="release r exists"),
    ]
    (only,) = release_states(events)
    assert (only.state, only.version, only.reason) == ("deploying", "3.0.0", "")


# --- flags -----------------------------------------------------------------------------------

def _valid_request() -> dict:
    request = ReleaseRequested(
        event_id="e-1", release_id="r-1", service="shop", environment="prod", version="1.0.0", team="payments",
        artifact={"uri": "/tmp/a.pyz", "digest": "sha256:" + "0" * 64},
        commit={"sha": "abc1234", "committed_at": NOW}, strategy={"kind": "all-at-once"}, requested_by="ci",
    )
    return request.model_dump(mode="json")


def test_an_event_that_is_what_it_says_is_not_flagged() -> None:
    assert flag_reason(_valid_request(), "slipway.evt.release.requested.payments.shop", Event.registry) is None


def test_an_undeclared_or_missing_type_is_flagged_with_the_type_named() -> None:
    reason = flag_reason({**_valid_request(), "type": "ReleaseTeleported"}, "slipway.evt.release.teleported",
                         Event.registry)
    assert reason is not None and "'ReleaseTeleported' is not a declared event type" in reason
    untyped = flag_reason({**_valid_request(), "type": "unknown"}, "slipway.evt.x", Event.registry)
    assert untyped is not None and untyped.startswith("no type given")


def test_a_declared_type_on_another_subject_is_flagged() -> None:
    reason = flag_reason(_valid_request(), "slipway.evt.deploy.succeeded", Event.registry)
    assert reason == ("a ReleaseRequested belongs on slipway.evt.release.requested.{team}.{service}, "
                      "it arrived on slipway.evt.deploy.succeeded")


def test_a_payload_that_does_not_validate_as_its_type_is_flagged_with_the_fields() -> None:
    payload = {**_valid_request(), "requested_by": "x" * 5000}
    payload.pop("team")
    reason = flag_reason(payload, "slipway.evt.release.requested.payments.shop", Event.registry)
    assert reason is not None and reason.startswith("does not validate as ReleaseRequested: ")
    assert "team: Field required" in reason and "requested_by: String should have at most 200" in reason


def test_alerts_match_their_templated_subject() -> None:
    alert = AlertRaised(release_id="r-1", service="shop", environment="prod", severity=Severity.CRITICAL,
                        team="payments", summary="down").model_dump(mode="json")
    assert flag_reason(alert, "slipway.alert.critical.payments.shop", Event.registry) is None
    assert flag_reason(alert, "slipway.alert.critical.payments", Event.registry) is not None


def test_only_events_that_carry_a_signed_command_are_rechecked_and_refusals_are_not() -> None:
    payloads = [
        {"type": "FreezeDeclared", "event_id": "a", "signed_command": {"signer": "person:alice"}},
        {"type": "FreezeLifted", "event_id": "b", "signed_command": {"signer": "person:mallory"}},
        {"type": "CommandRefused", "event_id": "c", "signed_command": {"signer": "person:mallory"}},
        {"type": "StepStarted", "event_id": "d"},
        {"type": "ReleaseResumed", "event_id": "e", "signed_command": None},
    ]
    records = [(seq, json.dumps(p), "", "") for seq, p in enumerate(payloads, start=1)]
    seen: list[str] = []

    def check(event: dict) -> str | None:
        seen.append(event["event_id"])
        return "bad signature" if event["signed_command"]["signer"] == "person:mallory" else None

    checked, failed = unvouched_commands(records, check)
    assert (checked, seen) == (2, ["a", "b"])
    assert failed == [UnvouchedCommand(2, "b", "FreezeLifted", "bad signature")]


def test_a_signed_command_vouches_only_for_the_event_it_caused() -> None:
    from services.metrics_collector.domain import command_mismatch

    resumed = {"type": "ReleaseResumed", "release_id": "r1", "comment": "ok"}
    resume = "slipway.cmd.deployer.resume_release"
    assert command_mismatch(resumed, resume, {"release_id": "r1", "comment": "ok"}) is None
    assert command_mismatch(resumed, resume, {"release_id": "r2", "comment": "ok"}) == (
        "the signed command names release_id 'r2', the event 'r1'"
    )
    assert command_mismatch(resumed, "slipway.cmd.rollback.abort_release", {"release_id": "r1"}) == (
        "a ReleaseResumed carries a command signed for slipway.cmd.rollback.abort_release, "
        "not slipway.cmd.deployer.resume_release"
    )
    assert command_mismatch({"type": "StepStarted"}, resume, {}) == (
        "StepStarted is not caused by a person's command, yet carries one"
    )
    aborted = {"type": "RollbackRequested", "release_id": "r1", "reason": "aborted by person:sam: errors"}
    assert command_mismatch(aborted, "slipway.cmd.rollback.abort_release", {"release_id": "r1", "reason": "errors"}) is None


def test_a_paused_release_shows_its_incident_until_it_resumes_or_ends() -> None:
    paused = evt("RolloutPaused", "r", at(hours=2), incident_id="inc-1", reason="incident inc-1 (error) open in prod")
    started = [evt("ReleaseRequested", "r", at(hours=4), version="3.1.0"),
               evt("StepStarted", "r", at(hours=3), step_index=0, step_count=2, weight=20), paused]
    (only,) = release_states(started)
    assert only.state == "paused for incident inc-1: holds its weights after the current step"
    # The step's verdict comes while paused: the state still says why the release does not move on.
    verdict = evt("StepVerdict", "r", at(hours=1), step_index=0, verdict="pass", reasons=["healthy"])
    (only,) = release_states([*started, verdict])
    assert only.state == "paused for incident inc-1: holds its weights after the current step; step 1 verdict pass"
    assert only.reason == "incident inc-1 (error) open in prod"
    resumed = evt("RolloutResumed", "r", at(minutes=30), incident_id="inc-1", reason="no incident halts prod any more")
    (only,) = release_states([*started, verdict, resumed])
    assert only.state == "resumed: no incident halts prod any more"
    rolled_back = evt("RollbackCompleted", "r", at(minutes=30), root_cause="step 1 failed")
    (only,) = release_states([*started, rolled_back])
    assert only.state == "rolled back"


def test_a_waiting_release_says_what_it_waits_for_and_when_it_is_expected_to_start() -> None:
    from services.metrics_collector.domain import state_of

    queued = {"type": "ReleaseWaiting", "waiting_for": "queued-for-window", "until": "2026-11-28T02:00:00+00:00",
              "summary": "window nightly-batch", "outstanding": []}
    assert state_of(queued) == "queued for window (expected to start at 2026-11-28T02:00:00+00:00)"
    pending = {"type": "ReleaseWaiting", "waiting_for": "pending-approval", "until": None,
               "outstanding": ["1 x security (major release readiness sign-off)"]}
    assert state_of(pending) == "pending approval: needs 1 x security (major release readiness sign-off)"


def test_an_event_ahead_of_the_collectors_clock_is_believed_only_within_the_skew_tolerance() -> None:
    received = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert future_reason(received - timedelta(hours=3), received) is None
    assert future_reason(received + timedelta(minutes=4), received) is None
    reason = future_reason(received + timedelta(days=2), received)
    assert reason is not None and "2026-11-30T12:00:00+00:00" in reason and "after the collector received it" in reason
