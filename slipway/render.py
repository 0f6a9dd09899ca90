"""How slipway looks in a terminal: one line per event, tables, human durations."""

from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
GOOD = {"DeploymentSucceeded", "ArtifactVerified", "ReleaseApproved", "succeeded", "deployed", "approved", "passed",
        "pass", "restored"}
BAD = {
    "ArtifactRejected", "ReleaseBlocked", "ReleaseRequestRejected", "DeploymentFailed", "RollbackRequested",
    "RollbackCompleted", "HealthDegraded", "failed", "rolled back", "rolled_back", "rolled-back", "blocked", "rejected",
    "ReleaseRejected", "ReleaseExpired", "expired", "fail",
}
VERDICT_STYLE = {"pass": "green", "marginal": "yellow", "fail": "bold red", "inconclusive": "yellow"}


def styled(value: Any) -> str:
    text = escape(str(value if value is not None else "-"))
    if str(value) in GOOD:
        return f"[green]{text}[/]"
    if str(value) in BAD:
        return f"[red]{text}[/]"
    return text


def clock(value: Any) -> str:
    """HH:MM:SS in local time from an ISO timestamp; the raw text when it is not one."""
    if not value:
        return "--:--:--"
    try:
        return datetime.fromisoformat(str(value)).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return str(value)[:19]


def when(value: Any) -> str:
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(str(value)).astimezone().strftime("%m-%d %H:%M:%S")
    except ValueError:
        return str(value)


def duration(seconds: Any) -> str:
    """90 -> '1m 30s', 93784 -> '1d 2h'; '-' when unknown."""
    if seconds is None:
        return "-"
    try:
        total = float(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    if total < 60:
        return f"{total:.1f}s" if total < 10 and total != int(total) else f"{int(round(total))}s"
    parts = []
    remaining = int(round(total))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return " ".join(parts[:2])


def percent(value: Any) -> str:
    try:
        return f"{float(value) * 100:.1f}%"
    except (TypeError, ValueError):
        return "-"


def number(value: Any) -> str:
    try:
        return f"{float(value):.0f}"
    except (TypeError, ValueError):
        return "-"


def event_details(event: dict[str, Any]) -> str:
    """The few fields that tell a person what happened, for each event type (rich markup)."""
    kind = event.get("type", "")
    e = lambda value: escape(str(value))  # noqa: E731 - every value from the wire is escaped
    parts: list[str] = []
    if kind == "ReleaseRequested":
        strategy = event.get("strategy") if isinstance(event.get("strategy"), dict) else {}
        steps = "/".join(str(x.get("weight")) for x in strategy.get("steps") or [] if isinstance(x, dict))
        parts.append(e(f"{event.get('service')} {event.get('version')} to {event.get('environment')}, "
                       f"{strategy.get('kind', '?')}{' ' + steps + '%' if steps else ''}, "
                       f"by {event.get('requested_by', '?')}"))
    elif kind == "StepStarted":
        parts.append(f"step {event.get('step_index', 0) + 1}/{e(event.get('step_count', '?'))}: "
                     f"{e(event.get('weight'))}% to {e(event.get('version'))}")
    elif kind == "StepVerdict":
        verdict = str(event.get("verdict", "?"))
        parts.append(f"[{VERDICT_STYLE.get(verdict, 'white')}]{e(verdict)}[/] step {event.get('step_index', 0) + 1}")
        parts.append(f"error rate {percent(event.get('error_rate'))}, p99 {number(event.get('p99_latency_ms'))} ms, "
                     f"{e(event.get('requests', 0))} requests")
    elif kind == "DeploymentStarted":
        steps = "/".join(str(w) for w in event.get("steps", []))
        parts.append(e(f"{event.get('strategy')} {steps}% of {event.get('version')} "
                       f"(stable {event.get('stable_version') or 'none'}) via {event.get('router_url')}"))
    elif kind == "ReleaseWaiting":
        waits = str(event.get("waiting_for", "waiting")).replace("-", " ")
        missing = "; ".join(map(str, event.get("outstanding") or []))
        parts.append(f"[yellow]{e(waits)}[/] " + e(f"(risk {event.get('risk', {}).get('level', '?')}): "
                                                   f"{missing or event.get('summary', '')}; expires "
                                                   f"{event.get('deadline', '?')}"))
    elif kind == "ApprovalRecorded":
        parts.append(e(f"by {event.get('actor')} ({', '.join(event.get('roles') or [])}): {event.get('comment')}"))
    elif kind == "ReleaseRejected":
        parts.append(e(f"by {event.get('actor')}: {event.get('comment')}"))
    elif kind == "ReleaseExpired":
        parts.append(e(str(event.get("reason", ""))))
    elif kind == "ReleaseApproved" and (event.get("approvers") or event.get("strategy_source") == "recommended"):
        said = [f"approved by {', '.join(event['approvers'])}"] if event.get("approvers") else []
        if event.get("strategy_source") == "recommended":
            strategy = (event.get("release") or {}).get("strategy") or {}
            said.append(f"strategy {strategy.get('kind', '?')} recommended (none named)")
        parts.append(e("; ".join(said)))
    elif kind == "ReleaseResumed":
        step = event.get("step_index", 0) + 1
        parts.append(e(f"step {step} accepted by {event.get('actor')}: {event.get('comment')}"))
    elif kind == "ReleasePaused":
        parts.append(e(f"at step {event.get('step_index', 0) + 1} by {event.get('actor')}: {event.get('reason')}"))
    elif kind == "ReleasePromoted":
        parts.append(e(f"at step {event.get('step_index', 0) + 1} by {event.get('actor')} "
                       f"({event.get('skipped_steps')} step(s) not judged): {event.get('comment')}"))
    elif kind == "SmokeTestCompleted":
        parts.append(e(f"{event.get('version')} {event.get('outcome')} in {float(event.get('duration_ms') or 0):.0f} ms"
                       + (f": {event.get('problem')}" if event.get("problem") else "")))
    elif kind in ("RolloutPaused", "RolloutResumed"):
        parts.append(e(str(event.get("reason", ""))))
    elif kind == "DeploymentSucceeded":
        parts.append(e(f"{event.get('version')} is live (was {event.get('previous_version') or 'none'})"))
    elif kind == "ArtifactVerified":
        parts.append(e(f"{event.get('size_bytes')} bytes match the digest"))
    elif kind == "RollbackCompleted":
        parts.append(e(f"restored {event.get('restored_version') or 'nothing'}; root cause: {event.get('root_cause')}"))
    elif kind == "RollbackRequested":
        parts.append(e(f"{event.get('bad_version')} -> {event.get('restore_version') or 'nothing'}"))
    elif kind == "ReleaseRequestRejected":
        errors = event.get("errors") or []
        text = "; ".join(f"{x.get('field')}: {x.get('message')}" for x in errors) or event.get("reason", "")
        parts.append(e(text))
    elif kind == "ReleaseRequestDuplicated":
        parts.append(e(f"a retry of request {event.get('original_event_id')} "
                       f"({event.get('original_outcome')}): following that release"))
    elif kind == "CommandRefused":
        parts.append(e(f"{event.get('command', '?').rsplit('.', 1)[-1]} by {event.get('claimed_signer') or 'nobody'} "
                       f"refused"))
    elif kind == "AlertRaised":
        severity = str(event.get("severity", "?"))
        parts.append(f"[{SEVERITY_STYLE.get(severity, 'white')}]{e(severity)}[/] {e(event.get('summary', ''))}")
    if event.get("reason") and kind != "ReleaseRequestRejected":
        parts.append(e(event["reason"]))
    if event.get("reasons"):
        parts.append(e("; ".join(str(r) for r in event["reasons"])))
    return " | ".join(p for p in parts if p)


def event_line(event: dict[str, Any]) -> str:
    kind = str(event.get("type", "?"))
    pad = " " * max(1, 24 - len(kind))
    return f"{clock(event.get('occurred_at'))}  {styled(kind)}{pad}{event_details(event)}"


def alert_line(alert: dict[str, Any]) -> str:
    severity = str(alert.get("severity", "?"))
    style = SEVERITY_STYLE.get(severity, "white")
    who = f"{alert.get('team', '?')}/{alert.get('service', '?')}"
    return (f"{clock(alert.get('occurred_at'))}  [{style}]{escape(severity.upper().ljust(8))}[/]  {escape(who)}  "
            f"{escape(str(alert.get('summary', '')))}  [dim]{escape(str(alert.get('release_id', '')))}[/]")


def short(text: Any, limit: int = 80) -> str:
    value = str(text if text is not None else "")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def releases_table(releases: list[dict[str, Any]]) -> Table:
    table = Table(title="Releases")
    for column in ("release", "service", "env", "version", "state", "last event", "updated"):
        table.add_column(column, no_wrap=True)
    table.add_column("events", justify="right")
    table.add_column("reason", overflow="fold", min_width=20)
    for r in releases:
        events = r.get("events")
        table.add_row(
            escape(str(r.get("release_id", "-"))), escape(str(r.get("service", "-"))),
            escape(str(r.get("environment", "-"))), escape(str(r.get("version", "-"))), styled(r.get("state")),
            styled(r.get("last_event")), when(r.get("updated_at")),
            str(len(events)) if isinstance(events, list) else escape(str(events if events is not None else "-")),
            escape(short(r.get("reason") or "", 120)),
        )
    return table


def freezes_table(freezes: list[dict[str, Any]]) -> Table:
    table = Table(title="Freezes")
    for column in ("freeze id", "env", "from", "until", "active", "actor"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="fold", min_width=16)
    for f in freezes:
        table.add_row(
            escape(str(f.get("freeze_id", "-"))), escape(str(f.get("environment", "-"))), when(f.get("starts_at")),
            when(f.get("ends_at")), "[red]yes[/]" if f.get("active") else "no", escape(str(f.get("actor", "-"))),
            escape(str(f.get("reason", ""))),
        )
    return table


def dora_table(data: dict[str, Any]) -> Table:
    days = f" ({data['first_day']} to {data['last_day']}, UTC days)" if data.get("first_day") else ""
    table = Table(title=f"DORA metrics, last {data.get('window_days', '?')} days{days}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    frequency = data.get("deployment_frequency_per_day")
    table.add_row("deployments", str(data.get("deployments", 0)))
    table.add_row("deployment frequency", f"{float(frequency):.2f} / day" if frequency is not None else "-")
    table.add_row("lead time for changes (median)", duration(data.get("lead_time_median_s")))
    if "lead_time_p90_s" in data:
        table.add_row("lead time for changes (p90)", duration(data.get("lead_time_p90_s")))
    table.add_row("changes / failed changes", f"{data.get('changes', 0)} / {data.get('failed_changes', 0)}")
    table.add_row("change failure rate", percent(data.get("change_failure_rate")))
    table.add_row("time to restore (median)", duration(data.get("time_to_restore_median_s")))
    return table


def samples_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    table.add_column("release")
    table.add_column("duration", justify="right")
    for row in rows:
        table.add_row(escape(str(row.get("release_id", "-"))), duration(row.get("seconds")))
    return table


def titled_table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], styles: bool = True) -> Table:
    """A table of plain values, each escaped (and coloured by `styled` when `styles`); "-" for None."""
    table = Table(title=title, show_header=any(columns))
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(styled(v) if styles else escape(str(v if v is not None else "-")) for v in row))
    return table
