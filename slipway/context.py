"""What every command shares: global options, where NATS is, and turning failures into one clear line."""

import asyncio
import logging
import os
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from libs.client import NotPermitted, SlipwayUnavailable
from slipway.releases import ReleaseInputError, ReleaseInvalid
from slipway.supervisor import pid_alive, read_stack_file

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
USAGE_ERROR = 2

# nats-py logs every failed connection attempt with a traceback; the CLI reports failures itself.
logging.getLogger("nats").addHandler(logging.NullHandler())
logging.getLogger("nats").propagate = False

# Piped or captured output is not cut to 80 columns: tables and event lines stay one row each.
_WIDTH = None if os.environ.get("COLUMNS") else 200
out = Console(highlight=False, width=_WIDTH if not Console().is_terminal else None)
err = Console(stderr=True, highlight=False, width=_WIDTH if not Console(stderr=True).is_terminal else None)


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Globals:
    nats_url_option: str | None
    data_dir: Path

    @property
    def nats_url(self) -> str:
        """--nats-url > NATS_URL > the running stack's stack.json > nats://127.0.0.1:4222."""
        return self.explicit_nats_url() or self.stack_nats_url() or DEFAULT_NATS_URL

    def explicit_nats_url(self) -> str | None:
        return self.nats_url_option or os.environ.get("NATS_URL") or os.environ.get("SLIPWAY_NATS_URL") or None

    def stack_nats_url(self, live_only: bool = False) -> str | None:
        record = read_stack_file(self.data_dir) or {}
        if live_only and not (isinstance(record.get("supervisor_pid"), int) and pid_alive(record["supervisor_pid"])):
            return None
        url = record.get("nats_url")
        return url if isinstance(url, str) and url else None

    def reader_credentials(self) -> Path | None:
        """Whom the CLI connects as to read and ask: SLIPWAY_CREDENTIALS, else this data directory's on-call identity."""
        from contracts.identity import Kind
        from libs.identities import existing_seed
        from libs.nats_auth import ONCALL

        return explicit_credentials() or existing_seed(self.data_dir, Kind.ONCALL, ONCALL)

    def ci_credentials(self, team: str | None) -> Path | None:
        """Whom `release request` publishes as: SLIPWAY_CREDENTIALS (a CI job's), else the team's CI identity here."""
        from contracts.identity import Kind
        from libs.identities import existing_seed

        if explicit := explicit_credentials():
            return explicit
        return (existing_seed(self.data_dir, Kind.CI, team) if team else None) or self.reader_credentials()

    def settings(self, nats_url: str | None = None) -> Any:
        from libs.settings import Settings

        try:
            return Settings(nats_url=nats_url or self.nats_url, data_dir=self.data_dir)
        except Exception as exc:  # noqa: BLE001 - a bad SLIPWAY_* variable
            raise CliError(f"invalid slipway settings: {exc}".splitlines()[0], USAGE_ERROR) from exc


NatsUrlOption = Annotated[str | None, typer.Option(
    "--nats-url", help="NATS server; default NATS_URL, then the running stack (also accepted before the command)",
    rich_help_panel="Connection")]
DataDirOption = Annotated[Path | None, typer.Option(
    "--data-dir", help="State, logs, stack.json; default SLIPWAY_DATA_DIR or ./.slipway", rich_help_panel="Connection")]


def globals_of(ctx: typer.Context, nats_url: str | None = None, data_dir: Path | None = None) -> Globals:
    """The global options, where a command's own --nats-url / --data-dir win over the ones before it.

    From here on the command connects as the reader identity of its data directory (see
    Globals.reader_credentials); commands that act as someone else name that identity themselves.
    """
    from libs.client import use_credentials

    root = ctx.find_root()
    if not isinstance(root.obj, Globals):
        root.obj = Globals(None, default_data_dir())
    base: Globals = root.obj
    chosen = Globals(nats_url or base.nats_url_option, data_dir if data_dir is not None else base.data_dir)
    use_credentials(chosen.reader_credentials())
    return chosen


def explicit_credentials() -> Path | None:
    """SLIPWAY_CREDENTIALS: the seed file of the identity a CI job or a person runs the CLI as."""
    value = os.environ.get("SLIPWAY_CREDENTIALS")
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise CliError(f"SLIPWAY_CREDENTIALS={value}: no such file (a seed file named <kind>.<name>.nk)", USAGE_ERROR)
    return path


def default_data_dir() -> Path:
    try:
        from libs.settings import Settings

        return Settings().data_dir
    except Exception:  # noqa: BLE001 - bad settings are reported by the command that needs them
        return Path(os.environ.get("SLIPWAY_DATA_DIR", ".slipway"))


def say(message: str) -> None:
    out.print(message, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def unavailable_message(exc: BaseException, nats_url: str) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if text.startswith("cannot reach NATS") or not text.startswith(("no service", "slipway.")):
        return f"cannot reach NATS at {nats_url}: is `slipway up` running?"
    return text


def run(coro: Coroutine[Any, Any, Any], nats_url: str) -> Any:
    """Run a command's coroutine; every failure becomes one clear line and an exit code, never a traceback."""
    import nats.errors
    import nats.js.errors

    try:
        return asyncio.run(coro)
    except typer.Exit:
        raise
    except CliError as exc:
        fail(str(exc), exc.code)
    except ReleaseInvalid as exc:
        err.print("[red]error:[/] the release request is invalid:", soft_wrap=True)
        for field, message in exc.errors:
            err.print(f"  [bold]{escape(field)}[/]: {escape(message)}", soft_wrap=True)
        raise typer.Exit(USAGE_ERROR) from None
    except ReleaseInputError as exc:
        fail(str(exc), USAGE_ERROR)
    except SlipwayUnavailable as exc:
        fail(unavailable_message(exc, nats_url), USAGE_ERROR)
    except NotPermitted as exc:
        fail(str(exc), 1)
    except (nats.errors.NoServersError, ConnectionRefusedError) as exc:
        fail(unavailable_message(exc, nats_url), USAGE_ERROR)
    except nats.js.errors.NoStreamResponseError:
        fail(f"no JetStream stream took the message at {nats_url}: is `slipway up` running?", USAGE_ERROR)
    except (nats.errors.TimeoutError, TimeoutError) as exc:
        fail(str(exc) or f"NATS at {nats_url} did not answer in time", 1)
    except (nats.errors.Error, OSError) as exc:
        fail(f"NATS at {nats_url}: {type(exc).__name__}: {exc}".splitlines()[0], USAGE_ERROR)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
