"""A throw-away PostgreSQL cluster for the test suite (and the benchmarks).

initdb in a temporary folder, a free port on 127.0.0.1, stopped and removed at the end.
initdb refuses to run as root, so as root it runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresUnavailableError", "throwaway_cluster"]

_SEARCH = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin"]


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL could not be started here: the tests that need it must fail."""


def _bin(name: str) -> str:
    for folder in _SEARCH:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise PostgresUnavailableError(
            f"{name} not found: install PostgreSQL 15 (apt-get install postgresql-15)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], as_user: str | None) -> subprocess.CompletedProcess[str]:
    if as_user is not None:
        args = ["runuser", "-u", as_user, "--", *args]
    return subprocess.run(args, capture_output=True, text=True, check=False)


@contextlib.contextmanager
def throwaway_cluster(
    *, fsync: bool = False, settings: dict[str, str] | None = None
) -> Iterator[str]:
    """Start a private cluster and yield its SQLAlchemy URL (user ``postgres``);
    ``settings`` are more server settings (``-c name=value``)."""
    as_user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="auditkeeper-pg-"))
    if as_user is not None:
        entry = pwd.getpwnam(as_user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data = folder / "data"
    port = _free_port()
    initdb = _run(
        [
            _bin("initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        as_user,
    )
    if initdb.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise PostgresUnavailableError(f"initdb failed: {initdb.stderr.strip()}")
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
        f"-c fsync={'on' if fsync else 'off'} -c synchronous_commit={'on' if fsync else 'off'} "
        "-c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB "
        # initdb takes the machine's zone (TZ); sessions in UTC whatever it is. Tests of
        # other zones set theirs (SET TIME ZONE).
        "-c timezone=UTC"
    ) + "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
    start = _run(
        [
            _bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        as_user,
    )
    if start.returncode != 0:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise PostgresUnavailableError(f"pg_ctl start failed: {start.stderr.strip()} {log[-2000:]}")
    try:
        _wait_ready(port)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        _run([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], as_user)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise PostgresUnavailableError(f"PostgreSQL did not accept connections on port {port}")
