"""Checkpoints in PostgreSQL (`--checkpointer postgresql://...`), so any worker can resume any run.

LangGraph's AsyncPostgresSaver on one connection per run, with the SQLite checkpointer's serializer (the same
msgpack+zlib bytes, the same allow-list of classes). Its `setup()` (create tables, run migrations) is not safe
when two processes first meet an empty database at once (both insert migration 0), so it runs under an advisory
lock, and only when the tables are not current. A writer holds a session-level advisory lock on its thread for
as long as it runs: a second writer of the thread (a second worker resuming it, on any machine) is refused. The
server releases a session's locks when the session ends, so a killed writer's lock goes with it (the session is
also told to probe its client with TCP keepalives, so a worker whose machine vanished loses it within minutes).

psycopg is imported only when a PostgreSQL URL is given: it is the optional `postgres` extra.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agent.models.errors import ConfigError, RunFolderError, ServiceError
from agent.runtime.secrets import mask_url

CHECKPOINTER_ENV = "PIXLOOP_CHECKPOINTER"
"""The environment variable a command reads its checkpointer URL from when --checkpointer is not given."""
POSTGRES_SCHEMES = ("postgresql", "postgres")
LOCK_NAMESPACE = 0x70786C70
"""First key of pixloop's two-key advisory locks ('pxlp'); the second is `hashtext(thread_id)`. The one-key
form with the same number guards setup(): a separate key space."""
CONNECT_TIMEOUT = 10
TAKEOVER_GRACE = "2s"
"""How long a writer waits for a thread's lock before refusing: a killed holder's session ends within it."""
SETUP_WAIT = 120.0
KEEPALIVES = {"tcp_keepalives_idle": 60, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 6}
"""The server probes a writer's connection after a minute of silence and ends it (and its lock) after six unanswered
probes: a worker on a machine that vanished frees its run in about two minutes."""


def is_postgres(url: str | None) -> bool:
    scheme, sep, _ = (url or "").partition("://")
    return bool(sep) and scheme.lower() in POSTGRES_SCHEMES


def check_checkpointer(url: str | None) -> None:
    """None (the run folder's SQLite file) or a PostgreSQL URL; anything else is a ConfigError naming the forms."""
    if url is not None and not is_postgres(url):
        raise ConfigError(f"checkpointer {mask_url(url)!r} is not a PostgreSQL URL: give postgresql://USER@HOST[:PORT]"
                          "/DATABASE (or postgres://...), or none for the run folder's checkpoints.sqlite")


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    text = text.removeprefix("connection failed: ").removeprefix("connection is bad: ")
    return mask_url(text) or type(error).__name__


SERVER_REFUSED = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "permission denied",
                  "invalid ", "authentication")
"""Answers that no retry changes (credentials, database or role names, options): bad input, not a service failure."""
REFUSED_CLASSES = ("28", "3D", "3F", "42")
"""SQLSTATE classes of the same (authorization, unknown database or schema, access rule such as no CREATE right)."""


def _connect_error(error: BaseException, where: str) -> Exception:
    reason = _reason(error)
    if any(word in reason.lower() for word in SERVER_REFUSED):
        return ConfigError(f"the checkpointer {where} refused the connection: {reason}")
    return ServiceError(f"the checkpointer's PostgreSQL server {where} cannot be reached: {reason}")


def _setup_error(error: Any, where: str) -> Exception:
    reason = _reason(error)
    if (getattr(error, "sqlstate", None) or "")[:2] in REFUSED_CLASSES:
        return ConfigError(f"the checkpointer {where} cannot be used: {reason}")
    return ServiceError(f"the checkpointer's PostgreSQL database {where} failed: {reason}")


@asynccontextmanager
async def postgres_checkpointer(url: str, *, writer: str | None = None) -> AsyncIterator[Any]:
    """An AsyncPostgresSaver on its own connection, its tables set up; with `writer` (a thread id) this process
    is that thread's only writer until the context ends, or RunFolderError. Connection and server failures are
    ServiceError (or ConfigError for credentials and names), with the URL's credentials masked."""
    check_checkpointer(url)
    try:
        import psycopg
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg.rows import dict_row
    except ImportError as e:
        raise ConfigError(f"the PostgreSQL checkpointer needs the postgres extra ({e.name} is not installed): "
                          "pip install 'pixloop[postgres]'") from None
    from agent.runtime.checkpoint import MSGPACK_ALLOWLIST, CompressedSerializer

    where = mask_url(url)
    try:
        given = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as e:
        raise ConfigError(f"checkpointer {where}: {_reason(e)}") from None
    options: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    if "connect_timeout" not in given:
        options["connect_timeout"] = CONNECT_TIMEOUT
    if "application_name" not in given:
        options["application_name"] = f"pixloop:{os.getpid()}@{socket.gethostname()}"[:63]
    try:
        conn = await psycopg.AsyncConnection.connect(url, **options)
    except psycopg.Error as e:
        raise _connect_error(e, where) from None
    async with conn:
        saver = AsyncPostgresSaver(conn, serde=CompressedSerializer(allowed_msgpack_modules=MSGPACK_ALLOWLIST))
        try:
            await _setup(conn, saver)
            if writer is not None:
                await _hold_thread(conn, writer, where)
        except psycopg.Error as e:
            raise _setup_error(e, where) from None
        try:
            yield saver
        except psycopg.OperationalError as e:
            raise ServiceError(f"the checkpointer's PostgreSQL server {where} failed during the run: {_reason(e)}; "
                               "continue it with --resume once the server is back") from None


async def _setup(conn: Any, saver: Any) -> None:
    """saver.setup() unless the tables are current, one process at a time (first waiting for any other's)."""
    if await _current(conn, saver):
        return
    deadline = time.monotonic() + SETUP_WAIT
    # pg_try_advisory_lock, not pg_advisory_lock: a statement blocked on the lock would hold a snapshot that the
    # holder's CREATE INDEX CONCURRENTLY waits for, and the two would deadlock
    while not (await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (LOCK_NAMESPACE,))).fetchone())["ok"]:
        if time.monotonic() > deadline:
            raise ServiceError(f"another process has been creating the checkpoint tables for {SETUP_WAIT:.0f} s")
        await asyncio.sleep(0.05)
    try:
        if not await _current(conn, saver):
            await saver.setup()
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_NAMESPACE,))


async def _current(conn: Any, saver: Any) -> bool:
    row = await (await conn.execute("SELECT to_regclass('checkpoint_migrations') IS NOT NULL AS ok")).fetchone()
    if not row["ok"]:
        return False
    row = await (await conn.execute("SELECT max(v) AS v FROM checkpoint_migrations")).fetchone()
    return row["v"] is not None and row["v"] >= len(saver.MIGRATIONS) - 1


async def _hold_thread(conn: Any, thread_id: str, where: str) -> None:
    """Take the thread's writer lock for this session (waiting TAKEOVER_GRACE for a dying holder), or refuse."""
    import psycopg

    for name, value in KEEPALIVES.items():
        await conn.execute(f"SET {name} = {int(value)}")
    await conn.execute(f"SET lock_timeout = '{TAKEOVER_GRACE}'")
    try:
        await conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_NAMESPACE, thread_id))
    except psycopg.errors.LockNotAvailable:
        raise await _in_use(conn, thread_id, where) from None
    finally:
        await conn.execute("RESET lock_timeout")


async def _in_use(conn: Any, thread_id: str, where: str) -> RunFolderError:
    row = await (await conn.execute(
        "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = %s::int4::oid "
        "AND l.objid = hashtext(%s)::oid AND l.database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database())", (LOCK_NAMESPACE, thread_id))).fetchone() or {}
    name = row.get("application_name") or ""
    pid, _, host = name.removeprefix("pixloop:").partition("@") if name.startswith("pixloop:") else ("?", "", "?")
    since = row["backend_start"].strftime("%Y-%m-%dT%H:%M:%S%z") if row.get("backend_start") else "?"
    session = row.get("pid", "?")
    return RunFolderError(f"run {thread_id!r} is in use: it is being written by process {pid} on {host} since {since} "
                          f"(PostgreSQL session {session} of {where}); wait for it to finish (or stop it) before "
                          "resuming it or starting another run with its thread id. A writer that died loses the "
                          f"lock when the server notices; to end it now: SELECT pg_terminate_backend({session})")


__all__ = ["CHECKPOINTER_ENV", "POSTGRES_SCHEMES", "check_checkpointer", "is_postgres", "postgres_checkpointer"]
