"""`pixloop story`: an illustrated document (a book, tutorial, comic or storyboard), one checked loop per image,
consistent characters, events printed as they happen."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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
from agent.interfaces.cli.run import provenance_options
from agent.interfaces.run_folder import IF_EXISTS
from agent.interfaces.story import StoryRun, prepare_resume, prepare_story
from agent.models import ASPECT_RATIOS, SIZE_TIERS, Budget, PixloopConfig
from agent.models.document import LAYOUTS, DocumentEvent
from agent.models.errors import BriefError, PixloopError

STORY_EPILOG = """\
examples:
  pixloop story story.md --character Mia=mia.jpg              # your script: ![cue](image) lines become images
  pixloop story story.md --layout comic --stream-json          # events as JSON lines on stdout
  pixloop story "A four-page story about a girl who opens a bakery" --pages 4 \\
      --llm-base-url http://localhost:8000/v1 --llm-model qwen  # a chat model writes the text and the cues
  pixloop story "How to brew pour-over coffee" --pages 5 --backend gemini --interleaved --layout tutorial

script: Markdown. '# Title'; each '## heading' starts a section (or '---' between sections); an image cue is
  ![what the image shows; "QUOTED" words must appear in it](image). Names given with --character are found in
  the cues; the character's photos are its references (without any, its first image becomes its reference).
outputs in --out: story.md, story.html (open it in a browser; it updates while the document is made),
  report.json (per image verdicts, a consistency matrix per character, requirements, cost), runs/<id>/rN/
  (each image's own run folder), events.jsonl, checkpoints.sqlite (with --checkpointer: in that database)
exit codes: 0 every image passed and the document is consistent, 3 below threshold, 2 bad input,
  4 backend or planning failure (or the --checkpointer database cannot be reached), 1 internal error,
  130 interrupted (continue with --resume)
"""


def character_arg(value: str) -> tuple[str, str]:
    name, sep, path = value.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=IMAGE (e.g. Mia=mia.jpg), got {value!r}")
    return name.strip(), path.strip()


def add_story_parser(sub: Any) -> None:
    p = sub.add_parser("story", help="make an illustrated document: a story, tutorial, comic or storyboard",
                       description="Make an illustrated document: its text from your Markdown script (or written by "
                                   "a chat model, or by the gemini backend's interleaved output), every image made "
                                   "and corrected by its own loop, characters checked for consistency across "
                                   "images. Events are printed as they happen.",
                       epilog=STORY_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="?", metavar="SCRIPT.md|TOPIC",
                   help="a Markdown script, or a topic for a chat model / the interleaved backend to write")
    p.add_argument("--character", "-c", action="append", default=[], type=character_arg, metavar="NAME=IMAGE",
                   help="a character's reference photo (repeatable; repeat a name for more photos)")
    p.add_argument("--pages", type=int, metavar="N", help="sections to write from a topic (default 4)")
    p.add_argument("--layout", choices=LAYOUTS, help="book (default), comic, storyboard or tutorial")
    p.add_argument("--style", help="style words every image shares, e.g. 'watercolour, soft light'")
    p.add_argument("--interleaved", action="store_true",
                   help="the gemini backend writes text and images in one stream; pixloop checks and corrects them")
    p.add_argument("--stream-json", action="store_true",
                   help="print each event as a JSON line on stdout the moment it happens (with t, seconds since start)")
    p.add_argument("--concurrency", type=int, metavar="N", help="images made at the same time (default 2)")
    p.add_argument("--max-rounds", type=int, metavar="N",
                   help="consistency rounds; each further round regenerates only failing images (default 2)")
    p.add_argument("--aspect", choices=ASPECT_RATIOS, metavar="W:H", help="every image's aspect ratio")
    p.add_argument("--size", choices=SIZE_TIERS, metavar="TIER", help="every image's size tier (1K, 2K, 4K)")
    p.add_argument("--max-iterations", "-n", type=int, metavar="N", help="each image's most candidates (default 3)")
    p.add_argument("--max-cost", type=float, metavar="C", help="the whole document's cost budget")
    p.add_argument("--threshold", action="append", default=[], type=threshold_arg, metavar="CRITIC=VALUE",
                   help="a critic's pass threshold for every image (repeatable)")
    p.add_argument("--seed", type=int, help="seed of the first image (default 0)")
    p.add_argument("--backend", "-b", default="compose", help="image backend (default: compose, offline)")
    p.add_argument("--base-url", help="backend endpoint")
    p.add_argument("--model", help="backend model id")
    p.add_argument("--backend-option", action="append", default=[], type=option_arg, metavar="KEY=VALUE",
                   help="backend-specific option (repeatable)")
    p.add_argument("--llm-base-url", metavar="URL", help="chat endpoint that writes a document from a topic")
    p.add_argument("--llm-model", metavar="ID", help="chat model id")
    p.add_argument("--sign-cert", metavar="PEM", help="sign every image with C2PA Content Credentials (chain)")
    p.add_argument("--sign-key", metavar="PEM", help="the private key of --sign-cert")
    p.add_argument("--no-watermark", action="store_true", help="deliver the images without the invisible watermark")
    p.add_argument("--policy", metavar="FILE", help="a content policy (TOML) merged over the default one")
    p.add_argument("--out", "-o", metavar="DIR", help="document folder (default: pixloop-out/THREAD_ID)")
    p.add_argument("--thread-id", metavar="ID", help="name the document run")
    p.add_argument("--if-exists", choices=IF_EXISTS, default="refuse", help="when --out already holds a run")
    p.add_argument("--resume", metavar="THREAD_ID", help="continue a killed document (give --out if you set it)")
    add_checkpointer_option(p)
    p.add_argument("--json", action="store_true", help="print report.json on stdout when done")
    p.add_argument("--quiet", "-q", action="store_true", help="no event lines")


def describe(event: DocumentEvent) -> str:
    """One line for a person reading the terminal."""
    e = event.model_dump()
    kind = e["event"]
    if kind == "text":
        words = " ".join(e["text"].split())
        return f"text {e['section']}: {words[:70]}{'…' if len(words) > 70 else ''}"
    if kind == "image_started":
        return f"image {e['image']} started (round {e['round']})"
    if kind == "correction":
        return f"image {e['image']} correcting: {e['strategy']} ({e['reason'][:60]})"
    if kind == "image_ready":
        failed = [k for k, ok in e["verdicts"].items() if not ok]
        return (f"image {e['image']} {e['status']} after {e['iterations']} iteration(s)"
                + (f"; failing: {', '.join(failed)}" if failed else "") + (f" -> {e['path']}" if e["path"] else ""))
    if kind == "consistency":
        return (f"consistency round {e['round']}: " + ("consistent" if e["passed"] else
                "; ".join(f"{k}: {v}" for k, v in e["reasons"].items())))
    return f"done: {e['status']} ({e['images']} image(s), {e['rounds']} round(s), cost {e['cost']:g})"


def story_command(args: argparse.Namespace) -> int:
    try:
        config = PixloopConfig(backend=args.backend, base_url=args.base_url, model=args.model,
                               options=dict(args.backend_option), llm_base_url=args.llm_base_url,
                               llm_model=args.llm_model, checkpointer=checkpointer_option(args),
                               **provenance_options(args))
    except (PixloopError, ValueError) as e:
        return fail(str(e), EXIT_BAD_INPUT)
    try:
        run = _prepare(args, config)
    except PixloopError as e:
        return fail_with(e)
    if not args.quiet and not args.stream_json:
        print(f"pixloop story {run.thread_id} -> {run.run_dir}", file=sys.stderr, flush=True)
    try:
        asyncio.run(_print_events(run.events(), args))
    except PixloopError as e:
        return fail_with(e)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: pixloop story --resume {run.thread_id}"
              + (f" --out {run.run_dir}" if args.out else "")
              + (" --checkpointer URL" if run.config.checkpointer else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    result = run.result()
    run_dir = run.run_dir
    if args.json:
        print(json.dumps(result.report, indent=2, allow_nan=False))
    elif not args.stream_json:
        print(f"status: {result.status}" + (f" ({result.stop_reason})" if result.stop_reason else ""))
        for line in result.report.get("not_verified") or []:
            print(f"not verified: {line}")
        if result.html:
            print(f"story: {result.html}")
        print(f"report: {run_dir / 'report.json'}")
    if result.error:
        print(f"pixloop: error: {result.error}", file=sys.stderr)
    return result.exit_code


def _prepare(args: argparse.Namespace, config: PixloopConfig) -> StoryRun:
    """The document to make (or resume), checked; BriefError for bad input."""
    if args.resume:
        if args.source:
            raise BriefError("give either a SCRIPT/TOPIC or --resume THREAD_ID, not both")
        return prepare_resume(args.resume, args.out, base_url=args.base_url, llm_base_url=args.llm_base_url,
                              checkpointer=args.checkpointer)
    if not args.source:
        raise BriefError("SCRIPT.md or TOPIC is required (or --resume THREAD_ID)")
    characters: dict[str, list[str]] = {}
    for name, path in args.character:
        characters.setdefault(name, []).append(path)
    source = Path(args.source) if Path(args.source).suffix.lower() in (".md", ".markdown") else args.source
    return prepare_story(source, config, characters=characters, pages=args.pages, layout=args.layout,
                         interleaved=args.interleaved, out=args.out, thread_id=args.thread_id,
                         if_exists=args.if_exists, concurrency=args.concurrency, max_rounds=args.max_rounds,
                         max_cost=args.max_cost, seed=args.seed, aspect_ratio=args.aspect, size=args.size,
                         style=args.style, thresholds=dict(args.threshold) or None,
                         image_budget=Budget(max_iterations=args.max_iterations) if args.max_iterations else None)


async def _print_events(events: AsyncIterator[DocumentEvent], args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    async for event in events:
        if args.stream_json:
            print(json.dumps(event.model_dump(mode="json"), allow_nan=False), flush=True)
        elif not args.quiet:
            print(f"[{time.perf_counter() - t0:6.1f}s] {describe(event)}", file=sys.stderr, flush=True)


__all__ = ["add_story_parser", "story_command"]
