"""The local router's admin token check and the refusals document the deployer reads back."""

import pytest

from services.deployer.local.admin_auth import Refusal, admin_refusal, parse_refusals

TOKEN = "s3cr3t-token-of-the-deployer-0123456789abcdef"


def test_only_the_exact_bearer_token_passes() -> None:
    assert admin_refusal(f"Bearer {TOKEN}", TOKEN) is None
    assert admin_refusal(f"bearer   {TOKEN} ", TOKEN) is None  # the scheme is case-insensitive (RFC 7235)


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "no Authorization header: the deployer's bearer token is required"),
        ("", "no Authorization header: the deployer's bearer token is required"),
        ("Bearer", "Authorization is not a bearer token"),
        (f"Basic {TOKEN}", "Authorization is not a bearer token"),
        (TOKEN, "Authorization is not a bearer token"),
        (f"Bearer {TOKEN[:-1]}", "wrong bearer token"),
        (f"Bearer {TOKEN}x", "wrong bearer token"),
        ("Bearer tökén", "wrong bearer token"),  # non-ASCII is compared, not an exception
    ],
)
def test_anything_else_is_refused_without_repeating_what_was_sent(authorization: str | None, reason: str) -> None:
    assert admin_refusal(authorization, TOKEN) == reason
    assert TOKEN not in reason


def test_refusals_document_is_read_back_or_said_to_be_wrong() -> None:
    read = parse_refusals({"count": 3, "recent": [{"at": 1.5, "remote": "127.0.0.1", "reason": "wrong bearer token"}]})
    assert (read.count, read.last) == (3, Refusal(1.5, "127.0.0.1", "wrong bearer token"))
    assert parse_refusals({"count": 0, "recent": []}).last is None
    with pytest.raises(ValueError, match="integer \"count\""):
        parse_refusals({"recent": []})
    with pytest.raises(ValueError, match="lacks at, remote or reason"):
        parse_refusals({"count": 1, "recent": [{"at": 1.0}]})
