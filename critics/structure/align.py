"""Aligning a sketch with a candidate and matching its boxes: a small global similarity (shift and scale) found
by phase correlation and a chamfer search, then per box the outline support (candidate edges near the box's
outline) or a contained block of content (text set without a plate), first where the sketch puts it, then
anywhere on the canvas, to say where it went."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from critics.structure.layout import outline_sides

MAX_SHIFT = 0.06
"""The global alignment absorbs a shift of up to this share of each side..."""
SCALES = (0.95, 0.975, 1.0, 1.025, 1.05)
"""...and one of these scales about the centre."""
LOCAL_SHIFT = 0.03
"""A box found within this share of the long side of where the aligned sketch puts it is in place."""
WIDE_SHIFT = 0.45
"""A box not in place is searched within this share of the long side, to report where it went."""
CONTENT_MIN_DENSITY = 0.02
"""Edge density (share of pixels) inside a box from which it holds content (a line of text reaches 0.05)."""


@dataclass(frozen=True)
class Transform:
    """p' = centre + scale * (p - centre) + (dx, dy), in work pixels."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0
    cx: float = 0.0
    cy: float = 0.0

    def apply(self, pts: np.ndarray) -> np.ndarray:
        out = np.empty_like(pts)
        out[:, 0] = self.cx + self.scale * (pts[:, 0] - self.cx) + self.dx
        out[:, 1] = self.cy + self.scale * (pts[:, 1] - self.cy) + self.dy
        return out

    def box(self, b: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
        p = self.apply(np.array([[b[0], b[1]], [b[2], b[3]]], dtype=np.float32))
        return float(p[0, 0]), float(p[0, 1]), float(p[1, 0]), float(p[1, 1])


def distance_map(mask: np.ndarray) -> np.ndarray:
    """Distance (px, float32) from every pixel to the nearest True pixel of ``mask`` (large where it is empty)."""
    if not mask.any():
        return np.full(mask.shape, 1e6, np.float32)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)


def support(pts: np.ndarray, dt: np.ndarray, radius: float) -> float:
    """Share of points within ``radius`` of a mark in ``dt``'s mask (points off the canvas miss)."""
    if len(pts) == 0:
        return 0.0
    h, w = dt.shape
    x = np.rint(pts[:, 0]).astype(np.intp)
    y = np.rint(pts[:, 1]).astype(np.intp)
    ok = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    hit = np.zeros(len(pts), bool)
    hit[ok] = dt[y[ok], x[ok]] <= radius
    return float(hit.mean())


def mask_points(mask: np.ndarray, limit: int = 4000) -> np.ndarray:
    """Up to ``limit`` evenly picked (x, y) points of a mask, float32 (n, 2)."""
    ys, xs = np.nonzero(mask)
    if len(xs) > limit:
        pick = np.linspace(0, len(xs) - 1, limit).astype(np.intp)
        xs, ys = xs[pick], ys[pick]
    return np.stack([xs, ys], axis=1).astype(np.float32)


def global_alignment(ink: np.ndarray, edges: np.ndarray, dt: np.ndarray, radius: float) -> tuple[Transform, float]:
    """The shift (<= MAX_SHIFT) and scale (SCALES) that best lay the sketch's strokes on the candidate's edges,
    and the share of stroke points then within ``radius`` of an edge."""
    h, w = ink.shape
    cx, cy = w / 2.0, h / 2.0
    pts = mask_points(ink)
    sigma = max(1.0, 0.01 * max(w, h))
    a = cv2.GaussianBlur(ink.astype(np.float32), (0, 0), sigma)
    b = cv2.GaussianBlur(edges.astype(np.float32), (0, 0), sigma)
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (px, py), _ = cv2.phaseCorrelate(a, b, window)
    step = 0.01 * max(w, h)
    coarse_pts = pts[:: max(1, len(pts) // 1000)]
    best, best_s = Transform(cx=cx, cy=cy), -1.0
    # coarse: every 2% within MAX_SHIFT (and the phase correlation's estimate), every scale, on 1000 points
    grid = [(ix * 2 * step, iy * 2 * step) for ix in range(-3, 4) for iy in range(-3, 4)]
    if abs(px) <= MAX_SHIFT * w and abs(py) <= MAX_SHIFT * h:
        grid.append((float(px), float(py)))
    for dx, dy in grid:
        if abs(dx) > MAX_SHIFT * w or abs(dy) > MAX_SHIFT * h:
            continue
        for scale in SCALES:
            t = Transform(scale, dx, dy, cx, cy)
            s = support(t.apply(coarse_pts), dt, radius) - _cost(t, w, h)
            if s > best_s + 1e-9 or (abs(s - best_s) <= 1e-9 and _simpler(t, best)):
                best, best_s = t, s
    # fine: 1% and half a scale step around the best, on every point
    start, best_s = best, -1.0
    for ix, iy, ds in ((ix, iy, ds) for ix in (-1, 0, 1) for iy in (-1, 0, 1) for ds in (-0.0125, 0.0, 0.0125)):
        t = Transform(start.scale + ds, start.dx + ix * step, start.dy + iy * step, cx, cy)
        s = support(t.apply(pts), dt, radius) - _cost(t, w, h)
        if s > best_s + 1e-9 or (abs(s - best_s) <= 1e-9 and _simpler(t, best)):
            best, best_s = t, s
    best_s = support(best.apply(pts), dt, radius)
    return best, max(0.0, best_s)


ALIGN_COST = 0.5
"""The alignment maximises the share of strokes near an edge minus this times its drift (shift as a share of each
side plus |scale - 1|): the unmoved sketch wins unless a shift explains clearly more of it."""


def _cost(t: Transform, w: int, h: int) -> float:
    return ALIGN_COST * (abs(t.dx) / w + abs(t.dy) / h + abs(t.scale - 1.0))


def _simpler(a: Transform, b: Transform) -> bool:
    return abs(a.scale - 1) + abs(a.dx) + abs(a.dy) < abs(b.scale - 1) + abs(b.dx) + abs(b.dy)


class Integral:
    """Counts of an edge mask over rectangles, in O(1) each."""

    def __init__(self, mask: np.ndarray):
        self.h, self.w = mask.shape
        self.sum = cv2.integral(mask.astype(np.uint8))

    def density(self, x0: float, y0: float, x1: float, y1: float) -> float:
        a0, b0 = int(max(0, min(self.w, round(x0)))), int(max(0, min(self.h, round(y0))))
        a1, b1 = int(max(0, min(self.w, round(x1)))), int(max(0, min(self.h, round(y1))))
        if a1 <= a0 or b1 <= b0:
            return 0.0
        s = self.sum
        n = float(s[b1, a1] - s[b0, a1] - s[b1, a0] + s[b0, a0])
        return n / ((a1 - a0) * (b1 - b0))


def content_score(box: tuple[float, float, float, float], edges: Integral) -> float:
    """A block of content held by the box: edges inside it (presence) and few in a ring around it (containment),
    e.g. a headline set without a plate where the sketch drew its box. 0 on an empty spot or busy texture."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if bw <= 2 or bh <= 2:
        return 0.0
    inner = edges.density(x0 + 0.05 * bw, y0 + 0.05 * bh, x1 - 0.05 * bw, y1 - 0.05 * bh)
    if inner <= 0.0:
        return 0.0
    g = max(3.0, min(0.03 * max(edges.w, edges.h), 0.25 * min(bw, bh)))
    outer = edges.density(x0 - g, y0 - g, x1 + g, y1 + g)
    area_in = (0.9 * bw) * (0.9 * bh)
    area_out = (bw + 2 * g) * (bh + 2 * g)
    ring = max(0.0, (outer * area_out - inner * area_in) / max(1.0, area_out - area_in))
    # edges that stay within the box
    presence = min(1.0, inner / CONTENT_MIN_DENSITY)
    containment = float(np.clip(1.0 - 2.0 * ring / inner, 0.0, 1.0))
    return presence * containment


@dataclass(frozen=True)
class BoxMatch:
    """How one sketch box is matched: its score where the aligned sketch puts it (within LOCAL_SHIFT), the
    offset found there, and, when not in place, the best place anywhere (offset and score)."""

    score: float
    outline: float
    content: float
    offset: tuple[float, float]
    moved: tuple[float, float] | None = None
    moved_score: float = 0.0


Lines = tuple[np.ndarray, np.ndarray]
"""Distance maps to the candidate's horizontal and vertical straight edges."""


def outline_support(sides: tuple[np.ndarray, ...], lines: Lines, radius: float,
                    offset: tuple[float, float] = (0.0, 0.0)) -> float:
    """How well a box's outline (top, bottom, left, right points) lies on straight candidate edges of the same
    direction within ``radius``: the mean of the sides' supports and of the weakest side (a box lined up with
    other blocks on three sides is not there when its fourth side is missing)."""
    shift = np.array(offset, np.float32)
    dh, dv = lines
    each = [support(p + shift, dh if i < 2 else dv, radius) for i, p in enumerate(sides)]
    return 0.5 * (sum(each) / len(each) + min(each))


def _search(sides: tuple[np.ndarray, ...], box: tuple[float, float, float, float], lines: Lines,
            edges: Integral | None, radius: float, reach: float, step: float,
            centre: tuple[float, float] = (0.0, 0.0), avoid: list[tuple[float, float, float, float]] | None = None
            ) -> tuple[float, float, float, tuple[float, float]]:
    n = int(round(reach / step))
    best = (-1.0, 0.0, 0.0, (0.0, 0.0))
    for ix in range(-n, n + 1):
        for iy in range(-n, n + 1):
            dx, dy = centre[0] + ix * step, centre[1] + iy * step
            moved = (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)
            if avoid is not None and (any(_iou(moved, a) > 0.3 for a in avoid) or _off_canvas(moved, lines, 0.05)):
                continue  # another sketch box's place (that one is there, not this one), or off the canvas
            o = outline_support(sides, lines, radius, (dx, dy))
            c = content_score(moved, edges) if edges is not None else 0.0
            s = max(o, c)
            key = s - 1e-3 * np.hypot(dx - centre[0], dy - centre[1]) / max(1.0, reach)  # prefer the nearest
            if key > best[0]:
                best = (key, o, c, (dx, dy))
    _, o, c, off = best
    return max(o, c), o, c, off


def _off_canvas(box: tuple[float, float, float, float], lines: Lines, share: float) -> bool:
    h, w = lines[0].shape
    m = share * max(w, h)
    return box[0] < -m or box[1] < -m or box[2] > w + m or box[3] > h + m


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(1e-9, union)


def match_box(box: tuple[int, int, int, int], t: Transform, lines: Lines, edges: Integral, radius: float,
              limit: float, others: list[tuple[float, float, float, float]] | None = None) -> BoxMatch:
    """Match one sketch box (work pixels) on the candidate: in place (LOCAL_SHIFT), else anywhere (WIDE_SHIFT,
    by its outline or content, never onto the place of one of the ``others``, the other sketch boxes as aligned)."""
    side = float(max(lines[0].shape))
    tb = t.box(box)
    sides = tuple(t.apply(p) for p in outline_sides(box))
    score, o, c, off = _search(sides, tb, lines, edges, radius, LOCAL_SHIFT * side, 0.01 * side)
    if score >= limit:
        return BoxMatch(score, o, c, off)
    coarse = 0.025 * side
    _, _, _, off2 = _search(sides, tb, lines, edges, radius, WIDE_SHIFT * side, coarse, avoid=others)
    s2, _, _, off2 = _search(sides, tb, lines, edges, radius, coarse, 0.01 * side, centre=off2, avoid=others)
    far = np.hypot(*off2) > LOCAL_SHIFT * side
    return BoxMatch(score, o, c, off, moved=off2 if (s2 >= limit and far) else None, moved_score=s2)


__all__ = ["BoxMatch", "CONTENT_MIN_DENSITY", "Integral", "LOCAL_SHIFT", "MAX_SHIFT", "SCALES", "Transform",
           "Lines", "WIDE_SHIFT", "content_score", "distance_map", "global_alignment", "mask_points", "match_box", "outline_support",
           "support"]
