"""Repairs of a failed edit that need no backend call, and the tighter mask a re-edit uses.

Real edit models change pixels outside the mask (a spill), shift or rescale the whole image by a few pixels,
and drift the faces they were told to keep. `restore_outside` undoes all three where the mask says nothing may
change: it brings the candidate back to the source's size, measures the shift on the protected area (phase
correlation) and moves the candidate back, then puts the source's own pixels back outside the mask (with a
feather narrower than the seam the preservation critic allows). `tightened_mask` is the mask a re-edit from the
source gets when the backend keeps spilling: eroded, and with the kept people's faces cut out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

from agent.models import PixelBox

FEATHER_SHARE = 0.004
"""The blend from edit to source spans this share of the long side (at least 1 px), outside the mask: the
preservation critic ignores a seam of 1 % of the long side around it."""
MAX_SHIFT_SHARE = 0.05
"""A measured shift larger than this share of the long side is not an edit model's drift: left alone."""
MIN_SHIFT_PX = 0.5
MIN_RESPONSE = 0.05
"""Phase correlation peaks below this are noise: no shift is corrected."""
TIGHTEN_SHARE = 0.02
"""A tightened mask is eroded by this share of the long side (at least 2 px)."""
FACE_GUARD = 0.25
"""Kept faces are cut out of a tightened mask grown by this share of their size."""


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def measure_shift(source: np.ndarray, candidate: np.ndarray, keep: np.ndarray) -> tuple[float, float, float]:
    """(dx, dy, response): how far the candidate's protected content moved relative to the source's."""
    weight = cv2.GaussianBlur(keep.astype(np.float32), (0, 0), 3) * cv2.createHanningWindow(
        (keep.shape[1], keep.shape[0]), cv2.CV_32F)
    a, b = _grey(source) * weight, _grey(candidate) * weight
    (dx, dy), response = cv2.phaseCorrelate(a, b)
    return float(dx), float(dy), float(response)


def restore_outside(candidate: Image.Image, source: Image.Image, mask: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
    """The candidate with the source's pixels back wherever the mask (L, 255 = may change) keeps them, after
    undoing a rescale and a shift; returns the image and what was done (for the candidate's meta)."""
    src = np.asarray(source.convert("RGB"))
    h, w = src.shape[:2]
    meta: dict[str, Any] = {}
    cand_img = candidate.convert("RGB")
    if cand_img.size != (w, h):
        meta["resized_from"] = list(cand_img.size)
        cand_img = cand_img.resize((w, h), Image.Resampling.LANCZOS)
    cand = np.asarray(cand_img)
    m = np.asarray(mask.convert("L").resize((w, h), Image.Resampling.NEAREST)) >= 128
    keep = ~m
    if keep.mean() > 0.02:
        dx, dy, response = measure_shift(src, cand, keep)
        limit = MAX_SHIFT_SHARE * max(w, h)
        if response >= MIN_RESPONSE and MIN_SHIFT_PX <= max(abs(dx), abs(dy)) <= limit:
            move = np.array([[1, 0, -dx], [0, 1, -dy]], np.float32)
            cand = cv2.warpAffine(cand, move, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            meta["shift_undone"] = [round(dx, 2), round(dy, 2)]
    feather = max(1, round(FEATHER_SHARE * max(w, h)))
    grown = cv2.dilate(m.astype(np.uint8), np.ones((2 * feather + 1, 2 * feather + 1), np.uint8))
    alpha = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), feather / 2)
    alpha = np.maximum(alpha, m.astype(np.float32))[..., None]  # inside the mask: the edit, untouched
    out = cand.astype(np.float32) * alpha + src.astype(np.float32) * (1 - alpha)
    meta["restored_share"] = round(float(keep.mean()), 4)
    return Image.fromarray(out.round().clip(0, 255).astype(np.uint8)), meta


def tightened_mask(mask: Image.Image, faces: Sequence[PixelBox] = ()) -> Image.Image:
    """The mask eroded by TIGHTEN_SHARE of the long side, with each kept face (grown by FACE_GUARD) cut out."""
    from agent.loop.planning.edit import without_faces

    m = np.asarray(mask.convert("L")) >= 128
    h, w = m.shape
    k = max(2, round(TIGHTEN_SHARE * max(w, h)))
    eroded = Image.fromarray(cv2.erode(m.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)) * 255)
    out = without_faces(eroded, [b.as_tuple() for b in faces], grow=FACE_GUARD)
    return out if out.getbbox() else Image.fromarray(m.astype(np.uint8) * 255)  # nothing left: the original


__all__ = ["FACE_GUARD", "FEATHER_SHARE", "TIGHTEN_SHARE", "measure_shift", "restore_outside", "tightened_mask"]
