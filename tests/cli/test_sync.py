"""`givfleet sync` names an unknown tenant in one line before it shows anything."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from service.cli import app


@pytest.mark.usefixtures("cli_env")
def test_an_unknown_tenant_is_one_line_and_exit_2_without_a_progress_bar() -> None:
    result = CliRunner().invoke(app, ["sync", "--tenant", "nobody"])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == ["error: no tenant 'nobody'"]
