"""What every `pixloop` subcommand shares: argument types, error output, and exit codes from the error tree."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from agent.models.errors import PixloopError, exit_code_for
from agent.runtime.checkpoint_postgres import CHECKPOINTER_ENV
from agent.runtime.secrets import redact

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def threshold_arg(value: str) -> tuple[str, float]:
    """`CRITIC=VALUE` for --threshold."""
    name, sep, num = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected CRITIC=VALUE (e.g. ocr=0.95), got {value!r}")
    try:
        return name.strip(), float(num)
    except ValueError:
        raise argparse.ArgumentTypeError(f"threshold for {name!r} is not a number: {num!r}") from None


def option_arg(value: str) -> tuple[str, str]:
    """`KEY=VALUE` for --backend-option."""
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key.strip(), val


def add_checkpointer_option(p: Any) -> None:
    """--checkpointer URL: where a run's checkpoints go (and, with --resume, where they are)."""
    p.add_argument("--checkpointer", metavar="URL",
                   help="keep the run's checkpoints in this PostgreSQL database (postgresql://USER@HOST[:PORT]/DB or "
                        "postgres://...) instead of checkpoints.sqlite in the run folder, so that a process on any "
                        "machine that shares the run folder's storage can --resume it. Default: "
                        f"${CHECKPOINTER_ENV}; '' for the run folder's SQLite file. A password in the URL is never "
                        "saved: give --checkpointer again with --resume (or set "
                        f"{CHECKPOINTER_ENV}, or keep the password in ~/.pgpass or PGPASSWORD)")


def checkpointer_option(args: argparse.Namespace) -> str | None:
    """A new run's checkpointer: --checkpointer, else $PIXLOOP_CHECKPOINTER; empty means the run folder's SQLite."""
    value = args.checkpointer if args.checkpointer is not None else os.environ.get(CHECKPOINTER_ENV, "")
    return value.strip() or None


def fail(message: str, code: int) -> int:
    """Print `pixloop: error: ...` (secrets redacted) and return the exit code."""
    print(f"pixloop: error: {redact(message)}", file=sys.stderr)
    return code


def fail_with(error: PixloopError) -> int:
    """Report one of pixloop's own errors with the exit code its class declares."""
    return fail(str(error), exit_code_for(error))


__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "add_checkpointer_option", "checkpointer_option", "fail", "fail_with",
           "option_arg", "threshold_arg"]
