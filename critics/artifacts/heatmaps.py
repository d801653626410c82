"""Heat maps saved as evidence for the worst failing sub-check (blur, blocking, exposure, copy-move)."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from critics.artifacts.blocking import block_map
from critics.artifacts.blur import BlurMap
from critics.artifacts.common import downscale, max_channel, to_gray

HEATMAP_SIDE = 1024
"""Long side of saved heat maps."""


def _overlay(base_rgb: np.ndarray, heat: np.ndarray) -> Image.Image:
    """Heat (float, any size, 0..1) in JET over a dimmed grey copy of the image, at <= HEATMAP_SIDE."""
    base = downscale(base_rgb, HEATMAP_SIDE)
    h, w = base.shape[:2]
    hm = cv2.resize(np.clip(heat, 0, 1).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
    colour = cv2.applyColorMap((hm * 255).astype(np.uint8), cv2.COLORMAP_JET)[:, :, ::-1]
    grey = cv2.cvtColor(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    alpha = (0.25 + 0.6 * hm)[:, :, None]
    out = grey.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def blur_heatmap(rgb: np.ndarray, bm: BlurMap) -> Image.Image:
    """Blur effect per tile (red = blurred, blue = sharp; flat tiles, which carry no evidence, stay dark)."""
    ny, nx = bm.grid.shape
    mh, mw = int(bm.grid.ys[-1]), int(bm.grid.xs[-1])
    heat = np.clip((bm.effect - 0.2) / 0.6, 0.0, 1.0) * bm.structured
    full = np.zeros((mh, mw), np.float32)
    for i in range(ny):
        for j in range(nx):
            full[bm.grid.ys[i]:bm.grid.ys[i + 1], bm.grid.xs[j]:bm.grid.xs[j + 1]] = heat[i, j]
    return _overlay(rgb, full)


def blocking_heatmap(rgb: np.ndarray) -> Image.Image:
    bm = block_map(to_gray(rgb))
    top = float(np.percentile(bm, 99)) if bm.size else 0.0
    heat = bm / top if top > 0 else bm
    h8, w8 = bm.shape[0] * 8, bm.shape[1] * 8
    return _overlay(rgb[:h8, :w8] if h8 and w8 else rgb, heat)


def exposure_heatmap(rgb: np.ndarray, kind: str) -> Image.Image:
    """Blown (highlights), crushed (shadows) or, for an under-exposed image, how far each pixel is from white."""
    mx = max_channel(rgb)
    if kind == "under":
        heat = 1.0 - mx.astype(np.float32) / 255.0
    else:
        heat = ((mx >= 250) if kind == "highlights" else (mx <= 5)).astype(np.float32)
    return _overlay(rgb, heat)


def copy_move_heatmap(rgb: np.ndarray, src: np.ndarray, dst: np.ndarray) -> Image.Image:
    base = downscale(rgb, HEATMAP_SIDE)
    s = base.shape[1] / rgb.shape[1]
    img = cv2.cvtColor(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    img = np.ascontiguousarray((img * 0.6).astype(np.uint8))
    r = max(3, round(0.006 * max(img.shape[:2])))
    for (x0, y0), (x1, y1) in zip(src * s, dst * s):
        p0, p1 = (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1)))
        cv2.line(img, p0, p1, (255, 220, 0), 1, cv2.LINE_AA)
        cv2.circle(img, p0, r, (0, 255, 255), 2, cv2.LINE_AA)
        cv2.circle(img, p1, r, (255, 0, 80), 2, cv2.LINE_AA)
    for pts, colour in ((src * s, (0, 255, 255)), (dst * s, (255, 0, 80))):
        x, y, bw, bh = cv2.boundingRect(pts.astype(np.float32))
        cv2.rectangle(img, (x - r, y - r), (x + bw + r, y + bh + r), colour, 2)
    return Image.fromarray(img, "RGB")
