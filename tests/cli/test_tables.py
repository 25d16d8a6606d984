"""Tables printed down a pipe (no terminal, 80 columns assumed) keep every id whole and every row on one line."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from service import cli_access, cli_campaigns
from service.campaigns.schemas import Bucket, PlanView, TargetView
from service.cli import app
from service.core.pagination import Page

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.mark.usefixtures("cli_env", "clean_db")
def test_ids_print_whole_down_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_access, "console", Console(width=80))
    runner = CliRunner()
    created = runner.invoke(app, ["tenant", "create", "acme", "--name", "A company whose name is long enough to wrap"])
    assert created.exit_code == 0, created.output
    tenant_id = UUID.search(created.output)
    key = runner.invoke(app, ["apikey", "create", "--tenant", "acme", "--role", "viewer"])
    assert key.exit_code == 0, key.output
    prefix = key.output.splitlines()[0].split()[2]

    tenants = runner.invoke(app, ["tenant", "list"]).output
    keys = runner.invoke(app, ["apikey", "list", "--tenant", "acme"]).output

    assert tenant_id is not None
    assert re.search(rf"│ acme +│ A company whose name is long enough to wrap +│ .* │ {tenant_id[0]} │\n", tenants)
    row = next(line for line in keys.splitlines() if prefix in line)
    assert re.search(rf"│ {prefix} +│ viewer key +│ viewer │ .* │ {UUID.pattern} │$", row), keys


@pytest.mark.usefixtures("cli_env", "clean_db")
def test_names_with_brackets_print_as_they_are() -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["tenant", "create", "ops", "--name", "Ops [/bold] & [red]Co"])
    assert created.exit_code == 0, created.output

    listed = runner.invoke(app, ["tenant", "list"])

    assert listed.exit_code == 0, listed.output
    assert "Ops [/bold] & [red]Co" in listed.output


def test_the_campaign_plans_tables_and_warnings_print_names_with_brackets_as_they_are(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_campaigns, "console", Console(width=40, record=True))
    model = Bucket(value="GIV-HY5.0 [/bold] [red]", count=3)
    warning = "exclude_serials names inverters not in the fleet: AB[/bold], CD [red]"
    plan = PlanView(matched=3, targets=3, by_model=[model], by_firmware=[], by_status=[], exclusions=[],
                    exclusions_by_reason=[], waves=[3], requests=3, catalogue_requests=1, requests_per_minute=80,
                    eta_seconds=3.0, needs_approval=False, warnings=[warning])

    cli_campaigns.print_plan(plan)

    printed = cli_campaigns.console.export_text()
    assert re.search(r"│ GIV-HY5\.0 \[/bold\] \[red\] +│ +3 │\n", printed), printed
    assert f"warning: {warning}" in printed.replace("\n", " ")


def test_campaign_targets_print_serials_with_brackets_as_they_are_and_say_how_to_page_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_campaigns, "console", Console(width=60))
    failed = TargetView(serial="AB[/bold]12", model="GIV-HY5.0", firmware_arm="449", state="failed",
                        reason="locked [-7]", wave=1, previous_value="4", written_value=None, value_read="4", code=-7,
                        attempts=1, writes=1)
    asked: list[dict[str, Any]] = []

    async def targets_op(resources: object, slug: str, campaign_id: str, states: list[str], **paging: Any
                         ) -> Page[TargetView]:
        asked.append({"slug": slug, "campaign_id": campaign_id, "states": states, **paging})
        return Page(items=[failed], cursors=["NEXT"], has_next_page=True, total_count=3)

    monkeypatch.setattr(cli_campaigns, "targets_op", targets_op)
    monkeypatch.setattr(cli_campaigns, "run_op", lambda operation: asyncio.run(operation(None)))
    command = ["campaign", "targets", "-t", "acme", "C1", "--state", "failed", "--state", "not_applied"]

    shown = CliRunner().invoke(app, [*command, "--limit", "1"])
    as_json = CliRunner().invoke(app, [*command, "--json"])

    assert shown.exit_code == 0, shown.output
    assert [call["states"] for call in asked] == [["failed", "not_applied"]] * 2
    assert [(call["limit"], call["cursor"]) for call in asked] == [(1, None), (50, None)]
    cells = ["AB[/bold]12", "GIV-HY5.0", "449", "failed", "locked [-7]", "1", "4", "-", "4", "-7", "1", "1"]
    assert re.search(" +│ ".join(re.escape(cell) for cell in cells), shown.stdout), shown.stdout
    assert shown.stderr.splitlines() == [
        "1 of 3 inverters shown; next page: givfleet campaign targets -t acme C1 --state failed --state not_applied "
        "--limit 1 --cursor NEXT"]
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [failed.model_dump()]
