"""Copy-move sub-check: SIFT self-matching, the largest group of keypoint pairs sharing one displacement."""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from critics.artifacts.common import WORK_SIDE, SubCheck, downscale, make_subcheck, to_gray, where

CM_NFEATURES = 2000
"""Most SIFT keypoints kept (strongest first); matching is quadratic in this."""
CM_CONTRAST = 0.01
"""SIFT contrast threshold (OpenCV default 0.04): low, so that low-texture pasted patches still carry
keypoints (a flat backdrop patch in astronaut gives 7 matches at 0.01, 4 at 0.02)."""
CM_RATIO = 0.6
"""Lowe's ratio: the best match must be this much closer than the next look-alike elsewhere."""
CM_MIN_SHIFT = 12.0
"""Matched points closer than this (working pixels) are the same structure, not a copy."""
CM_BIN = 3.0
"""Displacements are pooled in bins of this many working pixels (with their 8 neighbours)."""
CM_K = 8
"""Neighbours fetched per keypoint, enough to skip itself and its other orientations."""
CM_CANDIDATES = 5
"""Displacement clusters examined, largest first, to find one that is not a periodic structure."""


def _sift() -> Any:
    tls = _TLS
    sift = getattr(tls, "sift", None)
    if sift is None:
        sift = cv2.SIFT_create(nfeatures=CM_NFEATURES, contrastThreshold=CM_CONTRAST)  # type: ignore[attr-defined]  # not in the stubs
        tls.sift = sift
    return sift


_TLS = threading.local()


def copy_move_pairs(gray: np.ndarray, mask: np.ndarray | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """SIFT self-matching: the largest group of matched keypoint pairs sharing one displacement.

    Returns (count, src points Nx2, dst points Nx2) in the given image's pixels. The self match is
    excluded by index (``trainIdx != queryIdx``, exact copies tie at distance 0), matches closer than
    CM_MIN_SHIFT are the same structure, and Lowe's ratio test against the next other neighbour drops
    periodic texture (bricks, tiles) where every point has many look-alikes.
    """
    empty = np.zeros((0, 2), np.float32)
    kps, desc = _sift().detectAndCompute(gray, mask)
    if desc is None or len(kps) < 4:
        return 0, empty, empty
    pts = np.array([k.pt for k in kps], np.float32)
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc, desc, k=min(CM_K, len(kps)))
    pairs: dict[tuple[int, int], None] = {}
    for q, ms in enumerate(knn):
        best = nxt = None
        for m in ms:
            t = m.trainIdx
            if t == q or float(np.hypot(*(pts[t] - pts[q]))) < CM_MIN_SHIFT:
                continue  # the keypoint itself, or the same structure at another scale/orientation
            if best is None:
                best = m
            elif float(np.hypot(*(pts[t] - pts[best.trainIdx]))) >= CM_MIN_SHIFT:
                nxt = m  # the next look-alike somewhere else (not the best match's other orientation)
                break
        if best is None:
            continue
        if nxt is None and len(ms) < CM_K:
            nxt_d = float("inf")
        elif nxt is None:
            continue
        else:
            nxt_d = nxt.distance
        if best.distance < CM_RATIO * nxt_d:
            i, j = sorted((q, best.trainIdx))
            pairs[(i, j)] = None
    if len(pairs) < 2:
        return len(pairs), empty, empty
    idx = np.array(list(pairs), np.int64)
    a, b = pts[idx[:, 0]], pts[idx[:, 1]]
    v = b - a
    flip = (v[:, 0] < 0) | ((v[:, 0] == 0) & (v[:, 1] < 0))
    a2 = np.where(flip[:, None], b, a)
    b2 = np.where(flip[:, None], a, b)
    v = b2 - a2
    bins = np.round(v / CM_BIN).astype(np.int64)
    keys, inv = np.unique(bins, axis=0, return_inverse=True)
    inv = inv.ravel()
    counts = np.bincount(inv, minlength=len(keys))
    # Neighbouring bins pool: a displacement split across a bin edge still counts once.
    lookup = {tuple(k): c for k, c in zip(keys.tolist(), counts.tolist())}
    pooled = np.array([sum(lookup.get((k[0] + dx, k[1] + dy), 0) for dx in (-1, 0, 1) for dy in (-1, 0, 1))
                       for k in keys.tolist()])
    for ci in np.argsort(-pooled, kind="stable")[:CM_CANDIDATES]:
        if pooled[ci] < 2:
            break
        sel = np.abs(bins - keys[ci]).max(axis=1) <= 1
        src, dst = a2[sel], b2[sel]
        if _overlapping(src, dst):
            continue  # a periodic structure (lattice, fence) repeating onto itself, not a pasted patch
        return int(sel.sum()), src, dst
    return 0, empty, empty


def _overlapping(src: np.ndarray, dst: np.ndarray) -> bool:
    """Whether the bounding boxes of two point sets overlap by more than half the smaller box."""
    (sx0, sy0), (sx1, sy1) = src.min(axis=0), src.max(axis=0)
    (dx0, dy0), (dx1, dy1) = dst.min(axis=0), dst.max(axis=0)
    iw = min(sx1, dx1) - max(sx0, dx0)
    ih = min(sy1, dy1) - max(sy0, dy0)
    if iw <= 0 or ih <= 0:
        return False
    smaller = min((sx1 - sx0) * (sy1 - sy0), (dx1 - dx0) * (dy1 - dy0))
    return smaller <= 0 or iw * ih > 0.5 * smaller


def copy_move_check(image: np.ndarray, limit: float | None = None, mask: np.ndarray | None = None,
                    work_side: int = WORK_SIDE) -> SubCheck:
    """Copy-move: SIFT self-match pairs of one displacement on grey at the working size.

    ``mask`` (same size as image, non-zero = search) excludes areas such as planned text, whose
    repeated glyphs are legitimate copies. Points come back in the input image's pixels.
    """
    g0 = to_gray(image)
    h0, w0 = g0.shape
    if min(h0, w0) < 16:
        raise ValueError("image too small for the copy-move check")
    g = downscale(g0, work_side)
    s = g.shape[1] / w0
    m: np.ndarray | None = None
    if mask is not None:
        m = (np.asarray(mask) > 0).astype(np.uint8) * 255
        if m.shape != g.shape:
            m = cv2.resize(m, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_NEAREST)
    count, src, dst = copy_move_pairs(g, m)
    detail: dict[str, Any] = {}
    if count > 0 and len(src):
        src, dst = src / s, dst / s
        shift = (dst - src).mean(axis=0)
        detail["displacement"] = [round(float(shift[0])), round(float(shift[1]))]
        detail["source"] = where(float(src[:, 0].mean()) / w0, float(src[:, 1].mean()) / h0)
        detail["target"] = where(float(dst[:, 0].mean()) / w0, float(dst[:, 1].mean()) / h0)
        detail["_pairs"] = (src, dst)
    return make_subcheck("copy_move", count, limit, **detail)
