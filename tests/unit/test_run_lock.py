"""The single-writer lock of a run folder (flock locks belong to an open file, so two opens in one process
conflict exactly as two processes would)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.models.errors import RunFolderError
from agent.runtime.lock import LOCK_FILE, RunLock, refuse_if_in_use


def test_a_second_writer_is_refused_with_the_holders_thread(tmp_path: Path) -> None:
    with RunLock(tmp_path, "first"):
        with pytest.raises(RunFolderError, match="is in use: run 'first'"):
            RunLock(tmp_path, "second").acquire()


def test_probing_a_folder_being_written_is_refused_before_any_checkpoint_exists(tmp_path: Path) -> None:
    with RunLock(tmp_path, "busy"):
        with pytest.raises(RunFolderError, match="'busy'"):
            refuse_if_in_use(tmp_path)


def test_probing_leaves_a_stale_lock_record_for_the_writer_that_takes_it_over(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text('{"pid": 99999, "thread_id": "dead"}')
    refuse_if_in_use(tmp_path)  # nobody holds the flock: no error
    lock = RunLock(tmp_path, "next").acquire()
    try:
        assert lock.previous == {"pid": 99999, "thread_id": "dead"}
    finally:
        lock.release()


def test_probing_a_folder_without_a_lock_file_is_silent(tmp_path: Path) -> None:
    refuse_if_in_use(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
