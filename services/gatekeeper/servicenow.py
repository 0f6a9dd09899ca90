"""Change records from a ServiceNow-compatible Table API: GET /api/now/table/change_request?sysparm_query=number=CHG...

The request asks for `sysparm_display_value=all`, so each field comes as {"value", "display_value"}:
codes and dates are read from `value` (dates are then UTC, "YYYY-MM-DD HH:MM:SS"), labels from
`display_value`. A field sent as a plain string (a proxy, or an instance answering with
sysparm_display_value=false) is read as its value.
"""

import re
import ssl
from datetime import UTC, datetime
from typing import Any

import certifi
import httpx

from contracts.governance import CHANGE_NUMBER_PATTERN
from libs.settings import Settings
from services.gatekeeper.changes import ChangeRecord, ChangeSourceUnavailable, ChangeState

SOURCE = "servicenow"
TABLE_PATH = "/api/now/table/change_request"
FIELDS = ("number", "state", "approval", "start_date", "end_date", "type", "risk", "short_description")
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
STATE_CODES = {
    "-5": ChangeState.NEW, "-4": ChangeState.ASSESS, "-3": ChangeState.AUTHORIZE, "-2": ChangeState.SCHEDULED,
    "-1": ChangeState.IMPLEMENT, "0": ChangeState.REVIEW, "3": ChangeState.CLOSED, "4": ChangeState.CANCELED,
}
STATE_LABELS = {state.value: state for state in ChangeState} | {"cancelled": ChangeState.CANCELED}
RISK_CODES = {"1": "very-high", "2": "high", "3": "moderate", "4": "low"}


def _value(field: Any) -> str:
    if isinstance(field, dict):
        field = field.get("value")
    return field.strip() if isinstance(field, str) else ""


def _label(field: Any) -> str:
    if isinstance(field, dict):
        field = field.get("display_value")
    return field.strip() if isinstance(field, str) else ""


def _date(field: Any, name: str) -> datetime | None:
    text = _value(field)
    if not text:
        return None
    try:
        return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{name} {text[:40]!r} is not a ServiceNow date (YYYY-MM-DD HH:MM:SS, UTC)") from None


def _state(field: Any) -> ChangeState:
    code, label = _value(field), _label(field).lower()
    found = STATE_CODES.get(code) or STATE_LABELS.get(label) or STATE_LABELS.get(code.lower())
    if found is None:
        raise ValueError(f"state {code or label!r} is not a change_request state slipway knows")
    return found


def _risk(field: Any) -> str:
    # Only a {"value", "display_value"} field has a label; a plain field is the choice's code ("3").
    label = _label(field) if isinstance(field, dict) else ""
    code = _value(field)
    return label.lower().replace(" ", "-") if label else RISK_CODES.get(code, code.lower())


def parse_change_request(document: Any) -> ChangeRecord:
    """One `result` entry of the Table API as a ChangeRecord; ValueError naming the field that cannot be read."""
    if not isinstance(document, dict):
        raise ValueError("a change_request record is not a JSON object")
    number = _value(document.get("number"))
    if not re.fullmatch(CHANGE_NUMBER_PATTERN, number):
        raise ValueError(f"number {number[:40]!r} is not a change number")
    return ChangeRecord(
        number=number, source=SOURCE, state=_state(document.get("state")),
        approval=(_value(document.get("approval")) or "not requested").lower(),
        starts_at=_date(document.get("start_date"), "start_date"), ends_at=_date(document.get("end_date"), "end_date"),
        type=_value(document.get("type")).lower() or "normal",
        risk=_risk(document.get("risk")),
        summary=_label(document.get("short_description"))[:500],
    )


class ServiceNowChangeRecords:
    """The ChangeRecords port over a ServiceNow instance's Table API (basic auth or a bearer token)."""

    def __init__(self, base_url: str, *, user: str | None = None, password: str | None = None,
                 token: str | None = None, timeout_s: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + TABLE_PATH
        self.auth = httpx.BasicAuth(user, password or "") if user else None
        self.headers = {"Accept": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
        self.timeout = timeout_s
        # Built once: loading the CA bundle for every client took about 30 ms of each lookup.
        self.tls = ssl.create_default_context(cafile=certifi.where())

    @classmethod
    def from_settings(cls, settings: Settings) -> "ServiceNowChangeRecords":
        if not settings.servicenow_url:
            raise ValueError("SLIPWAY_CHANGE_SOURCE=servicenow needs SLIPWAY_SERVICENOW_URL")
        secret = settings.servicenow_password
        token = settings.servicenow_token
        return cls(settings.servicenow_url, user=settings.servicenow_user,
                   password=secret.get_secret_value() if secret else None,
                   token=token.get_secret_value() if token else None, timeout_s=settings.servicenow_timeout_s)

    async def get(self, number: str) -> ChangeRecord | None:
        # Only a well-formed number reaches the query, so nothing can be appended to the encoded query.
        if not re.fullmatch(CHANGE_NUMBER_PATTERN, number):
            return None
        params = {"sysparm_query": f"number={number}", "sysparm_fields": ",".join(FIELDS), "sysparm_limit": "1",
                  "sysparm_display_value": "all", "sysparm_exclude_reference_link": "true"}
        try:
            async with httpx.AsyncClient(auth=self.auth, headers=self.headers, timeout=self.timeout,
                                         verify=self.tls) as client:
                response = await client.get(self.url, params=params)
        except httpx.HTTPError as exc:
            raise ChangeSourceUnavailable(f"ServiceNow at {self.url} is unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code in (401, 403):
            raise ChangeSourceUnavailable(f"ServiceNow refused slipway's credentials (HTTP {response.status_code})")
        if response.status_code != 200:
            raise ChangeSourceUnavailable(f"ServiceNow answered HTTP {response.status_code} for change {number}")
        try:
            data = response.json()
            results = data.get("result") if isinstance(data, dict) else None
            if not isinstance(results, list):
                raise ValueError("the answer has no `result` list")
            found = [parse_change_request(doc) for doc in results]
        except ValueError as exc:  # json errors are ValueErrors too
            raise ChangeSourceUnavailable(f"ServiceNow's change_request {number} cannot be read: {exc}") from exc
        # The encoded query matches exactly, but a proxy or a custom rule could widen it: trust only the number asked.
        return next((change for change in found if change.number == number), None)
