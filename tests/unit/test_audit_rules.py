from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.audit_queries import ShowAudit, point_in_time
from contracts.commands import VerifyAudit
from services.metrics_collector.audit_rules import (ChainWalk, CheckpointFacts, checkpoint_bytes, checkpoint_due,
                                                    checkpoint_problem, index_row, who)
from services.metrics_collector.domain import GENESIS_HASH, canonical_json, chain_hash

NOW = datetime(2030, 1, 31, 18, 0, tzinfo=UTC)


def chain(count: int) -> list[tuple[int, str, str, str]]:
    records, prev = [], GENESIS_HASH
    for seq in range(1, count + 1):
        payload = canonical_json({"event_id": f"e{seq}", "type": "ReleaseBlocked", "n": seq})
        digest = chain_hash(prev, payload)
        records.append((seq, payload, prev, digest))
        prev = digest
    return records


def walk(records: list[tuple[int, str, str, str]], chunk: int = 3) -> ChainWalk:
    walker = ChainWalk()
    for start in range(0, len(records), chunk):
        if not walker.feed(records[start:start + chunk]):
            break
    return walker


def test_an_intact_chain_walks_to_its_end_chunk_by_chunk() -> None:
    walked = walk(chain(10))
    assert walked.ok and walked.records == 10 and walked.span == (1, 10) and walked.last_hash == chain(10)[-1][3]


def test_an_edited_payload_is_found_at_its_record() -> None:
    records = chain(10)
    seq, payload, prev, digest = records[6]
    records[6] = (seq, payload.replace('"n":7', '"n":70'), prev, digest)
    walked = walk(records)
    assert (walked.first_bad_seq, walked.reason) == (7, "record 7 does not match its hash: its payload or hash was edited")


def test_a_deleted_record_is_named_by_the_gap_it_leaves() -> None:
    records = chain(10)
    del records[4]
    walked = walk(records)
    assert walked.first_bad_seq == 6 and "1 record(s) before it were deleted" in walked.reason


def test_an_inserted_or_reordered_record_does_not_link() -> None:
    records = chain(10)
    swapped = records[:3] + [(4, *records[4][1:]), (5, *records[3][1:])] + records[5:]
    assert walk(swapped).first_bad_seq == 4 and "does not link to record 3" in walk(swapped).reason
    forged_payload = canonical_json({"event_id": "forged", "type": "DeploymentSucceeded"})
    inserted = records[:5] + [(6, forged_payload, records[4][3], chain_hash(records[4][3], forged_payload))] + [
        (seq + 1, *rest) for seq, *rest in records[5:]]
    assert walk(inserted).first_bad_seq == 7  # the record after the insertion no longer links


def test_a_walk_from_a_checkpoint_starts_from_its_hash() -> None:
    records = chain(10)
    walker = ChainWalk(expected_prev=records[5][3], start_label="signed checkpoint 6", previous_seq=6)
    assert walker.feed(records[6:]) and walker.records == 4
    wrong = ChainWalk(expected_prev=records[4][3], start_label="signed checkpoint 5", previous_seq=6)
    assert not wrong.feed(records[6:]) and wrong.reason.startswith("record 7 does not link to signed checkpoint 5")


def facts(**changes: object) -> CheckpointFacts:
    base = dict(seq=100, signed_hash="a" * 64, signed_records=100, signature_problem=None, stored_hash="a" * 64,
                records_now=100)
    return CheckpointFacts(**{**base, **changes})  # type: ignore[arg-type]


def test_a_checkpoint_holds_only_while_its_signature_hash_and_count_do() -> None:
    assert checkpoint_problem(facts()) is None
    assert checkpoint_problem(facts(records_now=None)) is None  # not counted: the others still hold
    assert "forged or edited: bad key" in str(checkpoint_problem(facts(signature_problem="bad key")))
    assert "records up to it were rewritten and re-hashed" in str(checkpoint_problem(facts(stored_hash="b" * 64)))
    assert "is gone: it was deleted" in str(checkpoint_problem(facts(stored_hash=None)))
    assert "holds 98: 2 deleted" in str(checkpoint_problem(facts(records_now=98)))
    assert "1 inserted" in str(checkpoint_problem(facts(records_now=101)))


def test_what_a_checkpoint_signs_names_every_field() -> None:
    signed = checkpoint_bytes(5, "f" * 64, 5, NOW, "service:metrics-collector")
    assert signed.startswith(b"slipway-audit-checkpoint/1\n")
    assert signed != checkpoint_bytes(6, "f" * 64, 5, NOW, "service:metrics-collector")
    assert signed != checkpoint_bytes(5, "f" * 64, 4, NOW, "service:metrics-collector")
    assert (checkpoint_due(0, 9_999, 10_000), checkpoint_due(0, 10_000, 10_000), checkpoint_due(0, 5, 0)) == (
        False, True, False)


def test_the_index_files_an_event_under_its_own_team_or_its_releases() -> None:
    approved = {"type": "ReleaseApproved", "release_id": "r1", "service": "shop", "environment": "prod",
                "actor": "service:gatekeeper", "release": {"team": "payments"}}
    assert index_row(3, approved, NOW, {})["team"] == "payments"
    verdict = {"type": "StepVerdict", "release_id": "r1", "actor": "service:health-watcher"}
    assert index_row(4, verdict, NOW, {"r1": "payments"})["team"] == "payments"
    freeze = {"type": "FreezeDeclared", "environment": "prod", "actor": "person:alice"}
    assert index_row(5, freeze, NOW, {}) | {} == {"seq": 5, "type": "FreezeDeclared", "release_id": None,
                                                   "service": None, "environment": "prod", "team": None,
                                                   "actor": "person:alice", "occurred_at": NOW}


def test_who_answers_request_commit_artifact_approvers_interventions_and_outcome() -> None:
    at = NOW.isoformat()
    history = [
        {"type": "ReleaseRequested", "release_id": "r1", "service": "shop", "environment": "prod", "team": "payments",
         "actor": "ci:payments", "requested_by": "dana@example.com", "version": "1.2.0", "occurred_at": at,
         "commit": {"sha": "abc1234", "committed_at": at}, "artifact": {"digest": "sha256:" + "0" * 64, "uri": "a.pyz"}},
        {"type": "ApprovalRecorded", "release_id": "r1", "actor": "person:alice", "comment": "fine", "occurred_at": at,
         "signed_command": {"signer": "person:alice"}},
        {"type": "ReleaseApproved", "release_id": "r1", "actor": "service:gatekeeper", "occurred_at": at,
         "approvers": ["person:alice", "person:bob"]},
        {"type": "RollbackRequested", "release_id": "r1", "actor": "person:sam", "reason": "looks wrong",
         "occurred_at": at, "signed_command": {"signer": "person:sam"}},
        {"type": "RollbackCompleted", "release_id": "r1", "actor": "service:deployer", "occurred_at": at},
    ]
    found = who("r1", history)
    assert (found["requested_by"], found["requested_via"], found["commit_sha"], found["artifact_uri"]) == (
        "dana@example.com", "ci:payments", "abc1234", "a.pyz")
    assert [(a["actor"], a["signed"]) for a in found["approvers"]] == [("person:alice", True), ("person:bob", False)]
    assert [(i["actor"], i["what"], i["comment"]) for i in found["interventions"]] == [
        ("person:sam", "RollbackRequested", "looks wrong")]
    assert (found["outcome"], found["deployed_version"], found["team"], found["events"]) == (
        "rolled back", None, "payments", 5)


def test_filters_take_iso_or_relative_times_and_refuse_what_they_cannot_read() -> None:
    assert point_in_time("2h", NOW) == NOW - timedelta(hours=2)
    assert point_in_time("1d12h", NOW) == NOW - timedelta(days=1, hours=12)
    assert point_in_time("2030-01-31T10:00Z") == datetime(2030, 1, 31, 10, tzinfo=UTC)
    with pytest.raises(ValidationError, match="neither an ISO 8601 time"):
        ShowAudit(since="yesterday-ish")
    with pytest.raises(ValidationError, match="must be after since"):
        ShowAudit(since="2030-01-31T10:00Z", until="2030-01-30T10:00Z")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        ShowAudit(page=-1)
    with pytest.raises(ValidationError, match="String should match pattern"):
        ShowAudit(types=["not a type"])
    with pytest.raises(ValidationError, match="either full or a range"):
        VerifyAudit(full=True, from_seq=3)
    with pytest.raises(ValidationError, match="to_seq \\(2\\) is before from_seq \\(3\\)"):
        VerifyAudit(from_seq=3, to_seq=2)
    assert ShowAudit(service="shop", types=["StepStarted", "StepVerdict"]).described() == (
        "service=shop, types=StepStarted,StepVerdict")
