"""The run's checkpointer: the run folder's SQLite file, or PostgreSQL (`open_checkpointer`).

LangGraph's AsyncSqliteSaver sends every statement through aiosqlite's worker thread;
on a 2-core machine those thread hops cost more than the writes. Here the async methods
run the sync SqliteSaver inline: in WAL mode with synchronous=NORMAL each write is an
append of a few KB (~0.1 ms), durable against a killed process, which is what resume needs.
With a PostgreSQL URL the checkpoints go to that database instead (agent.runtime.checkpoint_postgres),
serialized the same way.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from agent.models import CHECKPOINTED_MODELS
from agent.models.base import compact_dumps

CHECKPOINT_FILE = "checkpoints.sqlite"
"""The SQLite checkpoint database in a run folder (when no PostgreSQL checkpointer is given)."""

MSGPACK_ALLOWLIST: list[tuple[str, ...]] = [
    *((cls.__module__, cls.__name__) for cls in CHECKPOINTED_MODELS),
    ("pathlib", "PosixPath"), ("pathlib", "Path"), ("pathlib", "WindowsPath")]
"""Classes the checkpointer may revive from msgpack (LangGraph refuses any class not listed)."""


class CompressedSerializer(JsonPlusSerializer):
    """msgpack (LangGraph's own format) without pixloop models' default-valued fields, plus zlib for blobs over
    256 bytes: checkpoints repeat field names."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        with compact_dumps():  # pixloop models without their default-valued fields
            type_, data = super().dumps_typed(obj)
        if len(data) > 256 and type_ == "msgpack":
            return "msgpack+zlib", zlib.compress(data, 6)
        return type_, data

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, blob = data
        if type_ == "msgpack+zlib":
            return super().loads_typed(("msgpack", zlib.decompress(blob)))
        return super().loads_typed(data)


class RunCheckpointer(SqliteSaver):
    """SqliteSaver usable from async graphs without a thread hop per statement."""

    async def aget_tuple(self, config):
        return self.get_tuple(config)

    async def alist(self, config, *, filter=None, before=None, limit=None) -> AsyncIterator[Any]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(self, config, checkpoint, metadata, new_versions):
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        return self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        return self.delete_thread(thread_id)

    async def aget_delta_channel_history(self, *, config, channels: Sequence[str]) -> Mapping[str, Any]:
        return self.get_delta_channel_history(config=config, channels=channels)


@contextmanager
def run_checkpointer(path: str | Path) -> Iterator[RunCheckpointer]:
    """Open (creating if needed) the checkpoint database of one run folder."""
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.isolation_level = "DEFERRED"  # transactions again (WAL set up above in autocommit mode)
        saver = RunCheckpointer(conn, serde=CompressedSerializer(allowed_msgpack_modules=MSGPACK_ALLOWLIST))
        saver.setup()
        yield saver
    finally:
        conn.close()


@asynccontextmanager
async def open_checkpointer(checkpointer: str | None, run_dir: str | Path, *,
                            writer: str | None = None) -> AsyncIterator[Any]:
    """The checkpointer a run's config names: None for `run_dir`'s SQLite file, a PostgreSQL URL (postgresql:// or
    postgres://) for that database. With `writer` (the run's thread id) and PostgreSQL, this process holds the
    thread's writer lock in the database until the context ends (the run folder's RunLock is the caller's)."""
    if checkpointer is None:
        with run_checkpointer(Path(run_dir) / CHECKPOINT_FILE) as saver:
            yield saver
        return
    from agent.runtime.checkpoint_postgres import postgres_checkpointer

    async with postgres_checkpointer(checkpointer, writer=writer) as pg_saver:
        yield pg_saver


__all__ = ["CHECKPOINT_FILE", "MSGPACK_ALLOWLIST", "CompressedSerializer", "RunCheckpointer", "open_checkpointer",
           "run_checkpointer"]
