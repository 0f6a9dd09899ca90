"""The `slipway` command: run the stack, request releases, talk to the services."""

import asyncio
import inspect
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from slipway.alerts import alerts_app
from slipway.cli_governance import change_app, incident_app
from slipway.cli_approvals import approvals, approve, reject
from slipway.cli_bottlenecks import bottlenecks
from slipway.cli_dashboard import dashboard_app, up_login_line
from slipway.cli_env import env_app
from slipway.cli_evidence import evidence_app
from slipway.cli_flags import flags_app
from slipway.cli_identity import identity_app
from slipway.cli_audit import audit_app
from slipway.cli_dora import metrics_app
from slipway.cli_ops import freeze_app, status
from slipway.cli_pir import pir_app, release_show
from slipway.cli_inventory import evidence_list, inventory
from slipway.cli_postmortem import postmortem_command
from slipway.cli_checklist import checklist_app
from slipway.cli_policy import policy_app
from slipway.cli_release import release_app
from slipway.cli_steer import abort, pause, promote, resume
from slipway.cli_strategy import strategy_app
from slipway.context import (
    DataDirOption, Globals, NatsUrlOption, default_data_dir, err, fail, globals_of, out, say,
)

app = typer.Typer(
    help="slipway: event-driven releases on NATS JetStream.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(release_app, name="release")
app.add_typer(freeze_app, name="freeze")
app.add_typer(alerts_app, name="alerts")
app.add_typer(audit_app, name="audit")
app.add_typer(metrics_app, name="metrics")
app.add_typer(identity_app, name="identity")
app.add_typer(policy_app, name="policy")
app.add_typer(change_app, name="change")
app.add_typer(incident_app, name="incident")
app.add_typer(pir_app, name="pir")
release_app.command("show")(release_show)
app.add_typer(evidence_app, name="evidence")
app.add_typer(env_app, name="env")
app.add_typer(strategy_app, name="strategy")
app.add_typer(checklist_app, name="checklist")
app.add_typer(flags_app, name="flags")
app.command("status")(status)
app.command("approve")(approve)
app.command("reject")(reject)
app.command("approvals")(approvals)
app.command("inventory")(inventory)
app.command("postmortem")(postmortem_command)
evidence_app.command("list")(evidence_list)
for steer in (pause, resume, promote, abort):
    app.command(steer.__name__)(steer)
# Where they were first: `slipway release resume / abort` still work.
release_app.command("resume")(resume)
release_app.command("abort")(abort)
metrics_app.command("bottlenecks")(bottlenecks)
app.add_typer(dashboard_app, name="dashboard")


@app.callback()
def global_options(
    ctx: typer.Context,
    nats_url: Annotated[str | None, typer.Option(help="NATS server; default NATS_URL, then the running stack")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="State, logs, stack.json; default SLIPWAY_DATA_DIR or ./.slipway")] = None,
) -> None:
    ctx.obj = Globals(nats_url, data_dir if data_dir is not None else default_data_dir())


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run_demo(nats_url: str | None, settings: Any) -> bool:
    """slipway.demo.run_demo, imported only when asked for; its failures become one line."""
    try:
        from slipway.demo import run_demo
    except ModuleNotFoundError as exc:
        if exc.name not in ("slipway.demo", "slipway"):
            raise
        fail("the demo is not available in this installation (slipway.demo is missing)", 1)
    try:
        result = run_demo(nats_url, settings)
        if inspect.isawaitable(result):
            result = asyncio.run(result)  # type: ignore[arg-type]
    except (KeyboardInterrupt, typer.Exit):
        raise
    except Exception as exc:  # noqa: BLE001 - report, do not dump a traceback
        err.print(f"[red]error:[/] the demo failed: {type(exc).__name__}: {escape(str(exc))}", soft_wrap=True)
        return False
    return bool(result)


def stack_table(stack: Any) -> Table:
    table = Table(title="slipway is up")
    table.add_column("service")
    table.add_column("pid", justify="right")
    table.add_column("log")
    if stack.nats is not None and stack.nats.process is not None:
        table.add_row("nats-server", str(stack.nats.process.pid), escape(str(stack.log_path("nats"))))
    for name, proc in stack.services.items():
        table.add_row(name.replace("_", "-"), str(proc.pid), escape(str(stack.log_path(name))))
    return table


@app.command()
def up(
    ctx: typer.Context,
    demo: Annotated[bool, typer.Option("--demo", help="Run the demo against the stack, then keep it up")] = False,
    nats_port: Annotated[int, typer.Option(help="Port of the embedded nats-server; 0 = a free one")] = 0,
    ready_timeout: Annotated[float, typer.Option(help="Seconds each service has to get ready")] = 30.0,
    nats_url: NatsUrlOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Start nats-server (unless NATS_URL is set), the six services and the dashboard; Ctrl-C stops everything."""
    from slipway.supervisor import ServiceFailed, Stack, pid_alive, read_stack_file

    g = globals_of(ctx, nats_url, data_dir)
    record = read_stack_file(g.data_dir) or {}
    running = record.get("supervisor_pid")
    if isinstance(running, int) and pid_alive(running):
        fail(f"a stack is already running from {g.data_dir} (pid {running}, NATS {record.get('nats_url')})", 1)
    stack = Stack(g.data_dir, g.explicit_nats_url(), nats_port=nats_port, ready_timeout=ready_timeout)
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    code = 0
    try:
        say(f"starting slipway in {escape(str(stack.data_dir))} ...")
        url = stack.start()
        out.print(stack_table(stack))
        say(f"NATS: [bold]{escape(url)}[/]   (written to {escape(str(stack.stack_file))})")
        out.print(escape(up_login_line(stack.identities, stack.dashboard_url)), soft_wrap=True)
        say("   (HTTP API /api/... with a login token, OpenAPI /openapi.json; Prometheus /metrics open on loopback)")
        people = [r.name for r in stack.identities.registry().identities if r.kind == "person" and r.revoked_at is None]
        say(f"identities: {escape(str(stack.identities.directory))} (mode 0700; every client needs one); "
            f"people: {escape(', '.join(people) or 'none')}   add one: [bold]slipway identity create NAME --roles ...[/]")
        say("next: [bold]slipway release request infra/release.example.yaml[/]   "
            "watch: [bold]slipway alerts tail[/]   state: [bold]slipway status[/]   stop: Ctrl-C")
        if demo:
            ok = _run_demo(url, g.settings(url))
            code = 0 if ok else 1
            say(("[green]demo passed[/]" if ok else "[red]demo failed[/]") + "; the stack stays up until Ctrl-C")
        while True:
            for name, exit_code in stack.revive_dead():
                err.print(f"[yellow]warning:[/] {name} exited with code {exit_code}; started it again "
                          f"(log: {escape(str(stack.log_path(name)))})", soft_wrap=True)
            time.sleep(0.5)  # the watch loop polls children; nothing here synchronises on them
    except ServiceFailed as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}; log tail ({escape(str(stack.log_path(exc.service)))}):",
                  soft_wrap=True)
        err.print(escape(exc.tail), soft_wrap=True)
        code = 1
    except KeyboardInterrupt:
        say("stopping ...")
    except (OSError, RuntimeError, TimeoutError) as exc:
        err.print(f"[red]error:[/] cannot start slipway: {escape(str(exc).splitlines()[0] if str(exc) else repr(exc))}",
                  soft_wrap=True)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        embedded = stack.nats is not None
        try:
            workloads = stack.stop()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous_term)
        say(f"stopped the services, {workloads} deployed workload(s)" + (" and NATS" if embedded else ""))
    raise typer.Exit(code)


@app.command()
def down(ctx: typer.Context, data_dir: DataDirOption = None) -> None:
    """Stop deployed workloads (apps and routers) left behind by an earlier run."""
    from services.deployer.local.driver import stop_all

    from slipway.supervisor import pid_alive, read_stack_file

    g = globals_of(ctx, None, data_dir)
    stopped = stop_all(g.data_dir / "run")
    say(f"stopped {stopped} deployed workload(s) under {escape(str(g.data_dir / 'run'))}")
    record = read_stack_file(g.data_dir) or {}
    pid = record.get("supervisor_pid")
    if isinstance(pid, int) and pid_alive(pid):
        say(f"`slipway up` is still running (pid {pid}): stop it with Ctrl-C or `kill {pid}`")


@app.command()
def demo(ctx: typer.Context, nats_url: NatsUrlOption = None, data_dir: DataDirOption = None) -> None:
    """Run the demo (against the running stack, or a stack of its own): releases go live or roll back."""
    g = globals_of(ctx, nats_url, data_dir)
    url = g.explicit_nats_url() or g.stack_nats_url(live_only=True)
    try:
        ok = _run_demo(url, g.settings(url))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    raise typer.Exit(0 if ok else 1)


def main() -> None:
    """Console entry point: never a traceback, always an exit code."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence for an unexpected failure
        err.print(f"[red]error:[/] {type(exc).__name__}: {escape(str(exc).splitlines()[0] if str(exc) else '')}",
                  soft_wrap=True)
        sys.exit(1)
