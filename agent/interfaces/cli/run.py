"""`pixloop run`: plan, generate, check and correct one image, printing a line per step."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from agent.interfaces.api import RunResult, aresume, arun, make_brief, new_thread_id
from agent.interfaces.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    add_checkpointer_option,
    checkpointer_option,
    fail,
    fail_with,
    option_arg,
    threshold_arg,
)
from agent.interfaces.progress import describe_update
from agent.interfaces.run_folder import IF_EXISTS
from agent.models import ASPECT_RATIOS, SIZE_TIERS, Brief, PixloopConfig
from agent.models.errors import BriefError, PixloopError
from agent.runtime.secrets import redact

RUN_EPILOG = """\
examples:
  pixloop run 'A poster for a bakery that says "GRAND OPENING" and "Saturday 9am"' --out out/bakery
  pixloop run 'product shot, "NEW" in the corner' --reference mug.png --aspect 4:5 --size 2K
  pixloop run --resume run-20261121-101500-ab12          # continue a killed run
  pixloop run 'A poster "HI"' --out /shared/runs/hi --checkpointer postgresql://pixloop@db/pixloop
  pixloop run --resume THREAD --out /shared/runs/hi --checkpointer postgresql://pixloop@db/pixloop  # any machine

required text: every "quoted string" in the prompt (and every --text) must appear verbatim;
the OCR critic reads the image and the loop corrects it until it does.
outputs in --out: final.png, candidates/NN-cK.png, report.json, events.jsonl, checkpoints.sqlite
            (with --checkpointer the checkpoints are in that database instead)
exit codes: 0 passed, 3 finished below threshold (best image still written, also when a later
            iteration's backend call failed), 2 bad input, 4 backend or planning failure with no image
            (or the --checkpointer database cannot be reached),
            5 refused by the content policy (nothing delivered; the message names the rule),
            1 internal error (a report is still written), 130 interrupted (resume with --resume)
"""



def add_run_parser(sub: Any) -> None:
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
    add_loop_options(run)
    run.add_argument("--resume", metavar="THREAD_ID",
                     help="continue a stopped or killed run from its last checkpoint (give --out if you set it)")


def add_planner_options(p: Any) -> None:
    """Who plans: --planner, and the chat model an llm planner asks (run, edit, story, batch, mcp)."""
    p.add_argument("--planner", default="rule", metavar="NAME",
                   help="rule: offline designer rules (default); llm: a chat model plans the layout; "
                        "or a planner a plugin adds")
    p.add_argument("--llm-base-url", metavar="URL",
                   help="OpenAI-compatible chat endpoint for --planner llm (OpenAI, vLLM, Ollama, LM Studio)")
    p.add_argument("--llm-model", metavar="ID", help="chat model id for --planner llm")


def add_delivery_options(p: Any) -> None:
    """What every delivered image gets and what may be delivered: signing, the watermark, the content policy."""
    p.add_argument("--sign-cert", metavar="PEM", help="sign the delivered image with C2PA Content Credentials: the "
                   "certificate chain (`pixloop provenance test-cert DIR` makes a test one)")
    p.add_argument("--sign-key", metavar="PEM", help="the private key of --sign-cert")
    p.add_argument("--no-watermark", action="store_true", help="deliver without the invisible watermark")
    p.add_argument("--policy", metavar="FILE", help="a content policy (TOML) merged over the default one")
    p.add_argument("--moderation-base-url", metavar="URL", help="also check the brief with this OpenAI-compatible "
                   "moderation endpoint (e.g. https://api.openai.com/v1 with OPENAI_API_KEY)")


def add_loop_options(p: Any) -> None:
    """The options every command that runs the loop takes: backend, budgets, thresholds, run folder, output."""
    p.add_argument("--sketch", metavar="IMG", help="a sketch or wireframe whose layout to follow: its boxes become "
                   "the layout, the text written in them the text (unless given), and the structure critic checks "
                   "the result keeps it")
    p.add_argument("--backend", "-b", default="compose",
                     help="image backend (default: compose, the embedded offline renderer)")
    p.add_argument("--max-iterations", "-n", type=int, metavar="N", help="most candidates to generate (default 4)")
    p.add_argument("--max-seconds", type=float, metavar="S", help="time budget in active seconds (default 600)")
    p.add_argument("--max-cost", type=float, metavar="C", help="cost budget in backend cost units (default 100)")
    p.add_argument("--patience", type=int, metavar="K", help="stop after K rounds without improvement (default 2)")
    p.add_argument("--threshold", action="append", default=[], type=threshold_arg, metavar="CRITIC=VALUE",
                     help="override a critic's pass threshold in [0,1], e.g. ocr=0.95 (repeatable)")
    p.add_argument("--critic", action="append", default=[], metavar="NAME",
                     help="also run this critic (repeatable), e.g. one a plugin adds; see `pixloop critics`")
    p.add_argument("--seed", type=int, default=0, help="seed for deterministic backends (default 0)")
    p.add_argument("--out", "-o", metavar="DIR", help="run folder (default: pixloop-out/THREAD_ID)")
    p.add_argument("--thread-id", metavar="ID", help="name the run (default: run-DATE-TIME-XXXX): letters, "
                     "digits, '.', '_', '-'")
    p.add_argument("--if-exists", choices=IF_EXISTS, default="refuse",
                     help="when --out already holds a run: refuse (default), new (a sub-folder for this run) or "
                          "overwrite (replace that run's files)")
    p.add_argument("--base-url", help="backend endpoint (for HTTP backends and local fake servers)")
    p.add_argument("--model", help="backend model id")
    p.add_argument("--backend-option", action="append", default=[], type=option_arg, metavar="KEY=VALUE",
                     help="backend-specific option, e.g. quality=high or workflow=flow.json (repeatable)")
    add_planner_options(p)
    add_delivery_options(p)
    p.add_argument("--strict", action="store_true",
                     help="end below threshold (exit 3) when a requirement is left unverified (no critic checks it)")
    add_checkpointer_option(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout when done")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-step progress lines")


class Progress:
    """Prints one timed line per graph step to stderr (unless quiet)."""

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
        print(json.dumps(result.report, indent=2, allow_nan=False))
        return
    print(f"status: {result.status} ({result.stop_reason}) after {result.iterations} iteration(s)")
    if result.report.get("summary"):
        print(result.report["summary"])
    edit = result.report.get("edit")
    if edit:
        print(f"mask: {edit['method']} ({edit['mask_origin']}), {edit['mask_share']:.0%} of the source may change: "
              f"{result.run_dir / 'mask.png'}" + (f" (preview {result.run_dir / 'mask-preview.png'})"
                                                 if edit.get("preview") else ""))
    for line in result.report.get("unverified") or []:
        print(line)
    if result.final_image:
        print(f"final image: {result.final_image}")
    print(f"report: {result.run_dir / 'report.json'}")


def run_command(args: argparse.Namespace) -> int:
    progress = Progress(args.quiet)
    if args.resume:
        if args.prompt:
            return fail("give either a PROMPT or --resume THREAD_ID, not both", EXIT_BAD_INPUT)
        coro = aresume(args.resume, args.out, on_event=progress, base_url=args.base_url,
                       llm_base_url=args.llm_base_url, checkpointer=args.checkpointer)
        thread_id = args.resume
    else:
        if not args.prompt:
            return fail("PROMPT is required (or --resume THREAD_ID)", EXIT_BAD_INPUT)
        if args.aspect is not None and args.aspect not in ASPECT_RATIOS:
            return fail(f"--aspect: unknown aspect ratio {args.aspect!r}; choose one of {', '.join(ASPECT_RATIOS)}",
                         EXIT_BAD_INPUT)
        size = args.size.upper() if args.size else None
        if size is not None and size not in SIZE_TIERS:
            return fail(f"--size: unknown size {args.size!r}; choose one of {', '.join(SIZE_TIERS)}", EXIT_BAD_INPUT)
        try:
            brief = make_brief(args.prompt, references=args.reference, required_text=args.text, aspect=args.aspect,
                               size=size, **brief_options(args))
        except (PixloopError, ValueError) as e:
            return fail(str(e), EXIT_BAD_INPUT)
        return execute(args, brief, "run")
    return _finish(args, coro, thread_id)


def brief_options(args: argparse.Namespace) -> dict[str, Any]:
    """The brief fields every loop command takes from its options."""
    return {"thresholds": dict(args.threshold), "critics": args.critic, "seed": args.seed, "sketch": args.sketch,
            "max_iterations": args.max_iterations, "max_seconds": args.max_seconds, "max_cost": args.max_cost,
            "patience": args.patience}


def provenance_options(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields of --sign-cert/--sign-key, --no-watermark and --policy (both signing files or neither)."""
    if bool(args.sign_cert) != bool(args.sign_key):
        raise BriefError("give both --sign-cert and --sign-key to sign, or neither")
    for flag, value in (("--sign-cert", args.sign_cert), ("--sign-key", args.sign_key), ("--policy", args.policy)):
        if value and not Path(value).is_file():
            raise BriefError(f"{flag} {value}: no such file")
    return {"sign_cert": args.sign_cert, "sign_key": args.sign_key, "watermark": not args.no_watermark,
            "policy": args.policy, "moderation_base_url": getattr(args, "moderation_base_url", None)}


def execute(args: argparse.Namespace, brief: Brief, command: str) -> int:
    """Run a checked brief with the loop options of `args`, printing progress and the result; the exit code."""
    try:
        config = PixloopConfig(backend=args.backend, base_url=args.base_url, model=args.model,
                               options=dict(args.backend_option), planner=args.planner,
                               llm_base_url=args.llm_base_url, llm_model=args.llm_model, strict=args.strict,
                               checkpointer=checkpointer_option(args), **provenance_options(args))
    except (PixloopError, ValueError) as e:
        return fail(str(e), EXIT_BAD_INPUT)
    thread_id = args.thread_id or new_thread_id()
    out = args.out
    if not args.quiet:
        where = out or f"{config.out_root}/{thread_id}"
        print(f"pixloop {command} {thread_id} -> {where}", file=sys.stderr, flush=True)
    coro = arun(brief, config, out=out, thread_id=thread_id, on_event=Progress(args.quiet), if_exists=args.if_exists)
    return _finish(args, coro, thread_id)


def _finish(args: argparse.Namespace, coro: Any, thread_id: str) -> int:
    try:
        result = asyncio.run(coro)
    except PixloopError as e:
        return fail_with(e)
    except KeyboardInterrupt:
        hint = f"pixloop run --resume {thread_id}" + (f" --out {args.out}" if args.out else "") + (
            " --checkpointer URL" if getattr(args, "checkpointer", None) else "")
        print(f"\ninterrupted; continue with: {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    _print_result(result, getattr(args, "json", False))
    if result.error:
        what = {"planning_error": "planning failed", "bad_input": "error", "internal_error": "internal error",
                "max_seconds": "out of time", "policy": "refused"}.get(result.stop_reason or "", "backend failure")
        print(f"pixloop: {what}: {redact(result.error)}", file=sys.stderr)
    return result.exit_code
