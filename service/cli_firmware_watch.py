"""``givfleet firmware-watch ...``: follow a firmware cohort towards a target version, see its stragglers, and make a
restart campaign of them.

The commands act as the machine's operator (audit actor ``cli``); the async ``*_op`` functions hold the logic so
tests can drive them without a shell.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from service.campaigns.firmware import (
    FirmwareWatchService,
    MemberView,
    WatchSpec,
    WatchView,
    member_view,
    prepare_restart,
)
from service.campaigns.schemas import PlanView
from service.cli_access import invalid_input, run_op
from service.cli_campaigns import (
    JsonOption,
    TenantOption,
    cli_principal,
    console,
    parse_uuid,
    print_plan,
    print_views,
)
from service.core.clock import utcnow
from service.core.tables import TextTable, print_table
from service.jobs.enqueue import unit_of_work
from service.runtime import Resources

firmware_watch_app = typer.Typer(help="Firmware watches: a cohort followed towards a target firmware version.",
                                 no_args_is_help=True)
IdArgument = Annotated[str, typer.Argument(help="Firmware watch id.")]
STRAGGLERS_SHOWN = 50
OPTIONS = {"name": "--name", "model": "--model", "target_firmware_arm": "--target", "firmware_arm_min": "--arm-min",
           "firmware_arm_max": "--arm-max", "account_id": "--account", "straggler_days": "--straggler-days"}
"""The option of ``firmware-watch create`` that sets each field of a watch."""


def register(app: typer.Typer) -> None:
    """Add ``firmware-watch`` to the ``givfleet`` command."""
    app.add_typer(firmware_watch_app, name="firmware-watch")


async def create_op(resources: Resources, slug: str, spec: WatchSpec) -> WatchView:
    """Start a watch."""
    principal = await cli_principal(resources, slug)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        service = FirmwareWatchService(session, principal)
        return await service.view(await service.create(spec))


async def list_op(resources: Resources, slug: str) -> list[WatchView]:
    """The newest watches."""
    principal = await cli_principal(resources, slug)
    async with resources.session_factory() as session:
        service = FirmwareWatchService(session, principal)
        return await service.views(await service.list())


async def status_op(resources: Resources, slug: str, watch_id: str) -> tuple[WatchView, list[MemberView]]:
    """A watch's progress and its first stragglers."""
    principal = await cli_principal(resources, slug)
    async with resources.session_factory() as session:
        service = FirmwareWatchService(session, principal)
        watch = await service.get(parse_uuid(watch_id, "firmware watch"))
        stragglers = await service.members(watch.id, stragglers_only=True, first=STRAGGLERS_SHOWN)
        return await service.view(watch), [member_view(m) for m in stragglers.items]


async def restart_op(resources: Resources, slug: str, watch_id: str) -> tuple[uuid.UUID, PlanView]:
    """Create the restart campaign of the stragglers (planned, not started)."""
    principal = await cli_principal(resources, slug)
    parsed = parse_uuid(watch_id, "firmware watch")
    preparation = await prepare_restart(resources.session_factory, resources.upstream, principal, parsed)
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        campaign, plan = await FirmwareWatchService(session, principal).restart_stragglers(parsed, preparation)
        return campaign.id, plan.view


def status_line(view: WatchView, now: datetime) -> str:
    """The watch in one line: members per state, and its stragglers (none can be before ``stragglers_from``)."""
    counts = ", ".join(f"{state} {n}" for state, n in view.counts.items())
    moment = f"{view.stragglers_from:%Y-%m-%d %H:%M} UTC"
    if view.stragglers_from > now:
        stragglers = f"no stragglers yet: members still behind at {moment} become stragglers"
    else:
        stragglers = f"stragglers {view.stragglers} (members still behind after {moment})"
    return f"{view.name}: {view.model} -> ARM {view.target_firmware_arm}: {counts}; {stragglers}"


@firmware_watch_app.command("create")
def create(tenant: TenantOption,
           name: Annotated[str, typer.Option(help="A name for the watch.")],
           model: Annotated[str, typer.Option(help="The cohort's model, e.g. GIV-HY5.0.")],
           target: Annotated[int, typer.Option(help="The ARM firmware version to reach.")],
           arm_min: Annotated[int | None, typer.Option(help="The cohort's ARM firmware at least this.")] = None,
           arm_max: Annotated[int | None, typer.Option(help="The cohort's ARM firmware at most this.")] = None,
           account: Annotated[int | None, typer.Option(help="Only this account's subtree (upstream id).")] = None,
           straggler_days: Annotated[int, typer.Option(help="Behind this many days after the start: a straggler.")]
           = 7) -> None:
    """Start watching a cohort (its members are frozen now)."""
    try:
        spec = WatchSpec(name=name, model=model, target_firmware_arm=target, firmware_arm_min=arm_min,
                         firmware_arm_max=arm_max, account_id=account, straggler_days=straggler_days)
    except ValidationError as exc:
        problems = invalid_input(exc, lambda location: OPTIONS.get(str(location[0]), "the watch") if location
                                 else "the watch")
        for field, option in OPTIONS.items():  # a validator's own message names fields: say them as options
            if "_" in field:
                problems = re.sub(rf"\b{field}\b", option, problems)
        console.print(f"[red]error:[/red] {escape(problems)}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None
    view = run_op(lambda resources: create_op(resources, tenant, spec))
    console.print(f"created firmware watch [bold]{view.id}[/bold] of {view.member_count} inverters", highlight=False)
    console.print(status_line(view, utcnow()), markup=False, highlight=False, soft_wrap=True)


@firmware_watch_app.command("list")
def list_watches(tenant: TenantOption, as_json: JsonOption = False) -> None:
    """The tenant's newest firmware watches."""
    print_views(run_op(lambda resources: list_op(resources, tenant)), as_json,
                ("id", "name", "model", "target", "members", "at target", "stragglers", "started"),
                lambda view: (str(view.id), view.name, view.model, str(view.target_firmware_arm),
                              str(view.member_count), str(view.counts.get("at_target", 0)), str(view.stragglers),
                              view.started_at.strftime("%Y-%m-%d %H:%M")))


@firmware_watch_app.command("status")
def status(tenant: TenantOption, watch_id: IdArgument) -> None:
    """Members per state and the first stragglers."""
    view, stragglers = run_op(lambda resources: status_op(resources, tenant, watch_id))
    console.print(status_line(view, utcnow()), markup=False, highlight=False, soft_wrap=True)
    if stragglers:
        table = TextTable(title="stragglers", title_justify="left")
        for column in ("serial", "firmware (ARM)", "status", "behind since"):
            table.add_column(column)
        for member in stragglers:
            table.add_row(member.serial, member.firmware_arm or "-", member.status or "-",
                          member.since.strftime("%Y-%m-%d %H:%M") if member.since else "-")
        print_table(console, table, whole=("serial",))
        if view.stragglers > len(stragglers):
            console.print(f"... and {view.stragglers - len(stragglers)} more", highlight=False)


@firmware_watch_app.command("restart-stragglers")
def restart_stragglers(tenant: TenantOption, watch_id: IdArgument) -> None:
    """Create a restart campaign targeted at exactly the stragglers (planned; start it with campaign start)."""
    campaign_id, plan = run_op(lambda resources: restart_op(resources, tenant, watch_id))
    print_plan(plan)
    console.print(f"created restart campaign [bold]{campaign_id}[/bold]; start it with "
                  f"'givfleet campaign start -t {tenant} {campaign_id}'", highlight=False, soft_wrap=True)
