"""What makes two release requests the same release: the specification, never the envelope."""

from datetime import timedelta, timezone
from pathlib import Path

from contracts.envelope import new_event_id
from contracts.events import ReleaseRequestDuplicated, ReleaseRequested, ReleaseRequestRejected
from services.artifact_verifier.domain import KnownRelease, answer_repeat, canonical_spec, fingerprint
from tests.support.releases import release_for


def first_request(tmp_path: Path) -> ReleaseRequested:
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"bytes")
    return release_for(artifact, strategy={"kind": "canary", "steps": [{"weight": 10}, {"weight": 50}]})


def changed(request: ReleaseRequested, **fields: object) -> ReleaseRequested:
    return ReleaseRequested.model_validate({**request.model_dump(), "event_id": new_event_id(), **fields})


def remembered(request: ReleaseRequested) -> KnownRelease:
    spec = canonical_spec(request)
    return KnownRelease(request.release_id, fingerprint(spec), spec, request.event_id, "ArtifactVerified")


def test_the_envelope_and_the_time_zone_of_an_instant_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    request = first_request(tmp_path)
    in_new_york = request.commit.committed_at.astimezone(timezone(timedelta(hours=-5)))
    retry = changed(
        request, actor="ci:other-runner", source="ci-2", causation_id="x", correlation_id="y",
        commit={"sha": request.commit.sha, "committed_at": in_new_york},
        rollback_triggers=request.rollback_triggers.model_dump(),  # defaults spelled out are the same defaults
        unknown_field="ignored by the tolerant reader",
    )
    assert fingerprint(canonical_spec(retry)) == fingerprint(canonical_spec(request))


def test_a_repeat_with_the_same_spec_is_a_duplicate_pointing_at_the_first_request(tmp_path: Path) -> None:
    request = first_request(tmp_path)
    retry = changed(request)
    answer = answer_repeat(retry, canonical_spec(retry), remembered(request))
    assert isinstance(answer, ReleaseRequestDuplicated)
    assert (answer.release_id, answer.causation_id, answer.original_event_id) == (
        request.release_id, retry.event_id, request.event_id
    )


def test_a_repeat_with_another_spec_is_rejected_naming_the_id_and_every_differing_field(tmp_path: Path) -> None:
    request = first_request(tmp_path)
    other = changed(
        request, environment="staging", strategy={"kind": "canary", "steps": [{"weight": 10}, {"weight": 60}]},
        rollback_triggers={"min_requests": 20},
    )
    answer = answer_repeat(other, canonical_spec(other), remembered(request))
    assert isinstance(answer, ReleaseRequestRejected)
    fields = ["environment", "rollback_triggers.min_requests", "strategy.steps"]
    assert [e.field for e in answer.errors] == fields
    assert answer.reason.startswith(f"release {request.release_id} was already requested (event {request.event_id})")
    assert ", ".join(fields) in answer.reason
