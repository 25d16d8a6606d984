"""Several `givfleet` processes on one GIVFLEET_HOME with embedded servers: commands attach to the servers a
running `givfleet up` owns and never stop them; a second `up` is refused; a killed `up` leaves nothing that
blocks the next one, whose demo cloud carries on from the killed one's. Real subprocesses, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from service.embedded import embedded_server_pids
from tests.support import alive, free_port

GIVFLEET = [sys.executable, "-c", "from service.cli import main; main()"]


def givfleet_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user with nothing configured but a home, small demo fleet and free ports."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIVFLEET_")}
    env.update(GIVFLEET_HOME=str(home), GIVFLEET_API__PORT=str(free_port()),
               GIVFLEET_SIMULATOR__PORT=str(free_port()), GIVFLEET_SIMULATOR__FLEET_SIZE="6",
               GIVFLEET_LOG__JSON_OUTPUT="true", COLUMNS="200")
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GIVFLEET, *args], env=env, cwd=Path(env["GIVFLEET_HOME"]).parent,  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=False)


@dataclass
class Up:
    """A running `givfleet up` whose output is read by a thread (so its pipe never fills)."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls, env: dict[str, str]) -> Up:
        process = subprocess.Popen([*GIVFLEET, "up"], env=env, cwd=Path(env["GIVFLEET_HOME"]).parent,  # noqa: S603
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        up = cls(process)
        threading.Thread(target=up._read, daemon=True).start()
        return up

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "Press Ctrl-C to stop." in line:
                self.ready.set()
        self.ready.set()  # ended: wake the waiter, which sees the exit

    def wait_ready(self) -> None:
        self.ready.wait(timeout=120)
        assert self.process.poll() is None, "givfleet up exited:\n" + self.output

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    for proc in psutil.process_iter(["cmdline"]):  # never leave a server behind, whatever failed
        if str(home) in " ".join(proc.info["cmdline"] or []) and proc.pid != os.getpid():
            proc.kill()


def redis_server_files(home: Path) -> list[Path]:
    """The pid file and socket of the home's embedded Redis, as its registry names them."""
    registry = json.loads((home / "redis" / "givfleet.rdb.settings").read_text(encoding="utf-8"))
    return [Path(registry["pidfile"]), Path(registry["unixsocket"])]


def test_commands_attach_to_a_running_up_and_a_killed_up_is_recovered(home: Path, redis_url: str) -> None:
    env = givfleet_env(home)
    refused = run(env, "worker")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: no givfleet up is running on {home}: start `givfleet up` first, or set both "
        "GIVFLEET_DATABASE_URL and GIVFLEET_REDIS_URL"]

    first = Up.start(env)
    first.wait_ready()
    key = re.search(r"gvf_[A-Za-z0-9_-]+", first.output)
    assert key is not None, first.output
    api = f"http://127.0.0.1:{env['GIVFLEET_API__PORT']}"
    headers = {"Authorization": f"Bearer {key[0]}"}

    for command in (["tenant", "create", "acme"], ["apikey", "list", "--tenant", "demo"],
                    ["sync", "--tenant", "demo"]):
        result = run(env, *command)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "embedded_" not in result.stdout + result.stderr  # no server start/stop lines from a CLI command
    assert httpx.get(f"{api}/readyz").status_code == 200
    assert httpx.get(f"{api}/api/v1/me", headers=headers).status_code == 200
    doctor = run(env, "doctor")
    assert doctor.returncode == 0, doctor.stdout
    assert "ok database: PostgreSQL" in doctor.stdout
    assert f"ok givfleet up: running on {home} (pid {first.process.pid})" in doctor.stdout
    assert (f"ok upstreams: acme -> no credential; demo -> the bundled simulator "
            f"(http://127.0.0.1:{env['GIVFLEET_SIMULATOR__PORT']}/v1)") in doctor.stdout
    half_doctor = run({**env, "GIVFLEET_REDIS_URL": redis_url}, "doctor")
    assert half_doctor.returncode == 0, half_doctor.stdout
    assert "ok database: PostgreSQL" in half_doctor.stdout, "the running up's embedded database is checked"
    redis_files = redis_server_files(home)
    assert [path for path in redis_files if not path.is_relative_to(home)] == [], "nothing lands in /tmp"

    second = run(env, "up")
    assert second.returncode == 2
    assert f"already running on {home} (pid {first.process.pid})" in second.stderr
    half_configured = run({**env, "GIVFLEET_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}, "worker")
    assert half_configured.returncode == 2
    assert "set both GIVFLEET_DATABASE_URL and GIVFLEET_REDIS_URL" in half_configured.stderr

    door = f"http://127.0.0.1:{env['GIVFLEET_SIMULATOR__PORT']}/_simulator"
    serial = httpx.get(f"{door}/fleet").json()["devices"][0]["serial"]
    httpx.post(f"{door}/faults", json={"serials": [serial], "event": "Isolation fault", "duration_seconds": 86400})
    httpx.post(f"{door}/clock/advance", json={"seconds": 1})  # a clock move: the demo cloud is snapshotted at once

    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    recovered = Up.start(env)
    recovered.wait_ready()
    assert httpx.get(f"{api}/api/v1/me", headers=headers).status_code == 200
    events = httpx.get(f"{door}/events", params={"serial": serial}).json()["data"]
    assert "Isolation fault" in [event["event"] for event in events if event["end_time"] is None], (
        "the killed up's simulated cloud carried on")
    servers = embedded_server_pids(home).values()
    assert recovered.stop(signal.SIGINT) == 0
    assert "givfleet stopped." in recovered.output
    assert "Traceback" not in recovered.output
    assert [pid for pid in servers if alive(pid)] == []
    assert [path.parent for path in redis_files if path.parent.exists()] == [], "the adopted Redis's files are removed"

