"""`pixloop check`: run critics on an existing image, without generating."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent.interfaces.cli.common import EXIT_BAD_INPUT, fail, fail_with, threshold_arg
from agent.interfaces.image_check import check_image, parse_size
from agent.models import ASPECT_RATIOS
from agent.models.errors import InputError, PixloopError, UnknownCriticError
from agent.models.evidence import ReferenceEvidence
from critics import critic_info

CHECK_EPILOG = """\
examples:
  pixloop check poster.png --text "GRAND OPENING" --size 2048x1152
  pixloop check portrait.png --reference me.jpg --critics face,artifacts --json
  pixloop check ad.png --reference bottle.png   (a reference without a face is an object to find)
  pixloop check edited.png --original photo.png --mask mask.png
exit codes: 0 every critic passed, 3 some failed, 2 bad input
"""



def add_check_parser(sub: Any) -> None:
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
    check.add_argument("--critics", metavar="LIST",
                       help="comma-separated critics to run (default: all that apply); plugins run only when named")
    check.add_argument("--threshold", action="append", default=[], type=threshold_arg, metavar="CRITIC=VALUE",
                       help="override a critic's pass threshold in [0,1] (repeatable)")
    check.add_argument("--out", "-o", metavar="DIR", help="keep evidence images (heat maps, difference maps) here")
    check.add_argument("--json", action="store_true", help="print one JSON object with a 'critics' list")


def _reference_lines(row: dict[str, Any]) -> list[str]:
    """One line per reference object under the reference critic's row: found where, or why not."""
    try:
        if critic_info(row["name"]).evidence is not ReferenceEvidence:
            return []
    except UnknownCriticError:
        return []
    refs = ReferenceEvidence.model_validate(row.get("evidence") or {}).references
    # a single missing reference is already the feedback; otherwise say where each one is, or why not
    return [f"reference {r.reference} ({r.name}): {r.detail}" for r in refs if r.detail and (r.found or len(refs) > 1)]


def check_command(args: argparse.Namespace) -> int:
    try:
        size = parse_size(args.size) if args.size else None
        names = [n.strip() for n in args.critics.split(",") if n.strip()] if args.critics else None
        thresholds = dict(args.threshold)
        bad = {k: v for k, v in thresholds.items() if not 0 <= v <= 1}
        if bad:
            raise InputError(f"--threshold: thresholds are scores in [0, 1], got {bad}")
        result = check_image(args.image, texts=args.text, references=args.reference, original=args.original,
                             mask=args.mask, size=size, aspect=args.aspect, critics=names,
                             thresholds=thresholds, out=args.out)
    except PixloopError as e:
        return fail_with(e)
    except ValueError as e:
        return fail(str(e), EXIT_BAD_INPUT)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2, allow_nan=False))
    else:
        print(f"{result.image} ({result.width}x{result.height})")
        print(f"{'critic':<13} {'score':>6} {'thresh':>6}  {'result':<6} feedback")
        for row in result.critics:
            if row["status"] == "unavailable":
                print(f"{row['name']:<13} {'--':>6} {row['threshold']:>6.2f}  {'n/a':<6} {row['feedback']}")
                continue
            mark = "pass" if row["passed"] else "FAIL"
            print(f"{row['name']:<13} {row['score']:>6.3f} {row['threshold']:>6.2f}  {mark:<6} {row['feedback']}")
            for line in _reference_lines(row):
                print(f"{'':<36}{line}")
        print("all critics passed" if result.passed else "some critics failed")
        if result.unverified:
            print(f"not verified: {', '.join(result.unverified)} could not run")
    return 0 if result.passed else 3
