"""Token ids and the ledger of issued and revoked dashboard tokens: every token has an id, one revocation ends
that token alone, the dashboard's check sees a revocation written by another process, and the file stays small."""

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest

from libs.dashboard_ledger import LEDGER_FILE, TokenLedger, UnknownTokenId
from libs.dashboard_tokens import AUDIENCE, MAX_LIFETIME, PREFIX, TOKEN_DOMAIN, TokenRefused, claims_of, reader_of
from libs.identities import sign
from services.dashboard.auth import Authenticator
from tests.unit.test_dashboard_tokens import NOW, Keys


def test_every_token_has_an_id_and_one_issued_before_ids_gets_one_from_its_signature() -> None:
    keys = Keys()
    first, second = keys.token("dev"), keys.token("dev")
    ids = {reader_of(t, keys.lookup, NOW).token_id for t in (first, second)}
    assert len(ids) == 2 and ids == {claims_of(first).token_id, claims_of(second).token_id}
    claims = {"aud": AUDIENCE, "sub": "person:dev", "iat": int((NOW - timedelta(minutes=1)).timestamp()),
              "exp": int((NOW + timedelta(minutes=30)).timestamp())}  # no jti: as issued before ids existed
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    old = f"{PREFIX}.{body}.{sign(keys.seeds['dev'], TOKEN_DOMAIN + body.encode())}"
    derived = reader_of(old, keys.lookup, NOW).token_id
    assert len(derived) == 16 and derived == claims_of(old).token_id == reader_of(old, keys.lookup, NOW).token_id


def test_a_revoked_token_is_refused_with_when_and_the_persons_other_tokens_still_read(tmp_path: Path) -> None:
    keys = Keys()
    kept, ended = keys.token("dev"), keys.token("dev")
    issuer = TokenLedger(tmp_path)
    for token in (kept, ended):
        issuer.issued(claims_of(token), NOW)
    dashboard = Authenticator(keys.lookup, lambda: NOW, TokenLedger(tmp_path).revoked_at)  # another process
    assert dashboard.reader(ended).identity == "person:dev"  # read (and cached) before the revocation
    record, fresh = issuer.revoke(claims_of(ended).token_id, NOW)
    assert fresh and record.identity == "person:dev" and record.revoked_at == NOW
    with pytest.raises(TokenRefused) as refused:
        dashboard.reader(ended)
    assert f"token {claims_of(ended).token_id} of person:dev was revoked at {NOW.isoformat()}" in str(refused.value)
    assert dashboard.reader(kept).identity == "person:dev"
    # Again: nothing changes, and it says so; a fresh reader of the file (a restart) still refuses it.
    assert issuer.revoke(claims_of(ended).token_id, NOW + timedelta(minutes=1)) == (record, False)
    assert TokenLedger(tmp_path).revoked_at(claims_of(ended).token_id) == NOW
    assert [r.token_id for r in issuer.records(NOW) if r.revoked_at] == [claims_of(ended).token_id]


def test_ids_not_issued_here_can_be_revoked_bad_ids_are_refused_and_expired_entries_leave_the_file(
    tmp_path: Path,
) -> None:
    ledger = TokenLedger(tmp_path)
    record, _ = ledger.revoke("0123456789abcdef", NOW)
    assert record.identity is None and record.expires_at >= NOW + MAX_LIFETIME  # as long as any token could live
    with pytest.raises(UnknownTokenId, match="not a token id"):
        ledger.revoke("../../etc/passwd", NOW)
    ledger.issued(claims_of(Keys().token("dev", lifetime=timedelta(minutes=10))), NOW)
    later = NOW + MAX_LIFETIME + timedelta(hours=1)
    ledger.issued(claims_of(Keys().token("alice", issued=later)), later)
    assert [r.identity for r in ledger.records(later)] == ["person:alice"]
    assert json.loads((tmp_path / LEDGER_FILE).read_text())["tokens"][0]["identity"] == "person:alice"
    assert len(json.loads((tmp_path / LEDGER_FILE).read_text())["tokens"]) == 1
    assert (tmp_path / LEDGER_FILE).stat().st_mode & 0o077 == 0  # beside the keys: private
