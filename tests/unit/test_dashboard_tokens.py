"""Dashboard tokens: signed by an identity's key, checked against its registry record; every refusal says why."""

from datetime import UTC, datetime, timedelta

import pytest

from contracts.identity import IdentityRecord, Kind, Role, identity_id
from libs.dashboard_tokens import MAX_LIFETIME, PREFIX, TokenRefused, issue, reader_of
from libs.identities import new_seed, public_key_of

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Keys:
    """People and their keys in memory: alice (release manager, every team), dev (developer of payments),
    lead (team lead of payments and search), ci (a team's pipeline, not a reader)."""

    def __init__(self) -> None:
        self.seeds: dict[str, bytes] = {}
        self.records: dict[str, IdentityRecord] = {}
        for name, kind, roles, teams in (("alice", Kind.PERSON, (Role.RELEASE_MANAGER,), ()),
                                         ("dev", Kind.PERSON, (Role.DEVELOPER,), ("payments",)),
                                         ("lead", Kind.PERSON, (Role.TEAM_LEAD,), ("payments", "search")),
                                         ("payments", Kind.CI, (), ("payments",))):
            seed = new_seed()
            self.seeds[name] = seed
            self.records[identity_id(kind, name)] = IdentityRecord(
                id=identity_id(kind, name), kind=kind, name=name, public_key=public_key_of(seed), roles=roles,
                teams=teams, created_at=NOW - timedelta(days=1))

    def lookup(self, ident: str) -> IdentityRecord | None:
        return self.records.get(ident)

    def token(self, name: str, *, signed_by: str | None = None, lifetime: timedelta = timedelta(hours=1),
              issued: datetime = NOW - timedelta(minutes=5), kind: Kind = Kind.PERSON) -> str:
        return issue(identity_id(kind, name), self.seeds[signed_by or name], lifetime, issued)


def refusal(keys: Keys, token: str) -> str:
    with pytest.raises(TokenRefused) as refused:
        reader_of(token, keys.lookup, NOW)
    return str(refused.value)


def test_a_token_names_its_identity_the_teams_it_reads_and_when_it_ends() -> None:
    keys = Keys()
    alice = reader_of(keys.token("alice"), keys.lookup, NOW)
    assert (alice.identity, alice.teams, alice.expires_at) == ("person:alice", None, NOW + timedelta(minutes=55))
    assert alice.reads("search") and alice.reads(None)
    lead = reader_of(keys.token("lead"), keys.lookup, NOW)
    assert lead.teams == frozenset({"payments", "search"}) and lead.reads("search") and not lead.reads(None)
    assert reader_of(keys.token("dev"), keys.lookup, NOW).teams == frozenset({"payments"})


def test_each_bad_token_is_refused_with_its_reason() -> None:
    keys = Keys()
    assert "bad signature" in refusal(keys, keys.token("alice", signed_by="dev"))
    assert "expired" in refusal(keys, keys.token("alice", issued=NOW - timedelta(hours=2)))
    assert "future" in refusal(keys, keys.token("alice", issued=NOW + timedelta(hours=1)))
    assert "not a person" in refusal(keys, keys.token("payments", kind=Kind.CI))
    assert "unknown identity person:eve" in refusal(keys, issue("person:eve", new_seed(), timedelta(hours=1), NOW))
    assert "not a slipway dashboard token" in refusal(keys, "Bearer nonsense")
    assert "not base64url JSON" in refusal(keys, f"{PREFIX}.%%%.sig")
    body = keys.token("alice").split(".")
    longer = keys.token("alice", lifetime=timedelta(hours=2)).split(".")[1]
    assert "bad signature" in refusal(keys, ".".join((body[0], longer, body[2])))  # claims changed after signing
    revoked = keys.records["person:alice"].model_copy(update={"revoked_at": NOW - timedelta(minutes=1)})
    keys.records["person:alice"] = revoked
    assert "revoked" in refusal(keys, keys.token("alice"))
    with pytest.raises(ValueError):
        keys.token("dev", lifetime=MAX_LIFETIME + timedelta(seconds=1))
