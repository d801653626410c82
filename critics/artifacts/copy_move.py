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
CM_WINDOW = 7
"""Side of the windows (working pixels) whose correlation with their displaced copy verifies a candidate."""
CM_NCC = 0.9
"""A window correlating at least this well with the window one displacement away is copied."""
CM_MIN_REGION = 0.008
"""The copied windows must form one connected region covering at least this share of the working image (a
pasted patch of 1/5 the short side covers 1-3.5%; repeated windows, shutters and railings at most 0.5%)."""
CM_PERIODIC = 0.35
"""If the region also repeats at twice the displacement (at least this share of its area), it is a periodic
structure (a facade, a fence, a row of flags), not a pasted patch."""
CM_ELSEWHERE = 0.8
"""If the copied region's box also matches a third place at least this well (relative to how well it matches
its copy; normalised cross-correlation), it is one of several repeats (windows on a facade, tiles, letters),
not a pasted patch: a paste has exactly one twin. This also covers periods the 2x test cannot see (a match
three windows away whose double falls outside the image)."""
CM_FLAT = 0.6
"""If at least this share of the region's box is within 2 grey levels of its two commonest greys, it is a
two-tone design element (repeated text, a logo on a plain ground), not a pasted piece of picture (a photo
patch spreads over many greys, a sky included)."""
CM_MIN_VAR = 4.0
"""Windows flatter than this grey variance carry no evidence of copying (sky, a plain backdrop)."""


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

    Returns (count, src points Nx2, dst points Nx2) in the given image's pixels (0 and no points if none).
    """
    clusters = copy_move_clusters(gray, mask)
    if not clusters:
        empty = np.zeros((0, 2), np.float32)
        return 0, empty, empty
    return clusters[0]


def copy_move_clusters(gray: np.ndarray, mask: np.ndarray | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """SIFT self-matching: groups of matched keypoint pairs sharing one displacement, largest first (at most
    ``CM_CANDIDATES``), each as (count, src points Nx2, dst points Nx2) in the given image's pixels. The self match is
    excluded by index (``trainIdx != queryIdx``, exact copies tie at distance 0), matches closer than
    CM_MIN_SHIFT are the same structure, and Lowe's ratio test against the next other neighbour drops
    periodic texture (bricks, tiles) where every point has many look-alikes.
    """
    kps, desc = _sift().detectAndCompute(gray, mask)
    if desc is None or len(kps) < 4:
        return []
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
        return []
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
    out: list[tuple[int, np.ndarray, np.ndarray]] = []
    for ci in np.argsort(-pooled, kind="stable")[:CM_CANDIDATES]:
        if pooled[ci] < 2:
            break
        sel = np.abs(bins - keys[ci]).max(axis=1) <= 1
        src, dst = a2[sel], b2[sel]
        if _overlapping(src, dst):
            continue  # a periodic structure (lattice, fence) repeating onto itself, not a pasted patch
        if any(np.abs(np.median(d - s_, axis=0) - np.median(dst - src, axis=0)).max() <= CM_BIN for _, s_, d in out):
            continue  # the same displacement as a cluster already kept (neighbouring bins)
        out.append((int(sel.sum()), src, dst))
    return out


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


def _shifted(g: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """g displaced by -d (so that out(x) = g(x + d), bilinear), and where that is inside the image."""
    h, w = g.shape
    m = np.array([[1.0, 0.0, -float(d[0])], [0.0, 1.0, -float(d[1])]], np.float32)
    out = np.asarray(cv2.warpAffine(g, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=0))
    inside = np.asarray(cv2.warpAffine(np.ones((h, w), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST,
                                       borderValue=0)) > 0
    return out, inside


def copied_region(g: np.ndarray, d: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Windows whose content reappears one displacement ``d`` away (local correlation >= CM_NCC), as a mask over
    the source side (grey float32 image)."""
    s, inside = _shifted(g, d)
    k = (CM_WINDOW, CM_WINDOW)
    ma, mb = cv2.boxFilter(g, -1, k), cv2.boxFilter(s, -1, k)
    va = cv2.boxFilter(g * g, -1, k) - ma * ma
    vb = cv2.boxFilter(s * s, -1, k) - mb * mb
    cov = cv2.boxFilter(g * s, -1, k) - ma * mb
    textured = inside & (va > CM_MIN_VAR) & (vb > CM_MIN_VAR)
    if keep is not None:
        textured &= keep & _shifted(keep.astype(np.uint8), d)[0].astype(bool)
    ncc = cov / np.sqrt(np.maximum(va * vb, 1e-6))
    return textured & (ncc >= CM_NCC)


def two_tone_share(patch: np.ndarray) -> float:
    """Share of a grey patch within 2 levels of its two commonest greys (1 for text on a plain ground)."""
    hist = np.bincount(np.clip(np.asarray(patch).ravel(), 0, 255).astype(np.int64), minlength=256).astype(np.float64)
    if hist.sum() == 0:
        return 0.0
    near = np.convolve(hist, np.ones(5), mode="same")  # pixels within +-2 of each level
    first = int(np.argmax(near))
    rest = near.copy()
    rest[max(0, first - 4):first + 5] = 0  # the second tone must not overlap the first
    return float(near[first] + rest.max()) / float(hist.sum())


def _largest(mask: np.ndarray) -> tuple[float, tuple[int, int, int, int] | None]:
    """Share of the image covered by the largest 8-connected part of a mask, and its box (x0, y0, x1, y1)."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0.0, None
    k = 1 + int(np.argmax(stats[1:, 4]))
    x, y, bw, bh, area = (int(v) for v in stats[k])
    return area / float(mask.size), (x, y, x + bw, y + bh)


def _elsewhere(g: np.ndarray, box: tuple[int, int, int, int], d: np.ndarray) -> float:
    """How well the region's box matches the best third place, relative to how well it matches its copy."""
    x0, y0, x1, y1 = box
    h, w = g.shape
    if x1 - x0 < 4 or y1 - y0 < 4 or x1 - x0 >= w or y1 - y0 >= h:
        return 0.0
    ncc = cv2.matchTemplate(g, np.ascontiguousarray(g[y0:y1, x0:x1]), cv2.TM_CCOEFF_NORMED)
    tx, ty = int(round(x0 + float(d[0]))), int(round(y0 + float(d[1])))
    if not (0 <= tx < ncc.shape[1] and 0 <= ty < ncc.shape[0]):
        return 0.0
    twin = float(ncc[max(0, ty - 2):ty + 3, max(0, tx - 2):tx + 3].max())
    if twin <= 0:
        return 0.0
    bw, bh = x1 - x0, y1 - y0
    for cx, cy in ((x0, y0), (tx, ty)):  # leave out the region itself and its copy
        ncc[max(0, cy - bh // 2):cy + bh // 2 + 1, max(0, cx - bw // 2):cx + bw // 2 + 1] = -1.0
    return float(ncc.max()) / twin


def verify_copy(g: np.ndarray, src: np.ndarray, dst: np.ndarray,
                keep: np.ndarray | None = None) -> tuple[str | None, dict[str, Any]]:
    """Whether a cluster of matched points is a pasted region: None if it is, else why not; and measurements
    (``region_share``, ``box`` of the source region in working pixels, ``periodic``, ``elsewhere``, ``flat``)."""
    d = np.median(dst - src, axis=0)
    copied = copied_region(g, d, keep)
    share, box = _largest(copied)
    info: dict[str, Any] = {"region_share": round(share, 4), "displacement_px": d}
    if box is None or share < CM_MIN_REGION:
        return "no coherent copied region (similar structures, not a copy)", info
    info["box"] = box
    again = copied_region(g, 2 * d, keep)
    x0, y0, x1, y1 = box
    periodic = float(again[y0:y1, x0:x1].sum()) / max(1.0, float(copied[y0:y1, x0:x1].sum()))
    info["periodic"] = round(periodic, 3)
    if periodic >= CM_PERIODIC:
        return "periodic structure (it repeats again at twice the shift)", info
    elsewhere = _elsewhere(g, box, d)
    info["elsewhere"] = round(elsewhere, 3)
    if elsewhere >= CM_ELSEWHERE:
        return "repeated structure (it matches a third place as well)", info
    flat = two_tone_share(g[y0:y1, x0:x1])
    info["flat"] = round(flat, 3)
    if flat >= CM_FLAT:
        return "repeated element on a plain ground (text or a logo)", info
    return None, info


def copy_move_check(image: np.ndarray, limit: float | None = None, mask: np.ndarray | None = None,
                    work_side: int = WORK_SIDE) -> SubCheck:
    """Copy-move: SIFT self-match pairs of one displacement on grey at the working size, verified densely.

    A displacement shared by several keypoint pairs is only a candidate: the windows around the source must
    correlate with the windows one displacement away over one coherent region (``CM_MIN_REGION``), that
    region must not repeat again at twice the displacement (periodic texture: windows, tiles, fabric) and
    must not be mostly plain ground (text or a logo on a flat background). The value is the number of pairs
    of the first verified candidate (0 if none). ``mask`` (same size as image, non-zero = search) excludes
    areas such as planned text, whose repeated glyphs are legitimate copies. Points and regions come back in
    the input image's pixels.
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
    gf = g.astype(np.float32)
    keep = m > 0 if m is not None else None
    detail: dict[str, Any] = {}
    count = 0
    rejected = []
    for n, src, dst in copy_move_clusters(g, m):
        why, info = verify_copy(gf, src, dst, keep)
        if why is not None:
            rejected.append({"pairs": n, "why": why, "region_share": info["region_share"]})
            continue
        count = n
        srcs, dsts = src / s, dst / s
        shift = info["displacement_px"] / s
        detail["displacement"] = [round(float(shift[0])), round(float(shift[1]))]
        detail["source"] = where(float(srcs[:, 0].mean()) / w0, float(srcs[:, 1].mean()) / h0)
        detail["target"] = where(float(dsts[:, 0].mean()) / w0, float(dsts[:, 1].mean()) / h0)
        detail["region_share"] = info["region_share"]
        x0, y0, x1, y1 = info["box"]
        dx, dy = float(info["displacement_px"][0]), float(info["displacement_px"][1])
        boxes = [(x0, y0, x1, y1), (x0 + dx, y0 + dy, x1 + dx, y1 + dy)]
        detail["regions"] = [[max(0, int(bx0 / s)), max(0, int(by0 / s)), min(w0, int(np.ceil(bx1 / s))),
                              min(h0, int(np.ceil(by1 / s)))] for bx0, by0, bx1, by1 in boxes]
        detail["_pairs"] = (srcs, dsts)
        break
    if rejected:
        detail["rejected"] = rejected[:3]
    return make_subcheck("copy_move", count, limit, **detail)
