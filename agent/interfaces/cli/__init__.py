"""The `pixloop` command line: one module per subcommand, exit codes from the error tree.

Exit codes: 0 passed, 3 finished below threshold, 2 bad input, 4 backend or planning failure,
1 unexpected error, 130 interrupted (resume with --resume).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from agent import __version__
from agent.interfaces.cli.audit import add_audit_parser, audit_command
from agent.interfaces.cli.batch import add_batch_parser, batch_command
from agent.interfaces.cli.check import add_check_parser, check_command
from agent.interfaces.cli.common import EXIT_BAD_INPUT
from agent.interfaces.cli.edit import add_edit_parser, edit_command
from agent.interfaces.cli.fake_server import add_fake_server_parser, fake_server_command
from agent.interfaces.cli.listing import backends_command, critics_command, planners_command
from agent.interfaces.cli.mcp import add_mcp_parser, mcp_command
from agent.interfaces.cli.provenance import add_provenance_parser, provenance_command
from agent.interfaces.cli.run import add_run_parser, run_command
from agent.interfaces.cli.story import add_story_parser, story_command
from agent.interfaces.cli.verify import add_verify_parser, verify_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixloop",
        description="Self-checking image generation: plan the image, generate it, check it with critics "
                    "(OCR, ...) and correct it until every threshold holds or the budget is spent.")
    parser.add_argument("--version", action="version", version=f"pixloop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_run_parser(sub)
    add_edit_parser(sub)
    add_check_parser(sub)
    add_story_parser(sub)
    add_batch_parser(sub)
    add_verify_parser(sub)
    add_audit_parser(sub)
    sub.add_parser("backends", help="list image backends (plugins too), whether they can run here, what they can do")
    sub.add_parser("critics", help="list critics (plugins too) with their default thresholds and where those come from")
    sub.add_parser("planners", help="list planners (plugins too)")
    add_fake_server_parser(sub)
    add_provenance_parser(sub)
    add_mcp_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `pixloop check --json | head` closed our stdout: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_command(args)
    if args.command == "edit":
        return edit_command(args)
    if args.command == "check":
        return check_command(args)
    if args.command == "story":
        return story_command(args)
    if args.command == "batch":
        return batch_command(args)
    if args.command == "verify":
        return verify_command(args)
    if args.command == "audit":
        return audit_command(args)
    if args.command == "fake-server":
        return fake_server_command(args)
    if args.command == "backends":
        return backends_command()
    if args.command == "critics":
        return critics_command()
    if args.command == "planners":
        return planners_command()
    if args.command == "provenance":
        return provenance_command(args)
    if args.command == "mcp":
        return mcp_command(args)
    parser.print_help()
    return EXIT_BAD_INPUT


__all__ = ["build_parser", "main"]


if __name__ == "__main__":
    sys.exit(main())
