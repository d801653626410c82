"""The failures the simulated backend injects: text (misspellings, placement of extra text) and image
(identity drift, an extra face, blur, noise, JPEG blocking, wrong and native sizes), with their strengths."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from agent.models import Box

GIBBERISH = ("LOREM IPSVM", "DOLOR AMET", "QVIS NOSTRVD", "VELIT ESSE", "MAGNA ALIQVA", "TEMPOR INCIDVNT")
"""Extra text real models add: plausible-looking words that were never asked for."""
SUBSTITUTES = "ABDEFGHKMNPRSTUWXYZ"
"""Letters a misspelling substitutes (no I/L/O/Q/C/J/V, which OCR confuses with the original glyphs)."""

BLUR_SIGMA = 4.0
"""Default Gaussian blur sigma at a long side of 1024 (scaled with the image). The artifacts critic fails
sigma 4 on every photo-like or textured poster tried (scores <= 0.39); sigma 3 passes half of them."""
NOISE_SIGMA = 20.0
"""Default Gaussian noise sigma per channel, grey levels."""
JPEG_QUALITY = 5
"""Default JPEG quality of the blocking failure (the artifacts critic's blocking limit was calibrated on q5)."""
DRIFT_BLUR = 0.08
"""Identity drift blurs the face with sigma = this share of the reference's face width (SFace cosine falls
from ~0.95 to ~0.1), after warping its proportions, so a face is still found but it is someone else."""
EXTRA_TEXT_SIZES = ((0.5, 0.1), (0.4, 0.08), (0.3, 0.07), (0.22, 0.06))
"""Relative (w, h) tried for the extra text, largest first; it never touches planned text and covers at
most a third of a subject's region (mostly its backdrop corners)."""
EXTRA_FACE_SCALE = (0.6, 0.5, 0.4)
"""Sizes (share of the person's region) tried for the pasted extra face, largest first."""
EDIT_ARTIFACT_BLUR, EDIT_ARTIFACT_NOISE = 0.8, 3.0
"""Blur sigma and noise sigma of the slight degradation an edit adds (`edit_artifacts` of edits)."""


# --- text failures ---------------------------------------------------------------------------


def _misspell_word(word: str, rng: np.random.Generator) -> str:
    """One typo inside a word (never its first letter): a substitution, deletion, swap or doubled letter."""
    letters = [i for i, c in enumerate(word) if c.isalpha() and i > 0]
    if not letters:
        return word
    i = int(rng.choice(letters))
    op = ("substitute", "delete", "swap", "double")[int(rng.integers(4))]
    if op == "swap" and i + 1 < len(word) and word[i + 1].isalpha() and word[i + 1].lower() != word[i].lower():
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "delete" and len(word) >= 4:
        return word[:i] + word[i + 1:]
    if op == "double" and len(word) >= 3:
        return word[:i] + word[i] + word[i:]
    choices = [c for c in SUBSTITUTES if c != word[i].upper()]
    sub = choices[int(rng.integers(len(choices)))]
    return word[:i] + (sub if word[i].isupper() else sub.lower()) + word[i + 1:]


def typo_candidates(content: str) -> list[int]:
    """Indices of the space-separated words with at least three letters (the ones a typo can go into)."""
    words = content.split(" ")
    return [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 3]


def misspell(content: str, rng: np.random.Generator) -> str:
    """The text with typos in about one word in six (at least one), longer words more likely."""
    words = content.split(" ")
    idx = typo_candidates(content)
    if not idx:
        return content
    n = max(1, round(len([w for w in words if w]) / 6))
    weights = np.array([len(words[i]) ** 2 for i in idx], float)
    chosen = rng.choice(idx, size=min(n, len(idx)), replace=False, p=weights / weights.sum())
    for i in sorted(int(c) for c in chosen):
        words[i] = _misspell_word(words[i], rng)
    return " ".join(words)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection area of two (x0, y0, x1, y1) boxes."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def box_edges(box: Box, pad: float = 0.0) -> tuple[float, float, float, float]:
    """A relative box as (x0, y0, x1, y1), grown by `pad` on every side."""
    return box.x - pad, box.y - pad, box.x + box.w + pad, box.y + box.h + pad


def free_spot(w: float, h: float, forbidden: list[tuple[float, float, float, float]],
              avoid: list[tuple[float, float, float, float]], rng: np.random.Generator,
              max_avoid_share: float = 0.0) -> tuple[float, float] | None:
    """Top-left (relative) of a w x h box touching nothing forbidden and as little avoided as possible."""
    xs = np.linspace(0.02, max(0.02, 0.98 - w), 13)
    ys = np.linspace(0.02, max(0.02, 0.98 - h), 13)
    best: list[tuple[float, float]] = []
    best_cost = None
    for y in ys:
        for x in xs:
            box = (float(x), float(y), float(x) + w, float(y) + h)
            if any(_overlap(box, f) > 0 for f in forbidden):
                continue
            cost = round(sum(_overlap(box, a) for a in avoid) / (w * h), 3)
            if cost > max_avoid_share:
                continue
            if best_cost is None or cost < best_cost:
                best, best_cost = [(box[0], box[1])], cost
            elif cost == best_cost:
                best.append((box[0], box[1]))
    return best[int(rng.integers(len(best)))] if best else None


# --- image failures --------------------------------------------------------------------------


def drift_identity(ref: Image.Image, face: tuple[int, int, int, int], rng: np.random.Generator) -> Image.Image:
    """The reference with its face re-drawn as someone else: proportions warped, detail lost, tone shifted."""
    a = np.asarray(ref.convert("RGB"))
    h, w = a.shape[:2]
    fx, fy, fw, fh = face
    cx, cy = fx + fw / 2, fy + fh / 2
    stretch = float(rng.uniform(1.15, 1.3))
    sx, sy = (stretch, 1 / stretch) if rng.random() < 0.5 else (1 / stretch, stretch)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (xs - cx) / (0.8 * fw), (ys - cy) / (0.8 * fh)
    weight = np.exp(-1.5 * (dx * dx + dy * dy))
    map_x = cx + (xs - cx) * (1 + (1 / sx - 1) * weight)
    map_y = cy + (ys - cy) * (1 + (1 / sy - 1) * weight)
    warped = cv2.remap(a, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    soft = cv2.GaussianBlur(warped, (0, 0), max(1.0, DRIFT_BLUR * fw)).astype(np.float32)
    soft *= rng.uniform(0.92, 1.08, 3).astype(np.float32)
    ex, ey = (xs - cx) / (0.75 * fw), (ys - cy) / (0.85 * fh)
    inside = np.clip((1.0 - np.sqrt(ex * ex + ey * ey)) * 4.0, 0, 1)[..., None]
    out = warped.astype(np.float32) * (1 - inside) + soft * inside
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def _oval_alpha(w: int, h: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ex, ey = (xs + 0.5 - w / 2) / (w / 2), (ys + 0.5 - h / 2) / (h / 2)
    return np.clip((1.0 - np.sqrt(ex * ex + ey * ey)) * 8.0, 0, 1)


def paste_extra_face(canvas: Image.Image, person_box: list[int], spot: tuple[float, float],
                     scale: float) -> Image.Image:
    """Paste a smaller, mirrored copy of a placed person at a relative spot (someone who was not asked for)."""
    x0, y0, x1, y1 = person_box
    pw, ph = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    patch = canvas.crop((x0, y0, x1, y1)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    patch = patch.resize((pw, ph), Image.Resampling.LANCZOS)
    px, py = round(spot[0] * canvas.width), round(spot[1] * canvas.height)
    out = np.asarray(canvas).astype(np.float32)
    region = out[py:py + ph, px:px + pw]
    alpha = _oval_alpha(pw, ph)[: region.shape[0], : region.shape[1], None]
    src = np.asarray(patch, np.float32)[: region.shape[0], : region.shape[1]]
    out[py:py + ph, px:px + pw] = region * (1 - alpha) + src * alpha
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def blur(image: Image.Image, sigma_at_1k: float = BLUR_SIGMA) -> Image.Image:
    """Gaussian blur, sigma scaled with the long side so it looks the same at any size."""
    sigma = sigma_at_1k * max(image.size) / 1024
    return Image.fromarray(cv2.GaussianBlur(np.asarray(image), (0, 0), sigma), "RGB")


def add_noise(image: Image.Image, sigma: float, rng: np.random.Generator) -> Image.Image:
    """Gaussian noise per channel (sensor-like grain)."""
    a = np.asarray(image).astype(np.float32)
    a += rng.standard_normal(a.shape, dtype=np.float32) * sigma
    return Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "RGB")


def jpeg(image: Image.Image, quality: int = JPEG_QUALITY) -> Image.Image:
    """A JPEG round trip at a low quality: 8x8 blocking and ringing."""
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def wrong_size(width: int, height: int, rng: np.random.Generator) -> tuple[tuple[int, int], str]:
    """A size a model delivers instead of the one asked: half size, or another aspect ratio."""
    if rng.random() < 0.5:
        return (max(8, width // 2), max(8, height // 2)), "half size"
    long_side = max(width, height)
    if abs(width / height - 1) > 0.02:
        return (long_side, long_side), "1:1 instead of the requested ratio"
    return (long_side, round(long_side * 3 / 4)), "4:3 instead of 1:1"


def native_size(width: int, height: int, native_long_side: int) -> tuple[int, int]:
    """The planned size, shrunk (aspect kept) so its long side is at most native_long_side."""
    s = min(1.0, native_long_side / max(width, height))
    return max(8, round(width * s)), max(8, round(height * s))
