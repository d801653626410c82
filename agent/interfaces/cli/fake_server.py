"""`pixloop fake-server`: a loopback server that speaks a real image or chat API, with faults on demand."""

from __future__ import annotations

import argparse
from typing import Any

from agent.interfaces.cli.common import EXIT_BAD_INPUT, fail
from agent.testing.faults import FAULT_KINDS

FAKE_KINDS = ("gemini", "openai", "comfyui", "a1111", "chat")


def add_fake_server_parser(sub: Any) -> None:
    fake = sub.add_parser(
        "fake-server", help="run a loopback server that speaks a real image/LLM API, with faults on demand",
        description="Serve a faithful fake of an image or chat API on 127.0.0.1, rendering real images with the "
                    "compose backend. Point pixloop (--base-url) or your own pipeline at it.",
        epilog="faults (--fault KIND[=VALUE][*COUNT], served in order to generation requests):\n" + "\n".join(
            f"  {k:<11} {v}" for k, v in FAULT_KINDS.items()) + "\n\nexample:\n"
            "  pixloop fake-server gemini --port 8089 --fault 429=1*2 --fault slow=0.5\n"
            "  pixloop run 'poster \"HELLO\"' --backend gemini --base-url http://127.0.0.1:8089",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fake.add_argument("kind", choices=FAKE_KINDS, help="which API to speak")
    fake.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one, printed)")
    fake.add_argument("--fault", action="append", default=[], metavar="SPEC", help="inject a fault (repeatable)")
    fake.add_argument("--latency", type=float, default=0.0, help="seconds added to every generation answer")


def fake_server_command(args: argparse.Namespace) -> int:
    # agent.testing.fakes imports without the web dependencies; they are checked here, before anything starts
    from agent.testing.fakes import INSTALL_HINT, FaultPlan, create_fake_app, missing_web_dependencies, serve

    missing = missing_web_dependencies()
    if missing:
        return fail(f"fake servers need the 'fakes' extra ({', '.join(missing)} not installed): {INSTALL_HINT}",
                    EXIT_BAD_INPUT)
    try:
        app = create_fake_app(args.kind, FaultPlan.parse(args.fault, args.latency))
    except ValueError as e:
        return fail(str(e), EXIT_BAD_INPUT)
    serve(app, port=args.port)
    return 0
