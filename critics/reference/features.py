"""Local features with a geometric check: where (if anywhere) the reference object is in the candidate.

SIFT keypoints (OpenCV) of the reference object (inside its mask) are matched to the candidate's with a
FLANN k-d tree and Lowe's ratio test; a similarity transform (rotation, uniform scale, translation:
``cv2.estimateAffinePartial2D`` with RANSAC) must explain enough of the matches. A similarity transform,
not a homography: with 4 degrees of freedom random matches rarely agree on one (false positives on real
photos stay at 0, ``bench/reference.py``), and a product re-drawn in a new pose is still roughly a scaled
and rotated copy.

Both images are described at a reduced size (``CANDIDATE_SIDE``, ``REFERENCE_SIDE``); SIFT's scale space
still matches a reference shown at 40% of its size (88% found at 0.4, 97.6% at 0.6). The candidate's keypoints
are computed and indexed once per check for every reference (each added reference costs ~5 ms). Points are
kept in each image's own pixel coordinates.

Detectors measured on the same cases (bench/reference.py --quick --detector): SIFT 97% found, ORB 71% (4x
faster, but 29% at 40% scale), AKAZE 56%; none had a false positive.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

CANDIDATE_SIDE = 768
"""Long side the candidate is described at: 640 found 79% at 40% scale, 512 47% (bench/reference.py --side)."""
REFERENCE_SIDE = 512
"""Long side the reference is described at."""
RATIO = 0.8
"""Lowe's ratio test: a match is kept when its distance is below this share of the second best."""
RANSAC_PX = 4.0
"""RANSAC reprojection tolerance, in pixels of the candidate at CANDIDATE_SIDE."""
MIN_INLIERS = 10
"""Matches the transform must explain for the object to count as found (in photos without the object random
matches agree on at most 7; bench/reference.py)."""
MIN_INLIER_RATIO = 0.2
"""Share of the ratio-test matches the transform must explain."""
STRONG_INLIERS = 40
"""Inliers at which the geometric evidence is full (similarity's feature part saturates)."""
SCALE_RANGE = (0.04, 12.0)
"""Plausible object scales (candidate pixels per reference pixel); a transform outside is degenerate."""
MIN_SPREAD = 0.15
"""The inliers must span at least this share of the reference object's box on its longer axis (random matches
that agree tend to cluster in one corner)."""

CANDIDATE_FEATURES = 4000
"""The candidate keeps its strongest keypoints up to this many (a busy 1024 px photo has ~10 000 at 768; the
cap saves about a third of the time and lost 1 of 374 placements; 2500 lost 22: bench/reference.py --limit).
References keep all of theirs."""
DETECTORS = {
    "sift": lambda n: cv2.SIFT.create(nfeatures=n),
    "akaze": lambda n: cv2.AKAZE.create(),
    "orb": lambda n: cv2.ORB.create(nfeatures=n or 4000),
}
"""Detectors the bench compares (bench/reference.py --detector); binary descriptors (AKAZE, ORB) are matched by
Hamming distance."""
DETECTOR = "sift"
"""The detector used (SIFT: best recall at 40% scale and 30 degrees, bench/reference.py)."""

_tls = threading.local()


def _detector(name: str, limit: int) -> Any:
    """One detector per thread, name and keypoint limit (the critic is shared across threads)."""
    cache: dict[tuple[str, int], Any] = getattr(_tls, "detectors", None) or {}
    _tls.detectors = cache
    if (name, limit) not in cache:
        cache[name, limit] = DETECTORS[name](limit)
    return cache[name, limit]


@dataclass(frozen=True)
class Features:
    """Keypoints (N x 2, the image's own pixel coordinates) and their descriptors (N x 128, float32)."""

    points: np.ndarray
    descriptors: np.ndarray | None
    size: tuple[int, int]
    scale: float
    """work size / original size (<= 1)."""

    def __len__(self) -> int:
        return 0 if self.descriptors is None else len(self.descriptors)


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def describe(gray: np.ndarray, mask: np.ndarray | None = None, max_side: int | None = None,
             detector: str | None = None, limit: int | None = None) -> Features:
    """Keypoints and descriptors (SIFT unless `detector` or DETECTOR names another) of a greyscale image, inside
    `mask` when given, at a long side of at most `max_side` (default CANDIDATE_SIDE), the strongest `limit`
    (default CANDIDATE_FEATURES; 0: all); points are in the image's own coordinates."""
    max_side = max_side or CANDIDATE_SIDE
    limit = CANDIDATE_FEATURES if limit is None else limit
    h, w = gray.shape[:2]
    s = min(1.0, max_side / max(h, w))
    small = gray if s >= 1.0 else cv2.resize(gray, (max(1, round(w * s)), max(1, round(h * s))),
                                             interpolation=cv2.INTER_AREA)
    small_mask = None
    if mask is not None:
        small_mask = mask if s >= 1.0 else cv2.resize(mask, (small.shape[1], small.shape[0]),
                                                      interpolation=cv2.INTER_NEAREST)
    kps, desc = _detector(detector or DETECTOR, limit).detectAndCompute(small, small_mask)
    points = (np.array([kp.pt for kp in kps], np.float32).reshape(-1, 2) + 0.5) / s - 0.5
    return Features(points=points, descriptors=desc, size=(w, h), scale=s)


@dataclass(frozen=True)
class Located:
    """The best geometric explanation of the matches: reference pixels -> candidate pixels."""

    transform: np.ndarray | None
    """2 x 3 similarity transform (None: no transform was found)."""
    inliers: int
    matches: int
    spread: float = 0.0
    """Extent of the inliers over the reference object's box (longer axis share)."""

    @property
    def ratio(self) -> float:
        return self.inliers / self.matches if self.matches else 0.0

    @property
    def scale(self) -> float:
        if self.transform is None:
            return 0.0
        return float(math.sqrt(abs(np.linalg.det(self.transform[:, :2]))))

    @property
    def rotation(self) -> float:
        """Degrees, counter-clockwise in image coordinates."""
        if self.transform is None:
            return 0.0
        return float(math.degrees(math.atan2(self.transform[1, 0], self.transform[0, 0])))

    @property
    def verified(self) -> bool:
        """Enough agreeing matches, a plausible scale and a spread-out set of inliers."""
        return (self.transform is not None and self.inliers >= MIN_INLIERS and self.ratio >= MIN_INLIER_RATIO
                and SCALE_RANGE[0] <= self.scale <= SCALE_RANGE[1] and self.spread >= MIN_SPREAD)

    @property
    def strength(self) -> float:
        """Geometric evidence in [0, 1]: inliers up to STRONG_INLIERS."""
        return min(1.0, self.inliers / STRONG_INLIERS)

    def project(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """The four corners of a reference box in the candidate (4 x 2)."""
        assert self.transform is not None
        x0, y0, x1, y1 = box
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
        return corners @ self.transform[:, :2].T + self.transform[:, 2]


def index(cand: Features) -> Any:
    """A matcher trained on the candidate's descriptors, built once per check and queried for every reference:
    FLANN k-d trees for float descriptors (SIFT), brute-force Hamming for binary ones (AKAZE, ORB)."""
    if cand.descriptors is None or len(cand) < 2:
        return None
    matcher: cv2.DescriptorMatcher
    if cand.descriptors.dtype == np.uint8:
        matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    else:
        matcher = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": 48})
    matcher.add([cand.descriptors])
    matcher.train()
    return matcher


def locate(ref: Features, cand: Features, object_box: tuple[int, int, int, int], matcher: Any = None) -> Located:
    """Match the reference's features to the candidate's (through `matcher`, the candidate's ``index``, when
    given) and fit a similarity transform with RANSAC."""
    if len(ref) < 2 or len(cand) < 2 or ref.descriptors is None or cand.descriptors is None:
        return Located(None, 0, 0)
    matcher = matcher if matcher is not None else index(cand)
    pairs = matcher.knnMatch(ref.descriptors, k=2)
    best: dict[int, tuple[float, int]] = {}  # candidate keypoint -> (distance, reference keypoint)
    for pair in pairs:
        if len(pair) < 2:
            continue
        m, n = pair
        if m.distance < RATIO * n.distance and (m.trainIdx not in best or m.distance < best[m.trainIdx][0]):
            best[m.trainIdx] = (m.distance, m.queryIdx)
    if len(best) < 3:
        return Located(None, 0, len(best))
    src = np.array([ref.points[q] for _, q in best.values()], np.float32)
    dst = np.array([cand.points[t] for t in best], np.float32)
    transform, inlier_mask = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX / cand.scale, maxIters=2000,
        confidence=0.995, refineIters=10)
    if transform is None or inlier_mask is None:
        return Located(None, 0, len(best))
    keep = inlier_mask.ravel().astype(bool)
    inliers = int(keep.sum())
    spread = 0.0
    if inliers:
        pts = src[keep]
        x0, y0, x1, y1 = object_box
        spread = float(max((pts[:, 0].max() - pts[:, 0].min()) / max(1, x1 - x0),
                           (pts[:, 1].max() - pts[:, 1].min()) / max(1, y1 - y0)))
    return Located(transform.astype(np.float64), inliers, len(best), spread)


__all__ = ["CANDIDATE_FEATURES", "CANDIDATE_SIDE", "DETECTOR", "DETECTORS", "Features", "Located", "MIN_INLIERS",
           "MIN_INLIER_RATIO", "MIN_SPREAD", "RANSAC_PX",
           "RATIO", "REFERENCE_SIDE", "SCALE_RANGE", "STRONG_INLIERS", "describe", "gray_of", "index", "locate"]
