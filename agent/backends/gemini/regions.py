"""An edit mask in words: Gemini takes no mask, so the area that may change is stated as boxes in the instruction.

`describe_mask` turns pixloop's mask (an "L" image, 255 = may change) into a sentence naming one box per
separate masked area (left/top/right/bottom as percentages of the image, rounded outwards so the box always
covers the mask) and asking for everything else to stay as it is; `read_regions` reads those boxes back out
of a text (the loopback fake reads the instruction with it, so rewording the sentence cannot break the fake).
Whether the model kept the rest is for the loop's preservation critic to verify.
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np
from PIL import Image

MAX_BOXES = 4
"""More separate areas than this are described as the one box around them all."""
MIN_SHARE = 0.0005
"""Specks smaller than this share of the image are left out of the description (unless nothing else is masked)."""

Fractions = tuple[float, float, float, float]
"""A box as fractions of the image: left, top, right, bottom."""

_BOX = re.compile(r"left (\d+(?:\.\d+)?)%, top (\d+(?:\.\d+)?)%, right (\d+(?:\.\d+)?)%, bottom (\d+(?:\.\d+)?)%")
_SENTENCE = re.compile(r"\s*Change only the area inside (?:this box|these boxes)[^\n]*(?:\n|$)")


def mask_boxes(mask: Image.Image) -> list[Fractions]:
    """The boxes around the separate masked areas (255 = may change), as fractions of the image; [] when none."""
    grey = np.asarray(mask.convert("L")) >= 128
    h, w = grey.shape
    if not grey.any():
        return []
    count, _, stats, _ = cv2.connectedComponentsWithStats(grey.astype(np.uint8), connectivity=8)
    parts = [stats[i] for i in range(1, count)]
    big = [s for s in parts if s[cv2.CC_STAT_AREA] >= MIN_SHARE * w * h] or parts
    if len(big) > MAX_BOXES:
        ys, xs = np.nonzero(grey)
        boxes = [(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)]
    else:
        boxes = [(int(s[cv2.CC_STAT_LEFT]), int(s[cv2.CC_STAT_TOP]), int(s[cv2.CC_STAT_LEFT] + s[cv2.CC_STAT_WIDTH]),
                  int(s[cv2.CC_STAT_TOP] + s[cv2.CC_STAT_HEIGHT])) for s in big]
    boxes.sort(key=lambda b: (b[1], b[0]))
    return [(x0 / w, y0 / h, x1 / w, y1 / h) for x0, y0, x1, y1 in boxes]


def _percent(value: float, up: bool) -> str:
    """A fraction as a percentage with one decimal, rounded outwards (down for left/top, up for right/bottom)."""
    tenths = value * 1000
    tenths = math.ceil(tenths - 1e-6) if up else math.floor(tenths + 1e-6)
    return f"{max(0, min(1000, tenths)) / 10:g}"


def _where(box: Fractions) -> str:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    row = "upper" if cy < 1 / 3 else "lower" if cy > 2 / 3 else "middle"
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    return "centre" if (row, col) == ("middle", "centre") else f"{row} {col}"


def box_words(box: Fractions) -> str:
    """'left 10%, top 20%, right 45.5%, bottom 60% (the middle left)'."""
    x0, y0, x1, y1 = box
    return (f"left {_percent(x0, False)}%, top {_percent(y0, False)}%, right {_percent(x1, True)}%, "
            f"bottom {_percent(y1, True)}% (the {_where(box)})")


def describe_mask(mask: Image.Image) -> tuple[str, list[Fractions]]:
    """The sentence stating the editable area of a mask, and its boxes; ('', []) for an empty mask."""
    boxes = mask_boxes(mask)
    if not boxes:
        return "", []
    which = "this box" if len(boxes) == 1 else "these boxes"
    listed = "; ".join(box_words(b) for b in boxes)
    sentence = (f"Change only the area inside {which} of the image, measured from its top-left corner: {listed}. "
                "Keep everything outside exactly as it is: same pixels, framing, colours, people and text.")
    return sentence, boxes


def read_regions(text: str) -> tuple[list[Fractions], str]:
    """The boxes a `describe_mask` sentence in `text` states, and the text without that sentence."""
    match = _SENTENCE.search(text)
    if match is None:
        return [], text
    boxes = [(float(a) / 100, float(b) / 100, float(c) / 100, float(d) / 100)
             for a, b, c, d in _BOX.findall(match.group(0))]
    rest = (text[: match.start()] + "\n" + text[match.end():]).strip()
    return boxes, rest


def regions_mask(boxes: list[Fractions], size: tuple[int, int]) -> Image.Image:
    """An "L" mask of `size` (255 inside any of the boxes), the boxes rounded outwards to whole pixels."""
    w, h = size
    mask = Image.new("L", size, 0)
    for x0, y0, x1, y1 in boxes:
        box = (math.floor(x0 * w + 1e-6), math.floor(y0 * h + 1e-6), math.ceil(x1 * w - 1e-6), math.ceil(y1 * h - 1e-6))
        if box[2] > box[0] and box[3] > box[1]:
            mask.paste(255, box)
    return mask


__all__ = ["MAX_BOXES", "Fractions", "box_words", "describe_mask", "mask_boxes", "read_regions", "regions_mask"]
