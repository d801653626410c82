"""Choosing the folder a run writes into, and what happens when it already holds a run.

A new run never silently replaces another: a folder that holds a run (its `run.json` or checkpoint) is
refused unless the caller asks for a fresh sub-folder (`if_exists="new"`: `<out>/<thread_id>`) or to
overwrite it (`if_exists="overwrite"`: pixloop's own files there are removed first, and only when no other
process is writing the folder). Every folder is checked for being creatable and writable first.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

from agent.models.errors import RunFolderError
from agent.runtime.checkpoint import CHECKPOINT_FILE
from agent.runtime.paths import check_thread_id, prepare_out_dir

CHECKPOINT_DB = CHECKPOINT_FILE
RUN_FILE = "run.json"
IfExists = Literal["refuse", "new", "overwrite"]
IF_EXISTS: tuple[str, ...] = IfExists.__args__  # type: ignore[attr-defined]

RUN_FILES = ("run.json", "report.json", "events.jsonl", CHECKPOINT_DB, f"{CHECKPOINT_DB}-wal", f"{CHECKPOINT_DB}-shm",
             "final.png", "final.jpg", "final.webp", "final.gif",
             "document.json", "story.md", "story.html")
RUN_FOLDERS = ("candidates", "images", "plans", "docs", "runs")
"""What a run (or a document: its story files and each image's run folders) writes in its folder: all that
`overwrite` removes (nothing else of the folder is touched)."""


def holds_run(folder: Path) -> bool:
    return (folder / RUN_FILE).exists() or (folder / CHECKPOINT_DB).exists()


def run_in(folder: Path) -> str | None:
    """The thread id of the run a folder holds, when its run.json says."""
    try:
        value = json.loads((folder / RUN_FILE).read_text()).get("thread_id")
        return value if isinstance(value, str) else None
    except (OSError, ValueError, AttributeError):
        return None


def saved_checkpointer(folder: Path) -> str | None:
    """The checkpointer URL a folder's run.json names (credentials masked), or None: its checkpoints.sqlite."""
    try:
        value = json.loads((folder / RUN_FILE).read_text())["config"].get("checkpointer")
        return value if isinstance(value, str) and value else None
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None


def resumable(folder: Path) -> bool:
    """Whether a folder holds a run with checkpoints to continue: its checkpoints.sqlite, or a run.json that names
    a database (PostgreSQL) holding them."""
    return (folder / CHECKPOINT_DB).is_file() or saved_checkpointer(folder) is not None


def choose_run_dir(out: str | Path | None, out_root: str | Path, thread_id: str,
                   if_exists: IfExists = "refuse") -> Path:
    """The folder a new run writes into (created and checked writable), or a RunFolderError/InputError."""
    check_thread_id(thread_id)
    if if_exists not in IF_EXISTS:
        raise RunFolderError(f"--if-exists: {if_exists!r} is not one of {', '.join(IF_EXISTS)}")
    folder = prepare_out_dir(out, "--out") if out else prepare_out_dir(Path(out_root) / thread_id, "the run folder")
    if not holds_run(folder):
        return folder
    if if_exists == "new":
        sub = folder / thread_id
        if holds_run(sub):
            raise RunFolderError(f"{sub} already holds a run; give another --thread-id")
        return prepare_out_dir(sub, "--out")
    if if_exists == "overwrite":
        return folder
    other = run_in(folder)
    name = f"run {other!r}" if other else "another run"
    resume = f"`pixloop run --resume {other} --out {folder}`, " if other else ""
    raise RunFolderError(f"{folder} already holds {name}: continue it with {resume}or pass --if-exists new "
                         "(a sub-folder for this run) or --if-exists overwrite (replace it)")


def clear_run(folder: Path) -> None:
    """Remove what a run wrote in `folder` (its lock file stays: the caller holds it)."""
    for name in RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    for name in RUN_FOLDERS:
        shutil.rmtree(folder / name, ignore_errors=True)


__all__ = ["CHECKPOINT_DB", "IF_EXISTS", "RUN_FILE", "IfExists", "choose_run_dir", "clear_run", "holds_run",
           "resumable", "run_in", "saved_checkpointer"]
