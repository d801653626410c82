"""Backgrounds: solid, a linear gradient, a procedural texture in the palette, or a stored image."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from PIL import Image

from agent.backends.compose.canvas import RGB, cover_fit, hex_rgb
from agent.models import Plan
from agent.models.errors import BackendError

WORK_LONG_SIDE = 1024
"""Procedural backgrounds are drawn at this long side and upscaled, so 4K costs about what 1K does."""


def _work_size(width: int, height: int) -> tuple[int, int]:
    """Resolution procedural backgrounds are drawn at: the canvas, shrunk to WORK_LONG_SIDE."""
    s = min(1.0, WORK_LONG_SIDE / max(width, height))
    return max(8, round(width * s)), max(8, round(height * s))


def _rng(seed: int, stream: int) -> np.random.Generator:
    """An independent, reproducible random stream per (seed, purpose)."""
    return np.random.default_rng([seed & 0xFFFFFFFF, stream])


def _upscale(arr: np.ndarray, width: int, height: int) -> Image.Image:
    """A uint8 HxWx3 array resized to the canvas as a PIL image."""
    if arr.shape[1] != width or arr.shape[0] != height:
        arr = cv2.resize(arr, (width, height), interpolation=cv2.INTER_LINEAR)
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def _gradient(width: int, height: int, c0: RGB, c1: RGB, angle: float) -> Image.Image:
    """A linear gradient from c0 to c1 along `angle` (radians), spanning the whole canvas."""
    gw, gh = max(2, width // 8), max(2, height // 8)
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float32)
    xs, ys = xs / (gw - 1) - 0.5, (ys / (gh - 1) - 0.5) * (height / width)
    proj = xs * math.cos(angle) + ys * math.sin(angle)
    t = (proj - proj.min()) / max(1e-6, float(proj.max() - proj.min()))
    a, b = np.array(c0, np.float32), np.array(c1, np.float32)
    arr = a + (b - a) * t[..., None]
    return _upscale(np.clip(arr + 0.5, 0, 255).astype(np.uint8), width, height)


def _value_noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """Smooth random field in [0,1] with about `cells` features across the long side."""
    long_side = max(w, h)
    cx = max(2, round(cells * w / long_side) + 1)
    cy = max(2, round(cells * h / long_side) + 1)
    grid = rng.random((cy, cx), dtype=np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _palette_ramp(t: np.ndarray, colours: list[RGB]) -> np.ndarray:
    """Map values in [0,1] through the palette colours as a piecewise-linear ramp."""
    stops = np.array(colours, np.float32)
    if len(stops) == 1:
        return np.broadcast_to(stops[0], (*t.shape, 3)).astype(np.float32)
    pos = np.clip(t, 0, 1) * (len(stops) - 1)
    i = np.minimum(pos.astype(np.int32), len(stops) - 2)
    f = (pos - i)[..., None]
    return stops[i] * (1 - f) + stops[i + 1] * f


def _texture(width: int, height: int, palette: list[RGB], strength: float,
             rng: np.random.Generator) -> Image.Image:
    """Procedural texture in the palette: fBm clouds, soft blobs, strokes and grain, busier with strength."""
    w, h = _work_size(width, height)
    s = float(np.clip(strength, 0.0, 1.0))
    persistence = 0.45 + 0.4 * s
    field = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for cells in (3, 6, 12, 24, 48, 96, 192, 384):
        field += amp * _value_noise(rng, w, h, cells)
        total += amp
        amp *= persistence
    field /= total
    lo, hi = np.percentile(field, (1, 99))
    field = (field - lo) / max(1e-6, float(hi - lo))

    ramp = _palette_ramp(np.linspace(0, 1, 256, dtype=np.float32), palette)
    lut = np.clip(np.array(palette[0], np.float32) * (1 - s) + ramp * s + 0.5, 0, 255).astype(np.uint8)
    arr = lut[np.clip(field * 255 + 0.5, 0, 255).astype(np.uint8)]

    scale = max(w, h) / 1024
    n_blobs = int(6 + 30 * s)
    bw, bh = max(8, w // 4), max(8, h // 4)
    blobs = cv2.resize(arr, (bw, bh), interpolation=cv2.INTER_AREA)
    colours = rng.integers(len(palette), size=n_blobs)
    centres = rng.random((n_blobs, 2)) * (bw, bh)
    radii = rng.uniform(0.03, 0.18, n_blobs) * max(bw, bh)
    for c, (x, y), r in zip(colours, centres, radii):
        cv2.circle(blobs, (int(x), int(y)), max(1, int(r)), palette[int(c)], -1, cv2.LINE_AA)
    blobs = cv2.resize(cv2.GaussianBlur(blobs, (0, 0), 1.5 * scale + 0.5), (w, h), interpolation=cv2.INTER_CUBIC)
    arr = cv2.addWeighted(arr, 1 - 0.5 * s, blobs, 0.5 * s, 0)

    n_strokes = int((40 + 900 * s * s) * (w * h) / (1024 * 576))
    colours = rng.integers(len(palette), size=n_strokes)
    starts = rng.random((n_strokes, 2)) * (w, h)
    lengths = rng.uniform(0.01, 0.08, n_strokes) * max(w, h)
    angles = rng.uniform(0, math.pi, n_strokes)
    ends = starts + lengths[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    widths = np.maximum(1, np.round(rng.uniform(1, 3, n_strokes) * scale)).astype(int)
    strokes = arr.copy()
    for c, p1, p2, t in zip(colours, starts.astype(int), ends.astype(int), widths):
        cv2.line(strokes, (int(p1[0]), int(p1[1])), (int(p2[0]), int(p2[1])), palette[int(c)], int(t), cv2.LINE_AA)
    alpha = 0.2 + 0.6 * s
    arr = cv2.addWeighted(arr, 1 - alpha, strokes, alpha, 0)

    amplitude = 40.0 * s * s
    if amplitude >= 1.0:
        grain = (rng.standard_normal((h, w), dtype=np.float32) * amplitude).astype(np.int16)
        arr = np.clip(arr.astype(np.int16) + grain[..., None], 0, 255).astype(np.uint8)
    return _upscale(arr, width, height)


def render_background(plan: Plan, seed: int, store: Any) -> tuple[Image.Image, dict[str, Any]]:
    """The canvas background the plan's style asks for, plus what was chosen."""
    style, width, height = plan.style, plan.width, plan.height
    palette = [hex_rgb(c) for c in style.palette] or [(29, 43, 79)]
    kind = style.background
    meta: dict[str, Any] = {"kind": kind}
    if kind == "solid":
        return Image.new("RGB", (width, height), palette[0]), meta
    if kind == "gradient":
        angle = float(_rng(seed, 1).uniform(0, 2 * math.pi))
        meta["angle_deg"] = round(math.degrees(angle), 2)
        end = palette[1] if len(palette) > 1 else palette[0]
        return _gradient(width, height, palette[0], end, angle), meta
    if kind == "texture":
        meta["strength"] = style.texture_strength
        return _texture(width, height, palette, style.texture_strength, _rng(seed, 2)), meta
    if style.background_image is None:
        raise BackendError("style.background is 'image' but style.background_image is not set")
    if store is None:
        raise BackendError("an image background needs an artifact store to open it")
    meta["image"] = style.background_image.sha256
    return cover_fit(store.open(style.background_image).convert("RGB"), width, height), meta


__all__ = ["WORK_LONG_SIDE", "render_background"]
