"""Change records: whether one allows a deployment now, four-eyes, and reading ServiceNow's change_request shapes."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.gatekeeper.changes import ChangeRecord, ChangeState, approval_refusal, deployment_allowed
from services.gatekeeper.servicenow import parse_change_request

NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
APPROVED = ChangeRecord(
    number="CHG0030001", source="servicenow", state=ChangeState.SCHEDULED, approval="approved",
    starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=1), type="normal", risk="moderate",
    requested_by="person:dev",
)


def test_an_approved_change_whose_window_covers_now_allows_the_deployment() -> None:
    check = deployment_allowed(APPROVED, "CHG0030001", NOW)
    assert check.allowed
    assert check.reason == ("change CHG0030001 is approved and its implementation window "
                            "(2026-11-28T14:00:00+00:00 to 2026-11-28T16:00:00+00:00) covers now")


@pytest.mark.parametrize(("change", "reason"), [
    (None, "change CHG0030001 is not known to the change records"),
    (replace(APPROVED, approval="requested", state=ChangeState.AUTHORIZE),
     "change CHG0030001 is not approved (approval: requested, state: authorize)"),
    (replace(APPROVED, approval="rejected"), "change CHG0030001 is not approved (approval: rejected, state: scheduled)"),
    (replace(APPROVED, state=ChangeState.CANCELED), "change CHG0030001 is canceled: no deployment may start under it"),
    (replace(APPROVED, state=ChangeState.CLOSED), "change CHG0030001 is closed: no deployment may start under it"),
    (replace(APPROVED, ends_at=None), "change CHG0030001 has no planned implementation window"),
    (replace(APPROVED, ends_at=NOW), "the implementation window of change CHG0030001 closed at 2026-11-28T15:00:00+00:00"),
])
def test_a_change_that_does_not_cover_the_deployment_says_why(change: ChangeRecord | None, reason: str) -> None:
    check = deployment_allowed(change, "CHG0030001", NOW)
    assert (check.allowed, check.reason, check.opens_at) == (False, reason, None)


def test_a_window_that_has_not_opened_says_when_it_will() -> None:
    later = replace(APPROVED, starts_at=NOW + timedelta(minutes=30))
    check = deployment_allowed(later, "CHG0030001", NOW)
    assert not check.allowed and check.opens_at == NOW + timedelta(minutes=30)
    assert check.reason == "the implementation window of change CHG0030001 opens at 2026-11-28T15:30:00+00:00"
    assert deployment_allowed(later, "CHG0030001", NOW + timedelta(minutes=30)).allowed  # the start is inside


def test_four_eyes_the_creator_may_not_approve() -> None:
    pending = replace(APPROVED, source="slipway", approval="requested", state=ChangeState.AUTHORIZE)
    assert approval_refusal(pending, "CHG0000001", "person:dev") == \
        "four-eyes: person:dev created change CHG0000001 and may not approve it"
    assert approval_refusal(pending, "CHG0000001", "person:carol") is None
    done = replace(pending, approval="approved", approved_by="person:carol")
    assert approval_refusal(done, "CHG0000001", "person:erin") == \
        "change CHG0000001 was already approved by person:carol"
    assert approval_refusal(None, "CHG0000009", "person:carol") == "no change record CHG0000009 in slipway's registry"


def field(value: str, display: str) -> dict[str, str]:
    return {"value": value, "display_value": display}


def test_a_change_request_with_display_values_is_read_from_its_values() -> None:
    document = {
        "number": field("CHG0030001", "CHG0030001"), "state": field("-2", "Scheduled"),
        "approval": field("approved", "Approved"),
        # display_value is in the reader's zone and format; value is UTC: only the value is trusted.
        "start_date": field("2026-11-28 14:00:00", "28.11.2026 15:00:00"),
        "end_date": field("2026-11-28 16:00:00", "28.11.2026 17:00:00"),
        "type": field("normal", "Normal"), "risk": field("3", "Moderate"),
        "short_description": field("Upgrade shop", "Upgrade shop"),
    }
    change = parse_change_request(document)
    assert change == ChangeRecord(
        number="CHG0030001", source="servicenow", state=ChangeState.SCHEDULED, approval="approved",
        starts_at=datetime(2026, 11, 28, 14, tzinfo=UTC), ends_at=datetime(2026, 11, 28, 16, tzinfo=UTC),
        type="normal", risk="moderate", summary="Upgrade shop",
    )


def test_a_change_request_of_plain_values_is_read_too() -> None:
    change = parse_change_request({
        "number": "CHG0030002", "state": "4", "approval": "rejected", "start_date": "", "end_date": "",
        "type": "emergency", "risk": "1",
    })
    assert (change.state, change.approval, change.starts_at, change.type, change.risk) == \
        (ChangeState.CANCELED, "rejected", None, "emergency", "very-high")


@pytest.mark.parametrize(("document", "message"), [
    ([], "a change_request record is not a JSON object"),
    ({"number": "INC0001"}, "number 'INC0001' is not a change number"),
    ({"number": "CHG1", "state": "-9"}, "state '-9' is not a change_request state slipway knows"),
    ({"number": "CHG1", "state": "-2", "start_date": "28/11/2026"},
     "start_date '28/11/2026' is not a ServiceNow date (YYYY-MM-DD HH:MM:SS, UTC)"),
])
def test_a_change_request_that_cannot_be_read_names_the_field(document: object, message: str) -> None:
    with pytest.raises(ValueError) as failure:
        parse_change_request(document)
    assert str(failure.value) == message
