"""The compose backend: an embedded, offline, deterministic typographic compositor.

It renders a Plan literally: a background (solid, gradient, procedural texture or a
stored image), the reference subjects (people cropped head-and-shoulders around the
detected face, products cut out of their backdrop with a drop shadow) and every text
element set in the plan's font, as large as fits its region. The same plan and seed
always give byte-identical pixels, so the checking loop can attribute every change in
a critic's score to a change in the plan.

The style is honoured even where it hurts: a hairline font in a colour close to a busy
texture renders as badly as asked, because the critics must find and the corrector fix it.
"""

from __future__ import annotations

import asyncio
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from agent.models.errors import BackendError
from agent.backends.base import Capabilities, GenerationRequest, GenerationResult
from agent.backends.compose.fonts import FONT_LOCK, load_font, missing_glyphs
from agent.models import ASPECT_RATIOS, Plan, Style, Subject, TextElement

MAX_LINES = 3
"""Most lines a text element is wrapped into."""
MIN_FONT_PX = 6
WORK_LONG_SIDE = 1024
"""Procedural backgrounds are drawn at this long side and upscaled, so 4K costs about what 1K does."""
PLATE_ALPHA = 0.85
SUBJECT_PAD = 0.06
"""Share of a product region left free around the cut-out, so its shadow fits."""

RGB = tuple[int, int, int]
PixelBox = tuple[int, int, int, int]


def hex_rgb(hex_colour: str) -> RGB:
    """'#rrggbb' -> (r, g, b)."""
    h = hex_colour.lstrip("#")
    if len(h) != 6:
        raise BackendError(f"colour {hex_colour!r} is not #rrggbb")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def relative_luminance(rgb: RGB) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    def lin(c: int) -> float:
        v = c / 255.0
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG 2 contrast ratio between two colours (1..21)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def contrasting_colour(text: RGB, palette: list[str]) -> RGB:
    """A backing colour for text: a palette colour if it reaches AAA contrast (7:1), else black or white."""
    best = max(((0, 0, 0), (255, 255, 255)), key=lambda c: contrast_ratio(text, c))
    for c in (hex_rgb(p) for p in palette):
        if contrast_ratio(text, c) >= 7.0:
            return c
    return best


def _box_px(box: Any, width: int, height: int) -> PixelBox:
    """A canvas-relative Box in pixels, clamped to the canvas and at least 1 px wide and high."""
    x0, y0, x1, y1 = box.to_pixels(width, height)
    x0, y0 = max(0, min(x0, width - 1)), max(0, min(y0, height - 1))
    return x0, y0, max(x0 + 1, min(x1, width)), max(y0 + 1, min(y1, height))


def _work_size(width: int, height: int) -> tuple[int, int]:
    """Resolution procedural backgrounds are drawn at: the canvas, shrunk to WORK_LONG_SIDE."""
    s = min(1.0, WORK_LONG_SIDE / max(width, height))
    return max(8, round(width * s)), max(8, round(height * s))


def cover_fit(img: Image.Image, width: int, height: int, centre: tuple[float, float] = (0.5, 0.5)) -> Image.Image:
    """Scale an image to fill width x height and crop the overflow around `centre` (relative)."""
    iw, ih = img.size
    s = max(width / iw, height / ih)
    cw, ch = min(iw, width / s), min(ih, height / s)
    x0 = max(0.0, min(max(0.0, centre[0] * iw - cw / 2), iw - cw))
    y0 = max(0.0, min(max(0.0, centre[1] * ih - ch / 2), ih - ch))
    return img.resize((width, height), Image.Resampling.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))


# --- backgrounds -----------------------------------------------------------------------------


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


def _background(plan: Plan, seed: int, store: Any) -> tuple[Image.Image, dict[str, Any]]:
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


# --- subjects --------------------------------------------------------------------------------

_tls = threading.local()
HAAR_FACE_XML = "haarcascade_frontalface_default.xml"
FACE_DETECT_LONG_SIDE = 400
"""References are searched for faces at this long side: head-and-shoulders faces are large."""
GRABCUT_LONG_SIDE = 256
"""Busy product backdrops are segmented at this long side (grabCut is slow)."""
HEAD_AND_SHOULDERS = 2.5
"""Portrait crop width in detected face widths (a Haar box spans brows to mouth, narrower than the head)."""


def face_detector_available() -> bool:
    """Whether this OpenCV ships the Haar cascade API and data (4.x does; 5.x moved them out)."""
    data_dir = getattr(getattr(cv2, "data", None), "haarcascades", "")
    return hasattr(cv2, "CascadeClassifier") and bool(data_dir) and Path(data_dir, HAAR_FACE_XML).is_file()


def _face_cascade() -> Any:
    """OpenCV's bundled frontal-face Haar cascade, one per thread (classifiers are not thread-safe)."""
    cascade = getattr(_tls, "cascade", None)
    if cascade is None:
        path = cv2.data.haarcascades + HAAR_FACE_XML
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise BackendError(f"could not load the face detector from {path}")
        _tls.cascade = cascade
    return cascade


def detect_face(img: Image.Image) -> tuple[int, int, int, int] | None:
    """The largest frontal face as (x, y, w, h) in image pixels; None if none is found or no detector exists."""
    if not face_detector_available():
        return None
    gray = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2GRAY)
    s = min(1.0, FACE_DETECT_LONG_SIDE / max(gray.shape))
    if s < 1.0:
        gray = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    min_side = max(20, int(0.06 * min(gray.shape)))
    faces = _face_cascade().detectMultiScale(gray, scaleFactor=1.15, minNeighbors=5, minSize=(min_side, min_side))
    if len(faces) == 0:
        return None
    x, y, w, h = max((tuple(int(v) for v in f) for f in faces), key=lambda f: f[2] * f[3])
    return round(x / s), round(y / s), round(w / s), round(h / s)


_face_cache: dict[str, tuple[int, int, int, int] | None] = {}
_face_cache_lock = threading.Lock()


def _cached_face(sha256: str, img: Image.Image) -> tuple[int, int, int, int] | None:
    """detect_face, memoised by the reference's content hash: the loop re-renders the same references."""
    with _face_cache_lock:
        if sha256 in _face_cache:
            return _face_cache[sha256]
    face = detect_face(img)
    with _face_cache_lock:
        if len(_face_cache) >= 128:
            _face_cache.pop(next(iter(_face_cache)))
        _face_cache[sha256] = face
    return face


def _head_and_shoulders(img: Image.Image, face: tuple[int, int, int, int],
                        aspect: float) -> tuple[float, float, float, float]:
    """A crop of the region's aspect around a face: HEAD_AND_SHOULDERS face widths wide, face in the upper part."""
    iw, ih = img.size
    fx, fy, fw, fh = face
    cw = max(HEAD_AND_SHOULDERS * fw, 2.6 * fh * aspect)
    ch = cw / aspect
    shrink = min(1.0, iw / cw, ih / ch)
    cw, ch = cw * shrink, ch * shrink
    x0 = fx + fw / 2 - cw / 2
    y0 = fy + fh / 2 - 0.42 * ch
    x0 = max(0.0, min(x0, iw - cw))
    y0 = max(0.0, min(y0, ih - ch))
    return x0, y0, x0 + cw, y0 + ch


def _rounded_rect_alpha(w: int, h: int, radius: float, feather: float = 1.0) -> np.ndarray:
    """Anti-aliased (or, with a larger feather, soft-edged) rounded-rectangle mask in [0,1]."""
    radius = max(0.0, min(radius, w / 2, h / 2))
    xs = np.abs(np.arange(w, dtype=np.float32) + 0.5 - w / 2)[None, :] - (w / 2 - radius)
    ys = np.abs(np.arange(h, dtype=np.float32) + 0.5 - h / 2)[:, None] - (h / 2 - radius)
    outside = np.hypot(np.maximum(xs, 0), np.maximum(ys, 0))
    inside = np.minimum(np.maximum(xs, ys), 0)
    d = outside + inside - radius
    return np.clip(-d / feather, 0, 1) if feather > 1 else np.clip(0.5 - d, 0, 1)


def _ellipse_alpha(w: int, h: int, feather: float) -> np.ndarray:
    """Soft-edged ellipse inscribed in w x h, in [0,1], fully transparent at the box edge."""
    a, b = w / 2, h / 2
    xs = ((np.arange(w, dtype=np.float32) + 0.5 - a) / a)[None, :]
    ys = ((np.arange(h, dtype=np.float32) + 0.5 - b) / b)[:, None]
    d = (np.sqrt(xs * xs + ys * ys) - 1.0) * min(a, b)
    return np.clip(-d / max(1.0, feather), 0, 1)


def _paste_rgba(canvas: Image.Image, layer: Image.Image, xy: tuple[int, int]) -> None:
    """Alpha-composite an RGBA layer onto the RGB canvas at xy, clipped to the canvas."""
    x, y = xy
    cx0, cy0 = max(0, x), max(0, y)
    cx1, cy1 = min(canvas.width, x + layer.width), min(canvas.height, y + layer.height)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    part = layer.crop((cx0 - x, cy0 - y, cx1 - x, cy1 - y))
    under = canvas.crop((cx0, cy0, cx1, cy1)).convert("RGBA")
    canvas.paste(Image.alpha_composite(under, part).convert("RGB"), (cx0, cy0))


def _shadow(alpha: np.ndarray, blur: float, opacity: float) -> Image.Image:
    """A black RGBA shadow layer from an alpha mask (0..1), blurred and faded."""
    soft = cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), max(0.5, blur)) * opacity
    a = np.clip(soft * 255 + 0.5, 0, 255).astype(np.uint8)
    rgba = np.zeros((*a.shape, 4), np.uint8)
    rgba[..., 3] = a
    return Image.fromarray(rgba, "RGBA")


def _place_person(canvas: Image.Image, ref: Image.Image, box: PixelBox, sha256: str) -> dict[str, Any]:
    """Crop head-and-shoulders around the largest face and set it in a soft oval or rounded frame."""
    x0, y0, x1, y1 = box
    rw, rh = x1 - x0, y1 - y0
    ref = ref.convert("RGB")
    face = _cached_face(sha256, ref)
    aspect = rw / rh
    if face is None:
        crop = cover_fit(ref, rw, rh, centre=(0.5, 0.4))
    else:
        crop = ref.resize((rw, rh), Image.Resampling.BICUBIC, box=_head_and_shoulders(ref, face, aspect))
    feather = max(2.0, 0.025 * min(rw, rh))
    oval = 0.75 <= aspect <= 1.33
    alpha = _ellipse_alpha(rw, rh, feather) if oval else _rounded_rect_alpha(rw, rh, 0.08 * min(rw, rh), feather)
    pad = max(2, round(0.04 * min(rw, rh)))
    shadow_alpha = np.pad(alpha, pad)
    _paste_rgba(canvas, _shadow(shadow_alpha, pad / 2, 0.35), (x0 - pad + pad // 3, y0 - pad + pad // 2))
    layer = crop.convert("RGBA")
    layer.putalpha(Image.fromarray(np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8), "L"))
    _paste_rgba(canvas, layer, (x0, y0))
    return {"kind": "person", "box": list(box), "face_found": face is not None,
            "face_detector": "haar" if face_detector_available() else "unavailable",
            "frame": "oval" if oval else "rounded"}


def _estimate_mask(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    """A reduced-size 0/1 foreground mask of a product shot and the method that found it."""
    ih, iw = rgb.shape[:2]
    s = min(1.0, 512 / max(ih, iw))
    small = cv2.resize(rgb, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else rgb
    sh, sw = small.shape[:2]
    b = max(2, round(0.02 * min(sh, sw)))
    border = np.concatenate([small[:b].reshape(-1, 3), small[-b:].reshape(-1, 3),
                             small[:, :b].reshape(-1, 3), small[:, -b:].reshape(-1, 3)]).astype(np.float32)
    bg = np.median(border, axis=0)
    spread = float(np.percentile(np.linalg.norm(border - bg, axis=1), 90))
    if spread < 30:
        thr = max(30.0, 2.5 * spread)
        fg = (np.linalg.norm(small.astype(np.float32) - bg, axis=2) > thr).astype(np.uint8)
        k = max(3, (min(sh, sw) // 100) | 1)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        mask = np.zeros_like(fg)
        if contours:
            largest = max(cv2.contourArea(c) for c in contours)
            keep = [c for c in contours if cv2.contourArea(c) >= 0.02 * largest]
            cv2.drawContours(mask, keep, -1, 1, cv2.FILLED)
        method = "border"
    else:
        g = min(1.0, GRABCUT_LONG_SIDE / max(sh, sw))
        tiny = cv2.resize(small, None, fx=g, fy=g, interpolation=cv2.INTER_AREA) if g < 1 else small
        th, tw = tiny.shape[:2]
        mask = np.zeros((th, tw), np.uint8)
        rect = (round(0.05 * tw), round(0.05 * th), max(1, round(0.9 * tw)), max(1, round(0.9 * th)))
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        try:
            cv2.grabCut(tiny, mask, rect, bgd, fgd, 3, cv2.GC_INIT_WITH_RECT)
            mask = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
        except cv2.error:
            mask = np.zeros((th, tw), np.uint8)
        method = "grabcut"
    share = float(mask.mean())
    if share < 0.01 or share > 0.97:
        return np.ones((1, 1), np.uint8), "full"
    return mask, method


_mask_cache: dict[str, tuple[np.ndarray, str]] = {}
_mask_cache_lock = threading.Lock()


def cutout_mask(ref: Image.Image, key: str | None = None) -> tuple[np.ndarray, str]:
    """Foreground alpha (float 0..1, image size) of a product shot, and how it was found.

    'alpha' uses the image's own transparency; 'border' removes a uniform backdrop
    estimated from the border pixels; 'grabcut' segments a busy backdrop; 'full' keeps
    the whole rectangle when the mask came out degenerate. With `key` (the reference's
    hash) the reduced mask is memoised, since the loop re-renders the same references.
    """
    if ref.mode == "RGBA":
        a = np.asarray(ref.getchannel("A"), np.float32) / 255.0
        if a.min() < 0.98:
            return a, "alpha"
    rgb = np.asarray(ref.convert("RGB"))
    ih, iw = rgb.shape[:2]
    with _mask_cache_lock:
        cached = _mask_cache.get(key) if key else None
    if cached is None:
        cached = _estimate_mask(rgb)
        if key:
            with _mask_cache_lock:
                if len(_mask_cache) >= 64:
                    _mask_cache.pop(next(iter(_mask_cache)))
                _mask_cache[key] = cached
    mask, method = cached
    if method == "full":
        return np.ones((ih, iw), np.float32), method
    soft = cv2.resize(mask.astype(np.float32), (iw, ih), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(soft, (0, 0), max(0.6, 0.6 * iw / mask.shape[1]))
    return np.clip(soft, 0, 1), method


def _place_product(canvas: Image.Image, ref: Image.Image, box: PixelBox, sha256: str) -> dict[str, Any]:
    """Cut the product out of its backdrop and contain-fit it in the region with a soft drop shadow."""
    x0, y0, x1, y1 = box
    rw, rh = x1 - x0, y1 - y0
    alpha, method = cutout_mask(ref, sha256)
    ys, xs = np.nonzero(alpha > 0.5)
    if len(xs) == 0:
        ys, xs = np.array([0, alpha.shape[0] - 1]), np.array([0, alpha.shape[1] - 1])
    bx0, by0, bx1, by1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    rgba = np.dstack([np.asarray(ref.convert("RGB")), np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)])
    obj = Image.fromarray(np.ascontiguousarray(rgba[by0:by1, bx0:bx1]), "RGBA")
    pad = SUBJECT_PAD * min(rw, rh)
    s = min((rw - 2 * pad) / obj.width, (rh - 2 * pad) / obj.height)
    ow, oh = max(1, round(obj.width * s)), max(1, round(obj.height * s))
    obj = obj.resize((ow, oh), Image.Resampling.LANCZOS)
    ox, oy = x0 + (rw - ow) // 2, y0 + (rh - oh) // 2
    blur = max(1.0, 0.03 * max(ow, oh))
    spad = math.ceil(blur * 3)
    obj_alpha = np.asarray(obj.getchannel("A"), np.float32) / 255.0
    shadow = _shadow(np.pad(obj_alpha, spad), blur, 0.45)
    dx, dy = round(0.015 * ow), round(0.03 * oh)
    shadow_xy = (ox - spad + dx, oy - spad + dy)
    sx0, sy0 = max(x0, shadow_xy[0]), max(y0, shadow_xy[1])
    clipped = shadow.crop((sx0 - shadow_xy[0], sy0 - shadow_xy[1],
                           min(x1, shadow_xy[0] + shadow.width) - shadow_xy[0],
                           min(y1, shadow_xy[1] + shadow.height) - shadow_xy[1]))
    _paste_rgba(canvas, clipped, (sx0, sy0))
    _paste_rgba(canvas, obj, (ox, oy))
    return {"kind": "product", "box": list(box), "cutout": method, "object_box": [ox, oy, ox + ow, oy + oh]}


def _place_subjects(canvas: Image.Image, subjects: list[Subject], store: Any) -> dict[str, Any]:
    """Place every subject in its region; returns per-subject meta."""
    out: dict[str, Any] = {}
    if subjects and store is None:
        raise BackendError("the plan has subjects but no artifact store was given to open their references")
    for subject in subjects:
        box = _box_px(subject.region, canvas.width, canvas.height)
        ref = store.open(subject.reference)
        if subject.kind == "person":
            out[subject.id] = _place_person(canvas, ref, box, subject.reference.sha256)
        else:
            out[subject.id] = _place_product(canvas, ref, box, subject.reference.sha256)
    return out


# --- text ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextLayout:
    """A text element set at one size: its lines, stroke and ink extents relative to the first baseline."""

    size: int
    lines: tuple[str, ...]
    stroke: int
    pitch: int
    line_extents: tuple[tuple[int, int, int, int], ...]
    fits: bool

    @property
    def ink_width(self) -> int:
        """Width of the widest line's ink."""
        return max(r - l for l, _, r, _ in self.line_extents)

    @property
    def ink_top(self) -> int:
        """Top of the ink, relative to the first baseline (negative: above it)."""
        return min(t + i * self.pitch for i, (_, t, _, _) in enumerate(self.line_extents))

    @property
    def ink_bottom(self) -> int:
        """Bottom of the ink, relative to the first baseline."""
        return max(b + i * self.pitch for i, (_, _, _, b) in enumerate(self.line_extents))

    @property
    def ink_height(self) -> int:
        """Height of the whole block's ink."""
        return self.ink_bottom - self.ink_top


def _stroke_px(size: int) -> int:
    """Outline width at a font size: thick enough to separate glyphs from any background."""
    return max(2, size // 14)


def _plate_pad(size: int) -> tuple[int, int]:
    """Horizontal and vertical padding of a text plate at a font size."""
    return max(4, round(0.45 * size)), max(3, round(0.28 * size))


def _wrap(font: ImageFont.FreeTypeFont, paragraphs: list[list[str]], max_w: float, stroke: int,
          force: bool = False) -> list[str] | None:
    """Greedy word wrap; None when a word alone is too wide (unless forced)."""
    lines: list[str] = []
    for words in paragraphs:
        current = ""
        for word in words:
            trial = f"{current} {word}" if current else word
            if font.getlength(trial) + 2 * stroke <= max_w:
                current = trial
                continue
            if not current:
                if not force:
                    return None
                lines.append(word)
                continue
            lines.append(current)
            current = word
            if font.getlength(word) + 2 * stroke > max_w and not force:
                return None
        if current:
            lines.append(current)
    return lines


def layout_text(content: str, font_key: str, max_w: int, max_h: int, *, outline: bool = False,
                plate_box: tuple[int, int] | None = None) -> TextLayout:
    """The largest layout of `content` (at most MAX_LINES balanced lines) fitting max_w x max_h.

    With `plate_box` (region width, height) the plate padding must fit the region too.
    If nothing fits, the smallest size is returned with fits=False.
    """
    paragraphs = [p.split() for p in content.splitlines() if p.split()] or [[content.strip() or content]]

    def measure(size: int, lines: list[str], fits: bool) -> TextLayout:
        font = load_font(font_key, size)
        stroke = _stroke_px(size) if outline else 0
        ascent, descent = font.getmetrics()
        extents: list[tuple[int, int, int, int]] = []
        for line in lines:
            l, t, r, b = font.getbbox(line, stroke_width=stroke, anchor="ls")
            extents.append((int(l), int(t), int(r), int(b)))
        return TextLayout(size, tuple(lines), stroke, round((ascent + descent) * 1.02), tuple(extents), fits)

    def width_limit(size: int) -> int:
        padx = _plate_pad(size)[0] if plate_box else 0
        return min(max_w, (plate_box[0] if plate_box else max_w) - 2 * padx)

    def attempt(size: int) -> TextLayout | None:
        limit = width_limit(size)
        if limit <= 0:
            return None
        stroke = _stroke_px(size) if outline else 0
        lines = _wrap(load_font(font_key, size), paragraphs, limit, stroke)
        if lines is None or len(lines) > MAX_LINES:
            return None
        lay = measure(size, lines, True)
        ok = lay.ink_width <= limit and lay.ink_height <= max_h
        if plate_box:
            ok = ok and lay.ink_height + 2 * _plate_pad(size)[1] <= plate_box[1]
        return lay if ok else None

    def balanced(lay: TextLayout) -> TextLayout:
        """Re-wrap at the narrowest width that keeps the line count, so no line is a lonely word."""
        if len(lay.lines) < 2:
            return lay
        font = load_font(font_key, lay.size)
        lo, hi = 1, width_limit(lay.size)
        while lo < hi:
            mid = (lo + hi) // 2
            lines = _wrap(font, paragraphs, mid, lay.stroke)
            if lines is not None and len(lines) <= len(lay.lines):
                hi = mid
            else:
                lo = mid + 1
        lines = _wrap(font, paragraphs, hi, lay.stroke)
        if lines is None or len(lines) != len(lay.lines):
            return lay
        even = measure(lay.size, lines, True)
        return even if even.ink_height <= lay.ink_height else lay

    lo, hi = MIN_FONT_PX, max(MIN_FONT_PX, int(max_h * 1.6))
    best: TextLayout | None = None
    with FONT_LOCK:
        while lo <= hi:
            mid = (lo + hi) // 2
            lay = attempt(mid)
            if lay is not None:
                best, lo = lay, mid + 1
            else:
                hi = mid - 1
        if best is not None:
            return balanced(best)
        font = load_font(font_key, MIN_FONT_PX)
        stroke = _stroke_px(MIN_FONT_PX) if outline else 0
        lines = _wrap(font, paragraphs, max(1, width_limit(MIN_FONT_PX)), stroke, force=True) or [content]
        return measure(MIN_FONT_PX, lines, False)


def _draw_text(canvas: Image.Image, element: TextElement, style: Style) -> dict[str, Any]:
    """Set one text element centred in its region (with plate/outline as styled); returns its meta."""
    x0, y0, x1, y1 = _box_px(element.region, canvas.width, canvas.height)
    rw, rh = x1 - x0, y1 - y0
    text_rgb = hex_rgb(style.text_color)
    back_rgb = contrasting_colour(text_rgb, style.palette)
    lay = layout_text(element.content, style.font, rw, max(1, round(rh * style.text_scale)),
                      outline=style.text_outline, plate_box=(rw, rh) if style.text_plate else None)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    base_y = round(cy - (lay.ink_top + lay.ink_bottom) / 2)
    half_w = lay.ink_width / 2
    box = [math.floor(cx - half_w), base_y + lay.ink_top, math.ceil(cx + half_w), base_y + lay.ink_bottom]
    if lay.fits:
        box = [max(x0, box[0]), max(y0, box[1]), min(x1, box[2]), min(y1, box[3])]
    meta: dict[str, Any] = {"box": box, "size": lay.size, "lines": list(lay.lines), "fits": lay.fits}

    if style.text_plate:
        padx, pady = _plate_pad(lay.size)
        plate = [max(0, box[0] - padx), max(0, box[1] - pady),
                 min(canvas.width, box[2] + padx), min(canvas.height, box[3] + pady)]
        pw, ph = plate[2] - plate[0], plate[3] - plate[1]
        if pw > 0 and ph > 0:
            a = _rounded_rect_alpha(pw, ph, min(0.35 * lay.size, ph / 2)) * (PLATE_ALPHA * 255)
            rgba = np.empty((ph, pw, 4), np.uint8)
            rgba[..., :3] = back_rgb
            rgba[..., 3] = np.clip(a + 0.5, 0, 255).astype(np.uint8)
            _paste_rgba(canvas, Image.fromarray(rgba, "RGBA"), (plate[0], plate[1]))
            meta["plate"] = plate

    draw = ImageDraw.Draw(canvas)
    with FONT_LOCK:
        font = load_font(style.font, lay.size)
        for i, (line, (l, _, r, _)) in enumerate(zip(lay.lines, lay.line_extents)):
            x = round(cx - (l + r) / 2)
            draw.text((x, base_y + i * lay.pitch), line, font=font, fill=text_rgb, anchor="ls",
                      stroke_width=lay.stroke, stroke_fill=back_rgb if lay.stroke else None)
    return meta


# --- entry points ----------------------------------------------------------------------------


def render(plan: Plan, seed: int, store: Any | None = None, *,
           background: Image.Image | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """Render a plan to an RGB image of exactly plan.width x plan.height, plus render meta.

    `background` replaces the styled background and skips subjects (they are already in
    it): this re-sets text on an existing candidate.
    """
    width, height = plan.width, plan.height
    meta: dict[str, Any] = {"backend": "compose", "seed": seed, "font": plan.style.font}
    try:
        if background is not None:
            canvas = cover_fit(background.convert("RGB"), width, height)
            meta["background"] = {"kind": "base_image"}
        else:
            canvas, meta["background"] = _background(plan, seed, store)
            if plan.subjects:
                meta["subjects"] = _place_subjects(canvas, plan.subjects, store)
        text_boxes: dict[str, list[int]] = {}
        font_px: dict[str, int] = {}
        lines: dict[str, list[str]] = {}
        missing: dict[str, list[str]] = {}
        plates: dict[str, list[int]] = {}
        overflow: list[str] = []
        for element in plan.text:
            info = _draw_text(canvas, element, plan.style)
            text_boxes[element.id] = info["box"]
            font_px[element.id] = info["size"]
            lines[element.id] = info["lines"]
            if "plate" in info:
                plates[element.id] = info["plate"]
            if not info["fits"]:
                overflow.append(element.id)
            gaps = missing_glyphs(plan.style.font, element.content)
            if gaps:
                missing[element.id] = gaps
    except ValueError as e:
        raise BackendError(f"compose could not render the plan: {e}") from e
    meta.update(text_boxes=text_boxes, font_px=font_px, lines=lines)
    if plates:
        meta["plates"] = plates
    if missing:
        meta["missing_glyphs"] = missing
    if overflow:
        meta["text_overflow"] = overflow
    if canvas.size != (width, height) or canvas.mode != "RGB":
        raise BackendError(f"compose produced {canvas.mode} {canvas.size}, expected RGB {(width, height)}")
    return canvas, meta


class ComposeBackend:
    """The default backend: renders plans locally with Pillow/OpenCV; no network, no model, deterministic."""

    name = "compose"
    capabilities = Capabilities(
        edit=True, mask=False, max_references=8, aspect_ratios=list(ASPECT_RATIOS),
        sizes=["1K", "2K", "4K"], native_long_side=4096, deterministic=True, cost_per_image=1.0,
    )

    @classmethod
    def from_config(cls, config: Any) -> "ComposeBackend":
        """Build from a PixloopConfig; compose needs no settings, so its fields are ignored."""
        return cls()

    def _generate_sync(self, request: GenerationRequest, store: Any) -> tuple[Image.Image, dict[str, Any]]:
        """Open the base image if any and render (runs in a worker thread)."""
        background = None
        if request.base_image is not None:
            if store is None:
                raise BackendError("base_image given but no artifact store to open it")
            try:
                background = store.open(request.base_image)
            except (OSError, ValueError) as e:
                raise BackendError(f"cannot open base image {request.base_image.path}: {e}") from e
        image, meta = render(request.plan, request.seed, store, background=background)
        if request.base_image is not None:
            meta["base_image"] = request.base_image.sha256
        return image, meta

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """Render the request's plan off the event loop; each image costs 1.0 unit."""
        try:
            image, meta = await asyncio.to_thread(self._generate_sync, request, store)
        except BackendError:
            raise
        except OSError as e:
            raise BackendError(f"compose failed: {e}") from e
        return GenerationResult(image=image, cost=self.capabilities.cost_per_image, meta=meta)
