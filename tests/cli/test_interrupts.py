"""Ctrl-C (SIGINT) stops `givfleet sync` and `givfleet worker` with one line, and any command while its modules
import with none: no traceback, no "Task exception was never retrieved", no "coroutine ... was never awaited". Real
subprocesses, as a user runs them."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.simulator import SimulatorConfig
from tests.cli.test_shared_home import GIVFLEET, givfleet_env
from tests.support import served_simulator

NOISE = ("Traceback", "never retrieved", "never awaited", "CancelledError")


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
def test_ctrl_c_stops_a_sync_with_one_line_and_leaves_it_to_resume(cli_env: dict[str, str]) -> None:
    runner = CliRunner()
    with served_simulator(SimulatorConfig.quiet(fleet_size=40)) as (base_url, simulator, _):
        assert runner.invoke(app, ["tenant", "create", "slow"]).exit_code == 0
        added = runner.invoke(app, ["credential", "add", "--tenant", "slow", "--base-url", base_url,
                                    "--requests-per-minute", "30", "--no-check", "--token-file", "-"],
                              input=simulator.tokens["company"])
        assert added.exit_code == 0, added.output
        code, output = _interrupt(["sync", "--tenant", "slow", "--full"], cli_env, "mirror.sync.plan")
    assert code == 130, output
    assert "Interrupted: the sync stops here; the next sync of this tenant" in output
    assert not [noise for noise in NOISE if noise in output], output


def test_ctrl_c_stops_a_worker_with_one_line(cli_env: dict[str, str]) -> None:
    code, output = _interrupt(["worker"], cli_env, "Starting worker")
    assert code == 0, output
    assert output.rstrip().endswith("givfleet worker stopped.")
    assert not [noise for noise in NOISE if noise in output], output


def _interrupt_while_importing(command: list[str], home: Path, *,
                               ignoring_sigint: bool = False) -> tuple[subprocess.Popen[str], str, str]:
    """Run the console script as installed and send SIGINT while it imports; Python reports each import as it
    completes, so the signal is sent once the command's first dependency (typer) is in and before the command's own
    module (service.cli) is. Returns the finished process, its output and its errors."""
    console_script = Path(sys.executable).with_name("givfleet")
    env = givfleet_env(home, PYTHONPROFILEIMPORTTIME="1")
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignoring_sigint else None  # as nohup does
    process = subprocess.Popen([console_script, *command], env=env, stdout=subprocess.PIPE,  # noqa: S603
                               stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
    assert process.stderr is not None
    imported = []
    for line in process.stderr:
        imported.append(line.rsplit("|", 1)[-1].strip())
        if imported[-1] == "typer":
            break
    process.send_signal(signal.SIGINT)
    output, errors = process.communicate(timeout=60)
    assert "service.cli" not in imported  # interrupted while importing, before the command could run
    return process, output, errors


def _not_import_times(errors: str) -> list[str]:
    return [line for line in errors.splitlines() if not line.startswith("import time:")]


def test_ctrl_c_while_a_command_imports_exits_quietly_with_130(tmp_path: Path) -> None:
    process, output, errors = _interrupt_while_importing(["doctor"], tmp_path / "home")

    assert process.returncode == 130, errors
    assert output == ""
    assert _not_import_times(errors) == []


def test_a_command_started_deaf_to_ctrl_c_stays_deaf_while_it_imports(tmp_path: Path) -> None:
    process, output, errors = _interrupt_while_importing(["--help"], tmp_path / "home", ignoring_sigint=True)

    assert process.returncode == 0, errors
    assert "Usage: givfleet" in output
    assert _not_import_times(errors) == []
