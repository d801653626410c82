"""Subjects: people cropped head-and-shoulders around the detected face in a soft frame, products cut out
of their backdrop with a drop shadow; face boxes and cut-out masks are memoised per reference."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from agent.backends.compose.canvas import PixelBox, box_px, cover_fit, paste_rgba, rounded_rect_alpha
from agent.models import Subject
from agent.models.errors import BackendError

SUBJECT_PAD = 0.06
"""Share of a product region left free around the cut-out, so its shadow fits."""

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
        path = cv2.data.haarcascades + HAAR_FACE_XML  # type: ignore[attr-defined]  # cv2.data: not in the stubs
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


face_cache: dict[str, tuple[int, int, int, int] | None] = {}
face_cache_lock = threading.Lock()
"""Face box per reference sha256 (at most 128); `clear_caches()` empties it."""


def _cached_face(sha256: str, img: Image.Image) -> tuple[int, int, int, int] | None:
    """detect_face, memoised by the reference's content hash: the loop re-renders the same references."""
    with face_cache_lock:
        if sha256 in face_cache:
            return face_cache[sha256]
    face = detect_face(img)
    with face_cache_lock:
        if len(face_cache) >= 128:
            face_cache.pop(next(iter(face_cache)))
        face_cache[sha256] = face
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


def _ellipse_alpha(w: int, h: int, feather: float) -> np.ndarray:
    """Soft-edged ellipse inscribed in w x h, in [0,1], fully transparent at the box edge."""
    a, b = w / 2, h / 2
    xs = ((np.arange(w, dtype=np.float32) + 0.5 - a) / a)[None, :]
    ys = ((np.arange(h, dtype=np.float32) + 0.5 - b) / b)[:, None]
    d = (np.sqrt(xs * xs + ys * ys) - 1.0) * min(a, b)
    return np.clip(-d / max(1.0, feather), 0, 1)


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
    alpha = _ellipse_alpha(rw, rh, feather) if oval else rounded_rect_alpha(rw, rh, 0.08 * min(rw, rh), feather)
    pad = max(2, round(0.04 * min(rw, rh)))
    shadow_alpha = np.pad(alpha, pad)
    paste_rgba(canvas, _shadow(shadow_alpha, pad / 2, 0.35), (x0 - pad + pad // 3, y0 - pad + pad // 2))
    layer = crop.convert("RGBA")
    layer.putalpha(Image.fromarray(np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8), "L"))
    paste_rgba(canvas, layer, (x0, y0))
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


mask_cache: dict[str, tuple[np.ndarray, str]] = {}
mask_cache_lock = threading.Lock()
"""Reduced cut-out mask and method per reference key (at most 64); `clear_caches()` empties it."""


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
    with mask_cache_lock:
        cached = mask_cache.get(key) if key else None
    if cached is None:
        cached = _estimate_mask(rgb)
        if key:
            with mask_cache_lock:
                if len(mask_cache) >= 64:
                    mask_cache.pop(next(iter(mask_cache)))
                mask_cache[key] = cached
    mask, method = cached
    if method == "full":
        return np.ones((ih, iw), np.float32), method
    soft = cv2.resize(mask.astype(np.float32), (iw, ih), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(soft, (0, 0), max(0.6, 0.6 * iw / mask.shape[1]))
    return np.clip(soft, 0, 1), method


def fit_cutout(rgb: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int]) -> tuple[Image.Image, int, int]:
    """The cut-out object (RGBA, cropped to its alpha) contain-fitted in `box` with SUBJECT_PAD, and where its
    top-left corner goes."""
    x0, y0, x1, y1 = box
    rw, rh = x1 - x0, y1 - y0
    ys, xs = np.nonzero(alpha > 0.5)
    if len(xs) == 0:
        ys, xs = np.array([0, alpha.shape[0] - 1]), np.array([0, alpha.shape[1] - 1])
    bx0, by0, bx1, by1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    rgba = np.dstack([np.clip(rgb + 0.5, 0, 255).astype(np.uint8), np.clip(alpha * 255 + 0.5, 0, 255).astype(np.uint8)])
    obj = Image.fromarray(np.ascontiguousarray(rgba[by0:by1, bx0:bx1]), "RGBA")
    pad = SUBJECT_PAD * min(rw, rh)
    s = min((rw - 2 * pad) / obj.width, (rh - 2 * pad) / obj.height)
    ow, oh = max(1, round(obj.width * s)), max(1, round(obj.height * s))
    obj = obj.resize((ow, oh), Image.Resampling.LANCZOS)
    return obj, x0 + (rw - ow) // 2, y0 + (rh - oh) // 2


def _place_product(canvas: Image.Image, ref: Image.Image, box: PixelBox, sha256: str) -> dict[str, Any]:
    """Cut the product out of its backdrop and contain-fit it in the region with a soft drop shadow."""
    x0, y0, x1, y1 = box
    alpha, method = cutout_mask(ref, sha256)
    obj, ox, oy = fit_cutout(np.asarray(ref.convert("RGB"), np.float32), alpha, (x0, y0, x1, y1))
    ow, oh = obj.size
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
    paste_rgba(canvas, clipped, (sx0, sy0))
    paste_rgba(canvas, obj, (ox, oy))
    return {"kind": "product", "box": list(box), "cutout": method, "object_box": [ox, oy, ox + ow, oy + oh]}


def place_subjects(canvas: Image.Image, subjects: list[Subject], store: Any) -> dict[str, Any]:
    """Place every subject in its region; returns per-subject meta."""
    out: dict[str, Any] = {}
    if subjects and store is None:
        raise BackendError("the plan has subjects but no artifact store was given to open their references")
    for subject in subjects:
        box = box_px(subject.region, canvas.width, canvas.height)
        ref = store.open(subject.reference)
        if subject.kind == "person":
            out[subject.id] = _place_person(canvas, ref, box, subject.reference.sha256)
        else:
            out[subject.id] = _place_product(canvas, ref, box, subject.reference.sha256)
    return out


def clear_caches() -> None:
    """Forget the memoised face boxes and cut-out masks (a benchmark run must not depend on earlier ones)."""
    for cache, lock in ((face_cache, face_cache_lock), (mask_cache, mask_cache_lock)):
        with lock:
            cache.clear()


__all__ = ["FACE_DETECT_LONG_SIDE", "GRABCUT_LONG_SIDE", "HAAR_FACE_XML", "HEAD_AND_SHOULDERS", "SUBJECT_PAD",
           "clear_caches", "cutout_mask", "detect_face", "face_cache", "face_cache_lock", "face_detector_available",
           "mask_cache", "mask_cache_lock", "place_subjects"]
