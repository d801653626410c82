"""`pixloop edit`: change a photo only where intended, and check that nothing else changed."""

from __future__ import annotations

import argparse
from typing import Any

from agent.interfaces.api import make_brief
from agent.interfaces.cli.common import EXIT_BAD_INPUT, fail
from agent.interfaces.cli.run import add_loop_options, brief_options, execute
from agent.models import EDIT_KEEPS
from agent.models.errors import PixloopError

EDIT_EPILOG = """\
examples:
  pixloop edit portrait.jpg "put her on a beach at sunset" --out out/beach     # mask derived: the person is kept
  pixloop edit portrait.jpg "make his jacket red"                             # mask derived: the clothing
  pixloop edit shelf.png "replace the label" --region 120,80,300,200          # only this box may change
  pixloop edit product.png "a marble counter in soft light" --keep product    # everything but the product
  pixloop edit room.png "add this lamp on the table" --reference lamp.png --mask table.png

where the edit may change: --mask (white = may change, the source's size), --region x,y,w,h (pixels) or
--keep subject|person|product|text (everything else may change); give at most one. With none, the planner
reads the instruction ("background" keeps the subject; "jacket", "shirt", "dress" edit the clothing) and
derives the mask with offline segmentation (the face detector and GrabCut); it is saved as mask.png and
mask-preview.png in --out and shown in the report.

every edit is checked: outside the mask nothing changed (preservation), every person of the source keeps
their identity (face), the size and aspect did not drift (spec); failing edits are corrected from the
source (restore the protected area, tighten the mask, re-edit), never by chaining edits.
exit codes: as for `pixloop run` (0 passed, 3 below threshold, 2 bad input, 4 backend failure)
"""


def region_arg(text: str) -> tuple[int, int, int, int]:
    parts = text.replace(" ", "").split(",")
    if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected x,y,width,height in pixels, e.g. 120,80,300,200; got {text!r}")
    x, y, w, h = (int(p) for p in parts)
    return x, y, w, h


def add_edit_parser(sub: Any) -> None:
    p = sub.add_parser("edit", help="edit a photo: change only what the instruction asks, check the rest is kept",
                       description="Edit SOURCE as INSTRUCTION says, changing only where intended; check and correct "
                                   "the result like `pixloop run` does.",
                       epilog=EDIT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SOURCE", help="the image to edit")
    p.add_argument("instruction", metavar="INSTRUCTION", help='what to change; "quoted strings" become required text')
    where = p.add_mutually_exclusive_group()
    where.add_argument("--mask", "-m", metavar="MASK", help="where the edit may change: white = may change, black = keep")
    where.add_argument("--region", type=region_arg, metavar="X,Y,W,H", help="only this box (pixels) may change")
    where.add_argument("--keep", choices=EDIT_KEEPS, help="keep this, change the rest")
    p.add_argument("--reference", "-r", action="append", default=[], metavar="IMG",
                   help="a person or object to bring into the image (repeatable); objects are found by the "
                        "reference critic, people by the face critic")
    p.add_argument("--text", "-t", action="append", default=[], metavar="TEXT", help="extra required text (repeatable)")
    add_loop_options(p)


def edit_command(args: argparse.Namespace) -> int:
    try:
        brief = make_brief(args.instruction, references=args.reference, required_text=args.text,
                           source=args.source, mask=args.mask, region=args.region, keep=args.keep,
                           **brief_options(args))
    except (PixloopError, ValueError) as e:
        return fail(str(e), EXIT_BAD_INPUT)
    return execute(args, brief, "edit")


__all__ = ["add_edit_parser", "edit_command", "region_arg"]
