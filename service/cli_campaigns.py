"""``givfleet campaign ...``: create, plan, run and watch campaigns from a campaign file (YAML or JSON).

The commands act as the machine's operator (audit actor ``cli``). The async ``*_op`` functions hold the logic so
tests can drive them without a shell; the engine runs on the worker (``givfleet worker`` or ``givfleet up``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import yaml
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn

from service.campaigns.schemas import CampaignSpec, CampaignView, PlanView, TargetView
from service.campaigns.service import TERMINAL, CampaignService, LifecycleAction, prepare
from service.campaigns.upstream import requests_per_minute
from service.campaigns.views import campaign_view, target_view
from service.cli_access import error_console, invalid_input, run_op
from service.core.errors import InvalidInputError
from service.core.limits import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from service.core.pagination import Page
from service.core.principal import Principal
from service.core.tables import TextTable, print_table
from service.core.tenancy import tenant_id_from
from service.db.models.campaign import TargetState
from service.jobs.enqueue import unit_of_work
from service.runtime import Resources
from service.tenants.service import TenantService
from service.upstream import NoCredentialError

campaign_app = typer.Typer(help="Campaigns: bulk setting writes, reads and restarts.", no_args_is_help=True)
console = Console()
_T = TypeVar("_T")
_View = TypeVar("_View", bound=BaseModel)
TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug.")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON lines.")]
FileArgument = Annotated[Path, typer.Argument(help="Campaign file (YAML or JSON; see the README).", exists=True,
                                              dir_okay=False)]
IdArgument = Annotated[str, typer.Argument(help="Campaign id.")]
FINISHED = {"completed", "aborted", "cancelled", "rolled_back"}


def register(app: typer.Typer) -> None:
    """Add ``campaign`` to the ``givfleet`` command."""
    app.add_typer(campaign_app, name="campaign")


def read_spec(path: Path) -> CampaignSpec:
    """A campaign file (YAML or JSON) as a checked spec.

    Raises:
        InvalidInputError: Unreadable, or not a valid campaign (the message lists the problems).
    """
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        return CampaignSpec.model_validate(loaded)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path} is not YAML or JSON: {exc}") from None
    except ValidationError as exc:
        raise InvalidInputError(f"{path}: {invalid_input(exc, _file_key)}") from None


def print_views(views: Sequence[_View], as_json: bool, columns: Sequence[str], row: Callable[[_View], Sequence[str]],
                *, whole: Sequence[str] = ("id",)) -> None:
    """``views`` as one JSON document per line (``--json``), or as a table of ``columns``, one ``row`` a view
    (the cells of the columns ``whole`` are never wrapped: see :func:`print_table`)."""
    if as_json:
        for view in views:
            typer.echo(view.model_dump_json())
        return
    table = TextTable()
    for column in columns:
        table.add_column(column)
    for view in views:
        table.add_row(*row(view))
    print_table(console, table, whole=whole)


def _file_key(location: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in location) or "the file"


async def cli_principal(resources: Resources, slug: str, actor: str = "cli") -> Principal:
    """The machine's operator acting on tenant ``slug`` (audit actor ``actor``)."""
    async with resources.session_factory() as session:
        tenant = await TenantService(session).get_by_slug(slug)
    return Principal.cli(tenant_id_from(tenant.id), actor=actor)


async def plan_op(resources: Resources, slug: str, spec: CampaignSpec, *, create: bool) -> tuple[uuid.UUID | None,
                                                                                                   PlanView]:
    """Plan ``spec`` (and create it when ``create``)."""
    principal = await cli_principal(resources, slug)
    preparation = await prepare(resources.session_factory, resources.upstream, principal, spec)
    if not create:
        async with resources.session_factory() as session:
            return None, (await CampaignService(session, principal).preview(spec, preparation)).view
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        campaign, plan = await CampaignService(session, principal).create(spec, preparation)
        return campaign.id, plan.view


async def act_op(resources: Resources, slug: str, campaign_id: str, action: LifecycleAction,
                 actor: str = "cli") -> str:
    """Run a lifecycle action; returns the new state."""
    principal = await cli_principal(resources, slug, actor)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        campaign = await action(CampaignService(session, principal), parse_uuid(campaign_id))
        return str(campaign.state.value)


async def status_op(resources: Resources, slug: str, campaign_id: str) -> CampaignView:
    """A campaign's progress and ETA."""
    principal = await cli_principal(resources, slug)
    try:
        capacity: int | None = await requests_per_minute(resources.upstream, principal.tenant_id)
    except NoCredentialError:
        capacity = None
    async with resources.session_factory() as session:
        service = CampaignService(session, principal)
        campaign = await service.get(parse_uuid(campaign_id))
        return campaign_view(campaign, await service.progress(campaign, capacity))


async def list_op(resources: Resources, slug: str) -> list[CampaignView]:
    """The newest campaigns."""
    principal = await cli_principal(resources, slug)
    async with resources.session_factory() as session:
        service = CampaignService(session, principal)
        return [campaign_view(c, await service.progress(c)) for c in await service.list()]


async def targets_op(resources: Resources, slug: str, campaign_id: str, states: Sequence[TargetState], *,
                     limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None) -> Page[TargetView]:
    """A page of a campaign's inverters by serial (only those in ``states``, if any): what REST's
    ``GET /campaigns/{id}/targets`` answers."""
    principal = await cli_principal(resources, slug)
    async with resources.session_factory() as session:
        page = await CampaignService(session, principal).targets(parse_uuid(campaign_id), states=states,
                                                                 first=limit, after=cursor)
    return Page(items=[target_view(target) for target in page.items], cursors=page.cursors,
                has_next_page=page.has_next_page, total_count=page.total_count)


def parse_uuid(text: str, what: str = "campaign") -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInputError(f"{text!r} is not a {what} id") from None


def print_plan(plan: PlanView) -> None:
    """The plan as tables."""
    console.print(f"[bold]{plan.targets}[/bold] of {plan.matched} matched inverters would be acted on, in "
                  f"{len(plan.waves)} waves {plan.waves[:8]}{' ...' if len(plan.waves) > 8 else ''}")
    console.print(f"upstream requests: {plan.requests} (+{plan.catalogue_requests} setting-catalogue reads); "
                  f"ETA {plan.eta_seconds:.0f} s at {plan.requests_per_minute} requests/min")
    for title, buckets in (("model", plan.by_model), ("firmware (ARM)", plan.by_firmware),
                           ("status", plan.by_status), ("excluded, by reason", plan.exclusions_by_reason)):
        if buckets:
            table = TextTable(title=title, title_justify="left")
            table.add_column(title)
            table.add_column("inverters", justify="right")
            for bucket in buckets:
                table.add_row(bucket.value or "-", str(bucket.count))
            print_table(console, table, whole=())
    if plan.needs_approval:
        console.print("[yellow]needs approval[/yellow] by an admin with another key before it can start")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)


def print_status(view: CampaignView) -> None:
    """One line (never wrapped, so a piped or logged watch is a line per status): the name and
    :func:`status_text` (printed as is: ``[completed]`` is no markup)."""
    console.print(f"{view.name} {status_text(view)}", markup=False, highlight=False, soft_wrap=True)


def status_text(view: CampaignView) -> str:
    """State, wave, per-state counts, the next wave's time, the ETA, and why the campaign is in its state (an
    abort's reason), if it was given one."""
    counts = ", ".join(f"{state} {n}" for state, n in view.counts.items())
    eta = f", ETA {view.eta_seconds:.0f} s" if view.eta_seconds else ""
    waiting = f", next wave at {view.next_step_at:%Y-%m-%d %H:%M:%S} UTC" if view.next_step_at else ""
    reason = f"; reason: {view.state_reason}" if view.state_reason else ""
    return f"[{view.state}] wave {view.current_wave}/{view.wave_count}: {counts}{waiting}{eta}{reason}"


@campaign_app.command("plan")
def plan(tenant: TenantOption, file: FileArgument) -> None:
    """Show what a campaign file would do (the dry run): targets, exclusions, waves, cost, ETA. Creates nothing."""
    spec = _spec(file)
    _, view = run_op(lambda resources: plan_op(resources, tenant, spec, create=False))
    print_plan(view)


@campaign_app.command("create")
def create(tenant: TenantOption, file: FileArgument) -> None:
    """Create a campaign from a file and plan it (its target set is frozen now)."""
    spec = _spec(file)
    campaign_id, view = run_op(lambda resources: plan_op(resources, tenant, spec, create=True))
    print_plan(view)
    console.print(f"created campaign [bold]{campaign_id}[/bold]; start it with "
                  f"'givfleet campaign start -t {tenant} {campaign_id}'", highlight=False, soft_wrap=True)


def _spec(file: Path) -> CampaignSpec:
    try:
        return read_spec(file)
    except InvalidInputError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(code=1) from None


def _action(action: LifecycleAction, help_text: str) -> None:
    """Add the command named after the lifecycle ``action`` (``campaign start`` for ``CampaignService.start``)."""

    def command(tenant: TenantOption, campaign_id: IdArgument) -> None:
        state = run_op(lambda resources: act_op(resources, tenant, campaign_id, action))
        console.print(f"campaign {campaign_id} is {state}", highlight=False)

    command.__doc__ = help_text
    campaign_app.command(action.__name__)(command)


_action(CampaignService.start, "Start a planned (or approved) campaign.")
_action(CampaignService.pause, "Pause before the next chunk.")
_action(CampaignService.resume, "Resume a paused campaign.")
_action(CampaignService.cancel, "Stop writing; what was applied stays.")
_action(CampaignService.rollback, "Put back each inverter's previous value where the campaign's value is still "
                                  "stored.")


@campaign_app.command("approve")
def approve(tenant: TenantOption, campaign_id: IdArgument,
            approver: Annotated[str, typer.Option("--as", help="Who approves (recorded; not the creator).")]) -> None:
    """Approve a campaign above the tenant's approval threshold."""
    state = run_op(lambda resources: act_op(resources, tenant, campaign_id, CampaignService.approve,
                                                    f"cli:{approver}"))
    console.print(f"campaign {campaign_id} is {state}", highlight=False)


@campaign_app.command("status")
def status(tenant: TenantOption, campaign_id: IdArgument,
           watch: Annotated[bool, typer.Option("--watch", help="Follow progress until the campaign finishes.")]
           = False,
           interval: Annotated[float, typer.Option(help="Seconds between refreshes with --watch.")] = 2.0) -> None:
    """Per-state counts, the ETA and why it stopped (an abort's reason); --watch shows a live progress bar.
    'givfleet campaign targets' shows each inverter."""
    if not watch:
        print_status(run_op(lambda resources: status_op(resources, tenant, campaign_id)))
        return
    if not console.is_terminal:  # piped or logged: a status line whenever the progress changes, no live bar
        run_op(lambda resources: watch_op(resources, tenant, campaign_id, interval, status_changes()))
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.fields[detail]}", markup=False), console=console) as progress:
        task = progress.add_task(escape(campaign_id), total=None, detail="")

        def show(current: CampaignView) -> None:
            progress.update(task, description=escape(current.name), completed=_done(current), total=_total(current),
                            detail=status_text(current))

        final = run_op(lambda resources: watch_op(resources, tenant, campaign_id, interval, show))
    print_status(final)


async def watch_op(resources: Resources, slug: str, campaign_id: str, interval: float,
                   show: Callable[[CampaignView], None]) -> CampaignView:
    """Poll a campaign every ``interval`` seconds, calling ``show`` with each view, until it is finished (and
    settled); returns the final view."""
    while True:
        current = await status_op(resources, slug, campaign_id)
        show(current)
        if current.state in FINISHED and not _busy(current):
            return current
        await asyncio.sleep(interval)


def status_changes() -> Callable[[CampaignView], None]:
    """A ``show`` for :func:`watch_op` that prints a status line when the state, wave, counts or next wave's time
    differ from the last printed (not for the ETA alone, which moves on every poll)."""
    printed: tuple[object, ...] | None = None

    def show(view: CampaignView) -> None:
        nonlocal printed
        progress = (view.state, view.current_wave, view.counts, view.next_step_at)
        if progress != printed:
            print_status(view)
            printed = progress

    return show


def _total(view: CampaignView) -> int:
    return sum(n for state, n in view.counts.items() if state != "excluded")


def _done(view: CampaignView) -> int:
    terminal = {state.value for state in TERMINAL} - {"excluded"}
    return sum(n for state, n in view.counts.items() if state in terminal)


def _busy(view: CampaignView) -> bool:
    return _done(view) < _total(view) and view.state in ("cancelled", "aborted")


@campaign_app.command("list")
def list_campaigns(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """The tenant's newest campaigns."""
    print_views(run_op(lambda resources: list_op(resources, tenant)), as_json,
                ("id", "name", "kind", "setting", "state", "targets", "created"),
                lambda view: (str(view.id), view.name, view.kind, f"{view.setting_id}={view.value or '-'}", view.state,
                              str(view.target_count), view.created_at.strftime("%Y-%m-%d %H:%M")))


TARGET_COLUMNS = ("serial", "model", "firmware", "state", "reason", "wave", "previous", "written", "read back",
                  "code", "attempts", "writes")


def _target_row(view: TargetView) -> tuple[str, ...]:
    cells = (view.serial, view.model, view.firmware_arm, view.state, view.reason, view.wave, view.previous_value,
             view.written_value, view.value_read, view.code, view.attempts, view.writes)
    return tuple("-" if cell is None else str(cell) for cell in cells)


@campaign_app.command("targets")
def targets(tenant: TenantOption, campaign_id: IdArgument,
            state: Annotated[list[TargetState] | None, typer.Option(
                "--state", help="Only inverters in this state (repeat it for several).")] = None,
            limit: Annotated[int, typer.Option(help="Inverters per page.", min=1, max=MAX_PAGE_SIZE)]
            = DEFAULT_PAGE_SIZE,
            cursor: Annotated[str | None, typer.Option(help="Where the page starts (printed under the previous "
                                                            "page).")] = None,
            as_json: JsonOption = False) -> None:
    """What happened to each inverter, by serial: its state and why, the previous value (what rollback restores),
    the value written and read back, the last code, attempts and writes."""
    page = run_op(lambda resources: targets_op(resources, tenant, campaign_id, state or [], limit=limit,
                                               cursor=cursor))
    print_views(page.items, as_json, TARGET_COLUMNS, _target_row, whole=("serial",))
    if page.has_next_page:  # on stderr: the output stays a table, or JSON lines, to pipe
        filters = "".join(f" --state {chosen.value}" for chosen in state or [])
        error_console.print(f"{len(page.items)} of {page.total_count} inverters shown; next page: givfleet campaign "
                            f"targets -t {tenant} {campaign_id}{filters} --limit {limit} --cursor {page.end_cursor}",
                            markup=False, highlight=False, soft_wrap=True)
