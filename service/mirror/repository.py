"""Tenant-scoped storage of the mirror: stored rows as records, bulk writes of a reconciliation, sync runs.

Every statement is filtered by the repository's tenant. Writes are set-based: one ``INSERT ... ON CONFLICT
DO UPDATE`` per entity (executed in batches) for inserts, updates and returns, one ``UPDATE`` per entity for
removals and ``last_seen_at`` refreshes; rows the reconciliation did not name are never touched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Hashable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Select, String, Table, TableClause, case, func, select, text, tuple_, update, values
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from service.core.tenancy import TenantId
from service.db.models.credential import CredentialKind, UpstreamCredential
from service.db.models.mirror import (
    BatteryModule,
    Dongle,
    FleetAccount,
    Inverter,
    InverterChange,
    Meter,
    Site,
    SyncCheckpoint,
    SyncKind,
    SyncRun,
    SyncSchedule,
    SyncState,
)
from service.db.models.tenant import Tenant, TenantStatus
from service.mirror.reconcile import KnownLinks, Reconciliation, Stored, key_of
from service.mirror.schemas import (
    KEY_WIDTH,
    AccountRecord,
    BatteryRecord,
    Counts,
    DongleRecord,
    Entity,
    InverterChangeKind,
    InverterRecord,
    MeterRecord,
    SiteRecord,
)

ENTITY_TABLES: dict[Entity, tuple[Table, type[tuple[Any, ...]]]] = {
    Entity.ACCOUNTS: (FleetAccount.__table__, AccountRecord),  # type: ignore[dict-item]
    Entity.SITES: (Site.__table__, SiteRecord),  # type: ignore[dict-item]
    Entity.DONGLES: (Dongle.__table__, DongleRecord),  # type: ignore[dict-item]
    Entity.INVERTERS: (Inverter.__table__, InverterRecord),  # type: ignore[dict-item]
    Entity.BATTERIES: (BatteryModule.__table__, BatteryRecord),  # type: ignore[dict-item]
    Entity.METERS: (Meter.__table__, MeterRecord),  # type: ignore[dict-item]
}
"""The table and record type of each entity; a record's fields are the table's mirrored columns."""

_TUPLE_FIELDS = {"flags", "products"}
"""Fields held as tuples in records (hashable, comparable) and as lists in the database."""

BATCH = 2000
COPY_THRESHOLD = 500
"""Upserts of more rows than this go through COPY into a temporary table and one INSERT ... SELECT."""


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _record_fields(record_type: type[tuple[Any, ...]]) -> tuple[str, ...]:
    fields: tuple[str, ...] = record_type._fields  # type: ignore[attr-defined]
    return fields


class MirrorRepository:
    """The mirrored rows of one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: TenantId) -> None:
        self.session = session
        self.tenant_id = tenant_id

    # --- reads -----------------------------------------------------------------------------------------------

    async def stored(self, entities: Iterable[Entity]) -> dict[Entity, dict[Hashable, Stored[Any]]]:
        """Stored rows of ``entities`` as records, by upstream key (removed rows included)."""
        result: dict[Entity, dict[Hashable, Stored[Any]]] = {}
        for entity in entities:
            table, record_type = ENTITY_TABLES[entity]
            fields = _record_fields(record_type)
            tuple_positions = [i for i, name in enumerate(fields) if name in _TUPLE_FIELDS]
            # Read through the driver: for a 50,000-inverter tenant (300,000 rows) the ORM's row processing
            # costs seconds, asyncpg's records a fraction of that. The tenant filter is the first condition.
            columns = ", ".join(f'"{name}"' for name in fields)
            query = f'SELECT {columns}, removed_at IS NOT NULL, last_seen_at FROM "{table.name}" WHERE tenant_id = $1'  # noqa: S608 - names from the models
            connection = await self.session.connection()
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            json_positions = [i for i in tuple_positions if fields[i] == "products"]
            rows: dict[Hashable, Stored[Any]] = {}
            size = len(fields)
            for row in await driver.fetch(query, self.tenant_id):
                values = list(row[:size])
                for position in tuple_positions:
                    value = values[position]
                    if position in json_positions and isinstance(value, str):
                        value = json.loads(value)
                    values[position] = tuple(value or ())
                record = record_type(*values)
                rows[key_of(entity, record)] = Stored(record, row[size], row[size + 1])
            result[entity] = rows
        return result

    async def known_links(self) -> KnownLinks:
        """The stored accounts' and sites' links only (what a refresh needs of them)."""
        accounts = await self.session.execute(
            select(FleetAccount.upstream_id, FleetAccount.username, FleetAccount.removed_at).where(
                FleetAccount.tenant_id == self.tenant_id
            )
        )
        account_ids: set[int] = set()
        usernames: dict[str, int] = {}
        for upstream_id, username, removed_at in accounts:
            account_ids.add(upstream_id)
            if removed_at is None:
                usernames[username] = upstream_id
        sites = await self.session.execute(
            select(Site.upstream_id, Site.account_upstream_id).where(Site.tenant_id == self.tenant_id)
        )
        return KnownLinks(frozenset(account_ids), usernames, {site_id: account for site_id, account in sites})

    async def site_ids(self) -> list[int]:
        """Ids of the sites not removed, in id order."""
        rows = await self.session.execute(
            select(Site.upstream_id)
            .where(Site.tenant_id == self.tenant_id, Site.removed_at.is_(None))
            .order_by(Site.upstream_id)
        )
        return list(rows.scalars().all())

    async def counts(self) -> dict[str, int]:
        """Rows not removed, per entity (for reports and the CLI)."""
        result: dict[str, int] = {}
        for entity, (table, _) in ENTITY_TABLES.items():
            statement = select(func.count()).where(table.c.tenant_id == self.tenant_id, table.c.removed_at.is_(None))
            result[entity.value] = int((await self.session.execute(statement)).scalar_one())
        return result

    # --- writes ----------------------------------------------------------------------------------------------

    async def write(self, reconciliation: Reconciliation, *, now: datetime, run_id: uuid.UUID | None) -> Counts:
        """Write a reconciliation: upserts and removals per entity (in link order), then history.

        Returns:
            Rows inserted, updated, removed, refreshed (``seen``) and history rows written.
        """
        counts = Counts()
        for entity, diff in reconciliation.diffs.items():
            table, record_type = ENTITY_TABLES[entity]
            upserts = [*diff.inserts, *(new for _, new in diff.updates)]
            if entity is Entity.ACCOUNTS and len(upserts) > COPY_THRESHOLD:
                # Parents are linked once every account is written and analysed: checking a self-reference in
                # the statement that writes the table is planned against stale statistics (a scan per row).
                await self._upsert(
                    entity, table, record_type, [a._replace(parent_upstream_id=None) for a in upserts], now
                )
                await self._link_parents(
                    [(a.upstream_id, a.parent_upstream_id) for a in upserts if a.parent_upstream_id]
                )
            elif upserts:
                await self._upsert(entity, table, record_type, upserts, now)
            if diff.removals:
                await self._stamp(entity, table, diff.removals, removed_at=now, changed_at=now)
            if diff.seen:
                await self._stamp(entity, table, diff.seen, last_seen_at=now)
            counts.inserted += len(diff.inserts)
            counts.updated += len(diff.updates)
            counts.removed += len(diff.removals)
            counts.seen += len(diff.seen)
        if reconciliation.site_statuses:
            counts.updated += await self.set_site_statuses(reconciliation.site_statuses, now=now)
        if reconciliation.changes:
            rows = [
                {
                    "id": uuid.uuid4(),
                    "tenant_id": self.tenant_id,
                    "inverter_serial": change.inverter_serial,
                    "kind": change.kind,
                    "from_value": change.from_value,
                    "to_value": change.to_value,
                    "observed_at": now,
                    "sync_run_id": run_id,
                }
                for change in reconciliation.changes
            ]
            for chunk in _chunks(rows):
                await self.session.execute(insert(InverterChange).returning(InverterChange.id), list(chunk))
            counts.history += len(rows)
        return counts

    async def set_site_statuses(self, statuses: Sequence[tuple[int, str | None]], *, now: datetime) -> int:
        """Store the scheme statuses just checked: every checked site's ``scheme_status_checked_at`` becomes
        ``now``; its status (and ``changed_at``) only when it differs (a site not stored is left alone).

        Returns:
            How many sites' status changed.
        """
        sites = ENTITY_TABLES[Entity.SITES][0]
        changed = 0
        for chunk in _chunks(list(statuses)):
            # Two UPDATE ... FROM (VALUES ...) per chunk: the changed statuses (the comparison is the database's),
            # then the check time of every site checked.
            given = values(sql_column("sid", BigInteger), sql_column("st", String), name="given").data(list(chunk))
            matching = (sites.c.tenant_id == self.tenant_id, sites.c.upstream_id == given.c.sid)
            result = await self.session.execute(
                update(sites)
                .where(*matching, sites.c.scheme_status.is_distinct_from(given.c.st))
                .values(scheme_status=given.c.st, changed_at=now)
                .returning(sites.c.upstream_id)
            )
            changed += len(result.all())
            await self.session.execute(update(sites).where(*matching).values(scheme_status_checked_at=now))
        return changed

    async def set_inverter_statuses(
        self, statuses: Sequence[tuple[str, str | None, datetime | None]], *, now: datetime
    ) -> tuple[int, int]:
        """Store the statuses (``serial, status, last_online``) that differ from the stored ones, with their
        history rows, as a sync would; used by the fault monitor's sweep, which reads the same device list.

        Returns:
            How many inverters' status changed, and how many of ``statuses`` the mirror does not hold (a sign
            that the fleet changed shape and the mirror wants a refresh).
        """
        inverters = ENTITY_TABLES[Entity.INVERTERS][0]
        stored = dict((await self.session.execute(
            select(inverters.c.serial, inverters.c.status)
            .where(inverters.c.tenant_id == self.tenant_id, inverters.c.removed_at.is_(None)))).all())
        changed = [(serial, stored[serial], status, online) for serial, status, online in statuses
                   if serial in stored and stored[serial] != status]
        unknown = sum(1 for serial, _, _ in statuses if serial not in stored)
        for chunk in _chunks(changed):
            given = values(sql_column("serial", String), sql_column("st", String),
                           sql_column("online", inverters.c.last_online.type), name="given").data(
                [(serial, status, online) for serial, _, status, online in chunk])
            await self.session.execute(
                update(inverters)
                .where(inverters.c.tenant_id == self.tenant_id, inverters.c.serial == given.c.serial)
                .values(status=given.c.st, last_online=given.c.online, status_since=now, changed_at=now,
                        last_seen_at=now)
            )
        rows = [{"id": uuid.uuid4(), "tenant_id": self.tenant_id, "inverter_serial": serial,
                 "kind": InverterChangeKind.STATUS, "from_value": old, "to_value": new, "observed_at": now,
                 "sync_run_id": None} for serial, old, new, _ in changed]  # fmt: skip
        for chunk in _chunks(rows):
            await self.session.execute(insert(InverterChange).returning(InverterChange.id), list(chunk))
        return len(changed), unknown

    async def _upsert(
        self,
        entity: Entity,
        table: Table,
        record_type: type[tuple[Any, ...]],
        records: Sequence[tuple[Any, ...]],
        now: datetime,
    ) -> None:
        fields = _record_fields(record_type)
        keys = ["tenant_id", *fields[: KEY_WIDTH[entity]]]
        extra = ["first_seen_at", "last_seen_at", "changed_at", "removed_at"]
        if entity is Entity.INVERTERS:
            extra.append("status_since")
        columns = ["id", "tenant_id", *fields, *extra]
        tail: tuple[Any, ...] = (now, now, now, None, now) if entity is Entity.INVERTERS else (now, now, now, None)
        converters = [(i, name) for i, name in enumerate(fields) if name in _TUPLE_FIELDS]
        rows: list[tuple[Any, ...]] = []
        for record in records:
            values = list(record)
            for position, name in converters:
                values[position] = json.dumps(values[position]) if name == "products" else list(values[position])
            rows.append((uuid.uuid4(), self.tenant_id, *values, *tail))

        source = await self._stage(table, columns, rows) if len(rows) > COPY_THRESHOLD else None
        statement = insert(table)
        assignments: dict[str, Any] = {name: statement.excluded[name] for name in fields[KEY_WIDTH[entity] :]}
        assignments.update(
            last_seen_at=statement.excluded.last_seen_at,
            changed_at=statement.excluded.changed_at,
            removed_at=None,
        )
        if entity is Entity.INVERTERS:
            assignments["status_since"] = case(
                (table.c.status.is_distinct_from(statement.excluded.status), statement.excluded.status_since),
                else_=table.c.status_since,
            )
        if source is not None:
            # ``excluded`` names the proposed row whichever INSERT it belongs to: the assignments carry over
            bulk = insert(table).from_select(columns, select(*(source.c[name] for name in columns)))
            await self.session.execute(bulk.on_conflict_do_update(index_elements=keys, set_=assignments))
            # Fresh statistics, so that foreign-key checks against this table (next entities) probe its index
            # instead of scanning a table the planner still believes empty: once per row, quadratic.
            await self.session.execute(text(f'ANALYZE "{table.name}"'))
            return
        dicts = [dict(zip(columns, row, strict=True)) for row in rows]
        if any(name == "products" for _, name in converters):  # the JSONB type binds the value itself
            for row in dicts:
                row["products"] = json.loads(row["products"])
        # RETURNING lets SQLAlchemy send the rows as multi-row INSERT ... VALUES statements ("insertmanyvalues",
        # compiled once): no statement per row, and no per-chunk compilation either.
        upsert = statement.on_conflict_do_update(index_elements=keys, set_=assignments).returning(table.c.id)
        for chunk in _chunks(dicts):
            await self.session.execute(upsert, list(chunk))

    async def _link_parents(self, links: list[tuple[int, int]]) -> None:
        if not links:
            return
        connection = await self.session.connection()
        await connection.execute(
            text('CREATE TEMP TABLE IF NOT EXISTS "stage_parents" (upstream_id bigint, parent bigint) ON COMMIT DROP')
        )
        await connection.execute(text('TRUNCATE "stage_parents"'))
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table("stage_parents", records=links, columns=["upstream_id", "parent"])
        await connection.execute(
            text(
                "UPDATE mirror_accounts AS a SET parent_upstream_id = s.parent FROM stage_parents AS s "
                "WHERE a.tenant_id = :tenant AND a.upstream_id = s.upstream_id"
            ),
            {"tenant": self.tenant_id},
        )

    async def _stage(self, table: Table, columns: list[str], rows: list[tuple[Any, ...]]) -> TableClause:
        """COPY ``rows`` into a temporary table shaped like ``table`` (dropped at commit); returns it."""
        stage = f"stage_{table.name}"
        connection = await self.session.connection()
        await connection.execute(
            text(f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" (LIKE "{table.name}") ON COMMIT DROP')
        )
        await connection.execute(text(f'TRUNCATE "{stage}"'))
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(stage, records=rows, columns=columns)
        return sql_table(stage, *(sql_column(name) for name in columns))

    async def _stamp(self, entity: Entity, table: Table, keys: Sequence[Hashable], **values: Any) -> None:
        width = KEY_WIDTH[entity]
        fields = _record_fields(ENTITY_TABLES[entity][1])[:width]
        for chunk in _chunks(list(keys), 5000):
            if width == 1:
                match = table.c[fields[0]].in_(chunk)
            else:
                match = tuple_(*(table.c[name] for name in fields)).in_(chunk)
            statement = update(table).where(table.c.tenant_id == self.tenant_id, match)
            if "removed_at" in values:
                statement = statement.where(table.c.removed_at.is_(None))
            await self.session.execute(statement.values(**values))


def _locked_if(statement: Select[SyncRun], for_update: bool) -> Select[SyncRun]:
    """``statement`` locking the runs it reads when ``for_update``, and then reading them afresh: a run this
    session loaded before it waited for the lock is refreshed to what the lock's previous holder committed (the
    session would otherwise keep its stale copy, and two attempts could both take a lease just taken)."""
    if not for_update:
        return statement
    return statement.with_for_update().execution_options(populate_existing=True)


class SyncRunRepository:
    """The sync runs and schedule of one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: TenantId) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def running(self, *, for_update: bool = False) -> SyncRun | None:
        """The tenant's unfinished run, if any (at most one exists); ``for_update`` locks its row."""
        statement = select(SyncRun).where(SyncRun.tenant_id == self.tenant_id, SyncRun.state == SyncState.RUNNING)
        return (await self.session.execute(_locked_if(statement, for_update))).scalar_one_or_none()

    async def get(self, run_id: uuid.UUID, *, for_update: bool = False) -> SyncRun | None:
        """A run of this tenant by id; ``for_update`` locks its row."""
        statement = select(SyncRun).where(SyncRun.tenant_id == self.tenant_id, SyncRun.id == run_id)
        return (await self.session.execute(_locked_if(statement, for_update))).scalar_one_or_none()

    async def latest(self, *, finished_after: datetime | None = None, limit: int = 20) -> Sequence[SyncRun]:
        """The newest runs first (optionally only those finished after a time)."""
        statement = select(SyncRun).where(SyncRun.tenant_id == self.tenant_id)
        if finished_after is not None:
            statement = statement.where(SyncRun.finished_at > finished_after)
        statement = statement.order_by(SyncRun.started_at.desc()).limit(limit)
        return (await self.session.execute(statement)).scalars().all()

    def add(self, run: SyncRun) -> None:
        """Add a new run of this tenant."""
        if run.tenant_id != self.tenant_id:
            raise ValueError("run of another tenant")
        self.session.add(run)

    async def new_run(
        self,
        kind: SyncKind,
        *,
        now: datetime,
        job_id: str | None,
        lease_owner: str | None,
        lease_expires_at: datetime,
        checkpoint: SyncCheckpoint | None = None,
    ) -> SyncRun | None:
        """Create and flush a running run; ``None`` when the tenant already has one (a concurrent request made
        it first: the partial unique index decides).

        A run asked for by a request has no ``lease_owner`` and no attempt yet (``attempts`` 0); the attempt
        that takes its lease counts itself.
        """
        run_id = uuid.uuid4()
        values = dict(
            id=run_id, tenant_id=self.tenant_id, credential_id=None, kind=kind, state=SyncState.RUNNING,
            job_id=job_id, attempts=0 if lease_owner is None else 1, started_at=now, heartbeat_at=now,
            lease_owner=lease_owner, lease_expires_at=lease_expires_at, requests_used=0, rate_limited=0,
            server_errors=0, rows_inserted=0, rows_updated=0, rows_removed=0, history_rows=0,
            site_status_included=False, progress=checkpoint or SyncCheckpoint(),
        )  # fmt: skip
        statement = (
            insert(SyncRun)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["tenant_id"], index_where=text("state = 'running'"))
            .returning(SyncRun.id)
        )
        if (await self.session.execute(statement)).scalar_one_or_none() is None:
            return None
        return await self.get(run_id)

    async def renew_lease(self, run_id: uuid.UUID, owner: str, *, now: datetime, expires_at: datetime) -> bool:
        """Move the lease of ``owner`` on run ``run_id`` on (a heartbeat); ``False`` if ``owner`` lost it."""
        statement = (
            update(SyncRun)
            .where(SyncRun.tenant_id == self.tenant_id, SyncRun.id == run_id, SyncRun.lease_owner == owner,
                   SyncRun.state == SyncState.RUNNING)
            .values(heartbeat_at=now, lease_expires_at=expires_at)
            .returning(SyncRun.id)
        )  # fmt: skip
        return (await self.session.execute(statement)).scalar_one_or_none() is not None

    async def schedule(self) -> SyncSchedule | None:
        """The tenant's sync schedule."""
        statement = select(SyncSchedule).where(SyncSchedule.tenant_id == self.tenant_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def ensure_schedule(self, *, full_interval_seconds: int, refresh_interval_seconds: int) -> SyncSchedule:
        """The tenant's schedule, created with the given intervals when missing."""
        found = await self.schedule()
        if found is None:
            found = SyncSchedule(
                tenant_id=self.tenant_id,
                enabled=True,
                full_interval_seconds=full_interval_seconds,
                refresh_interval_seconds=refresh_interval_seconds,
            )
            self.session.add(found)
            await self.session.flush()
        return found


async def schedule_unscheduled_tenants(
    session: AsyncSession, *, full_interval_seconds: int, refresh_interval_seconds: int
) -> int:
    """Give every active tenant with an API-token credential and no schedule a default one (due at once).

    Every tenant: for the scheduler job only. Returns the number of schedules created.
    """
    candidates = (
        select(UpstreamCredential.tenant_id)
        .join(Tenant, Tenant.id == UpstreamCredential.tenant_id)
        .where(
            UpstreamCredential.kind == CredentialKind.API_TOKEN,
            Tenant.status == TenantStatus.ACTIVE,
            ~select(SyncSchedule.id).where(SyncSchedule.tenant_id == UpstreamCredential.tenant_id).exists(),
        )
        .distinct()
    )
    tenants = list((await session.execute(candidates)).scalars().all())
    for tenant in tenants:
        await session.execute(
            insert(SyncSchedule)
            .values(
                id=uuid.uuid4(),
                tenant_id=tenant,
                enabled=True,
                full_interval_seconds=full_interval_seconds,
                refresh_interval_seconds=refresh_interval_seconds,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
    return len(tenants)


async def due_schedules(session: AsyncSession, now: datetime) -> Sequence[SyncSchedule]:
    """Enabled schedules of active tenants with a full sync or a refresh due (every tenant: scheduler only)."""
    statement = (
        select(SyncSchedule)
        .join(Tenant, Tenant.id == SyncSchedule.tenant_id)
        .where(
            Tenant.status == TenantStatus.ACTIVE,
            SyncSchedule.enabled.is_(True),
            (SyncSchedule.next_full_at.is_(None))
            | (SyncSchedule.next_full_at <= now)
            | (SyncSchedule.next_refresh_at.is_(None))
            | (SyncSchedule.next_refresh_at <= now),
        )
    )
    return (await session.execute(statement)).scalars().all()


async def stale_runs(session: AsyncSession, now: datetime) -> Sequence[SyncRun]:
    """Running runs whose lease lapsed before ``now`` (every tenant: for the sweeper only), locked and released
    (``lease_owner`` cleared), so the attempt that lost them can no longer write a checkpoint and the revived
    job takes them at once."""
    statement = (
        select(SyncRun)
        .where(SyncRun.state == SyncState.RUNNING, SyncRun.lease_expires_at < now)
        .with_for_update(skip_locked=True)
    )
    runs = (await session.execute(statement)).scalars().all()
    for run in runs:
        run.lease_owner = None
    return runs
