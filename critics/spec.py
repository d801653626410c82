"""Spec-conformance critic: is the delivered image the size, shape and kind of image that was asked for?

Real users' most frequent complaint about image APIs is a silently wrong size or aspect ratio, so
every candidate gets four cheap, deterministic checks (no model, a few ms):

(a) **aspect ratio**: width/height vs ``plan.aspect_ratio``; relative error <= ``RATIO_TOLERANCE``,
    or the delivered size is a backend's documented size for that ratio and tier (``SIZE_TABLE``);
(b) **size**: the long side >= the requested long side (``plan.width``/``plan.height``, the plan's
    canvas) * (1 - ``SIZE_TOLERANCE``); bigger is fine (noted); a documented size for the
    requested tier passes;
(c) **not blank**: not a single colour or nearly (``BLANK_STD`` / ``BLANK_FRACTION``);
(d) **mode/format**: only when the context asks (``context.expected_mode`` / ``expected_format``;
    ``CheckContext`` has no such field yet, so they are read with ``getattr``): transparency present
    or absent, greyscale, or an exact PIL mode/format.

Score: 1.0 when all pass; each failure has a graded score, all of them <= ``FAIL_CEILING`` (0.9),
and the verdict's score is the lowest: blank 0.0; too small ``min(1, long/requested_long) * 0.9``;
wrong ratio ``min(0.9, 1 - min(1, 5 * rel_error))``; wrong mode ``0.5``. Any threshold in
(0.9, 1.0] therefore separates pass from fail identically; 0.95 is recommended.
"""

from __future__ import annotations

import math
import time
from typing import Any, cast

import cv2
import numpy as np
from PIL import Image

from agent.models import Plan, Verdict, nearest_aspect_ratio
from agent.models.evidence import SpecEvidence
from critics.base import CheckContext, CriticBase, CriticInfo

INFO = CriticInfo(
    threshold=0.95,
    threshold_source=(
        "a conforming image scores 1.0 and every failure scores <= 0.9 by construction (critics/spec.py), "
        "so 0.95 splits them with a margin; 0.85 would accept a ratio about 3% off"
    ),
    description="delivered size and aspect ratio against the request, blank images, mode",
    weight=2.0, measured=True, needs=(), on_by_default=True,
    strategies=("upscale", "new_seed"),
    evidence=SpecEvidence,
)
"""What the loop knows about this critic (see `critics.base.CriticInfo`)."""

RATIO_TOLERANCE = 0.02
"""Largest relative aspect-ratio error accepted. Documented backend roundings stay inside it:
Gemini 3 1K 16:9 is 1376x768 (0.8 % off), 21:9 1584x672 (1.0 %), 2:3 848x1264 (0.6 %); SDXL's
1344x768 for 16:9 is 1.6 % off; a multiple-of-8/16 short side at 1K is < 1 % off. A genuinely
different ratio (16:9 vs 3:2 = 15.6 %, 4:5 vs 3:4 = 6.7 %) is far outside."""
EDIT_RATIO_TOLERANCE = 0.005
"""An edit must keep the source's own aspect ratio (not the nearest named one): more than 0.5 % off is an edit
model that rescaled one axis (a 1024x768 source delivered as 1024x760 is 0.8 % off)."""
SIZE_TOLERANCE = 0.02
"""The long side may fall this much short of the request (1024 -> 1008 for a multiple-of-16 backend)."""
BLANK_STD = 2.0
"""An image whose every channel's standard deviation (0..255) is below this is blank."""
BLANK_FRACTION = 0.995
"""...or one where more than this share of pixels is within ``BLANK_COLOUR_DISTANCE`` of the median colour."""
BLANK_COLOUR_DISTANCE = 8
"""Per-channel distance (0..255) under which a pixel counts as 'the same colour' as the median."""
BLANK_MAX_SIDE = 512
STATS_MAX_PIXELS = 4096 * 4096
"""Above this many pixels (more than pixloop ever generates), the blank and mode statistics read a box-averaged
reduction of the image; the transparency test still reads every pixel's alpha."""
PREMULTIPLY_ROWS = 256
"""Rows premultiplied at a time, so a 50 MP image with alpha needs no full-size 16-bit working copies."""
"""The blank test runs on an area-downscaled copy with this long side (speed; area averaging keeps blankness)."""
FAIL_CEILING = 0.9
"""Every failing check scores at most this, so any threshold above it splits pass/fail the same way."""
MODE_FAIL_SCORE = 0.5

_GEMINI3_1K = {
    "1:1": (1024, 1024), "2:3": (848, 1264), "3:2": (1264, 848), "3:4": (896, 1200),
    "4:3": (1200, 896), "4:5": (928, 1152), "5:4": (1152, 928), "9:16": (768, 1376),
    "16:9": (1376, 768), "21:9": (1584, 672),
}
_GEMINI25_1K = {
    "1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184),
    "4:3": (1184, 864), "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344),
    "16:9": (1344, 768), "21:9": (1536, 672),
}

SIZE_TABLE: dict[str, dict[str, dict[str, tuple[int, int]]]] = {
    # shared/docs/backend-protocols.md §1: Gemini 3 family 1K sizes; "2K doubles and 4K quadruples both sides".
    "gemini-3": {
        "1K": dict(_GEMINI3_1K),
        "2K": {r: (w * 2, h * 2) for r, (w, h) in _GEMINI3_1K.items()},
        "4K": {r: (w * 4, h * 4) for r, (w, h) in _GEMINI3_1K.items()},
    },
    # §1: gemini-2.5-flash-image is 1K only; several of its sizes are 2-3 % off the nominal ratio
    # (4:5 896x1152 is 2.8 % off), so they pass only through this table.
    "gemini-2.5": {"1K": dict(_GEMINI25_1K)},
    # §2: the fixed OpenAI GPT-image sizes (gpt-image-2's free WxH multiples of 16 fall under the tolerance).
    "openai": {"1K": {"1:1": (1024, 1024), "3:2": (1536, 1024), "2:3": (1024, 1536)}},
    "dall-e-3": {"1K": {"1:1": (1024, 1024), "16:9": (1792, 1024), "9:16": (1024, 1792)}},
}
"""Documented (family -> tier -> ratio -> (w, h)) pixel sizes: an exact match for the requested ratio and
tier passes both the ratio and the size check whatever its rounding."""


def documented_family(width: int, height: int, aspect_ratio: str, tier: str) -> str | None:
    """The backend family whose documented size for this ratio and tier is exactly width x height."""
    for family, tiers in SIZE_TABLE.items():
        if tiers.get(tier, {}).get(aspect_ratio) == (width, height):
            return family
    return None


def ratio_value(aspect_ratio: str) -> float:
    a, b = (int(v) for v in aspect_ratio.split(":"))
    return a / b


def nearest_ratio_name(value: float) -> str:
    """The closest named ratio ('16:9'); prefixed with '~' when it is more than the tolerance away."""
    best = nearest_aspect_ratio(value, 1.0)
    return best if abs(value / ratio_value(best) - 1) <= RATIO_TOLERANCE else f"~{best}"


def _pixels(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 RGB array and the alpha channel (or None) of any PIL image."""
    im = image
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        g = a.astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2), None
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        arr = np.asarray(im if im.mode == "RGBA" else im.convert("RGBA"))  # no copy of an RGBA image to convert
        return arr[:, :, :3], arr[:, :, 3]
    return np.asarray(im if im.mode == "RGB" else im.convert("RGB")), None


def statistics_view(image: Image.Image) -> Image.Image:
    """The image the blank and mode statistics read: itself, or for an image above STATS_MAX_PIXELS a
    box-averaged reduction (PIL allocates only the small result, so a 50 MP input needs no full-size copies)."""
    w, h = image.size
    if w * h <= STATS_MAX_PIXELS or image.mode not in ("RGB", "RGBA", "L", "LA"):
        return image
    return image.reduce(math.ceil(math.sqrt(w * h / STATS_MAX_PIXELS)))


def _has_transparency(image: Image.Image, alpha: np.ndarray | None) -> bool:
    """Whether any pixel is not fully opaque (read from the whole image's alpha extrema, never a reduction)."""
    if alpha is None or alpha.size == 0:
        return False
    if image.mode in ("RGBA", "LA"):
        return int(cast("tuple[int, int]", image.getextrema()[-1])[0]) < 255
    return int(alpha.min()) < 255


def _shrink(arr: np.ndarray, max_side: int) -> np.ndarray:
    h, w = arr.shape[:2]
    if max(h, w) <= max_side:
        return arr
    s = max_side / max(h, w)
    return cv2.resize(arr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def blank_stats(rgb: np.ndarray, alpha: np.ndarray | None) -> dict[str, Any]:
    """Whether the image is (nearly) one colour: max channel std, share of pixels near the median colour.

    Transparent pixels count as black-and-transparent (colour premultiplied by alpha, alpha as a fourth
    channel), so a fully transparent image is blank and a sticker on a transparent background is not.
    """
    if alpha is not None:
        chans = np.empty((*rgb.shape[:2], 4), np.uint8)
        for y in range(0, rgb.shape[0], PREMULTIPLY_ROWS):  # in bands: no full-size 16-bit copies (memory)
            a = alpha[y:y + PREMULTIPLY_ROWS].astype(np.uint16)
            chans[y:y + PREMULTIPLY_ROWS, :, :3] = rgb[y:y + PREMULTIPLY_ROWS].astype(np.uint16) * a[:, :, None] // 255
            chans[y:y + PREMULTIPLY_ROWS, :, 3] = alpha[y:y + PREMULTIPLY_ROWS]
    else:
        chans = rgb
    small = np.ascontiguousarray(_shrink(np.ascontiguousarray(chans), BLANK_MAX_SIDE))
    if small.ndim == 2:
        small = small[:, :, None]
    _, stds = cv2.meanStdDev(small)
    std = float(stds.max())
    median = np.median(small.reshape(-1, small.shape[2]), axis=0).astype(np.int16)
    lo = np.clip(median - BLANK_COLOUR_DISTANCE, 0, 255).astype(np.uint8)
    hi = np.clip(median + BLANK_COLOUR_DISTANCE, 0, 255).astype(np.uint8)
    near = cv2.countNonZero(cv2.inRange(small, lo, hi)) / float(small.shape[0] * small.shape[1])
    blank = std < BLANK_STD or near > BLANK_FRACTION
    colour = "#" + "".join(f"{int(c):02x}" for c in median[:3])
    transparent = alpha is not None and int(median[3]) == 0
    return {"blank": blank, "std": round(std, 2), "near_median": round(near, 4), "colour": colour,
            "transparent": transparent}


def _check_mode(expected: str, mode: str, rgb: np.ndarray, alpha: np.ndarray | None,
                has_transparency: bool) -> str | None:
    """A problem sentence if the image is not of the expected mode, else None."""
    e = expected.strip()
    el = e.lower()
    if el in ("rgba", "la", "transparent", "alpha"):
        if alpha is None:
            return f"image is {mode} without an alpha channel but a transparent image ({e}) was asked"
        if not has_transparency:
            return f"image has an alpha channel but no transparent pixel; a transparent background ({e}) was asked"
        return None
    if el in ("rgb", "opaque"):
        return (f"image has transparent pixels but an opaque image ({e}) was asked"
                if has_transparency else None)
    if el in ("l", "grey", "gray", "greyscale", "grayscale"):
        if rgb.size and int(np.abs(rgb.astype(np.int16) - rgb.mean(axis=2, keepdims=True)).max()) > 2:
            return f"image is in colour but a greyscale image ({e}) was asked"
        return None
    return None if mode == e else f"image mode is {mode} but {e} was asked"


def _threshold(plan: Plan) -> float:
    spec = plan.checks.get("spec")
    return float(spec.threshold) if spec is not None else INFO.threshold


class SpecCritic(CriticBase):
    """Delivered size, aspect ratio, non-blankness and mode vs the plan; deterministic and fast."""

    name = "spec"
    info = INFO

    def check(self, image: Image.Image, plan: Plan, context: CheckContext) -> Verdict:
        t0 = time.perf_counter()
        threshold = _threshold(plan)
        try:
            score, evidence, feedback = self._evaluate(image, plan, context)
        except Exception as e:  # noqa: BLE001 - a critic never crashes the loop
            error = f"{type(e).__name__}: {e}"
            return Verdict(critic=self.name, candidate_id=context.candidate_id, score=0.0, passed=False,
                           threshold=threshold, evidence={"width": getattr(image, "width", None),
                                                          "height": getattr(image, "height", None)},
                           feedback=f"the spec check failed ({error[:200]}); regenerate the image",
                           seconds=round(time.perf_counter() - t0, 3), error=error)
        return Verdict(critic=self.name, candidate_id=context.candidate_id, score=score,
                       passed=score >= threshold, threshold=threshold, evidence=evidence,
                       feedback=feedback, seconds=round(time.perf_counter() - t0, 3))

    def _evaluate(self, image: Image.Image, plan: Plan, context: CheckContext) -> tuple[float, dict, str]:
        w, h = image.size
        rw, rh = plan.width, plan.height
        tier = plan.size
        req_long = max(rw, rh)
        edit = plan.edit is not None  # an edit keeps the source's exact size and ratio
        expected = rw / rh if edit else ratio_value(plan.aspect_ratio)
        tolerance = EDIT_RATIO_TOLERANCE if edit else RATIO_TOLERANCE
        evidence: dict[str, Any] = {
            "width": w, "height": h, "requested": [rw, rh], "size": tier,
            "aspect_ratio": {"expected": round(expected, 4), "expected_name": plan.aspect_ratio,
                             "actual": None, "actual_name": None, "rel_error": None},
            "blank": False, "mode": image.mode, "format": image.format,
            "documented_size": None, "notes": [],
        }
        problems: list[tuple[float, str]] = []  # (score, "problem: fix"); ties: blank first
        if w == 0 or h == 0:
            evidence["blank"] = True
            return 0.0, evidence, f"image is empty ({w}x{h}): regenerate it at {rw}x{rh}"

        family = None if edit else documented_family(w, h, plan.aspect_ratio, tier)
        evidence["documented_size"] = family
        if family and (w, h) != (rw, rh):
            evidence["notes"].append(f"{w}x{h} is the documented {family} size for {plan.aspect_ratio} at {tier}")

        # (a) aspect ratio
        actual = w / h
        rel = abs(actual / expected - 1)
        name = nearest_ratio_name(actual)
        evidence["aspect_ratio"].update(actual=round(actual, 4), actual_name=name, rel_error=round(rel, 4))
        if rel > tolerance and not family:
            problems.append((min(FAIL_CEILING, 1 - min(1.0, rel * 5)),
                             f"the edit changed the aspect ratio: delivered {w}x{h} ({actual:.3f}) but the source is "
                             f"{rw}x{rh} ({expected:.3f}, {rel:.1%} off): realign to the source" if edit else
                             f"delivered {w}x{h} is {name} ({actual:.3f}) but {plan.aspect_ratio} ({expected:.3f}) "
                             f"was requested ({rel:.1%} off): regenerate at {plan.aspect_ratio} ({rw}x{rh})"))

        # (b) size
        long_side = max(w, h)
        if long_side < req_long * (1 - SIZE_TOLERANCE) and not family:
            problems.append((min(1.0, long_side / req_long) * FAIL_CEILING,
                             f"delivered {w}x{h} but {rw}x{rh} ({tier}) was requested: upscale or regenerate at {tier}"))
        elif long_side > req_long * (1 + SIZE_TOLERANCE):
            evidence["notes"].append(f"delivered {w}x{h}, larger than the requested {rw}x{rh} ({tier}): "
                                     "fine; downscale if an exact size is needed")

        # (c) blank, (d) mode
        rgb, alpha = _pixels(statistics_view(image))
        has_transparency = _has_transparency(image, alpha)
        evidence["has_transparency"] = has_transparency
        stats = blank_stats(rgb, alpha)
        evidence["blank"] = bool(stats["blank"])
        evidence["blank_stats"] = {k: stats[k] for k in ("std", "near_median", "colour")}
        if stats["blank"]:
            what = "fully transparent" if stats["transparent"] else f"a single colour {stats['colour']}"
            problems.append((0.0, f"image is blank ({what}): regenerate it with a new seed"))

        expected_mode = getattr(context, "expected_mode", None)
        evidence["expected_mode"] = expected_mode
        if expected_mode:
            problem = _check_mode(str(expected_mode), image.mode, rgb, alpha, has_transparency)
            if problem:
                fix = ("regenerate with a transparent background (e.g. OpenAI background=transparent, PNG)"
                       if str(expected_mode).lower() in ("rgba", "la", "transparent", "alpha")
                       else f"convert or regenerate as {expected_mode}")
                problems.append((MODE_FAIL_SCORE, f"{problem}: {fix}"))
        expected_format = getattr(context, "expected_format", None)
        evidence["expected_format"] = expected_format
        if expected_format:
            if image.format is None:
                evidence["notes"].append("format unknown (image was decoded before the check)")
            elif image.format.upper().replace("JPG", "JPEG") != str(expected_format).upper().replace("JPG", "JPEG"):
                problems.append((MODE_FAIL_SCORE, f"image is {image.format} but {expected_format} was asked: "
                                                  f"re-encode as {expected_format}"))

        if not problems:
            note = f"; {evidence['notes'][-1]}" if evidence["notes"] else ""
            return 1.0, evidence, f"{w}x{h} {image.mode} matches {plan.aspect_ratio} {tier}{note}"
        problems.sort(key=lambda p: (p[0], not p[1].startswith("image is blank")))
        evidence["problems"] = [p for _, p in problems]
        score = problems[0][0]
        feedback = problems[0][1]
        if len(problems) > 1:
            feedback += f" (also: {'; '.join(p.rsplit(': ', 1)[0] for _, p in problems[1:])})"
        return float(max(0.0, min(1.0, score))), evidence, feedback


__all__ = ["SIZE_TABLE", "RATIO_TOLERANCE", "SIZE_TOLERANCE", "SpecCritic", "blank_stats", "documented_family",
           "nearest_ratio_name"]
