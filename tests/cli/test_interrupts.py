"""Ctrl-C (SIGINT) stops `givfleet sync` and `givfleet worker` with one line: no traceback, no "Task exception
was never retrieved", no "coroutine ... was never awaited". Real subprocesses, as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.settings import Settings, get_settings
from service.simulator import SimulatorConfig
from tests.cli.test_shared_home import GIVFLEET
from tests.support import served_simulator

NOISE = ("Traceback", "never retrieved", "never awaited", "CancelledError")


@pytest.fixture
def env(test_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of `givfleet` commands using the test database and Redis (in this process, too)."""
    assert test_settings.database_url is not None
    assert test_settings.redis_url is not None
    values = {"GIVFLEET_DATABASE_URL": test_settings.database_url.get_secret_value(),
              "GIVFLEET_REDIS_URL": test_settings.redis_url.get_secret_value(),
              "GIVFLEET_REDIS__NAMESPACE": test_settings.redis.namespace, "GIVFLEET_HOME": str(tmp_path),
              "GIVFLEET_LOG__JSON_OUTPUT": "true"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield {**{k: v for k, v in os.environ.items() if not k.startswith("GIVFLEET_")}, **values}
    get_settings.cache_clear()


def _interrupt(command: list[str], env: dict[str, str], started: str) -> tuple[int, str]:
    """Start ``givfleet COMMAND``, send SIGINT once its output shows ``started``, return (exit code, output)."""
    process = subprocess.Popen([*GIVFLEET, *command], env=env, stdout=subprocess.PIPE,  # noqa: S603
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if started in line:
            break
    process.send_signal(signal.SIGINT)
    lines += process.stdout.readlines()
    return process.wait(timeout=60), "".join(lines)


@pytest.mark.usefixtures("clean_db")
def test_ctrl_c_stops_a_sync_with_one_line_and_leaves_it_to_resume(env: dict[str, str]) -> None:
    runner = CliRunner()
    with served_simulator(SimulatorConfig.quiet(fleet_size=40)) as (base_url, simulator, _):
        assert runner.invoke(app, ["tenant", "create", "slow"]).exit_code == 0
        added = runner.invoke(app, ["credential", "add", "--tenant", "slow", "--base-url", base_url,
                                    "--requests-per-minute", "30", "--no-check", "--token-file", "-"],
                              input=simulator.tokens["company"])
        assert added.exit_code == 0, added.output
        code, output = _interrupt(["sync", "--tenant", "slow", "--full"], env, "mirror.sync.plan")
    assert code == 130, output
    assert "Interrupted: the sync stops here; the next sync of this tenant" in output
    assert not [noise for noise in NOISE if noise in output], output


def test_ctrl_c_stops_a_worker_with_one_line(env: dict[str, str]) -> None:
    code, output = _interrupt(["worker"], env, "Starting worker")
    assert code == 0, output
    assert output.rstrip().endswith("givfleet worker stopped.")
    assert not [noise for noise in NOISE if noise in output], output
