"""`givfleet credential add` says what happened, in order, and never claims success when the check then fails."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from service.cli import app
from tests.support import free_port

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")  # the retries' log (logging is not set up here)


@pytest.mark.usefixtures("cli_env", "clean_db")
def test_an_unreachable_givenergy_stores_the_token_unchecked_and_says_so() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["tenant", "create", "acme"]).exit_code == 0
    unreachable = f"http://127.0.0.1:{free_port()}/v1"

    added = runner.invoke(app, ["credential", "add", "--tenant", "acme", "--base-url", unreachable,
                                "--token-file", "-"], input="a-token\n")

    assert added.exit_code == 2, added.output
    assert "added" not in added.output
    lines = [line for line in added.output.splitlines() if not LOG_LINE.match(line)]
    assert lines[0].startswith("unknown api token (")
    assert lines[-1] == ("error: the token could not be checked; it is stored unchecked (health unknown): "
                         "`givfleet credential check --tenant acme` checks it again later")
    listed = runner.invoke(app, ["credential", "list", "--tenant", "acme"])
    assert " unknown " in listed.output


@pytest.mark.usefixtures("cli_env", "clean_db")
@pytest.mark.parametrize("base_url", ["notaurl", "ftp://api.example.com/v1", "http://:80/v1", "http://h:99999/v1"])
def test_a_base_url_that_is_no_http_url_is_refused_and_nothing_is_stored(base_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["tenant", "create", "acme"]).exit_code == 0

    added = runner.invoke(app, ["credential", "add", "--tenant", "acme", "--base-url", base_url, "--token-file", "-"],
                          input="a-token\n")

    assert added.exit_code == 1, added.output  # as every refused input of a command's operation
    assert "is not an absolute http:// or https:// URL" in " ".join(added.output.split())
    assert "api token" not in runner.invoke(app, ["credential", "list", "--tenant", "acme"]).output
