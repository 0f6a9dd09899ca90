"""`slipway checklist report`: which readiness checklist items, left undone, most often came before a failed
deployment or a blocked release, and the refinements of the checklists that suggests."""

from typing import Annotated

import typer
from rich.markup import escape

from slipway.cli_governance import _query
from slipway.context import NatsUrlOption, out, say
from slipway.render import percent, titled_table

checklist_app = typer.Typer(help="Readiness checklists per release class (classes.yaml `checklist`).",
                            no_args_is_help=True)


@checklist_app.command("report")
def checklist_report(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(help="Releases requested in the last N days")] = 90,
    min_releases: Annotated[int, typer.Option(help="Suggest nothing from fewer ended releases than this")] = 5,
    nats_url: NatsUrlOption = None,
) -> None:
    """Per class and item: failed or blocked with the item undone, and done; then suggested refinements."""
    from contracts.governance import ChecklistReport
    from contracts.subjects import CMD_CHECKLIST_REPORT

    data = _query(ctx, nats_url, CMD_CHECKLIST_REPORT, ChecklistReport, days=days, min_releases=min_releases).data
    items = data.get("items") or []
    if not items:
        say(f"no ended release of a class with a checklist in the last {days} days")
        return
    out.print(titled_table(
        f"checklist items over {data.get('releases', 0)} ended release(s)",
        ("class", "item", "required", "undone: went wrong", "done: went wrong", "difference"),
        [(r["release_class"], r["item"], "yes" if r["required"] else "no",
          f"{r['bad_when_undone']} of {r['undone']}", f"{r['bad_when_done']} of {r['done']}", percent(r["lift"]))
         for r in items], styles=False))
    for suggestion in data.get("suggestions") or []:
        say(f"[yellow]suggestion:[/] {escape(suggestion)}")
