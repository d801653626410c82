"""Style-independent layout maps: a sketch's strokes and boxes, a candidate's edges.

A sketch is dark strokes on a light ground; its strokes come from an adaptive threshold (the same reading as
the planner's `agent/loop/planning/sketch.py`, whose limits are mirrored here: the critics layer may not import
the loop). A candidate has filled colour areas, photos and real text; its structure is the Canny edge map of
its CLAHE-normalised lightness plus the edges of its two colour channels (a red block on a grey block of the
same lightness still has an outline). Both are compared at a long side of WORK_SIDE.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from agent.runtime.images import flatten_rgb

WORK_SIDE = 512
"""Both images are compared at this long side (the candidate's aspect; the sketch is stretched to it, as the
planner's relative boxes are)."""
MIN_BOX_SHARE = 0.01
"""A closed stroke smaller than this share of the canvas is a scribble, not a region (as the planner)."""
MAX_BOX_SHARE = 0.92
"""A box larger than this is the sketch's frame (the page or the screen), not a region."""
LINE_SHARE = 0.035
"""A candidate edge supports a box's side only as part of a straight run at least this share of the long side."""
BOX_FILL = 0.75
"""A closed contour whose area fills less than this share of its bounding rectangle is not a box."""


def work_size(w: int, h: int, max_side: int = WORK_SIDE) -> tuple[int, int]:
    """(w, h) scaled so the long side is ``max_side`` (up or down: a small sketch is compared at work size)."""
    s = max_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def grey_at(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """uint8 grey copy of an image at ``size`` (w, h)."""
    rgb = np.asarray(flatten_rgb(image))
    interp = cv2.INTER_AREA if size[0] <= rgb.shape[1] else cv2.INTER_LINEAR
    return cv2.cvtColor(cv2.resize(rgb, size, interpolation=interp), cv2.COLOR_RGB2GRAY)


def sketch_ink(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The sketch's strokes (bool) at ``size``: dark ink on a light ground, found by an adaptive threshold."""
    grey = grey_at(image, size)
    block = max(15, (min(grey.shape) // 20) | 1)
    ink = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 15)
    ink = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    return ink > 0


def candidate_edges(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """The candidate's structure (bool) at ``size``: Canny of CLAHE lightness, OR the edges of a* and b*."""
    rgb = np.asarray(flatten_rgb(image))
    interp = cv2.INTER_AREA if size[0] <= rgb.shape[1] else cv2.INTER_LINEAR
    rgb = cv2.resize(rgb, size, interpolation=interp)
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (3, 3), 0), cv2.COLOR_RGB2LAB)
    lightness = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[:, :, 0])
    edges = cv2.Canny(lightness, 60, 150) > 0
    edges |= cv2.Canny(lab[:, :, 1], 12, 30) > 0
    edges |= cv2.Canny(lab[:, :, 2], 12, 30) > 0
    return np.asarray(edges, dtype=bool)


@dataclass(frozen=True)
class SketchBox:
    """One closed box drawn in the sketch, in work pixels (x0, y0, x1, y1), numbered 1.. top to bottom."""

    index: int
    box: tuple[int, int, int, int]

    @property
    def size(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]


def find_boxes(ink: np.ndarray) -> list[SketchBox]:
    """Closed, roughly rectangular regions drawn in the strokes (nested ones included), numbered like the
    planner's regions: top to bottom, then left to right."""
    h, w = ink.shape
    closed = cv2.dilate(ink.astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(closed, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    out: list[tuple[int, int, int, int]] = []
    for c in contours:
        x, y, bw, bh = cv2.boundingRect(c)
        share = bw * bh / float(w * h)
        if share < MIN_BOX_SHARE or share > MAX_BOX_SHARE:
            continue
        if cv2.contourArea(c) < BOX_FILL * bw * bh:  # a scribble or a word's outline
            continue
        box = (x, y, x + bw, y + bh)
        if any(_same(box, o) for o in out):
            continue  # the inner and outer edge of one drawn line
        out.append(box)
    out.sort(key=lambda b: (round(b[1] / h, 2), b[0] / w))
    return [SketchBox(i + 1, b) for i, b in enumerate(out)]


def _same(a: tuple[int, int, int, int], b: tuple[int, int, int, int], tol: float = 0.04) -> bool:
    span = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1])
    return all(abs(p - q) <= tol * span for p, q in zip(a, b, strict=True))


def outline_sides(box: tuple[int, int, int, int], step: float = 3.0) -> tuple[np.ndarray, ...]:
    """Points (x, y) every ``step`` px along a box's top, bottom, left and right sides, float32 (n, 2) each."""
    x0, y0, x1, y1 = (float(v) for v in box)
    nx, ny = max(2, int((x1 - x0) / step)), max(2, int((y1 - y0) / step))
    tx = np.linspace(x0, x1, nx, dtype=np.float32)
    ty = np.linspace(y0, y1, ny, dtype=np.float32)
    return (np.stack([tx, np.full_like(tx, y0)], 1), np.stack([tx, np.full_like(tx, y1)], 1),
            np.stack([np.full_like(ty, x0), ty], 1), np.stack([np.full_like(ty, x1), ty], 1))


def line_edges(edges: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The straight runs of an edge map: horizontal and vertical ones at least LINE_SHARE of ``side`` long (a
    block's outline, not the strokes of a letter or a photo's texture)."""
    n = max(7, round(LINE_SHARE * side))
    e = cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8))
    horizontal = cv2.morphologyEx(e, cv2.MORPH_OPEN, np.ones((1, n), np.uint8)) > 0
    vertical = cv2.morphologyEx(e, cv2.MORPH_OPEN, np.ones((n, 1), np.uint8)) > 0
    return horizontal, vertical


__all__ = ["BOX_FILL", "LINE_SHARE", "MAX_BOX_SHARE", "MIN_BOX_SHARE", "SketchBox", "WORK_SIDE", "candidate_edges",
           "find_boxes", "grey_at", "line_edges", "outline_sides", "sketch_ink", "work_size"]
