"""The failures real edit models show, for the simulated backend's planned edits (a request whose plan has an
`EditSpec`): the edit spills past its mask into what had to stay, a kept person's face drifts (`drift_identity`
from `failures`, applied where the planner found the face), and the whole image comes back shifted by a few
pixels, slightly zoomed, or rescaled along one axis so its aspect ratio drifts.

Strengths are relative to the image's long side, so a failure looks the same at any size; each one is large
enough for the critic that owns it to measure (preservation for a spill, a shift or a zoom; spec for a rescale;
face for a drift) and small enough to be what real models do.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image

SPILL_SHARE = (0.03, 0.06)
"""A spilled edit reaches this share of the long side past the mask edge (drawn uniformly), in an irregular
band: real edits bleed unevenly. The preservation critic ignores 1 % (its seam); 3 % changes clearly more."""
SPILL_COVER = 0.6
"""Share of the spill band the edit actually reaches (low-frequency noise decides where)."""
SHIFT_PX = (3.0, 8.0)
"""A shifted edit moves the whole image by this many pixels at a long side of 1024 (each axis, random sign)."""
ZOOM = (0.012, 0.03)
"""A zoomed edit enlarges the whole image by this share and crops it back to its size."""
RESCALE = (0.01, 0.03)
"""A rescaled edit is delivered with one axis this much longer or shorter (the spec critic allows 0.5 % for an
edit)."""
SHIFT_KINDS = ("shift", "zoom", "rescale")


def spill_mask(mask: Image.Image | None, rng: np.random.Generator) -> tuple[Image.Image | None, dict[str, Any]]:
    """The mask an edit that spills actually used: grown by SPILL_SHARE of the long side where a smooth random
    field says so. None (or a mask that already covers everything) cannot spill and is returned as it was."""
    if mask is None:
        return None, {}
    m = np.asarray(mask.convert("L")) >= 128
    if m.all() or not m.any():
        return mask, {}
    h, w = m.shape
    reach = float(rng.uniform(*SPILL_SHARE)) * max(w, h)
    r = max(2, round(reach))
    grown = cv2.dilate(m.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
    cells = rng.random((6, 6), dtype=np.float32)
    field = cv2.resize(cells, (w, h), interpolation=cv2.INTER_CUBIC)
    cut = float(np.quantile(field, 1 - SPILL_COVER))
    spilled = m | (grown & (field >= cut))
    info = {"reach_px": r, "spilled_share": round(float((spilled & ~m).mean()), 4)}
    return Image.fromarray(spilled.astype(np.uint8) * 255, "L"), info


def shift_image(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, dict[str, Any]]:
    """The image shifted by a few pixels, slightly zoomed, or rescaled along one axis (a new size)."""
    w, h = image.size
    kind = SHIFT_KINDS[int(rng.integers(len(SHIFT_KINDS)))]
    a = np.asarray(image.convert("RGB"))
    if kind == "rescale":
        s = float(rng.uniform(*RESCALE)) * (1 if rng.random() < 0.5 else -1)
        size = (max(8, round(w * (1 + s))), h) if rng.random() < 0.5 else (w, max(8, round(h * (1 + s))))
        return image.resize(size, Image.Resampling.LANCZOS), {"kind": kind, "size": list(size), "from": [w, h]}
    if kind == "zoom":
        z = 1 + float(rng.uniform(*ZOOM))
        cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h
        move = np.array([[z, 0, cx * (1 - z)], [0, z, cy * (1 - z)]], np.float32)
        out = cv2.warpAffine(a, move, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return Image.fromarray(out, "RGB"), {"kind": kind, "zoom": round(z, 4)}
    scale = max(w, h) / 1024
    dx, dy = (float(rng.uniform(*SHIFT_PX)) * scale * (1 if rng.random() < 0.5 else -1) for _ in range(2))
    move = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    out = cv2.warpAffine(a, move, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(out, "RGB"), {"kind": kind, "dx": round(dx, 2), "dy": round(dy, 2)}


def face_box(region: Any, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A subject's relative region as (x, y, w, h) pixels of an image of `size` (what `drift_identity` takes)."""
    x0, y0, x1, y1 = region.to_pixels(*size)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


__all__ = ["RESCALE", "SHIFT_KINDS", "SHIFT_PX", "SPILL_COVER", "SPILL_SHARE", "ZOOM", "face_box", "shift_image",
           "spill_mask"]
