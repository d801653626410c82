"""The low-texture fallback: a plain object (a one-colour mug) has too few keypoints for local features, so
it is searched for by its colours and its silhouette.

The candidate (at ``SEARCH_SIDE``) is back-projected through the object's L*a*b* histogram: each pixel gets
how much it looks like the object's colours. The object's silhouette (its mask, 1 inside, 0 on a ring of
``RING_SHARE`` around it) is then slid over that map at several scales (``SCALE_STEP`` apart, from
``MIN_OBJECT_PX`` to the image's short side) with normalised cross-correlation (``TM_CCOEFF_NORMED``): the peak
is where a region of the object's colours has the object's shape and is set off from its surroundings (a
uniform area of the same colour scores near 0: no contrast with the ring).

Correlation is tolerant (a red ball fits a red mug's silhouette at 0.85), so the best few peaks are verified:
the object-coloured region there is cut out at ``VERIFY_SIDE`` and its shape overlapped with the silhouette,
aligned by centroid and area at the best of ``ROTATIONS`` (``aligned_iou`` >= ``MIN_IOU``). The critic then
compares the colours inside the region's box with the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from critics.reference.colour import back_project, hsv_of

SEARCH_SIDE = 320
"""Long side the candidate is searched at."""
MIN_OBJECT_PX = 16
"""Smallest object (long side, pixels at SEARCH_SIDE) searched for."""
SCALE_STEP = 0.85
"""Ratio between successive silhouette sizes."""
RING_SHARE = 0.2
"""Width of the ring around the silhouette that must not look like the object, as a share of its long side."""
FULL_CONTRAST = 0.4
"""Mean likeness inside the silhouette minus on its ring at which the fit counts fully (a fainter region's
correlation is scaled down)."""
MIN_FIT = 0.3
"""Silhouette correlation below which a peak is not worth verifying."""
TOP_PEAKS = 3
"""Distinct peaks (the best per scale, non-overlapping) that are verified, best first."""
VERIFY_SIDE = 96
"""Long side the region and the silhouette are compared at."""
ROTATIONS = tuple(range(-35, 36, 5))
"""Rotations (degrees) the region is tried at against the silhouette."""
STANDOUT_MIN = 18.0
"""Lab distance from the surroundings' colour above which a pixel stands out (at least 2.5 x the surroundings'
own spread)."""
MIN_IOU = 0.9
"""Overlap of the region's shape with the silhouette (aligned by centroid, area and the best rotation) for the
object to count as found: unoccluded plain objects reach 0.96-1.0 under every scale, rotation and lighting
condition; a red ball or box for a red mug and red things in real photos reach at most 0.88
(bench/reference.py). A plain object a third hidden (0.76-0.83) is not found: its silhouette is no longer its."""


@dataclass(frozen=True)
class TemplateHit:
    """Where the silhouette fits, in candidate pixels; how well it correlates, and how well the region's own
    shape overlaps it (None: not verified)."""

    box: tuple[int, int, int, int]
    fit: float
    iou: float | None = None

    @property
    def verified(self) -> bool:
        return self.iou is not None and self.iou >= MIN_IOU

    @property
    def strength(self) -> float:
        """Shape evidence in [0, 1]: 0 at MIN_IOU, 1 at a perfect overlap."""
        return float(np.clip(((self.iou or 0.0) - MIN_IOU) / (1.0 - MIN_IOU), 0.0, 1.0))


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def search(likeness: np.ndarray, silhouette: np.ndarray, scale: float) -> list[TemplateHit]:
    """The best fits of `silhouette` (uint8 mask cropped to the object) over `likeness` (float32 back-projection
    of the candidate at `scale` of its size): up to TOP_PEAKS non-overlapping boxes in the candidate's own
    pixels, best first."""
    h, w = likeness.shape[:2]
    sh, sw = silhouette.shape[:2]
    if min(h, w) < MIN_OBJECT_PX or sh < 2 or sw < 2:
        return []
    peaks: list[tuple[float, tuple[int, int, int, int]]] = []
    k = min(w / sw, h / sh)  # the largest silhouette that fits
    while k * max(sh, sw) >= MIN_OBJECT_PX:
        tw, th = max(2, round(sw * k)), max(2, round(sh * k))
        ring = max(2, round(RING_SHARE * max(tw, th)))
        ring_x, ring_y = min(ring, (w - tw) // 2), min(ring, (h - th) // 2)
        if tw <= w and th <= h and min(ring_x, ring_y) >= 1:
            tpl = np.zeros((th + 2 * ring_y, tw + 2 * ring_x), np.float32)
            tpl[ring_y:ring_y + th, ring_x:ring_x + tw] = cv2.resize(
                silhouette, (tw, th), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
            shape = cv2.matchTemplate(likeness, tpl, cv2.TM_CCOEFF_NORMED)
            # correlation is blind to magnitude: a faint blob of the right shape must not count, so it is
            # weighted by how much more the silhouette looks like the object than its ring does
            inside = cv2.matchTemplate(likeness, tpl / max(1e-6, float(tpl.sum())), cv2.TM_CCORR)
            ring_tpl = 1.0 - tpl  # the ring and the silhouette's box outside the object
            ring_mean = cv2.matchTemplate(likeness, ring_tpl / max(1e-6, float(ring_tpl.sum())), cv2.TM_CCORR)
            res = np.nan_to_num(shape) * np.clip((inside - ring_mean) / FULL_CONTRAST, 0.0, 1.0)
            _, peak, _, (px, py) = cv2.minMaxLoc(res)
            if peak >= MIN_FIT:
                x0, y0 = px + ring_x, py + ring_y
                peaks.append((float(peak), (int(x0 / scale), int(y0 / scale), int(round((x0 + tw) / scale)),
                                            int(round((y0 + th) / scale)))))
        k *= SCALE_STEP
    hits: list[TemplateHit] = []
    for peak, box in sorted(peaks, key=lambda p: -p[0]):
        if all(_overlap(box, h.box) < 0.5 for h in hits):
            hits.append(TemplateHit(box=box, fit=peak))
        if len(hits) == TOP_PEAKS:
            break
    return hits


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every region not connected to its border set (as the reference's backdrop mask does)."""
    h, w = mask.shape
    framed = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    flood = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(framed, flood, (0, 0), 128)
    return np.where(framed[1:-1, 1:-1] == 128, 0, 255).astype(np.uint8)


def region_shape(likeness: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """The object-coloured region (likeness >= 0.5) with the most pixels inside `box`, holes filled; None if
    there is none. `likeness` and `box` share coordinates."""
    x0, y0, x1, y1 = box
    m = (likeness >= 0.5).astype(np.uint8) * 255
    n, labels, _, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return None
    inside = labels[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
    counts = np.bincount(inside.ravel(), minlength=n)
    counts[0] = 0
    best = int(counts.argmax())
    return fill_holes(np.where(labels == best, 255, 0).astype(np.uint8)) if counts[best] > 0 else None


def foreground_shape(crop: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """What stands out from the crop's own surroundings (its border's colour, in Lab) as one shape: the regions
    that lie mostly inside `box`, holes filled; None if there is none."""
    lab = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2LAB).astype(np.float32)
    border = np.concatenate([lab[:3].reshape(-1, 3), lab[-3:].reshape(-1, 3), lab[:, :3].reshape(-1, 3),
                             lab[:, -3:].reshape(-1, 3)])
    distance = np.linalg.norm(lab - np.median(border, axis=0), axis=2)
    spread = float(np.percentile(np.linalg.norm(border - np.median(border, axis=0), axis=1), 90))
    m = (distance > max(STANDOUT_MIN, 2.5 * spread)).astype(np.uint8) * 255
    likeness = m.astype(np.float32) / 255.0
    shape = region_shape(likeness, box)
    if shape is None:
        return None
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    x0, y0, x1, y1 = box
    inside = labels[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
    counts = np.bincount(inside.ravel(), minlength=n)
    parts = [k for k in range(1, n) if counts[k] >= 0.8 * stats[k, cv2.CC_STAT_AREA] and counts[k] > 0]
    if not parts:
        return shape
    return fill_holes(np.isin(labels, parts).astype(np.uint8) * 255)


def aligned_iou(region: np.ndarray, silhouette: np.ndarray) -> float:
    """Overlap of two binary shapes after matching centroids and areas, at the best of ROTATIONS."""
    mr, ms = cv2.moments(region, binaryImage=True), cv2.moments(silhouette, binaryImage=True)
    if mr["m00"] <= 0 or ms["m00"] <= 0:
        return 0.0
    cr = (mr["m10"] / mr["m00"], mr["m01"] / mr["m00"])
    cs = np.array((ms["m10"] / ms["m00"], ms["m01"] / ms["m00"]))
    k = float(np.sqrt(ms["m00"] / mr["m00"]))
    target = silhouette > 0
    best = 0.0
    for angle in ROTATIONS:
        a = cv2.getRotationMatrix2D(cr, angle, k)
        a[:, 2] += cs - np.array(cr)
        warped = cv2.warpAffine(region, a, (silhouette.shape[1], silhouette.shape[0]), flags=cv2.INTER_NEAREST) > 0
        union = np.count_nonzero(warped | target)
        best = max(best, np.count_nonzero(warped & target) / union if union else 0.0)
    return float(best)


def verify(rgb: np.ndarray, hit: TemplateHit, model: np.ndarray, target: np.ndarray) -> TemplateHit:
    """The hit with its region's shape overlapped with `target` (``padded_silhouette``): the candidate around the
    box is back-projected at VERIFY_SIDE; the box becomes the region's own box."""
    x0, y0, x1, y1 = hit.box
    bw, bh = max(1, x1 - x0), max(1, y1 - y0)
    pad = round(0.25 * max(bw, bh))
    cx0, cy0 = max(0, x0 - pad), max(0, y0 - pad)
    cx1, cy1 = min(rgb.shape[1], x1 + pad), min(rgb.shape[0], y1 + pad)
    if cx1 <= cx0 or cy1 <= cy0:
        return TemplateHit(box=hit.box, fit=hit.fit, iou=0.0)
    s = VERIFY_SIDE / max(bw, bh)
    crop = cv2.resize(rgb[cy0:cy1, cx0:cx1], (max(1, round((cx1 - cx0) * s)), max(1, round((cy1 - cy0) * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    likeness = back_project(hsv_of(crop), model)
    box = (round((x0 - cx0) * s), round((y0 - cy0) * s), round((x1 - cx0) * s), round((y1 - cy0) * s))
    region = region_shape(likeness, box)
    standout = foreground_shape(crop, box)
    if region is None or (standout is not None and aligned_iou(standout, target) > aligned_iou(region, target)):
        # a plain object in several flat colours: its own colours cover only part of it, while the whole of it
        # stands out from what surrounds it
        region = standout
    if region is None:
        return TemplateHit(box=hit.box, fit=hit.fit, iou=0.0)
    ys, xs = np.nonzero(region)
    own = (cx0 + int(xs.min() / s), cy0 + int(ys.min() / s), cx0 + int(np.ceil((xs.max() + 1) / s)),
           cy0 + int(np.ceil((ys.max() + 1) / s)))
    return TemplateHit(box=own, fit=hit.fit, iou=aligned_iou(region, target))


def padded_silhouette(silhouette: np.ndarray) -> np.ndarray:
    """The silhouette at VERIFY_SIDE with a quarter of that as margin (room to rotate), binary."""
    s = VERIFY_SIDE / max(silhouette.shape)
    small = cv2.resize(silhouette, (max(1, round(silhouette.shape[1] * s)), max(1, round(silhouette.shape[0] * s))),
                       interpolation=cv2.INTER_AREA)
    pad = VERIFY_SIDE // 4
    return cv2.copyMakeBorder(np.where(small >= 128, 255, 0).astype(np.uint8), pad, pad, pad, pad,
                              cv2.BORDER_CONSTANT, value=0)


__all__ = ["FULL_CONTRAST", "MIN_FIT", "MIN_IOU", "MIN_OBJECT_PX", "RING_SHARE", "ROTATIONS", "SCALE_STEP",
           "SEARCH_SIDE", "TOP_PEAKS", "TemplateHit", "VERIFY_SIDE", "aligned_iou", "fill_holes",
           "padded_silhouette", "region_shape", "search", "verify"]
