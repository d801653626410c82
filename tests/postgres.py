"""A real PostgreSQL server for the tests: started from the system's binaries on a free loopback port, in a
temporary folder, and stopped when the session ends.

`postgres_url` (registered in tests/conftest.py) yields `postgresql://postgres:PASSWORD@127.0.0.1:PORT/pixloop_test`.
The password is real (scram-sha-256 on loopback) so tests can prove it never reaches run.json, events,
checkpoints or messages. PostgreSQL refuses to run as root: as root the server runs as the `postgres` user.
Without PostgreSQL's binaries (CI installs Debian's `postgresql` in .ci/run) the tests that need it skip.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DATABASE = "pixloop_test"
STARTUP_SECONDS = 60.0


def find_bindir() -> Path | None:
    """The folder holding initdb and postgres: `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb") or "").parent))
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PortTaken(RuntimeError):
    """The server could not bind its port."""


class PostgresServer:
    """One throwaway cluster: `start()` runs initdb and the server, `stop()` ends it and removes its folder."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.password = "pw-" + secrets.token_hex(8)
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pixloop-pg-"))  # in /tmp: the postgres user can reach it
        self.data, self.sockets, self.log = self.root / "data", self.root / "sock", self.root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.user: dict[str, Any] = {}
        if os.geteuid() == 0:  # postgres refuses to run as root
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no `postgres` user to run the server as") from None
            self.user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        out = subprocess.run(args, cwd=self.root, capture_output=True, text=True, timeout=120, **self.user)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr or out.stdout}")

    def start(self) -> str:
        self.sockets.mkdir()
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self.user:
            for path in (self.sockets, pwfile):
                os.chown(path, self.user["user"], self.user["group"])
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C")
        pwfile.unlink()
        for attempt in range(3):
            try:
                self._launch()
                break
            except PortTaken:  # another process took the free port between free_port() and the server's bind
                if attempt == 2:
                    raise
                self.port = free_port()
        import psycopg

        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        return self.url

    def _launch(self) -> None:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port),
                 "-k", str(self.sockets), "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=60", "-c", "shared_buffers=32MB"],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self.user)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                if "already in use" in self.log.read_text():
                    raise PortTaken(self.port)
                raise RuntimeError(f"postgres exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres did not accept connections in {STARTUP_SECONDS:.0f} s: "
                                       f"{self.log.read_text()[-2000:]}") from None
                try:  # the server's start takes a moment: wait on its process rather than spin
                    self.process.wait(timeout=0.1)
                except subprocess.TimeoutExpired:
                    pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: ends any session left open
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A running PostgreSQL server's URL (with its password) for the whole session; skips without PostgreSQL."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/postgres found via pg_config or /usr/lib/postgresql); "
                    "`apt-get install postgresql` (.ci/run does)")
    if os.geteuid() == 0 and not _has_user("postgres"):
        pytest.skip("running as root, and there is no `postgres` user to run PostgreSQL as (it refuses root)")
    server = PostgresServer(bindir)
    try:
        yield server.start()
    finally:
        server.stop()


__all__ = ["DATABASE", "PortTaken", "PostgresServer", "find_bindir", "free_port", "postgres_url"]
