"""The runner behind ``givfleet simulator``: banner with tokens, ``--tokens-file``, embeddable server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from service.simulator import Simulator, SimulatorConfig
from service.simulator import server as runner


def test_cli_prints_tokens_and_writes_the_tokens_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(runner.uvicorn, "run", lambda app, **options: served.append(options))
    tokens_file = tmp_path / "nested" / "tokens.json"
    tokens_file.parent.mkdir()
    tokens_file.write_text("{}")
    tokens_file.chmod(0o644)  # an older, readable file is made private too
    result = CliRunner().invoke(
        cli, ["simulator", "--fleet-size", "12", "--seed", "3", "--port", "8199", "--tokens-file", str(tokens_file)]
    )
    assert result.exit_code == 0, result.output
    tokens = json.loads(tokens_file.read_text())
    assert tokens_file.stat().st_mode & 0o777 == 0o600
    expected = Simulator(SimulatorConfig(fleet_size=12, seed=3)).tokens
    assert tokens == expected
    assert {"company", "customer", "engineer", "distributor", "company_unapproved"} <= set(tokens)
    for name in ("company", "customer"):
        assert f"{name}" in result.output
        assert tokens[name] in result.output
    assert "http://127.0.0.1:8199/v1" in result.output
    assert served == [{"host": "127.0.0.1", "port": 8199, "log_level": "warning", "lifespan": "on"}]


def test_embeddable_server_is_configured_not_started() -> None:
    sim, server = runner.server(SimulatorConfig.quiet(), host="127.0.0.1", port=8198)
    assert server.config.port == 8198
    assert server.config.app is sim.app
    assert not server.started

