"""``givfleet tenant | credential | apikey | admin``: local administration of tenants and access.

These commands act as the machine's operator (audit actor ``cli``). Each runs one transaction; the async
``*_op`` functions hold the logic so tests can drive them without a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from rich.console import Console
from rich.markup import escape

from service import doctor
from service.core.errors import GivfleetError
from service.core.principal import Principal
from service.core.roles import Role
from service.core.tables import TextTable, print_table
from service.core.tenancy import tenant_id_from
from service.db.models.api_key import ApiKey
from service.db.models.credential import CredentialHealth, CredentialKind, UpstreamCredential
from service.db.models.tenant import Tenant, TenantStatus
from service.db.uow import read_session
from service.embedded import StartupError
from service.jobs.enqueue import unit_of_work
from service.runtime import Resources
from service.settings import Settings, get_settings
from service.tenants.checks import check_credential
from service.tenants.crypto import KeyRingError, add_generated_key, load_key_ring
from service.tenants.service import (
    ApiKeyService,
    CheckOutcome,
    CreatedKey,
    CredentialService,
    TenantService,
    rotate_encryption,
)

console = Console()
error_console = Console(stderr=True)
tenant_app = typer.Typer(help="Tenants (installer companies).", no_args_is_help=True)
credential_app = typer.Typer(help="Upstream GivEnergy credentials of a tenant.", no_args_is_help=True)
apikey_app = typer.Typer(help="givfleet API keys of a tenant.", no_args_is_help=True)
admin_app = typer.Typer(help="Deployment administration.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", "-t", help="Tenant slug.")]
_T = TypeVar("_T")


def register(app: typer.Typer) -> None:
    """Add the command groups to the ``givfleet`` command."""
    app.add_typer(tenant_app, name="tenant")
    app.add_typer(credential_app, name="credential")
    app.add_typer(apikey_app, name="apikey")
    app.add_typer(admin_app, name="admin")


_EXPECTED = {
    "missing": "required",
    "extra_forbidden": "not a known field",
    "int_parsing": "expected a whole number", "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number", "float_type": "expected a number",
    "bool_parsing": "expected true or false", "bool_type": "expected true or false",
    "greater_than_equal": "expected at least {ge}", "greater_than": "expected more than {gt}",
    "less_than_equal": "expected at most {le}", "less_than": "expected less than {lt}",
    "string_too_long": "expected at most {max_length} characters",
    "enum": "expected {expected}", "literal_error": "expected {expected}",
    "dict_type": "expected key: value pairs", "model_type": "expected key: value pairs",
    "model_attributes_type": "expected key: value pairs", "list_type": "expected a list",
    "json_invalid": "expected JSON",
}


def invalid_input(exc: ValidationError, name_of: Callable[[tuple[str | int, ...]], str]) -> str:
    """Every problem of a validation error on one line, in the user's terms and without pydantic's wording:
    ``name_of`` names a location as the user wrote it (an option, an environment variable, a key of a file)."""
    return "; ".join(f"{name_of(tuple(error['loc']))}: {_expected(error)}" for error in exc.errors())


def _expected(error: ErrorDetails) -> str:
    kind, context = error["type"], error.get("ctx", {})
    if kind in ("value_error", "assertion_error"):
        return str(context.get("error", error["msg"]))
    if kind == "string_too_short":
        shortest = context.get("min_length")
        return "must not be empty" if shortest == 1 else f"expected at least {shortest} characters"
    template = _EXPECTED.get(kind)
    if template is not None:
        return template.format(**context)
    return re.sub(r"^\w+ should (be )?", "expected ", error["msg"])


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """A command that cannot start (embedded servers, a misconfigured or unreachable dependency) says why in one
    line on stderr and exits 2."""
    try:
        yield
    except StartupError as exc:
        error_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=2) from None


@contextlib.contextmanager
def services(*, require_current_schema: bool = True) -> Iterator[Settings]:
    """Settings naming working servers (a running ``givfleet up``'s embedded ones, or started for the command),
    checked before the command changes anything; see :func:`service.doctor.resolved_services`."""
    settings = get_settings()
    with one_line_errors(), doctor.resolved_services(settings, require_current_schema=require_current_schema,
                                                       announce=_to_stderr) as resolved:
        yield resolved


def _to_stderr(line: str) -> None:
    error_console.print(line, markup=False, highlight=False, soft_wrap=True)


def run_op(operation: Callable[[Resources], Awaitable[_T]]) -> _T:
    """Run ``operation`` with resources for the configured (or embedded) servers; domain errors exit 1."""

    async def main(settings: Settings) -> _T:
        resources = Resources.open(settings)
        try:
            return await operation(resources)
        finally:
            await resources.aclose()

    with services() as settings:
        try:
            return asyncio.run(main(settings))
        except (GivfleetError, KeyRingError) as exc:
            error_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(code=1) from None


async def principal_of_tenant(session: Any, slug: str) -> Principal:
    """The command line's principal (admin, actor ``cli``) for the tenant ``slug``."""
    tenant = await TenantService(session).get_by_slug(slug)
    return Principal.cli(tenant_id_from(tenant.id))


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


# --- operations (async, testable) ---------------------------------------------------------------------------


async def create_tenant_op(resources: Resources, slug: str, name: str | None, timezone: str) -> Tenant:
    """Create a tenant."""
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        return await TenantService(session).create(slug, name=name, timezone=timezone)


async def set_tenant_status_op(resources: Resources, slug: str, status: TenantStatus) -> Tenant:
    """Suspend or activate a tenant."""
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        return await TenantService(session).set_status(slug, status)


async def list_tenants_op(resources: Resources) -> Sequence[Tenant]:
    """Every tenant."""
    async with resources.session_factory() as session:
        return await TenantService(session).list()


def _credentials(session: Any, principal: Principal, resources: Resources) -> CredentialService:
    return CredentialService(session, principal, load_key_ring(resources.settings),
                             default_requests_per_minute=resources.settings.givenergy.default_requests_per_minute)


async def add_credential_op(resources: Resources, slug: str, token: str, *, label: str | None = None,
                            requests_per_minute: int | None = None, base_url: str | None = None,
                            portal_username: str | None = None, check: bool = True
                            ) -> tuple[UpstreamCredential, CheckOutcome | None]:
    """Store a credential (committed first), then check it unless ``check`` is false; one GivEnergy refuses
    (401) is removed again."""
    kind = CredentialKind.PORTAL_LOGIN if portal_username else CredentialKind.API_TOKEN
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        principal = await principal_of_tenant(session, slug)
        credential = await _credentials(session, principal, resources).add(
            token, label=label, requests_per_minute=requests_per_minute, base_url=base_url, kind=kind,
            portal_username=portal_username,
        )
    if not check:
        return credential, None
    outcome = (await check_credentials_op(resources, slug, [credential.id]))[0]
    if outcome.probe.health is CredentialHealth.UNAUTHORISED:  # refused: keep nothing that cannot work
        async with unit_of_work(resources.session_factory, resources.redis) as session:
            await _credentials(session, principal, resources).remove(credential.id)
    return outcome.credential, outcome


async def check_credentials_op(resources: Resources, slug: str, credential_ids: Sequence[uuid.UUID] = ()
                               ) -> list[CheckOutcome]:
    """Check the given credentials (all of the tenant's when none are given): each probed upstream with no
    transaction open, its result recorded in a short one."""
    async with read_session(resources.session_factory) as session:
        principal = await principal_of_tenant(session, slug)
        ids = list(credential_ids) or [row.id for row in await _credentials(session, principal, resources).list()]
    return [await check_credential(resources, principal, credential_id) for credential_id in ids]


async def list_credentials_op(resources: Resources, slug: str) -> Sequence[UpstreamCredential]:
    """The tenant's credentials."""
    async with resources.session_factory() as session:
        return await _credentials(session, await principal_of_tenant(session, slug), resources).list()


async def create_api_key_op(resources: Resources, slug: str, role: Role, name: str, expires_at: datetime | None,
                            restricted_account_id: str | None) -> CreatedKey:
    """Create an API key."""
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        return await ApiKeyService(session, await principal_of_tenant(session, slug)).create(
            name=name, role=role, expires_at=expires_at, restricted_account_id=restricted_account_id
        )


async def list_api_keys_op(resources: Resources, slug: str) -> Sequence[ApiKey]:
    """The tenant's keys."""
    async with resources.session_factory() as session:
        return await ApiKeyService(session, await principal_of_tenant(session, slug)).list()


async def revoke_api_key_op(resources: Resources, slug: str, reference: str) -> tuple[ApiKey, bool]:
    """Revoke a key by id, prefix or full text; returns it, and whether it was revoked already."""
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        keys = ApiKeyService(session, await principal_of_tenant(session, slug))
        key = await keys.find(reference)
        already = key.revoked_at is not None
        return await keys.revoke(key.id), already


async def rotate_key_op(resources: Resources) -> int:
    """Re-encrypt every credential with the active key."""
    async with unit_of_work(resources.session_factory, resources.redis) as session:
        return await rotate_encryption(session, load_key_ring(resources.settings))


_DURATION = re.compile(r"^(\d+)([dhm])$")


def parse_expiry(text: str | None) -> datetime | None:
    """``30d`` / ``12h`` / ``45m`` from now, or an ISO 8601 time (UTC when it names no zone)."""
    if not text:
        return None
    match = _DURATION.fullmatch(text.strip())
    if match:
        amount, unit = int(match[1]), match[2]
        try:
            return datetime.now(UTC) + {"d": timedelta(days=amount), "h": timedelta(hours=amount),
                                        "m": timedelta(minutes=amount)}[unit]
        except OverflowError:
            raise typer.BadParameter(f"{text} is too far in the future (the latest is 9999-12-31)") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("use e.g. 30d, 12h, 45m or an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- commands ---------------------------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    slug: Annotated[str, typer.Argument(help="Short unique name: lower-case letters, digits, hyphens.")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the slug).")] = None,
    timezone: Annotated[str, typer.Option(help="IANA timezone of the company.")] = "Europe/London",
) -> None:
    """Create a tenant."""
    tenant = run_op(lambda resources: create_tenant_op(resources, slug, name, timezone))
    console.print(f"Tenant {tenant.slug} created (id {tenant.id}).", highlight=False)
    console.print(f"Next: givfleet apikey create --tenant {tenant.slug} --role admin", highlight=False)


@tenant_app.command("suspend")
def tenant_suspend(slug: Annotated[str, typer.Argument(help="Tenant slug.")]) -> None:
    """Suspend a tenant: its API keys stop working until it is activated again."""
    run_op(lambda resources: set_tenant_status_op(resources, slug, TenantStatus.SUSPENDED))
    console.print(f"Tenant {slug} suspended.", highlight=False)


@tenant_app.command("activate")
def tenant_activate(slug: Annotated[str, typer.Argument(help="Tenant slug.")]) -> None:
    """Make a suspended tenant active again."""
    run_op(lambda resources: set_tenant_status_op(resources, slug, TenantStatus.ACTIVE))
    console.print(f"Tenant {slug} active.", highlight=False)


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants."""
    table = TextTable("slug", "name", "timezone", "status", "id")
    for tenant in run_op(list_tenants_op):
        table.add_row(tenant.slug, tenant.name, tenant.timezone, tenant.status.value, str(tenant.id))
    print_table(console, table)


def _print_check(outcome: CheckOutcome) -> None:
    probe, credential = outcome.probe, outcome.credential
    colour = "green" if probe.health.value == "ok" else "red"
    console.print(f"[{colour}]{probe.health.value}[/{colour}] {escape(credential.label)} ({credential.id}): "
                  f"{escape(probe.message)}",
                  highlight=False, soft_wrap=True)
    if probe.health.value == "ok":
        console.print(f"  account: {escape(str(probe.username))} (id {probe.account_id}), "
                      f"type {probe.account_type or 'unknown'}", highlight=False)
        console.print(f"  scopes: {', '.join(probe.scopes) or '-'}", markup=False, highlight=False)
        if probe.denied_scopes:
            console.print(f"  refused: {', '.join(probe.denied_scopes)}", markup=False, highlight=False)


@credential_app.command("add")
def credential_add(
    tenant: TenantOption,
    token_file: Annotated[str | None, typer.Option(
        help="Read the token (or portal password) from this file; '-' reads standard input.",
    )] = None,
    token: Annotated[str | None, typer.Option(
        help="The token itself (visible in the process list: prefer the hidden prompt or --token-file).",
    )] = None,
    portal_username: Annotated[str | None, typer.Option(
        help="Add a legacy portal login (this username, the token as its password) instead of an API token.",
    )] = None,
    label: Annotated[str | None, typer.Option(help="A name for the credential.")] = None,
    requests_per_minute: Annotated[int | None, typer.Option(help="Rate-limit tier (default: settings).")] = None,
    base_url: Annotated[str | None, typer.Option(help="API base URL when not GivEnergy's (e.g. a simulator).")
                        ] = None,
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Check the token upstream now; a token GivEnergy refuses is not stored.")] = True,
) -> None:
    """Add a GivEnergy API token to a tenant (stored encrypted) and check it.

    With neither --token-file nor --token, the token is asked for at a hidden prompt.
    """
    secret = _read_secret(token_file, token, "Portal password" if portal_username else "GivEnergy API token")
    credential, outcome = run_op(lambda resources: add_credential_op(
        resources, tenant, secret, label=label, requests_per_minute=requests_per_minute, base_url=base_url,
        portal_username=portal_username, check=check,
    ))
    if outcome is not None and outcome.probe.health is CredentialHealth.UNAUTHORISED:
        _print_check(outcome)
        error_console.print("[red]error:[/red] GivEnergy refused this token (401), so it was not stored; "
                            "--no-check stores it without asking.", highlight=False)
        raise typer.Exit(code=2)
    if outcome is None:
        console.print(f"Credential {escape(credential.label)} added (id {credential.id}), not checked.",
                      highlight=False)
        return
    if outcome.probe.health is CredentialHealth.OK:
        console.print(f"Credential {escape(credential.label)} added (id {credential.id}).", highlight=False)
        _print_check(outcome)
        return
    _print_check(outcome)
    again = f"`givfleet credential check --tenant {tenant}` checks it again"
    if outcome.probe.health is CredentialHealth.UNKNOWN:
        problem = f"the token could not be checked; it is stored unchecked (health unknown): {again} later"
    else:
        problem = f"the token is stored with health {outcome.probe.health.value}: {again} once that is fixed"
    error_console.print(f"[red]error:[/red] {problem}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _read_secret(path: str | None, given: str | None, prompt: str) -> str:
    if path is not None and given is not None:
        raise typer.BadParameter("give --token-file or --token, not both")
    if path is None:
        secret = given or typer.prompt(prompt, hide_input=True)
    elif path == "-":
        secret = sys.stdin.read()
    else:
        try:
            secret = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    if not secret.strip():
        raise typer.BadParameter("the token is empty")
    return secret.strip()


@credential_app.command("check")
def credential_check(
    tenant: TenantOption,
    credential_id: Annotated[list[str] | None, typer.Argument(help="Credential ids (default: all).")] = None,
) -> None:
    """Ask GivEnergy about the tenant's credentials: health, account, account type, scopes."""
    try:
        ids = [uuid.UUID(value) for value in credential_id or []]
    except ValueError:
        raise typer.BadParameter("credential ids are UUIDs (see `givfleet credential list`)") from None
    outcomes = run_op(lambda resources: check_credentials_op(resources, tenant, ids))
    if not outcomes:
        console.print("The tenant has no credentials.")
    for outcome in outcomes:
        _print_check(outcome)
    if any(outcome.probe.health.value != "ok" for outcome in outcomes):
        raise typer.Exit(code=2)


@credential_app.command("list")
def credential_list(tenant: TenantOption) -> None:
    """List the tenant's credentials (never their tokens)."""
    table = TextTable("id", "label", "health", "account", "type", "scopes", "rpm", "checked", "key id")
    for row in run_op(lambda resources: list_credentials_op(resources, tenant)):
        table.add_row(str(row.id), row.label, row.health.value, row.upstream_username or "-", row.account_type or "-",
                      str(len(row.scopes)), str(row.requests_per_minute or "default"), when(row.last_checked_at),
                      row.key_id)
    print_table(console, table, whole=("id", "key id"))


@apikey_app.command("create")
def apikey_create(
    tenant: TenantOption,
    role: Annotated[Role, typer.Option(help="admin, operator or viewer.")],
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry: 30d, 12h, 45m or an ISO 8601 time.")] = None,
    restricted_account_id: Annotated[str | None, typer.Option(
        "--restricted-account-id",
        help="Restrict the key to this upstream account's subtree (a sub-contractor key); the REST field of the "
             "same name.")] = None,
) -> None:
    """Create an API key and print it (the only time it is shown)."""
    expires_at = parse_expiry(expires)
    created = run_op(lambda resources: create_api_key_op(
        resources, tenant, role, name or f"{role.value} key", expires_at, restricted_account_id
    ))
    console.print(f"API key {created.key.prefix} ({role.value}) created. Store it now; it is not shown again:",
                  highlight=False)
    typer.echo(created.text)


@apikey_app.command("list")
def apikey_list(tenant: TenantOption) -> None:
    """List the tenant's API keys (never their secrets)."""
    table = TextTable("prefix", "name", "role", "expires", "last used", "revoked", "restricted to", "id")
    for key in run_op(lambda resources: list_api_keys_op(resources, tenant)):
        table.add_row(key.prefix, key.name, key.role.value, when(key.expires_at), when(key.last_used_at),
                      when(key.revoked_at), key.restricted_account_id or "-", str(key.id))
    print_table(console, table, whole=("prefix", "id"))


@apikey_app.command("revoke")
def apikey_revoke(
    tenant: TenantOption,
    key: Annotated[str, typer.Argument(help="The key itself, or its id or prefix (see: givfleet apikey list).")],
) -> None:
    """Revoke an API key; it stops working at once."""
    revoked, already = run_op(lambda resources: revoke_api_key_op(resources, tenant, key))
    console.print(f"API key {revoked.prefix} {'was already revoked' if already else 'revoked'}.", highlight=False)


@admin_app.command("rotate-key")
def admin_rotate_key(
    generate: Annotated[bool, typer.Option(
        "--generate", help="First add a new key to the generated key file (when keys are not configured).")] = False,
) -> None:
    """Re-encrypt every upstream token with the active encryption key.

    To rotate: add a new key (GIVFLEET_SECURITY__ENCRYPTION_KEYS, and GIVFLEET_SECURITY__ACTIVE_KEY_ID), run
    this, then remove the old key. With generated keys, --generate adds and activates a new one.
    """
    if generate:
        try:
            key_id = add_generated_key(get_settings())
        except KeyRingError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(code=1) from None
        console.print(f"New encryption key {key_id} generated.", highlight=False)
    count = run_op(rotate_key_op)
    console.print(f"{count} credential(s) re-encrypted with the active key.", highlight=False)
