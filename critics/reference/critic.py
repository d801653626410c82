"""``ReferenceCritic``: is each product reference in the image? (see the package docstring for the method)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from agent.models import ImageRef, Plan, Subject, Verdict
from agent.models.evidence import ReferenceEvidence
from critics.base import CheckContext, CriticBase, CriticInfo
from critics.reference.background import mask_box, object_mask
from critics.reference.colour import (
    back_project,
    chroma_histogram,
    colour_agreement,
    colour_model,
    colour_similarity,
    hsv_of,
    lab_of,
)
from critics.reference.features import (
    MIN_INLIER_RATIO,
    MIN_INLIERS,
    REFERENCE_SIDE,
    Features,
    Located,
    describe,
    gray_of,
    index,
    locate,
)
from critics.reference.template import SEARCH_SIDE, TemplateHit, padded_silhouette, search, verify

INFO = CriticInfo(
    threshold=0.5,
    threshold_source=(
        "0.5 = found: >= 10 SIFT matches on one similarity transform (RANSAC; photos without the object give <= 7) "
        "and colour agreement >= 0.6 (found objects >= 0.64, re-coloured products <= 0.50), or for a low-texture "
        "reference a silhouette overlap >= 0.9 (decoys <= 0.88); bench/reference.py, 17 objects pasted into 29 "
        "LIVE/Kodak photos: 97.5% of 935 placements found (scale 0.6: 97.6%, 0.4: 88%, rotated 30 degrees and "
        "+-25% lighting: 99-100%), 0 of 258 negatives passed"
    ),
    description="each product reference found in the image (local features + RANSAC, colour; low-texture: "
                "colour and silhouette)",
    weight=2.0, measured=True, needs=("reference",), on_by_default=True,
    strategies=("reprompt", "new_seed"),
    evidence=ReferenceEvidence,
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

MIN_COLOUR = 0.6
"""Colour similarity of the located object below which it counts as another object (same shape and label,
other colours): objects found in bench/reference.py agree >= 0.64 (a third covered), products re-coloured but
for their label <= 0.50."""
LOW_TEXTURE_KEYPOINTS = 40
"""A reference object with fewer SIFT keypoints than this is low-texture: the colour and silhouette search
runs when the features find nothing."""
COLOUR_SIDE = 256
"""Long side the reference and the located region are compared at for colour."""
SILHOUETTE_SIDE = 256
"""Long side of the stored silhouette."""
NOT_FOUND_CAP = 0.45
"""Similarity of a reference that was not found is at most this (partial evidence ranks candidates)."""
REFERENCE_CACHE_SIZE = 64


@dataclass(frozen=True)
class PreparedReference:
    """What is computed once per reference image (cached by its hash)."""

    mask_method: str
    """How the object was cut from its backdrop: ``alpha``, ``backdrop`` (a plain one) or ``full`` (none)."""
    object_box: tuple[int, int, int, int]
    features: Features
    colour_scale: float
    colour_mask: np.ndarray
    colour_lab: np.ndarray
    chroma: np.ndarray
    model: np.ndarray
    silhouette: np.ndarray
    target: np.ndarray
    """The silhouette as the low-texture search verifies shapes against (``padded_silhouette``)."""

    @property
    def textured(self) -> bool:
        return len(self.features) >= LOW_TEXTURE_KEYPOINTS


@dataclass
class _Candidate:
    """The candidate image and what the references are matched against, computed once per check (lazily)."""

    rgb: np.ndarray
    _features: Features | None = None
    _index: Any = None
    _search: tuple[np.ndarray, float] | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    def features(self) -> Features:
        if self._features is None:
            self._features = describe(gray_of(self.rgb))
        return self._features

    def index(self) -> Any:
        """The candidate's descriptors, indexed once for every reference."""
        if self._index is None:
            self._index = index(self.features())
        return self._index

    def search_hsv(self) -> tuple[np.ndarray, float]:
        if self._search is None:
            h, w = self.rgb.shape[:2]
            s = min(1.0, SEARCH_SIDE / max(h, w))
            small = self.rgb if s >= 1.0 else cv2.resize(self.rgb, (max(1, round(w * s)), max(1, round(h * s))),
                                                         interpolation=cv2.INTER_AREA)
            self._search = (hsv_of(small), s)
        return self._search


@dataclass
class Finding:
    """One reference's result (the evidence item, before rounding)."""

    subject: str
    number: int
    name: str
    found: bool = False
    box: tuple[int, int, int, int] | None = None
    similarity: float = 0.0
    inliers: int = 0
    colour: float | None = None
    method: str | None = None
    shape: float | None = None
    cutout: str | None = None
    wrong_colour: bool = False
    error: str | None = None

    @property
    def label(self) -> str:
        return f"reference {self.number} ({self.name})"

    @property
    def detail(self) -> str:
        """One line for this reference alone (a requirement's detail, a line of `pixloop check`)."""
        if self.error:
            return self.error
        if self.wrong_colour:
            return (f"found, but its colours differ from the reference (colour similarity {self.colour or 0:.2f} < "
                    f"{MIN_COLOUR:.2f})")
        if not self.found:
            return "not found in the image"
        how = f"{self.inliers} matching features" if self.method == "features" else "its colours and silhouette"
        return f"found at {list(self.box or ())} by {how}, similarity {self.similarity:.2f}"

    def as_evidence(self) -> dict[str, Any]:
        return {"subject": self.subject, "reference": self.number, "name": self.name, "found": self.found,
                "box": list(self.box) if self.box else None, "similarity": round(self.similarity, 3),
                "inliers": self.inliers, "colour": None if self.colour is None else round(self.colour, 3),
                "method": self.method, "shape": None if self.shape is None else round(self.shape, 3),
                "cutout": self.cutout, "detail": self.detail}


def reference_number(subject: Subject, index: int, context: CheckContext) -> int:
    """The reference's 1-based position among the run's references (the order the user gave them)."""
    for i, ref in enumerate(context.references or []):
        if ref.sha256 == subject.reference.sha256:
            return i + 1
    return index + 1


def display_name(subject: Subject) -> str:
    """What the feedback calls a reference: its display name when the plan has one, else the subject id."""
    return str(getattr(subject, "name", None) or subject.id)


def _rgb_and_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    alpha = np.asarray(img.getchannel("A")) if img.mode in ("RGBA", "LA", "PA") else None
    return np.asarray(img.convert("RGB")), alpha


def _resize(arr: np.ndarray, s: float, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    if s >= 1.0:
        return arr
    h, w = arr.shape[:2]
    return cv2.resize(arr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interpolation)


def prepare_reference(img: Image.Image) -> PreparedReference:
    """Mask out the reference's backdrop and compute its features, colours and silhouette."""
    rgb, alpha = _rgb_and_alpha(img)
    h, w = rgb.shape[:2]
    s = min(1.0, REFERENCE_SIDE / max(h, w))
    small, small_alpha = _resize(rgb, s), None if alpha is None else _resize(alpha, s)
    mask_small, method = object_mask(small, small_alpha)
    mask = cv2.resize(mask_small, (w, h), interpolation=cv2.INTER_NEAREST) if s < 1.0 else mask_small
    box = mask_box(mask)
    # keypoints on the object and just around its outline (a plain object's only corners are on it)
    grow = max(1, round(0.02 * max(mask_small.shape)))
    feature_mask = cv2.dilate(mask_small, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    features = describe(gray_of(small), feature_mask, max_side=REFERENCE_SIDE, limit=0)
    features = Features(points=(features.points + 0.5) / s - 0.5, descriptors=features.descriptors, size=(w, h),
                        scale=s)
    cs = min(1.0, COLOUR_SIDE / max(h, w))
    colour_rgb = _resize(rgb, cs)
    colour_mask = cv2.resize(mask, (colour_rgb.shape[1], colour_rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
    lab = lab_of(colour_rgb)
    x0, y0, x1, y1 = box
    crop = mask[y0:y1, x0:x1]
    ss = min(1.0, SILHOUETTE_SIDE / max(crop.shape))
    silhouette = _resize(crop, ss, cv2.INTER_AREA)
    return PreparedReference(mask_method=method, object_box=box, features=features, colour_scale=cs,
                             colour_mask=colour_mask, colour_lab=lab, chroma=chroma_histogram(lab, colour_mask),
                             model=colour_model(hsv_of(colour_rgb), colour_mask), silhouette=silhouette,
                             target=padded_silhouette(silhouette))


def colour_at_transform(ref: PreparedReference, cand: np.ndarray, transform: np.ndarray) -> float:
    """How much of the object has the reference's colours, with the candidate warped back onto the reference
    (``colour_agreement``; parts outside the candidate disagree)."""
    cw, ch = ref.colour_mask.shape[1], ref.colour_mask.shape[0]
    a = transform.copy()
    a[:, :2] = a[:, :2] / ref.colour_scale  # colour-size reference pixels -> candidate pixels
    warped = cv2.warpAffine(cand, a, (cw, ch), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.full(cand.shape[:2], 255, np.uint8), a, (cw, ch),
                            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
    return colour_agreement(ref.colour_lab, lab_of(warped), ref.colour_mask, inside)


def colour_in_box(ref: PreparedReference, cand: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Colour similarity of the candidate's box, under the reference's silhouette scaled to it."""
    x0, y0, x1, y1 = box
    crop = cand[max(0, y0):y1, max(0, x0):x1]
    if crop.size == 0:
        return 0.0
    mask = cv2.resize(ref.silhouette, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_NEAREST)
    mask = np.where(mask >= 128, 255, 0).astype(np.uint8)
    return colour_similarity(ref.chroma, chroma_histogram(lab_of(crop), mask))


def find(ref: PreparedReference, cand: _Candidate, finding: Finding) -> Finding:
    """Search the candidate for one prepared reference: features first, the colour and silhouette search for a
    low-texture reference they cannot find."""
    width, height = cand.size
    finding.cutout = ref.mask_method
    located: Located = locate(ref.features, cand.features(), ref.object_box, cand.index())
    finding.inliers = located.inliers
    if located.transform is not None and located.verified:
        corners = located.project(ref.object_box)
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
        finding.box = (max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1)))
        finding.method = "features"
        finding.colour = colour_at_transform(ref, cand.rgb, located.transform)
        return _score(finding, located.strength)
    partial = NOT_FOUND_CAP * min(1.0, located.inliers / MIN_INLIERS) * min(1.0, located.ratio / MIN_INLIER_RATIO)
    if not ref.textured:
        hsv, s = cand.search_hsv()
        best: TemplateHit | None = None
        for hit in search(back_project(hsv, ref.model), ref.silhouette, s):
            checked = verify(cand.rgb, hit, ref.model, ref.target)
            if best is None or (checked.iou or 0.0) > (best.iou or 0.0):
                best = checked
            if checked.verified:
                break
        if best is not None:
            finding.shape = best.iou
            if best.verified:
                x0, y0, x1, y1 = best.box
                finding.box = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
                finding.colour = colour_in_box(ref, cand.rgb, finding.box)
                finding.method = "template"
                return _score(finding, best.strength)
            partial = max(partial, NOT_FOUND_CAP * (best.iou or 0.0) * 0.8)
    finding.similarity = min(partial, NOT_FOUND_CAP)
    return finding


def _score(finding: Finding, strength: float) -> Finding:
    colour = finding.colour or 0.0
    if colour >= MIN_COLOUR:
        finding.found = True
        finding.similarity = 0.5 + 0.5 * (0.5 * strength + 0.5 * (colour - MIN_COLOUR) / (1.0 - MIN_COLOUR))
    else:  # the shape is there, the colours are not: another object (or another variant) of the same shape
        finding.wrong_colour = True
        finding.similarity = NOT_FOUND_CAP * colour / MIN_COLOUR
    finding.similarity = float(np.clip(finding.similarity, 0.0, 1.0))
    return finding


def feedback(findings: list[Finding], score: float, threshold: float) -> str:
    """One actionable line: references not found first, then wrong colours, then weak matches."""
    missing = [f for f in findings if not f.found and not f.wrong_colour]
    wrong = [f for f in findings if f.wrong_colour]
    weak = [f for f in findings if f.found and f.similarity < threshold]
    parts: list[str] = []
    for f in findings:
        if f.error:
            parts.append(f"{f.label}: {f.error}")
    for f in missing:
        if not f.error:
            parts.append(f"{f.label} not found in the image; show the object from the reference with its shape, "
                         f"label and colours")
    for f in wrong:
        parts.append(f"{f.label} found but its colours differ (colour similarity {f.colour or 0:.2f} < "
                     f"{MIN_COLOUR:.2f}); keep the reference's colours")
    for f in weak:
        parts.append(f"{f.label} only weakly matched (similarity {f.similarity:.2f} < {threshold:.2f}); show it "
                     f"larger and unobstructed")
    if parts:
        return "; ".join(parts)
    low = min(findings, key=lambda f: f.similarity)
    how = "by colour and silhouette" if low.method == "template" else f"{low.inliers} matching features"
    if len(findings) == 1:
        return f"{low.label} found (similarity {low.similarity:.2f}, {how})"
    return f"all {len(findings)} reference objects found (lowest similarity {low.similarity:.2f}: {low.label}, {how})"


class ReferenceCritic(CriticBase):
    """Each product subject's reference found in the candidate (SIFT + RANSAC, colour; low-texture fallback)."""

    name = "reference"
    info = INFO

    def __init__(self, cache_size: int = REFERENCE_CACHE_SIZE) -> None:
        self._cache: OrderedDict[str, PreparedReference] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def applies(self, plan: Plan) -> bool:
        """Only plans with a product subject: a person reference is the face critic's."""
        spec = plan.checks.get(self.name)
        if spec is not None and not spec.enabled:
            return False
        return any(s.kind == "product" for s in plan.subjects)

    def check(self, image: Image.Image, plan: Plan, context: CheckContext) -> Verdict:
        t0 = time.perf_counter()
        spec = plan.checks.get(self.name)
        threshold = float(spec.threshold) if spec is not None else INFO.threshold
        products = [(i, s) for i, s in enumerate(plan.subjects) if s.kind == "product"]
        if not products:
            return Verdict(critic=self.name, candidate_id=context.candidate_id, score=1.0, passed=True,
                           threshold=threshold, evidence={"references": []},
                           feedback="no product references in the plan; nothing to check",
                           seconds=round(time.perf_counter() - t0, 3))
        cand = _Candidate(rgb=np.asarray(image.convert("RGB")))
        findings: list[Finding] = []
        for idx, subj in products:
            finding = Finding(subject=subj.id, number=reference_number(subj, idx, context), name=display_name(subj))
            try:
                prepared = self._prepared(subj.reference, context)
            except Exception as e:  # noqa: BLE001 - an unreadable reference fails its line, never the check
                finding.error = f"cannot open the reference image: {type(e).__name__}: {e}"[:300]
                findings.append(finding)
                continue
            findings.append(find(prepared, cand, finding))
        score = float(min(f.similarity for f in findings))
        errors = [f.error for f in findings if f.error]
        return Verdict(
            critic=self.name, candidate_id=context.candidate_id, score=score, passed=score >= threshold,
            threshold=threshold, evidence={"references": [f.as_evidence() for f in findings],
                                           "min_colour": MIN_COLOUR},
            feedback=feedback(findings, score, threshold), seconds=round(time.perf_counter() - t0, 3),
            error="; ".join(e for e in errors if e)[:500] or None)

    def _prepared(self, ref: ImageRef, context: CheckContext) -> PreparedReference:
        with self._lock:
            hit = self._cache.get(ref.sha256)
            if hit is not None:
                self._cache.move_to_end(ref.sha256)
                return hit
        if context.store is None:
            raise RuntimeError("no artifact store to open the reference image")
        prepared = prepare_reference(context.store.open(ref))
        with self._lock:
            self._cache[ref.sha256] = prepared
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return prepared


__all__ = ["COLOUR_SIDE", "INFO", "LOW_TEXTURE_KEYPOINTS", "MIN_COLOUR", "NOT_FOUND_CAP",
           "PreparedReference", "REFERENCE_CACHE_SIZE", "ReferenceCritic", "colour_at_transform", "colour_in_box",
           "display_name", "feedback", "find", "prepare_reference", "reference_number"]
