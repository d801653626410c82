"""`pixloop fake-server`: a loopback server that speaks a real image or chat API, with faults on demand."""

from __future__ import annotations

import argparse
from typing import Any

from agent.interfaces.cli.common import EXIT_BAD_INPUT, fail, option_arg
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
            "  pixloop run 'poster \"HELLO\"' --backend gemini --base-url http://127.0.0.1:8089\n"
            "  pixloop fake-server gemini --port 8089 --option interleaved_misspell=2\n"
            "  GEMINI_API_KEY=x pixloop story 'Mia opens a bakery' --pages 3 --backend gemini --interleaved "
            "--base-url http://127.0.0.1:8089",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fake.add_argument("kind", choices=FAKE_KINDS, help="which API to speak")
    fake.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one, printed)")
    fake.add_argument("--fault", action="append", default=[], metavar="SPEC", help="inject a fault (repeatable)")
    fake.add_argument("--latency", type=float, default=0.0, help="seconds added to every generation answer")
    fake.add_argument("--option", action="append", default=[], type=option_arg, metavar="KEY=VALUE",
                      help="a fake's own option (see its module's docstring), e.g. interleaved_misspell=2 for "
                           "gemini's interleaved documents (repeatable)")


def _value(text: str) -> object:
    """An option's value as the fakes take it: an int, a float, true/false, or the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def fake_server_command(args: argparse.Namespace) -> int:
    # agent.testing.fakes imports without the web dependencies; they are checked here, before anything starts
    from agent.testing.fakes import INSTALL_HINT, FaultPlan, create_fake_app, missing_web_dependencies, serve

    missing = missing_web_dependencies()
    if missing:
        return fail(f"fake servers need the 'fakes' extra ({', '.join(missing)} not installed): {INSTALL_HINT}",
                    EXIT_BAD_INPUT)
    try:
        app = create_fake_app(args.kind, FaultPlan.parse(args.fault, args.latency),
                              **{k: _value(v) for k, v in args.option})
    except ValueError as e:
        return fail(str(e), EXIT_BAD_INPUT)
    serve(app, port=args.port)
    return 0
