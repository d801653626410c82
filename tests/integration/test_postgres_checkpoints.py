"""Checkpoints in a real PostgreSQL server (`PixloopConfig.checkpointer`): a run and a document finish with their
checkpoints in the database and none in the run folder, the password never lands anywhere, a thread id is one run
in the whole database, one writer per thread, and many processes may meet an empty database at once."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent import generate
from agent.interfaces.api import resume
from agent.interfaces.run_folder import CHECKPOINT_DB
from agent.interfaces.story import astory
from agent.models import PixloopConfig
from agent.models.document import DocumentBrief, ImageCue, Section, TextBlock
from agent.models.errors import ConfigError, RunFolderError
from agent.runtime.checkpoint import open_checkpointer
from agent.runtime.secrets import mask_url

pytestmark = pytest.mark.slow


def thread(name: str) -> str:
    """A thread id no other test (or earlier session on a kept database) has used: they share one database."""
    return f"{name}-{secrets.token_hex(3)}"


def password_of(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def every_file_text(folder: Path) -> list[str]:
    return [p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()]


def test_a_run_checkpointed_in_postgres_finishes_with_its_checkpoints_there_and_none_in_its_folder(
        tmp_path: Path, postgres_url: str) -> None:
    tid = thread("pg-run")
    config = PixloopConfig(backend="compose", checkpointer=postgres_url)
    result = generate('A bold poster that says "HELLO"', out=tmp_path / "run", thread_id=tid, max_iterations=2,
                      config=config)

    assert result.status == "passed" and result.final_image and result.final_image.is_file()
    assert not (result.run_dir / CHECKPOINT_DB).exists() and not list(result.run_dir.glob("checkpoints*"))
    assert rows(postgres_url, "SELECT count(*) FROM checkpoints WHERE thread_id = %s", tid)[0][0] > 0
    blobs = rows(postgres_url, "SELECT type, blob FROM checkpoint_blobs WHERE thread_id = %s UNION ALL "
                               "SELECT type, blob FROM checkpoint_writes WHERE thread_id = %s", tid, tid)
    assert "msgpack+zlib" in {t for t, _ in blobs}, "the SQLite checkpointer's serializer writes them"
    assert all(b"\x89PNG" not in bytes(b or b"") for _, b in blobs), "image references, not pixels"

    secret = password_of(postgres_url)
    saved = (result.run_dir / "run.json").read_text()
    assert mask_url(postgres_url) in saved and "127.0.0.1" in saved
    for text in every_file_text(result.run_dir):
        assert secret not in text
    stored = rows(postgres_url, "SELECT checkpoint::text || metadata::text FROM checkpoints WHERE thread_id = %s", tid)
    assert all(secret not in text for (text,) in stored)
    assert all(secret.encode() not in bytes(b or b"") for _, b in blobs)

    again = resume(tid, tmp_path / "run", checkpointer=postgres_url)
    assert again.status == "passed" and again.iterations == result.iterations


def test_a_document_checkpointed_in_postgres_finishes(tmp_path: Path, postgres_url: str) -> None:
    tid = thread("pg-doc")
    doc = DocumentBrief(title="Signs", sections=[
        Section(id=f"s{k}", title=f"Page {k}", blocks=[
            TextBlock(text=f"Page {k}."), ImageCue(id=f"s{k}-i1", prompt=f'A shop sign that says "{word}"',
                                                   required_text=[word])])
        for k, word in enumerate(["OPEN", "CLOSED"], 1)])
    result = asyncio.run(astory(doc, PixloopConfig(backend="compose", checkpointer=postgres_url),
                                out=tmp_path / "doc", thread_id=tid))

    assert result.status == "passed" and result.html and result.html.is_file()
    assert len(result.images) == 2 and all(o.status == "passed" for o in result.images.values())
    assert not list((tmp_path / "doc").rglob(CHECKPOINT_DB))
    namespaces = {ns for (ns,) in rows(postgres_url, "SELECT DISTINCT checkpoint_ns FROM checkpoints "
                                                     "WHERE thread_id = %s", tid)}
    assert "" in namespaces and len(namespaces) > 1, "each image's loop is checkpointed in the document's thread"


def test_a_thread_id_is_one_run_in_the_whole_database(tmp_path: Path, postgres_url: str) -> None:
    tid = thread("pg-twice")
    config = PixloopConfig(backend="compose", checkpointer=postgres_url)
    generate('A poster that says "ONE"', out=tmp_path / "a", thread_id=tid, max_iterations=1, config=config)

    with pytest.raises(RunFolderError, match=f"run '{tid}' already has checkpoints in postgresql://\\*\\*\\*@"):
        generate('A poster that says "TWO"', out=tmp_path / "b", thread_id=tid, max_iterations=1, config=config)
    assert not (tmp_path / "b" / "run.json").exists()

    over = generate('A poster that says "THREE"', out=tmp_path / "a", thread_id=tid, max_iterations=1,
                    config=config, if_exists="overwrite")
    assert [e["content"] for e in over.report["plan"]["text"]] == ["THREE"]
    again = resume(tid, tmp_path / "a", checkpointer=postgres_url)
    assert [e["content"] for e in again.report["plan"]["text"]] == ["THREE"], "the overwritten run's checkpoints went"


def test_one_writer_per_thread_until_its_session_ends(tmp_path: Path, postgres_url: str) -> None:
    tid = thread("pg-lock")

    async def go() -> None:
        async with open_checkpointer(postgres_url, tmp_path, writer=tid):
            with pytest.raises(RunFolderError) as refused:
                async with open_checkpointer(postgres_url, tmp_path / "elsewhere", writer=tid):
                    pass
            message = str(refused.value)
            assert f"run '{tid}' is in use" in message and "being written by process" in message
            assert "pg_terminate_backend(" in message and password_of(postgres_url) not in message
            async with open_checkpointer(postgres_url, tmp_path, writer=thread("pg-other")):
                pass  # another thread is not held up
        async with open_checkpointer(postgres_url, tmp_path, writer=tid):
            pass  # the first writer's session ended: the thread is free

    asyncio.run(go())


def test_many_processes_meeting_an_empty_database_set_it_up_once(postgres_url: str) -> None:
    """LangGraph's setup() alone fails here (each inserts migration 0); pixloop's runs it under an advisory lock."""
    name = f"pixloop_setup_{secrets.token_hex(3)}"
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres_url.rsplit("/", 1)[0] + "/" + name

    async def one(k: int) -> None:
        async with open_checkpointer(url, ".", writer=f"setup-{k}"):
            pass

    async def many() -> list[Any]:
        return await asyncio.gather(*(one(k) for k in range(5)), return_exceptions=True)

    try:
        assert asyncio.run(many()) == [None] * 5
        from langgraph.checkpoint.postgres.base import MIGRATIONS

        assert rows(url, "SELECT count(*) FROM checkpoint_migrations")[0][0] == len(MIGRATIONS)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_a_checkpointer_that_is_not_postgres_is_refused_naming_the_accepted_forms(tmp_path: Path) -> None:
    config = PixloopConfig(backend="compose", checkpointer="mysql://bob:hunter2@db/pixloop")
    with pytest.raises(ConfigError, match=r"not a PostgreSQL URL: give postgresql://.*postgres://") as refused:
        generate('A poster that says "HI"', out=tmp_path / "run", config=config)
    assert "hunter2" not in str(refused.value) and "mysql://***@db/pixloop" in str(refused.value)
    assert not (tmp_path / "run").exists()


def test_a_role_that_may_not_create_the_tables_is_bad_input_naming_why(postgres_url: str) -> None:
    name = f"pixloop_readonly_{secrets.token_hex(3)}"
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'ro-secret'")
    url = f"postgresql://{name}:ro-secret@" + postgres_url.split("@", 1)[1].rsplit("/", 1)[0] + f"/{name}"

    async def open_it() -> None:
        async with open_checkpointer(url, ".", writer="t"):
            pass

    try:
        with pytest.raises(ConfigError, match="cannot be used: permission denied for schema public") as refused:
            asyncio.run(open_it())
        assert "ro-secret" not in str(refused.value)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
            conn.execute(f"DROP ROLE {name}")
