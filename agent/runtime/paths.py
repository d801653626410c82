"""Folders pixloop writes into: checked before anything is written, with errors that name the option.

A run folder must be a folder pixloop can create and write (not an existing file, not under a file, not
in /proc, not /dev/null); a thread id names a folder under the output root and so may not contain a path.
"""

from __future__ import annotations

import errno
import re
import tempfile
from pathlib import Path

from agent.models.errors import InputError

THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A thread id is one folder name: letters, digits, '.', '_', '-', not starting with '.', at most 128 chars."""


def check_thread_id(thread_id: str, what: str = "--thread-id") -> str:
    """The thread id, or InputError when it is not a plain folder name (it could leave the output root)."""
    if not THREAD_ID.fullmatch(thread_id):
        raise InputError(f"{what}: {thread_id!r} is not a run name: use letters, digits, '.', '_' and '-' "
                         "(at most 128, not starting with '.'); a name cannot contain a path")
    return thread_id


def prepare_out_dir(path: str | Path, what: str = "--out") -> Path:
    """Create `path` (with its parents) if needed and check pixloop can write in it; InputError naming `what`."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        kind = "a file" if p.is_file() else "not a folder (a device, pipe or socket)"
        raise InputError(f"{what} {p} is {kind}; give a folder (it is created if missing)")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"{what} {p}: a part of that path is a file, not a folder") from None
    except PermissionError:
        raise InputError(f"{what} {p}: no permission to create it") from None
    except OSError as e:
        raise InputError(f"{what} {p} cannot be created: {e.strerror or e}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=p, prefix=".pixloop-write-test-"):
            pass
    except OSError as e:
        reason = "no permission to write there" if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) \
            else (e.strerror or str(e))
        raise InputError(f"{what} {p}: {reason}") from None
    return p


def inside(root: Path, path: Path) -> bool:
    """Whether `path` (resolved, symlinks followed) lies in `root` (resolved)."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


__all__ = ["THREAD_ID", "check_thread_id", "inside", "prepare_out_dir"]
