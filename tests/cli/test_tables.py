"""Tables printed down a pipe (no terminal, 80 columns assumed) keep every id whole and every row on one line."""

from __future__ import annotations

import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from service import cli_access, cli_campaigns
from service.campaigns.schemas import Bucket, PlanView
from service.cli import app

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
