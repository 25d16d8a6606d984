"""The committed SDL matches the code, and `givfleet export-schema` writes it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from service.cli import app
from service.gql.schema import SCHEMA_FILE, export_sdl


def test_committed_schema_matches_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == export_sdl(), (
        "graphql/schema.graphql is out of date: run 'givfleet export-schema' and commit it")


def test_export_schema_command_writes_the_sdl(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    result = CliRunner().invoke(app, ["export-schema", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == export_sdl()
    assert "fleetSummary(filter: InverterFilter = null): FleetSummary!" in target.read_text(encoding="utf-8")


def test_export_schema_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    target.write_text("type Query { stale: Int }\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["export-schema", "--output", str(target), "--check"])
    assert result.exit_code == 1
