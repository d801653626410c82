"""Where an edit changed things: the most-changed region, its position in words, and the difference heat
map saved as evidence."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from agent.models import Box

REGION_SIDE = 256
"""worst_region is located on a copy with this long side."""
DIFF_MAP_SIDE = 512
"""The saved difference heat map has at most this long side."""
WORST_MIN_DISSIMILARITY = 0.02
"""Below this local dissimilarity ((1 - SSIM) / 2, smoothed) nothing outside the mask counts as changed."""


def worst_region(dissim: np.ndarray, valid: np.ndarray,
                 max_side: int = REGION_SIDE) -> tuple[tuple[int, int, int, int], float] | None:
    """Bounding box (x0 y0 x1 y1, in ``dissim``'s pixels) of the most-changed connected area where ``valid``.

    Runs on a copy downscaled to ``max_side``: the box is an area to point at, not a pixel-exact outline.
    """
    if not valid.any():
        return None
    h, w = dissim.shape
    s = min(1.0, max_side / max(h, w))
    small = (max(1, round(w * s)), max(1, round(h * s)))
    d: np.ndarray = np.where(valid, dissim, 0).astype(np.float32)
    if s < 1.0:
        d = cv2.resize(d, small, interpolation=cv2.INTER_AREA)
        v = cv2.resize(valid.astype(np.uint8), small, interpolation=cv2.INTER_NEAREST) > 0
    else:
        v = valid
    r = max(1, round(max(small) / 64))
    d = cv2.blur(d, (2 * r + 1, 2 * r + 1))
    d[~v] = 0
    peak = float(d.max())
    if peak < WORST_MIN_DISSIMILARITY:
        return None
    hot = (d >= max(WORST_MIN_DISSIMILARITY, 0.4 * peak)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    if n <= 1:
        return None
    sums = np.bincount(labels.ravel(), weights=d.ravel(), minlength=n)
    sums[0] = -1
    k = int(np.argmax(sums))
    x, y, bw, bh = (int(v) for v in stats[k, :4])
    fx, fy = w / small[0], h / small[1]
    box = (int(x * fx), int(y * fy), min(w, int(np.ceil((x + bw) * fx))), min(h, int(np.ceil((y + bh) * fy))))
    return box, peak


def describe_box(box: tuple[int, int, int, int], w: int, h: int) -> str:
    """Words for where a pixel box lies in a w x h image (``Box.describe``)."""
    x0, y0, x1, y1 = box
    return Box(x=min(1.0, x0 / w), y=min(1.0, y0 / h), w=max(1e-6, min(1.0, (x1 - x0) / w)),
               h=max(1e-6, min(1.0, (y1 - y0) / h))).describe()


def diff_heatmap(diff: np.ndarray, edit: np.ndarray | None, box: tuple[int, int, int, int] | None,
                 max_side: int = DIFF_MAP_SIDE) -> Image.Image:
    """RGB heat map of |candidate - original| (x4, inferno) at <= ``max_side``; mask outline white,
    worst region (in ``diff``'s pixels) green."""
    h, w = diff.shape
    s = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if s < 1.0:
        diff = cv2.resize(diff, size, interpolation=cv2.INTER_AREA)
    heat = np.clip(diff * (4.0 * 255.0), 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(heat, cv2.COLORMAP_INFERNO)
    if edit is not None and edit.any():
        e = cv2.resize(edit.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) if s < 1.0 else edit.astype(np.uint8)
        contours, _ = cv2.findContours(e, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(bgr, contours, -1, (255, 255, 255), 1)
    if box is not None:
        x0, y0, x1, y1 = (round(c * s) for c in box)
        cv2.rectangle(bgr, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), (0, 255, 0), 2)
    return Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
