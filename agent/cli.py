"""The `pixloop` command line.

Exit codes: 0 passed, 3 finished below threshold, 2 bad input, 4 backend failure,
1 unexpected error, 130 interrupted (resume with --resume).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, Sequence

from agent.api import BriefError, RunResult, arun, aresume, make_brief
from agent.config import PixloopConfig, redact
from agent.report import describe_update
from agent.state import ASPECT_RATIOS, SIZE_TIERS

EXIT = {"passed": 0, "below_threshold": 3, "failed": 4}
EXIT_BAD_INPUT = 2

RUN_EPILOG = """\
examples:
  pixloop run 'A poster for a bakery that says "GRAND OPENING" and "Saturday 9am"' --out out/bakery
  pixloop run 'product shot, "NEW" in the corner' --reference mug.png --aspect 4:5 --size 2K
  pixloop run --resume run-20261121-101500-ab12          # continue a killed run

required text: every "quoted string" in the prompt (and every --text) must appear verbatim;
the OCR critic reads the image and the loop corrects it until it does.
outputs in --out: final.png, candidates/NN-cK.png, report.json, events.jsonl, checkpoints.sqlite
exit codes: 0 passed, 3 finished below threshold (best image still written), 2 bad input,
            4 backend failure, 130 interrupted (resume with --resume)
"""


def _threshold(value: str) -> tuple[str, float]:
    name, sep, num = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected CRITIC=VALUE (e.g. ocr=0.95), got {value!r}")
    try:
        return name.strip(), float(num)
    except ValueError:
        raise argparse.ArgumentTypeError(f"threshold for {name!r} is not a number: {num!r}") from None


def _option(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key.strip(), val


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixloop",
        description="Self-checking image generation: plan the image, generate it, check it with critics "
                    "(OCR, ...) and correct it until every threshold holds or the budget is spent.")
    parser.add_argument("--version", action="version", version="pixloop 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="generate an image and correct it until it passes",
                         description="Plan, generate, check and correct one image. Prints one line per step.",
                         epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("prompt", nargs="?", help='what to make; "quoted strings" become required text')
    run.add_argument("--reference", "-r", action="append", default=[], metavar="IMG",
                     help="reference image of a person or product to place (repeatable)")
    run.add_argument("--text", "-t", action="append", default=[], metavar="TEXT",
                     help="extra required text, besides quoted strings in the prompt (repeatable)")
    run.add_argument("--aspect", metavar="W:H", help=f"aspect ratio, one of {' '.join(ASPECT_RATIOS)} "
                     "(default: from prompt words such as 'portrait' or '16:9', else 1:1)")
    run.add_argument("--size", metavar="TIER", help="long side: 1K=1024, 2K=2048, 4K=4096 px "
                     "(default: from the prompt, else 1K)")
    run.add_argument("--backend", "-b", default="compose",
                     help="image backend (default: compose, the embedded offline renderer)")
    run.add_argument("--max-iterations", "-n", type=int, metavar="N", help="most candidates to generate (default 4)")
    run.add_argument("--max-seconds", type=float, metavar="S", help="time budget in active seconds (default 600)")
    run.add_argument("--max-cost", type=float, metavar="C", help="cost budget in backend cost units (default 100)")
    run.add_argument("--patience", type=int, metavar="K", help="stop after K rounds without improvement (default 2)")
    run.add_argument("--threshold", action="append", default=[], type=_threshold, metavar="CRITIC=VALUE",
                     help="override a critic's pass threshold in [0,1], e.g. ocr=0.95 (repeatable)")
    run.add_argument("--seed", type=int, default=0, help="seed for deterministic backends (default 0)")
    run.add_argument("--out", "-o", metavar="DIR", help="run folder (default: pixloop-out/THREAD_ID)")
    run.add_argument("--thread-id", metavar="ID", help="name the run (default: run-DATE-TIME-XXXX)")
    run.add_argument("--resume", metavar="THREAD_ID",
                     help="continue a stopped or killed run from its last checkpoint (give --out if you set it)")
    run.add_argument("--base-url", help="backend endpoint (for HTTP backends and local fake servers)")
    run.add_argument("--model", help="backend model id")
    run.add_argument("--backend-option", action="append", default=[], type=_option, metavar="KEY=VALUE",
                     help="backend-specific option, e.g. quality=high or workflow=flow.json (repeatable)")
    run.add_argument("--planner", default="rule", choices=["rule", "llm"],
                     help="rule: offline designer rules (default); llm: a chat model plans the layout")
    run.add_argument("--llm-base-url", metavar="URL",
                     help="OpenAI-compatible chat endpoint for --planner llm (OpenAI, vLLM, Ollama, LM Studio)")
    run.add_argument("--llm-model", metavar="ID", help="chat model id for --planner llm")
    run.add_argument("--json", action="store_true", help="print the report as JSON on stdout when done")
    run.add_argument("--quiet", "-q", action="store_true", help="no per-step progress lines")
    check = sub.add_parser(
        "check", help="run critics on an existing image (no generation)",
        description="Run pixloop's critics on any image and print a table (or JSON). Exit 0 if every critic "
                    "passes, 3 if some fail, 2 for bad input.",
        epilog=CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("image", help="the image to check")
    check.add_argument("--text", "-t", action="append", default=[], metavar="TEXT",
                       help="text that must appear verbatim (repeatable; enables the OCR critic)")
    check.add_argument("--reference", "-r", action="append", default=[], metavar="IMG",
                       help="reference photo of a person or product that must appear (repeatable)")
    check.add_argument("--original", metavar="IMG", help="the image an edit started from (enables preservation)")
    check.add_argument("--mask", metavar="IMG", help="edit mask, same size as --original; white = may change")
    size = check.add_mutually_exclusive_group()
    size.add_argument("--size", metavar="WxH", help="the pixel size that was requested, e.g. 2048x1152")
    size.add_argument("--aspect", metavar="W:H", help=f"the aspect ratio that was requested ({' '.join(ASPECT_RATIOS)})")
    check.add_argument("--critics", metavar="LIST", help="comma-separated critics to run (default: all that apply)")
    check.add_argument("--threshold", action="append", default=[], type=_threshold, metavar="CRITIC=VALUE",
                       help="override a critic's pass threshold in [0,1] (repeatable)")
    check.add_argument("--out", "-o", metavar="DIR", help="keep evidence images (heat maps, difference maps) here")
    check.add_argument("--json", action="store_true", help="print one JSON object with a 'critics' list")
    sub.add_parser("backends", help="list image backends, whether they can run here, and what they can do")
    sub.add_parser("critics", help="list critics with their default thresholds and where those come from")
    from agent.fakes.base import FAULT_KINDS

    fake = sub.add_parser(
        "fake-server", help="run a loopback server that speaks a real image/LLM API, with faults on demand",
        description="Serve a faithful fake of an image or chat API on 127.0.0.1, rendering real images with the "
                    "compose backend. Point pixloop (--base-url) or your own pipeline at it.",
        epilog="faults (--fault KIND[=VALUE][*COUNT], served in order to generation requests):\n" + "\n".join(
            f"  {k:<11} {v}" for k, v in FAULT_KINDS.items()) + "\n\nexample:\n"
            "  pixloop fake-server gemini --port 8089 --fault 429=1*2 --fault slow=0.5\n"
            "  pixloop run 'poster \"HELLO\"' --backend gemini --base-url http://127.0.0.1:8089",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fake.add_argument("kind", choices=["gemini", "openai", "comfyui", "a1111", "chat"], help="which API to speak")
    fake.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one, printed)")
    fake.add_argument("--fault", action="append", default=[], metavar="SPEC", help="inject a fault (repeatable)")
    fake.add_argument("--latency", type=float, default=0.0, help="seconds added to every generation answer")
    return parser


def cmd_backends() -> int:
    from agent.backends import BACKENDS, get_backend

    print(f"{'backend':<10} {'status':<34} {'edit':<5} {'mask':<5} {'refs':>4} {'long side':>9} {'cost/img':>8}")
    for name in sorted(BACKENDS):
        try:
            caps = get_backend(name, PixloopConfig(backend=name)).capabilities
            print(f"{name:<10} {'ready':<34} {str(caps.edit):<5} {str(caps.mask):<5} {caps.max_references:>4} "
                  f"{caps.native_long_side:>9} {caps.cost_per_image:>8.3f}")
        except Exception as e:  # noqa: BLE001 - a listing reports, it does not fail
            print(f"{name:<10} needs setup: {str(e).splitlines()[0][:90]}")
    return 0


def cmd_critics() -> int:
    from critics import critic_names
    from critics.thresholds import DEFAULTS

    for name in critic_names():
        t = DEFAULTS.get(name)
        print(f"{name:<13} threshold {t.value if t else 0.5:<5} {t.source if t else ''}")
    return 0


def cmd_fake_server(args: argparse.Namespace) -> int:
    from agent.fakes import FaultPlan, create_fake_app, serve

    try:
        app = create_fake_app(args.kind, FaultPlan.parse(args.fault, args.latency))
    except ValueError as e:
        return _fail(str(e), EXIT_BAD_INPUT)
    serve(app, port=args.port)
    return 0


CHECK_EPILOG = """\
examples:
  pixloop check poster.png --text "GRAND OPENING" --size 2048x1152
  pixloop check portrait.png --reference me.jpg --critics face,artifacts --json
  pixloop check edited.png --original photo.png --mask mask.png
exit codes: 0 every critic passed, 3 some failed, 2 bad input
"""


def cmd_check(args: argparse.Namespace) -> int:
    from agent.check import check_image, parse_size

    try:
        size = parse_size(args.size) if args.size else None
        names = [n.strip() for n in args.critics.split(",") if n.strip()] if args.critics else None
        thresholds = dict(args.threshold)
        bad = {k: v for k, v in thresholds.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"--threshold: thresholds are scores in [0, 1], got {bad}")
        result = check_image(args.image, texts=args.text, references=args.reference, original=args.original,
                             mask=args.mask, size=size, aspect=args.aspect, critics=names,
                             thresholds=thresholds, out=args.out)
    except ValueError as e:
        return _fail(str(e), EXIT_BAD_INPUT)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    else:
        print(f"{result.image} ({result.width}x{result.height})")
        print(f"{'critic':<13} {'score':>6} {'thresh':>6}  {'result':<6} feedback")
        for row in result.critics:
            mark = "pass" if row["passed"] else "FAIL"
            print(f"{row['name']:<13} {row['score']:>6.3f} {row['threshold']:>6.2f}  {mark:<6} {row['feedback']}")
        print("all critics passed" if result.passed else "some critics failed")
    return 0 if result.passed else 3


class _Progress:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, node: str, update: dict[str, Any]) -> None:
        if self.quiet:
            return
        line = describe_update(node, update)
        if line:
            print(f"[{time.perf_counter() - self.t0:6.1f}s] {line}", file=sys.stderr, flush=True)


def _print_result(result: RunResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.report, indent=2))
        return
    print(f"status: {result.status} ({result.stop_reason}) after {result.iterations} iteration(s)")
    if result.report.get("summary"):
        print(result.report["summary"])
    if result.final_image:
        print(f"final image: {result.final_image}")
    print(f"report: {result.run_dir / 'report.json'}")


def _fail(message: str, code: int) -> int:
    print(f"pixloop: error: {redact(message)}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    progress = _Progress(args.quiet)
    if args.resume:
        if args.prompt:
            return _fail("give either a PROMPT or --resume THREAD_ID, not both", EXIT_BAD_INPUT)
        coro = aresume(args.resume, args.out, on_event=progress)
        thread_id = args.resume
    else:
        if not args.prompt:
            return _fail("PROMPT is required (or --resume THREAD_ID)", EXIT_BAD_INPUT)
        if args.aspect is not None and args.aspect not in ASPECT_RATIOS:
            return _fail(f"--aspect: unknown aspect ratio {args.aspect!r}; choose one of {', '.join(ASPECT_RATIOS)}",
                         EXIT_BAD_INPUT)
        size = args.size.upper() if args.size else None
        if size is not None and size not in SIZE_TIERS:
            return _fail(f"--size: unknown size {args.size!r}; choose one of {', '.join(SIZE_TIERS)}", EXIT_BAD_INPUT)
        try:
            brief = make_brief(args.prompt, references=args.reference, required_text=args.text, aspect=args.aspect,
                               size=size, thresholds=dict(args.threshold), seed=args.seed,
                               max_iterations=args.max_iterations, max_seconds=args.max_seconds,
                               max_cost=args.max_cost, patience=args.patience)
            config = PixloopConfig(backend=args.backend, base_url=args.base_url, model=args.model,
                                   options=dict(args.backend_option), planner=args.planner,
                                   llm_base_url=args.llm_base_url, llm_model=args.llm_model)
        except (BriefError, ValueError) as e:
            return _fail(str(e), EXIT_BAD_INPUT)
        from agent.api import new_thread_id

        thread_id = args.thread_id or new_thread_id()
        out = args.out
        if not args.quiet:
            where = out or f"{config.out_root}/{thread_id}"
            print(f"pixloop run {thread_id} -> {where}", file=sys.stderr, flush=True)
        coro = arun(brief, config, out=out, thread_id=thread_id, on_event=progress)
    try:
        result = asyncio.run(coro)
    except BriefError as e:
        return _fail(str(e), EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        hint = f"pixloop run --resume {thread_id}" + (f" --out {args.out}" if args.out else "")
        print(f"\ninterrupted; continue with: {hint}", file=sys.stderr)
        return 130
    _print_result(result, args.json)
    if result.status == "failed" and result.error:
        print(f"pixloop: backend failure: {redact(result.error)}", file=sys.stderr)
    return EXIT.get(result.status, 1)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `pixloop check --json | head` closed our stdout: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args)
    if args.command == "check":
        return cmd_check(args)
    if args.command == "fake-server":
        return cmd_fake_server(args)
    if args.command == "backends":
        return cmd_backends()
    if args.command == "critics":
        return cmd_critics()
    parser.print_help()
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
