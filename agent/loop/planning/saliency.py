"""The salient object of a photo without a face (a product shot), or the product beside people, offline.

A saliency estimate: each pixel's Lab distance to the backdrop, the nearer of k-means centres of the border's colours
and the border's interpolated surface (a Coons patch, exact for a flat or gradient studio backdrop), weighted by a
centre prior and thresholded by Otsu. The likeliest component (area x saliency x centre, less when it runs out of the
frame), joined by the parts in line with it (a label the backdrop's colour cuts a bottle in two), seeds GrabCut:
probable foreground, each part's eroded core sure foreground, the border sure background; the bridges between the
parts are added back. Measured by `bench/masks.py` (products pasted with known masks).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from agent.loop.planning.segmentation import (
    BORDER_SHARE,
    border_strip,
    clean,
    grabcut,
    to_source,
    touches_border,
    work_image,
)


def border_surface(lab: np.ndarray) -> np.ndarray:
    """Every pixel's backdrop colour as the border would have it: a Coons patch interpolating the (smoothed)
    border strips across the image, exact for a flat or gradient studio backdrop."""
    h, w = lab.shape[:2]
    b = max(2, round(BORDER_SHARE * min(h, w)))
    k = max(3, (max(h, w) // 20) | 1)

    def strip(values: np.ndarray) -> np.ndarray:  # the strip's median across it, smoothed along it
        med = np.median(values, axis=0).astype(np.float32)
        return np.asarray(cv2.GaussianBlur(med[None, :, :], (k, 1), 0)[0], np.float32)

    top, bottom = strip(lab[:b]), strip(lab[-b:])  # (w, 3)
    left, right = strip(lab[:, :b].transpose(1, 0, 2)), strip(lab[:, -b:].transpose(1, 0, 2))  # (h, 3)
    u = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    v = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    corners = ((1 - u) * (1 - v) * top[0] + u * (1 - v) * top[-1] + (1 - u) * v * bottom[0] + u * v * bottom[-1])
    return np.asarray((1 - v) * top[None] + v * bottom[None] + (1 - u) * left[:, None] + u * right[:, None] - corners,
                      np.float32)


def saliency_map(rgb: np.ndarray, clusters: int = 4) -> np.ndarray:
    """Saliency in 0..1: each pixel's Lab distance to the backdrop, the nearer of k-means centres of the border's
    colours and the border's interpolated surface (`border_surface`), weighted by a centre prior (0.5 at the
    corners, 1 at the centre)."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = lab[border_strip(rgb.shape)]
    k = max(1, min(clusters, len(border) // 50))
    cv2.setRNGSeed(0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(border, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    flat = lab.reshape(-1, 3)
    dist = np.min(np.linalg.norm(flat[:, None, :] - centres[None, :, :], axis=2), axis=1).reshape(lab.shape[:2])
    dist = np.minimum(dist, np.linalg.norm(lab - border_surface(lab), axis=2))
    h, w = dist.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    centre = np.exp(-(((xx - w / 2) / (0.5 * w)) ** 2 + ((yy - h / 2) / (0.5 * h)) ** 2) * 0.35)
    sal = cv2.GaussianBlur(dist * (0.5 + 0.5 * centre), (0, 0), max(1.0, min(h, w) / 150))
    top = float(np.percentile(sal, 99.5))
    return np.clip(sal / top, 0, 1) if top > 0 else np.zeros_like(sal)


PART_SCORE = 0.3
"""A salient component joins the likeliest one as a part of the same object (a bottle cut in two by a label the
backdrop's colour) when it scores at least this share of it, lies in line with it (its extent across the gap
overlaps 70 %) and the gap is at most half the likeliest's size."""


def _hull(mask: np.ndarray) -> np.ndarray:
    points = cv2.findNonZero(mask.astype(np.uint8))
    out = np.zeros(mask.shape, np.uint8)
    if points is not None:
        cv2.fillConvexPoly(out, cv2.convexHull(points), 1)
    return out.astype(bool)


def likeliest_object(hot: np.ndarray, sal: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """The object in a 0/1 saliency mask: the component with the largest area x mean saliency x centre weight
    (1 at the centre, 0.5 at the edge; a third when it touches the image's edge: a whole object is in frame, scenery
    runs out of it), joined by the components in line with it that score at least PART_SCORE of it. Returns the union, the
    parts, and the bridges between the parts (their joint convex hull less each part's own)."""
    m = clean(hot, None)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 1:
        return m, [m] if m.any() else [], np.zeros_like(m)
    h, w = m.shape
    scores = []
    for i in range(1, n):
        cx, cy = centroids[i]
        centre = 1.0 - 0.5 * min(1.0, np.hypot((cx - w / 2) / (w / 2), (cy - h / 2) / (h / 2)))
        edge = 1 / 3 if touches_border(stats[i], m.shape) else 1.0
        scores.append(float(stats[i, cv2.CC_STAT_AREA]) * float(sal[labels == i].mean()) * centre * edge)
    best = int(np.argmax(scores)) + 1
    bx, by, bw, bh = (int(v) for v in stats[best, :4])
    parts = [labels == best]
    for i in range(1, n):
        x, y, pw, ph = (int(v) for v in stats[i, :4])
        x_overlap = (min(bx + bw, x + pw) - max(bx, x)) / min(bw, pw)
        y_overlap = (min(by + bh, y + ph) - max(by, y)) / min(bh, ph)
        stacked = x_overlap > 0.7 and max(by - (y + ph), y - (by + bh)) <= 0.5 * max(bw, bh)
        side_by_side = y_overlap > 0.7 and max(bx - (x + pw), x - (bx + bw)) <= 0.5 * max(bw, bh)
        if i != best and scores[i - 1] >= PART_SCORE * scores[best - 1] and (stacked or side_by_side) \
                and not touches_border(stats[i], m.shape):
            parts.append(labels == i)
    union = np.logical_or.reduce(parts)
    bridges = np.zeros_like(union)
    if len(parts) > 1:
        bridges = _hull(union) & ~np.logical_or.reduce([_hull(p) for p in parts])
    return union, parts, bridges


def salient_mask(source: Image.Image, exclude: np.ndarray | None = None) -> np.ndarray:
    """Where the most salient object is (bool, the source's size): the likeliest object in the saliency map's Otsu
    threshold seeds GrabCut; the bridges between its parts are added back. `exclude` (bool, source size: people
    beside a product) is sure background."""
    rgb, _ = work_image(source)
    sal = saliency_map(rgb)
    sal8 = (sal * 255).astype(np.uint8)
    _, hot = cv2.threshold(sal8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    small_exclude = None
    if exclude is not None:
        small_exclude = cv2.resize(exclude.astype(np.uint8), rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
        hot[small_exclude] = 0
    candidate, parts, bridges = likeliest_object(hot, sal)
    share = float(candidate.mean())
    seeds = np.full(rgb.shape[:2], cv2.GC_PR_BGD, np.uint8)
    if share < 0.003 or share > 0.9:  # nothing stands out: the centre is the object
        h, w = rgb.shape[:2]
        seeds[round(0.1 * h):round(0.9 * h), round(0.1 * w):round(0.9 * w)] = cv2.GC_PR_FGD
        candidate, bridges = np.zeros(rgb.shape[:2], bool), np.zeros(rgb.shape[:2], bool)
    else:
        seeds[candidate | bridges] = cv2.GC_PR_FGD
        for part in parts:
            size = int(np.sqrt(part.sum()))
            core = cv2.erode(part.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, size // 8)) > 0
            seeds[core & (sal > np.percentile(sal[part], 40))] = cv2.GC_FGD
    near = cv2.dilate((candidate | bridges).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    seeds[border_strip(rgb.shape) & ~near] = cv2.GC_BGD
    if small_exclude is not None:
        seeds[small_exclude] = cv2.GC_BGD
    fg = grabcut(rgb, seeds).astype(bool) | bridges
    return to_source(clean(fg, seeds == cv2.GC_FGD), source.size)


__all__ = ["PART_SCORE", "border_surface", "likeliest_object", "salient_mask", "saliency_map"]
