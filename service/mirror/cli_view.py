"""``givfleet sync``: a sync run in the CLI's process, shown with a rich progress bar and a table of counts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from service.core.errors import GivfleetError, NotFoundError
from service.core.signals import stop_on_signals, until_stopped
from service.core.tables import TextTable, print_table
from service.core.tenancy import TenantId, tenant_id_from
from service.db.models.mirror import SyncKind, SyncState
from service.mirror.repository import MirrorRepository
from service.mirror.runner import SyncOptions, SyncOutcome, SyncProgress, SyncRunner, options_from
from service.runtime import Resources
from service.settings import Settings
from service.tenants.repository import TenantRepository

INTERRUPTED = 130
"""Exit code of a sync stopped by SIGINT or SIGTERM (the shell's convention for Ctrl-C)."""


async def sync_with_progress(settings: Settings, tenant: str, *, full: bool, console: Console) -> int:
    """Run one sync of ``tenant`` and print its outcome; returns the exit code (0 when it succeeded).

    SIGINT or SIGTERM stops it with one line: the run stays open, and the next sync of the tenant resumes it.

    Raises:
        NotFoundError: No such tenant (found out before anything is printed).
    """
    resources = Resources.open(settings)
    kind = SyncKind.FULL if full else SyncKind.REFRESH
    try:
        tenant_id = await find_tenant(resources, tenant)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("requests"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(f"{kind.value} sync: planning", total=None)

            def show(progress: SyncProgress) -> None:
                bar.update(
                    task,
                    completed=progress.requests,
                    total=progress.planned,
                    description=f"{kind.value} sync: {progress.phase}",
                )

            with stop_on_signals() as stop:
                work = asyncio.create_task(sync_tenant_now(resources, tenant_id, kind, on_progress=show))
                await until_stopped(stop, work)
            if work.cancelled():
                bar.update(task, description=f"{kind.value} sync: interrupted")
                bar.stop()
                console.print("Interrupted: the sync stops here; the next sync of this tenant (givfleet sync, "
                              "or the schedule) resumes it where it stopped.", highlight=False)
                return INTERRUPTED
            outcome, rows = work.result()
            bar.update(task, description=f"{kind.value} sync: {outcome.state.value}")
    except NotFoundError:
        raise
    except GivfleetError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        return 1
    finally:
        await resources.aclose()

    table = TextTable(title=f"{kind.value} sync" + (" (joined the one running)" if outcome.joined else ""))
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("run", str(outcome.run_id))
    planned = outcome.plan.requests if outcome.plan is not None else None
    eta = outcome.plan.eta_seconds if outcome.plan is not None else None
    table.add_row("requests used / planned", f"{outcome.requests_used} / {planned if planned is not None else '?'}")
    table.add_row("planned ETA", f"{eta:.0f} s" if eta is not None else "unlimited")
    table.add_row("429 answers", str(outcome.rate_limited))
    table.add_row("5xx answers", str(outcome.server_errors))
    table.add_row("rows inserted", str(outcome.counts.inserted))
    table.add_row("rows updated", str(outcome.counts.updated))
    table.add_row("rows removed", str(outcome.counts.removed))
    table.add_row("history rows", str(outcome.counts.history))
    for entity, count in rows.items():
        table.add_row(f"mirrored {entity}", str(count))
    print_table(console, table, whole=("value",))
    if outcome.state is not SyncState.SUCCEEDED:
        console.print(f"[red]sync failed: {escape(str(outcome.error))}[/red]")
        return 1
    return 0


async def find_tenant(resources: Resources, tenant: str) -> TenantId:
    """The id of a tenant given by slug or id.

    Raises:
        NotFoundError: No such tenant.
    """
    async with resources.session_factory() as session:
        tenants = TenantRepository(session)
        found = await tenants.get_by_slug(tenant)
        if found is None:
            with contextlib.suppress(ValueError):
                found = await tenants.get(tenant_id_from(tenant))
        if found is None:
            raise NotFoundError(f"no tenant {tenant!r}")
        return tenant_id_from(found.id)


async def sync_tenant_now(
    resources: Resources,
    tenant_id: TenantId,
    kind: SyncKind,
    *,
    on_progress: Callable[[SyncProgress], None] | None = None,
    options: SyncOptions | None = None,
) -> tuple[SyncOutcome, dict[str, int]]:
    """Sync a tenant in this process, as ``givfleet sync`` does; joins a sync already running.

    Returns:
        The outcome, and the mirror's rows per entity afterwards.
    """
    runner = SyncRunner(
        resources.engine,
        resources.session_factory,
        resources.upstream.sync_target,
        options or options_from(resources.settings),
        on_progress,
    )
    outcome = await runner.run(tenant_id, kind, job_id="cli")
    async with resources.session_factory() as session:
        counts = await MirrorRepository(session, tenant_id).counts()
    return outcome, counts
