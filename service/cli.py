"""The ``givfleet`` command."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.markup import escape

from service import cli_access, cli_campaigns, cli_firmware_watch
from service import doctor as doctor_checks
from service.cli_alerts import alerts_app
from service.cli_notify import notify_app
from service.core.errors import NotFoundError
from service.core.tables import TextTable, print_table
from service.db import migrate as migrations
from service.mirror import cli_view
from service.observability import configure_logging
from service.settings import Settings, get_settings
from service.tenants.crypto import KeyRingError, load_key_ring
from service.worker.build import UnknownQueueError, parse_queues

app = typer.Typer(help="givfleet: fleet management for GivEnergy installers.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
migrate_app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")
cli_access.register(app)  # tenant, credential, apikey, admin
cli_campaigns.register(app)  # campaign
cli_firmware_watch.register(app)  # firmware-watch
app.add_typer(alerts_app, name="alerts")
app.add_typer(notify_app, name="notify")

console = Console()
HostOption = Annotated[str | None, typer.Option(help="Bind address (default: GIVFLEET_API__HOST or 127.0.0.1).")]
PortOption = Annotated[int | None, typer.Option(help="Bind port (default: GIVFLEET_API__PORT or 8000).", min=1,
                                                max=65535)]


@app.command()
def up(host: HostOption = None, port: PortOption = None) -> None:
    """Run everything: embedded PostgreSQL/Redis if none configured, migrations, API and worker."""
    from service import launcher  # loads the whole app: only the commands that serve import it

    settings = get_settings()
    with cli_access.one_line_errors():
        launcher.run_up(settings, host or settings.api.host, port or settings.api.port, _announce)


@app.command()
def api(host: HostOption = None, port: PortOption = None) -> None:
    """Serve the HTTP API (REST, GraphQL, health, metrics).

    With no database and Redis URLs configured, it uses those of the givfleet up running on the same home.
    """
    from service import launcher

    settings = get_settings()
    _require_encryption_keys(settings)
    with cli_access.one_line_errors():
        launcher.run_api(settings, host or settings.api.host, port or settings.api.port)


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to run: control, monitor, bulk, notify.")]
    = "control,monitor,bulk,notify",
) -> None:
    """Run the arq workers (one per queue): control (campaigns, control), monitor, bulk (syncs), notify.

    With no database and Redis URLs configured, it uses those of the givfleet up running on the same home.
    """
    from service import launcher

    try:
        chosen = parse_queues(queues)
    except UnknownQueueError as exc:
        typer.echo(f"givfleet worker: {exc}", err=True)
        raise typer.Exit(code=2) from None
    settings = get_settings()
    _require_encryption_keys(settings)
    with cli_access.one_line_errors():
        launcher.run_worker(settings, chosen, _announce)


@migrate_app.command("upgrade")
def migrate_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the schema (default: to the newest revision)."""
    with cli_access.services(require_current_schema=False) as settings:
        asyncio.run(migrations.upgrade(_database_url(settings), revision))
    console.print(f"Schema upgraded to {revision}.")


@migrate_app.command("downgrade")
def migrate_downgrade(revision: Annotated[str, typer.Argument(help="Target, e.g. -1 or base.")]) -> None:
    """Downgrade the schema to REVISION."""
    with cli_access.services(require_current_schema=False) as settings:
        asyncio.run(migrations.downgrade(_database_url(settings), revision))
    console.print(f"Schema downgraded to {revision}.")


@migrate_app.command("current")
def migrate_current() -> None:
    """Show the schema's revision and the newest one available."""
    with cli_access.services(require_current_schema=False) as settings:
        revision, head = asyncio.run(migrations.current(_database_url(settings)))
    console.print(f"current: {revision or '(empty database)'}  newest: {head}")


@app.command()
def doctor() -> None:
    """Print the configuration and check that every dependency is reachable."""
    settings = get_settings()
    table = TextTable("setting", "value", title="givfleet configuration")
    for name, value in doctor_checks.describe_configuration(settings):
        table.add_row(name, value)
    print_table(console, table, whole=())
    checks = doctor_checks.diagnose(settings)
    for check in checks:
        mark = "[green]ok[/green]" if check.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {check.name}: {escape(check.detail)}", highlight=False, soft_wrap=True)
    if not all(check.ok for check in checks):
        raise typer.Exit(code=1)


@app.command()
def simulator(
    fleet_size: Annotated[int, typer.Option(help="Inverters to generate.", min=1)] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the fleet (same seed, same fleet and tokens).")] = 7,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Bind port.", min=1, max=65535)] = 8081,
    tokens_file: Annotated[str | None, typer.Option(help="Also write the tokens as JSON to this path.")] = None,
    clock_speed: Annotated[float, typer.Option(help="Simulated seconds per real second.", min=0)] = 1.0,
    rate_limit: Annotated[int, typer.Option(help="Requests per token per window.", min=1)] = 300,
    rate_window: Annotated[float, typer.Option(help="Rate-limit window in seconds.", min=0.001)] = 60.0,
) -> None:
    """Serve a simulated GivEnergy Cloud (v1 API, legacy API, /_simulator side door) and print its tokens."""
    from pathlib import Path

    from service.simulator import SimulatorConfig
    from service.simulator.server import run as run_simulator

    config = SimulatorConfig(fleet_size=fleet_size, seed=seed, clock_speed=clock_speed,
                             rate_limit_per_window=rate_limit, rate_limit_window_seconds=rate_window)
    run_simulator(config, host=host, port=port, tokens_file=Path(tokens_file) if tokens_file else None)


@app.command("export-schema")
def export_schema(
    output: Annotated[str | None, typer.Option(help="Write here instead of graphql/schema.graphql ('-': stdout).")]
    = None,
    check: Annotated[bool, typer.Option("--check", help="Only compare; exit 1 if the file is out of date.")] = False,
) -> None:
    """Write the GraphQL schema (SDL) to graphql/schema.graphql."""
    from pathlib import Path

    from service.gql.schema import SCHEMA_FILE, export_sdl

    sdl = export_sdl()
    if output == "-":
        typer.echo(sdl, nl=False)
        return
    target = Path(output) if output else SCHEMA_FILE
    if check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != sdl:
            console.print(f"[red]{escape(str(target))} is out of date[/red]: run 'givfleet export-schema'.")
            raise typer.Exit(code=1)
        console.print(f"{escape(str(target))} is up to date.")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(sdl, encoding="utf-8")
    console.print(f"Schema written to {escape(str(target))}.")


@app.command()
def sync(
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug or id.")],
    full: Annotated[
        bool, typer.Option("--full", help="Full sync (hierarchy, sites, site status); default: the dongle list.")
    ] = False,
) -> None:
    """Sync a tenant's mirror from GivEnergy now, with a progress bar and the final counts.

    A sync already running for the tenant is joined rather than repeated.
    """
    with cli_access.services() as settings:
        try:
            code = asyncio.run(cli_view.sync_with_progress(settings, tenant, full=full, console=console))
        except NotFoundError as exc:
            cli_access.error_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(code=2) from None
    if code:
        raise typer.Exit(code=code)


def _database_url(settings: Settings) -> str:
    url = settings.configured_database_url()
    if url is None:  # resolved_services() always fills it; this guards against misuse
        raise typer.BadParameter("no database URL could be resolved")
    return url


def _require_encryption_keys(settings: Settings) -> None:
    """Refuse to start a long-running process that could not open or seal tokens (no key configured and
    generating one is off): better a pod that never becomes ready than one that fails each request."""
    try:
        load_key_ring(settings)
    except KeyRingError as exc:
        console.print(f"[red]Cannot start:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


def _announce(line: str) -> None:
    console.print(line, markup=False, soft_wrap=True, highlight=False)


def main() -> None:
    """The command, as the console script (:mod:`service.console`) runs it: logs go through one renderer from the
    start (embedded servers' start and stop at debug level, so short commands print only their own output). A
    setting that is not valid stops every command with one line naming its environment variable (exit 2)."""
    try:
        settings = get_settings()
    except (ValidationError, SettingsError) as exc:
        cli_access.error_console.print(f"[red]error:[/red] {escape(_invalid_setting(exc))}", highlight=False,
                                       soft_wrap=True)
        raise SystemExit(2) from None
    configure_logging(settings.log)
    app()


def _invalid_setting(exc: ValidationError | SettingsError) -> str:
    if isinstance(exc, ValidationError):
        return cli_access.invalid_input(exc, _variable)
    return str(exc.__cause__ or exc)  # an InvalidJsonSettingError names its variable


def _variable(location: tuple[str | int, ...]) -> str:
    """The environment variable of a setting (``("api", "port")``: ``GIVFLEET_API__PORT``), and the part of its
    value (a key of a JSON setting) that is wrong."""
    variable = "GIVFLEET_" + "__".join(str(part).upper() for part in location[:2])
    return f"{variable} ({'.'.join(str(part) for part in location[2:])})" if location[2:] else variable
