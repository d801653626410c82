"""`pixloop mcp`: serve pixloop's tools to MCP clients (Claude Desktop, IDEs, agents) over stdio or HTTP.

The server itself (`agent.interfaces.mcp`: the MCP SDK, uvicorn) is imported when this command runs, not when
the CLI starts: every other subcommand would pay for it, and that package uses the CLI's own line formats.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.interfaces.api import make_brief, preflight
from agent.interfaces.cli.common import EXIT_BAD_INPUT, fail
from agent.interfaces.cli.run import add_loop_options, brief_options, provenance_options
from agent.models import PixloopConfig
from agent.models.errors import InputError, PixloopError
from agent.runtime.confine import INPUT_ROOT_ENV, OUTPUT_ROOT_ENV, Confinement
from agent.runtime.paths import prepare_out_dir

if TYPE_CHECKING:
    from agent.interfaces.mcp import ServerSettings

DEFAULT_HOST = "127.0.0.1"

MCP_EPILOG = f"""\
examples:
  pixloop mcp                                   # stdio: what an MCP client's config starts
  pixloop mcp --http 8765                       # streamable HTTP on http://127.0.0.1:8765/mcp
  pixloop mcp --out-root ~/pixloop-runs --input-root ~/Pictures --max-iterations 3

tools: generate, edit, check, story, report. Clients are remote users: run folders go only under --out-root
(default ${OUTPUT_ROOT_ENV}, else pixloop-out); images come as data:image/...;base64, URLs, files under
--input-root (default ${INPUT_ROOT_ENV}, else none), or files the server wrote itself under --out-root.
The run options below are the server's defaults for every call (a call may set its own seed, budget, thresholds).
"""

NOT_SERVED = ("--sketch", "--out", "--thread-id", "--if-exists", "--json", "--quiet", "--checkpointer")
"""Options of `add_loop_options` a server does not take: those that name one run or its output (a client gives
them per call, or the server decides: run folders under --out-root), and --checkpointer (the server keeps each
run's checkpoints in its run folder, where `report` and the folder's own files are)."""
CONFIG_OPTIONS = ("backend", "base_url", "model", "planner", "llm_base_url", "llm_model", "strict")
"""PixloopConfig fields the namespace holds as they are."""


class ServerOptions:
    """`add_loop_options` for a server: the options every call shares (backend, budgets, thresholds, provenance)
    are added with `pixloop run`'s own flags and help; the others (NOT_SERVED) only set their defaults, so
    `brief_options` and `provenance_options` read the namespace as they do for a run."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser

    def add_argument(self, *flags: str, **kwargs: Any) -> None:
        long = next(f for f in flags if f.startswith("--"))
        if long not in NOT_SERVED:
            self.parser.add_argument(*flags, **kwargs)
            return
        dest = kwargs.get("dest") or long[2:].replace("-", "_")
        self.parser.set_defaults(**{dest: False if kwargs.get("action") == "store_true" else kwargs.get("default")})


def port_arg(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535 (0: any free port), got {value!r}")
    return int(value)


def add_mcp_parser(sub: Any) -> None:
    p = sub.add_parser("mcp", help="serve pixloop's tools to MCP clients (stdio, or streamable HTTP with --http)",
                       description="Serve generate, edit, check, story and report as Model Context Protocol tools: "
                                   "over stdio by default, over streamable HTTP with --http PORT.",
                       epilog=MCP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--http", type=port_arg, metavar="PORT",
                   help="serve streamable HTTP on PORT at /mcp instead of stdio (0: a free port; the URL is printed "
                        "on stderr)")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address for --http (default {DEFAULT_HOST}; another one serves every machine that can "
                        "reach it, without authentication)")
    p.add_argument("--out-root", metavar="DIR", help="the only folder run folders are created in "
                   f"(default ${OUTPUT_ROOT_ENV}, else pixloop-out)")
    p.add_argument("--input-root", metavar="DIR", help="clients may name image files under DIR "
                   f"(default ${INPUT_ROOT_ENV}, else none: images only as data: URLs)")
    add_loop_options(ServerOptions(p))


def server_settings(args: argparse.Namespace) -> ServerSettings:
    """The server's confinement, configuration and brief defaults, checked before it serves anyone: an unknown
    backend, planner or critic, or an unusable folder, is refused at start (InputError / BriefError)."""
    from agent.interfaces.mcp import ServerSettings

    env = Confinement.from_env()
    output_root = Path(args.out_root).absolute() if args.out_root else env.output_root
    input_root = Path(args.input_root).absolute() if args.input_root else env.input_root
    if input_root is not None and not input_root.is_dir():
        raise InputError(f"--input-root {input_root}: no such folder")
    prepare_out_dir(output_root, "--out-root")
    config = PixloopConfig(**{k: getattr(args, k) for k in CONFIG_OPTIONS}, options=dict(args.backend_option),
                           **provenance_options(args))
    defaults = brief_options(args)
    preflight(make_brief("(pixloop mcp defaults)", **defaults), config)
    return ServerSettings(confinement=Confinement(output_root=output_root, input_root=input_root), config=config,
                          defaults=defaults)


def mcp_command(args: argparse.Namespace) -> int:
    from agent.interfaces.mcp import build_server
    from agent.interfaces.mcp.transport import bind, is_loopback, say, serve_http, serve_stdio

    try:
        settings = server_settings(args)
    except (PixloopError, ValueError) as e:
        return fail(str(e), EXIT_BAD_INPUT)
    server = build_server(settings)
    try:
        if args.http is None:
            asyncio.run(serve_stdio(server))
            return 0
        try:
            sock = bind(args.host, args.http)
        except OSError as e:
            return fail(f"--http {args.http} on {args.host}: {e.strerror or e}", EXIT_BAD_INPUT)
        if not is_loopback(args.host):
            say(f"warning: {args.host} is not loopback: anyone who reaches this port can run pixloop here "
                "(there is no authentication)")
        asyncio.run(serve_http(server, sock, announce=lambda url: say(f"listening on {url}")))
    except KeyboardInterrupt:
        pass
    return 0


__all__ = ["add_mcp_parser", "mcp_command", "server_settings"]
