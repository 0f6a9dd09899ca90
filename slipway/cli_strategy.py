"""`slipway strategy recommend SERVICE`: the deployment strategy the service catalogue's profile suggests, with why."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from slipway.context import USAGE_ERROR, fail, say

strategy_app = typer.Typer(help="Deployment strategies.", no_args_is_help=True)


@strategy_app.command("recommend")
def recommend(
    service: Annotated[str, typer.Argument(help="A deployed service, as named in the service catalogue")],
    catalogue: Annotated[Path | None, typer.Option(help="Default SLIPWAY_SERVICE_CATALOGUE",
                                                   show_default=False)] = None,
) -> None:
    """Recommend blue-green, canary, rolling, immutable or all-at-once from the service's `delivery` profile."""
    from libs.service_catalogue import CatalogueError, ServiceCatalogue
    from libs.settings import Settings
    from libs.strategy_advice import recommend as advise

    path = catalogue if catalogue is not None else Settings().service_catalogue
    try:
        entry = ServiceCatalogue.load(path).entry(service)
    except CatalogueError as broken:
        fail(str(broken), USAGE_ERROR)
    advice = advise(entry)
    say(f"{escape(service)}: [bold]{advice.strategy}[/]")
    for reason in advice.reasons:
        say(f"  because {escape(reason)}")
    if entry is None:
        say(f"  note: {escape(service)} is not in {escape(str(path))}")
    if advice.assumed:
        say(f"  assumed (not in its delivery profile): {escape(', '.join(advice.assumed))}")
