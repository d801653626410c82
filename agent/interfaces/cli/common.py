"""What every `pixloop` subcommand shares: argument types, error output, and exit codes from the error tree."""

from __future__ import annotations

import argparse
import sys

from agent.models.errors import PixloopError, exit_code_for
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


def fail(message: str, code: int) -> int:
    """Print `pixloop: error: ...` (secrets redacted) and return the exit code."""
    print(f"pixloop: error: {redact(message)}", file=sys.stderr)
    return code


def fail_with(error: PixloopError) -> int:
    """Report one of pixloop's own errors with the exit code its class declares."""
    return fail(str(error), exit_code_for(error))


__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERRUPTED", "fail", "fail_with", "option_arg", "threshold_arg"]
