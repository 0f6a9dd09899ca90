"""`slipway pir record/list`: post-implementation reviews; `slipway release show RELEASE`: a release as the
gatekeeper knows it (spec, state, what it waits for, rules, approvals, known issues), for support."""

from typing import Annotated, Any

import typer
from rich.markup import escape

from slipway.cli_governance import _query, _signed
from slipway.cli_identity import AsOption
from slipway.context import NatsUrlOption, out, say
from slipway.render import titled_table, when

pir_app = typer.Typer(help="Post-implementation reviews: what is owed, record one.", no_args_is_help=True)


@pir_app.command("record")
def pir_record(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="A release that owes a review (see `slipway pir list`)")],
    summary: Annotated[str, typer.Option(help="What happened")],
    actions: Annotated[str, typer.Option(help="The follow-up actions agreed")],
    risk_factor: Annotated[list[str] | None, typer.Option(
        "--risk-factor", help="What made it risky (repeat); counts in the service's next risk score")] = None,
    as_: AsOption = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Record the post-implementation review a release owes, as yourself: its service owes it no longer."""
    from contracts.governance import RecordPir
    from contracts.subjects import CMD_RECORD_PIR

    result = _signed(ctx, nats_url, CMD_RECORD_PIR, as_, RecordPir, release_id=release_id, summary=summary,
                     actions=actions, risk_factors=risk_factor or [])
    say(f"[green]ok:[/] {escape(result.message)}")


@pir_app.command("list")
def pir_list(
    ctx: typer.Context,
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    nats_url: NatsUrlOption = None,
) -> None:
    """Reviews owed (oldest first) and recorded (newest first)."""
    from contracts.governance import ListPirs
    from contracts.subjects import CMD_LIST_PIRS

    data = _query(ctx, nats_url, CMD_LIST_PIRS, ListPirs, service=service).data
    owed, recorded = data.get("owed") or [], data.get("recorded") or []
    if not owed and not recorded:
        say("no post-implementation review is owed or recorded")
        return
    if owed:
        print_table("post-implementation reviews owed", ("release", "service", "env", "why", "since"),
               [(r["release_id"], r["service"], r["environment"], r["reason"], when(r["since"])) for r in owed])
    if recorded:
        print_table("post-implementation reviews recorded",
               ("release", "service", "why owed", "by", "at", "summary", "actions", "risk factors"),
               [(r["release_id"], r["service"], r["owed_because"], r["recorded_by"], when(r["recorded_at"]),
                 r["summary"], r["actions"], "; ".join(r["risk_factors"]) or "-") for r in recorded])


def release_show(
    ctx: typer.Context,
    release_id: Annotated[str, typer.Argument(help="The release id")],
    nats_url: NatsUrlOption = None,
) -> None:
    """A release as the gatekeeper knows it: state, what it waits for, rules, approvals, known issues.

    For support: every known issue the release listed, with its workaround."""
    from contracts.governance import ShowRelease
    from contracts.subjects import CMD_SHOW_RELEASE

    d = _query(ctx, nats_url, CMD_SHOW_RELEASE, ShowRelease, release_id=release_id).data
    spec = d["spec"]
    pir = d["pir"]
    review = pir["recorded"]
    print_table(f"release {d['release_id']}", ("", ""), [
        ("service", d["service"]), ("environment", d["environment"]), ("version", spec["version"]),
        ("class", spec["release_class"]), ("team", spec["team"]), ("requested by", spec["requested_by"]),
        ("requested at", when(d["requested_at"])), ("state", d["state"]), ("waits for", d["summary"] or "-"),
        ("still needs", "; ".join(d["outstanding"]) or "-"), ("deadline", when(d["deadline"])),
        ("change", spec.get("change") or "-"), ("digest", spec["artifact"]["digest"]),
        ("post-implementation review", f"recorded by {review['recorded_by']}" if review
         else f"owed ({pir['owed']})" if pir["owed"] else "-"),
    ], styles=False)
    issues = d["known_issues"]
    if issues:
        print_table("known issues", ("issue", "workaround"), [(i["summary"], i["workaround"] or "-") for i in issues])
    else:
        say("known issues: none" if d["known_issues_stated"] else "known issues: not stated")
    if d["approvals"]:
        print_table("approvals", ("by", "roles", "comment", "at"),
               [(a["approver"], a["roles"], a["comment"], when(a["at"])) for a in d["approvals"]])
    decision = d["decision"]
    if decision:
        risk = decision.get("risk") or {}
        print_table(f"rules that applied ({decision['type']}, {when(decision['at'])}; risk {risk.get('level', '-')} "
               f"{risk.get('score', '')})", ("rule", "effect", "reason"),
               [(r["rule"], r["effect"], r["reason"]) for r in decision["rules"]])


def print_table(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], styles: bool = True) -> None:
    out.print(titled_table(title, columns, rows, styles))
