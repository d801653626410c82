"""Classical segmentation for derived edit masks: people, the salient object, text and clothing, offline.

- **person**: the face engine's faces (YuNet by default, the detector that decides "person" everywhere in pixloop)
  seed OpenCV GrabCut: sure foreground is each face's core, probable foreground a head-and-torso prior scaled by the
  face (the head with its hair around the face, shoulders widening below the chin, the body below), sure background
  a border strip except where the prior reaches the border; everything else is probable background.
- **salient object** (no face, or the product beside people): `saliency.salient_mask`, a saliency estimate seeding
  GrabCut.
- **text**: the OCR critic's lines (`critics.ocr.read_image`), each box padded by a share of its height.
- **clothing**: the person mask below the chin, minus the head (the face box grown over the hair) and minus
  skin-coloured pixels (a Gaussian model in YCrCb fitted to the face's own centre).

Masks are cleaned with a morphological open/close, reduced to their largest component(s) and small holes filled;
nothing is feathered (backends feather). GrabCut runs at `WORK_SIDE` px on the long side and the mask is scaled
back to the source. Measured by `bench/masks.py` (IoU per kind and seconds per mask, on real photos).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

WORK_SIDE = 512
"""GrabCut and the saliency estimate run on the image scaled so its long side is this (px)."""
GRABCUT_ITERATIONS = 5
BORDER_SHARE = 0.03
"""Width of the sure-background border strip, as a share of the short side."""
TEXT_PAD = 0.3
"""An OCR line's box grows by this share of its height on every side."""
SKIN_DISTANCE = 3.0
"""A pixel is skin when its (Cr, Cb) lies within this Mahalanobis distance of the face's own skin colour."""
MIN_PART_SHARE = 0.15
"""Components smaller than this share of the largest are dropped."""
MAX_HOLE_SHARE = 0.01
"""Holes smaller than this share of the image are filled."""

@dataclass(frozen=True)
class FaceSeed:
    """A face box (x0, y0, x1, y1, source pixels) and the name of the detector that found it."""

    box: tuple[float, float, float, float]
    detector: str


def detect_faces(source: Image.Image) -> tuple[list[FaceSeed], str]:
    """The faces in the source, largest first, found by the face critic's engine, and the detector's name
    ("YuNet" for the default SFace engine). No engine: no faces."""
    from critics import get_critic
    from critics.face import as_bgr

    try:
        engine = getattr(get_critic("face"), "engine", None)
    except Exception:  # noqa: BLE001 - no face engine installed: nothing can be called a person
        return [], "no face engine"
    if engine is None:
        return [], "no face engine"
    name = str(getattr(engine, "name", "face engine"))
    detector = "dlib HOG" if name == "dlib" else "YuNet" if name in ("sface",) or name.startswith("arcface") else name
    faces = sorted(engine.detect(as_bgr(source)), key=lambda f: f.area, reverse=True)
    return [FaceSeed((float(f.box[0]), float(f.box[1]), float(f.box[2]), float(f.box[3])), detector)
            for f in faces], detector


# --------------------------------------------------------------------------- shared helpers


def work_image(source: Image.Image) -> tuple[np.ndarray, float]:
    """The source as RGB uint8 scaled so its long side is at most WORK_SIDE, and that scale."""
    rgb = np.asarray(source.convert("RGB"))
    scale = min(1.0, WORK_SIDE / max(rgb.shape[:2]))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb), scale


def to_source(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A work-scale 0/1 mask as a bool mask of the source's size (w, h)."""
    if mask.shape[::-1] == size:
        return mask.astype(bool)
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) > 0.5


def border_strip(shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    b = max(2, round(BORDER_SHARE * min(h, w)))
    out = np.zeros((h, w), bool)
    out[:b], out[-b:], out[:, :b], out[:, -b:] = True, True, True, True
    return out


def clean(mask: np.ndarray, seeds: np.ndarray | None = None) -> np.ndarray:
    """Open and close a 0/1 mask, keep the components that touch `seeds` (else the largest and those at least
    MIN_PART_SHARE of it), fill small holes."""
    m: np.ndarray = mask.astype(np.uint8)
    k = max(3, (min(m.shape) // 100) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    m = cv2.morphologyEx(cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return m.astype(bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if seeds is not None and seeds.any():
        touched = {int(v) for v in np.unique(labels[seeds & (m > 0)]) if v}
    else:
        touched = set()
    keep = touched or {i + 1 for i, a in enumerate(areas) if a >= MIN_PART_SHARE * areas.max()}
    out = np.isin(labels, sorted(keep))
    holes = (~out).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    small = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] < MAX_HOLE_SHARE * out.size
             and not touches_border(stats[i], out.shape)]
    return out | np.isin(labels, small)


def touches_border(stat: np.ndarray, shape: tuple[int, ...]) -> bool:
    x, y, w, h = (int(v) for v in stat[:4])
    return x == 0 or y == 0 or x + w >= shape[1] or y + h >= shape[0]


def grabcut(rgb: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """GrabCut initialised with a GC_* seed mask; the 0/1 foreground. Degenerate seeds give their probable fg."""
    fg_seeds = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if not fg_seeds.any() or fg_seeds.all():
        return fg_seeds.astype(np.uint8)
    mask = seeds.astype(np.uint8).copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), mask, (0, 0, 0, 0), bgd, fgd, GRABCUT_ITERATIONS,
                    cv2.GC_INIT_WITH_MASK)  # the rect is ignored when starting from a mask
    except cv2.error:
        return fg_seeds.astype(np.uint8)
    return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)


# --------------------------------------------------------------------------- people


def _ellipse(canvas: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], value: int) -> None:
    cv2.ellipse(canvas, (round(centre[0]), round(centre[1])), (max(1, round(axes[0])), max(1, round(axes[1]))),
                0, 0, 360, value, cv2.FILLED)


HEAD_AXES = (0.9, 1.0)
"""The head-and-hair ellipse's half axes, in face widths and heights, centred 0.35 face heights below the box top."""
BODY = ((0.55, -0.1), (1.9, 0.9), (1.9, 7.0))
"""The body prior's half width (face widths) at three depths below the chin (face heights): neck, shoulders, feet."""
TORSO_CORE = (0.4, 0.6, 1.6)
"""A sure-foreground box below the chin: half width (face widths), top and bottom depth (face heights below the
chin). Tried on a third of the person set (bench/masks.py, 97 photos): the box +0.3 points of mean IoU; sure
background beyond 0.6 face widths from the prior -0.7, with a narrower body prior -2.2; the narrower prior alone +0;
8 GrabCut iterations instead of 5 -0.4."""


def person_prior(shape: tuple[int, ...], boxes: Sequence[tuple[float, float, float, float]]) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """The head-and-torso prior (probable foreground) and the face cores (sure foreground) of faces given in the
    work image's pixels."""
    prior = np.zeros(shape[:2], np.uint8)
    core = np.zeros(shape[:2], np.uint8)
    for x0, y0, x1, y1 in boxes:
        fw, fh = x1 - x0, y1 - y0
        cx = (x0 + x1) / 2
        _ellipse(prior, (cx, y0 + 0.35 * fh), (HEAD_AXES[0] * fw, HEAD_AXES[1] * fh), 1)  # head and hair
        right = [(cx + hw * fw, y1 + d * fh) for hw, d in BODY]
        left = [(cx - hw * fw, y1 + d * fh) for hw, d in reversed(BODY)]
        cv2.fillPoly(prior, [np.array(right + left, np.int32)], 1)
        _ellipse(core, (cx, (y0 + y1) / 2 + 0.05 * fh), (0.3 * fw, 0.38 * fh), 1)
        hw, top, bottom = TORSO_CORE
        cv2.rectangle(core, (round(cx - hw * fw), round(y1 + top * fh)), (round(cx + hw * fw), round(y1 + bottom * fh)),
                      1, cv2.FILLED)
    return prior.astype(bool), core.astype(bool)


def person_mask(source: Image.Image, faces: Sequence[FaceSeed]) -> np.ndarray:
    """Where the people of these faces are (bool, the source's size): GrabCut seeded by the faces and the border."""
    rgb, scale = work_image(source)
    boxes = [(f.box[0] * scale, f.box[1] * scale, f.box[2] * scale, f.box[3] * scale) for f in faces]
    prior, core = person_prior(rgb.shape, boxes)
    seeds = np.full(rgb.shape[:2], cv2.GC_PR_BGD, np.uint8)
    seeds[prior] = cv2.GC_PR_FGD
    near_prior = cv2.dilate(prior.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    seeds[border_strip(rgb.shape) & ~near_prior] = cv2.GC_BGD
    seeds[core] = cv2.GC_FGD
    fg = grabcut(rgb, seeds)
    return to_source(clean(fg, core), source.size)


# --------------------------------------------------------------------------- text


def text_mask(source: Image.Image) -> tuple[np.ndarray, int]:
    """The OCR lines' boxes, padded (bool, the source's size), and how many lines were read."""
    from critics.ocr import read_image

    w, h = source.size
    out = np.zeros((h, w), bool)
    lines = read_image(source).lines
    for line in lines:
        x0, y0, x1, y1 = line.bbox()
        pad = max(3, round(TEXT_PAD * (y1 - y0)))
        out[max(0, y0 - pad):min(h, y1 + pad), max(0, x0 - pad):min(w, x1 + pad)] = True
    return out, len(lines)


# --------------------------------------------------------------------------- clothing


def skin_model(rgb: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean and inverse covariance of (Cr, Cb) over the face's centre (cheeks, nose and mouth), or None."""
    x0, y0, x1, y1 = box
    fw, fh = x1 - x0, y1 - y0
    patch = rgb[int(y0 + 0.45 * fh):int(y0 + 0.8 * fh), int(x0 + 0.25 * fw):int(x0 + 0.75 * fw)]
    if patch.size < 30:
        return None
    crcb = cv2.cvtColor(patch, cv2.COLOR_RGB2YCrCb)[..., 1:].reshape(-1, 2).astype(np.float64)
    cov = np.cov(crcb.T) + np.eye(2) * 4.0  # a floor: a flat face would make every other pixel infinitely far
    return crcb.mean(axis=0), np.linalg.inv(cov)


def skin_pixels(rgb: np.ndarray, model: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    mean, inv = model
    d = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(np.float64) - mean
    return np.asarray(np.einsum("...i,ij,...j->...", d, inv, d) < SKIN_DISTANCE ** 2, bool)


def clothing_mask(source: Image.Image, faces: Sequence[FaceSeed], person: np.ndarray) -> np.ndarray:
    """The clothes of these people (bool, the source's size): their mask below the chin, minus the head and skin."""
    rgb = np.asarray(source.convert("RGB"))
    h, w = rgb.shape[:2]
    out = person.copy()
    head = np.zeros((h, w), np.uint8)
    skin = np.zeros((h, w), bool)
    for face in faces:
        x0, y0, x1, y1 = face.box
        fw, fh = x1 - x0, y1 - y0
        _ellipse(head, ((x0 + x1) / 2, y0 + 0.4 * fh), (0.95 * fw, 1.1 * fh), 1)
        chin = max(0, int(y1 + 0.1 * fh))
        out[:chin, max(0, int(x0 - 1.5 * fw)):min(w, int(x1 + 1.5 * fw))] = False  # above the chin: no clothes
        model = skin_model(rgb, face.box)
        if model is not None:
            skin |= skin_pixels(rgb, model)
    out &= ~head.astype(bool)
    out &= ~skin
    return clean(out) if out.any() else out


__all__ = ["BORDER_SHARE", "BODY", "FaceSeed", "GRABCUT_ITERATIONS", "HEAD_AXES", "MAX_HOLE_SHARE", "MIN_PART_SHARE",
           "SKIN_DISTANCE", "TEXT_PAD", "TORSO_CORE", "WORK_SIDE", "border_strip", "clean", "clothing_mask",
           "detect_faces", "grabcut", "person_mask", "person_prior", "skin_model", "skin_pixels", "text_mask",
           "to_source", "touches_border", "work_image"]
