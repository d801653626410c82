"""The simulated backend: a test and benchmark double that imitates real image models' failure modes.

It is not a generator. It renders the plan with the compose renderer (correct text, the reference
subjects, the planned size) and then injects, each at a configurable rate, the failures real image
models show: misspelt, dropped or extra text; identity drift; blur, noise and JPEG blocking; an
extra face; a wrong size; and a native resolution below the request. It answers feedback the way
real models do, partially and not always. Every number is a configurable rate (or strength), set
with `--backend-option KEY=VALUE` or a `profile` preset, and `meta["simulated"]` lists what was
injected and what feedback fixed, so tests and the quality benchmark can check that the critics
find each failure and the loop repairs it.

Determinism: every random draw comes from a numpy generator seeded with (request.seed, a BLAKE2b
hash of the prompt, of the edit instruction and of the base image's hash, the failure kind). The
same request always gives byte-identical pixels; another seed, or a corrected prompt, gives new
draws; and each failure kind has its own stream, so changing one rate never reshuffles another
failure's draws.

Feedback: the request's correction (`GenerationRequest.correction`, structured: which attempt and its
feedback lines, never parsed from the prompt's wording) and an edit instruction's own words are matched
against each failure's cues (FEEDBACK_CUES: "should read" for a misspelling, "blur"/"sharp" for
blur, ...). An addressed failure that would fire is avoided with probability `feedback_response`;
otherwise it recurs at its base rate. A masked edit regenerates the masked region from the plan
and succeeds with probability `edit_response`; `edit_artifacts` of edits degrade the whole image
slightly, as repeated edits with real models do.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.models.errors import BackendError, UnknownBackendError
from agent.backends.base import Capabilities, GenerationRequest, GenerationResult
from agent.backends.compose import detect_face, render
from agent.models import ASPECT_RATIOS, LONG_SIDE, SIZE_TIERS, Box, Plan, TextElement

FAILURES: tuple[str, ...] = ("misspell", "drop_text", "extra_text", "identity_drift", "extra_face",
                             "blur", "noise", "jpeg", "wrong_size")
"""Failure kinds in the order they are decided; each has its own random stream (its index)."""

PROFILES: dict[str, dict[str, float]] = {
    "clean": dict.fromkeys(FAILURES, 0.0),
    "typical": {"misspell": 0.35, "drop_text": 0.1, "extra_text": 0.15, "identity_drift": 0.3,
                "extra_face": 0.05, "blur": 0.1, "noise": 0.08, "jpeg": 0.08, "wrong_size": 0.1},
    "hard": {"misspell": 0.6, "drop_text": 0.25, "extra_text": 0.3, "identity_drift": 0.5,
             "extra_face": 0.15, "blur": 0.2, "noise": 0.15, "jpeg": 0.15, "wrong_size": 0.2},
}
"""Preset failure rates. "typical" is a rough picture of current text-capable image models on
posters with text and a reference face; the rates are guesses to exercise the loop, not measurements."""

FEEDBACK_CUES: dict[str, re.Pattern[str]] = {k: re.compile(p, re.IGNORECASE) for k, p in {
    "misspell": r"should read|misspel|spell|typo|exact text",
    "drop_text": r"missing|illegible|omitted|add the (?:text|headline|words)",
    "extra_text": r"extra text|not in the plan|stray text|no other text|remove (?:the )?(?:extra |stray )?text",
    "identity_drift": r"identity|look like the reference|reference face|likeness|same person|weak match|"
                      r"no face found",
    "extra_face": r"extra face|extra person|more people|only one (?:person|face)",
    "blur": r"blur|sharp|in focus",
    "noise": r"nois|grain",
    "jpeg": r"jpe?g|png|blocking|compression",
    "wrong_size": r"aspect|ratio|upscale|resolution|regenerate at|delivered \d+x\d+",
}.items()}
"""Words in a correction that address each failure (the critics' feedback lines use them)."""

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


class SimulatedOptions(BaseModel):
    """Backend options (`--backend-option KEY=VALUE`; strings are parsed). Rates left unset come from `profile`."""

    model_config = ConfigDict(extra="forbid")

    profile: str = "typical"
    misspell: float | None = Field(None, ge=0, le=1)
    drop_text: float | None = Field(None, ge=0, le=1)
    extra_text: float | None = Field(None, ge=0, le=1)
    identity_drift: float | None = Field(None, ge=0, le=1)
    extra_face: float | None = Field(None, ge=0, le=1)
    blur: float | None = Field(None, ge=0, le=1)
    noise: float | None = Field(None, ge=0, le=1)
    jpeg: float | None = Field(None, ge=0, le=1)
    wrong_size: float | None = Field(None, ge=0, le=1)
    native_long_side: int = Field(1024, ge=64, le=8192, description="requests above it are delivered at it")
    feedback_response: float = Field(0.7, ge=0, le=1, description="chance a correction naming a failure fixes it")
    edit_response: float = Field(0.85, ge=0, le=1, description="chance a masked edit does what it was asked")
    edit_artifacts: float = Field(0.15, ge=0, le=1, description="chance an edit degrades the image slightly")
    cost_per_image: float = Field(0.04, ge=0, description="USD estimate per image, for budget checks")
    blur_sigma: float = Field(BLUR_SIGMA, gt=0, le=50, description="blur strength at a long side of 1024")
    noise_sigma: float = Field(NOISE_SIGMA, gt=0, le=128, description="noise strength, grey levels")
    jpeg_quality: int = Field(JPEG_QUALITY, ge=1, le=95, description="JPEG quality of the blocking failure")

    @model_validator(mode="after")
    def _known_profile(self) -> "SimulatedOptions":
        if self.profile not in PROFILES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        return self

    def rates(self) -> dict[str, float]:
        """The effective rate of every failure kind: the option if given, else the profile's."""
        preset = PROFILES[self.profile]
        return {k: preset[k] if getattr(self, k) is None else float(getattr(self, k)) for k in FAILURES}


def parse_options(options: dict[str, Any]) -> SimulatedOptions:
    """Validated options; an unknown key or a bad value is an error naming the known options."""
    try:
        return SimulatedOptions(**options)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'options'}: {err['msg']}" for err in e.errors())
        known = ", ".join(SimulatedOptions.model_fields)
        raise UnknownBackendError(f"simulated backend options: {problems} (known options: {known})") from None


# --- determinism and feedback ----------------------------------------------------------------


def request_key(request: GenerationRequest) -> list[int]:
    """Four 32-bit words of a BLAKE2b hash of what makes a request distinct besides its seed."""
    h = hashlib.blake2b(digest_size=16)
    for part in (request.prompt, request.instruction or "", request.base_image.sha256 if request.base_image else ""):
        h.update(part.encode("utf-8", "surrogatepass") + b"\0")
    d = h.digest()
    return [int.from_bytes(d[i:i + 4], "little") for i in range(0, 16, 4)]


def stream(request: GenerationRequest, purpose: int) -> np.random.Generator:
    """The reproducible random stream of one purpose (a failure kind's index, or an edit draw) for a request."""
    return np.random.default_rng([request.seed & 0xFFFFFFFF, *request_key(request), purpose])


def attempt_number(request: GenerationRequest) -> int:
    """The attempt a request carries out (1 for a first render; a correction says which)."""
    return request.correction.attempt if request.correction is not None else 1


def feedback_text(request: GenerationRequest) -> str:
    """The words a request adds to its plan: the correction's feedback lines (structured, not parsed from the
    prompt) and the edit instruction's own lines (lines it shares with the prompt do not count)."""
    parts: list[str] = list(request.correction.feedback) if request.correction is not None else []
    if request.instruction:
        prompt_lines = {ln.strip() for ln in request.prompt.splitlines()}
        parts.extend(ln for ln in request.instruction.splitlines() if ln.strip() and ln.strip() not in prompt_lines)
    return "\n".join(parts)


def addressed_failures(text: str) -> list[str]:
    """Failure kinds whose cues appear in a correction."""
    return [k for k in FAILURES if FEEDBACK_CUES[k].search(text)] if text.strip() else []


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


def _typo_candidates(content: str) -> list[int]:
    words = content.split(" ")
    return [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 3]


def misspell(content: str, rng: np.random.Generator) -> str:
    """The text with typos in about one word in six (at least one), longer words more likely."""
    words = content.split(" ")
    idx = _typo_candidates(content)
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


def _edges(box: Box, pad: float = 0.0) -> tuple[float, float, float, float]:
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


# --- the backend -----------------------------------------------------------------------------


class _SwappedStore:
    """A view of the artifact store that opens substitute images for some references."""

    def __init__(self, store: Any, swaps: dict[str, Image.Image]) -> None:
        self._store, self._swaps = store, swaps

    def open(self, ref: Any) -> Image.Image:
        swap = self._swaps.get(ref.sha256)
        return swap.copy() if swap is not None else self._store.open(ref)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class _Outcome:
    """What happened to one request, for meta["simulated"]."""

    injected: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


class SimulatedBackend:
    """Compose renders plus realistic, seeded failures and partial responses to feedback (a test double)."""

    name = "simulated"

    def __init__(self, options: SimulatedOptions | None = None) -> None:
        self.options = options or SimulatedOptions()
        self.rates = self.options.rates()
        native = self.options.native_long_side
        self.capabilities = Capabilities(
            edit=True, mask=True, max_references=8, aspect_ratios=list(ASPECT_RATIOS),
            sizes=[t for t in SIZE_TIERS if t == "1K" or LONG_SIDE[t] <= native],
            native_long_side=native, deterministic=True, cost_per_image=self.options.cost_per_image,
        )

    @classmethod
    def from_config(cls, config: Any) -> "SimulatedBackend":
        """Build from a PixloopConfig; only its options are read (base_url and model mean nothing here)."""
        return cls(parse_options(dict(getattr(config, "options", None) or {})))

    # ------------------------------------------------------------------ decisions

    def _fires(self, kind: str, request: GenerationRequest, addressed: list[str], outcome: _Outcome,
               applicable: bool) -> tuple[bool, np.random.Generator]:
        """Whether a failure fires: its base draw, unless a correction that addresses it takes effect."""
        rng = stream(request, FAILURES.index(kind))
        base, fix = rng.random(2)
        if not applicable or base >= self.rates[kind]:
            return False, rng
        if kind in addressed and fix < self.options.feedback_response:
            outcome.fixed.append(kind)
            return False, rng
        return True, rng

    # ------------------------------------------------------------------ generation

    def _generate(self, request: GenerationRequest, store: Any, background: Image.Image | None,
                  outcome: _Outcome) -> Image.Image:
        """Render the plan (on `background` for an unmasked edit) with this request's failures."""
        plan = request.plan
        addressed = addressed_failures(feedback_text(request))
        width, height = native_size(*(background.size if background is not None else (plan.width, plan.height)),
                                    self.options.native_long_side)

        text = list(plan.text)
        fires, rng = self._fires("drop_text", request, addressed, outcome, bool(text))
        if fires:
            i = int(rng.integers(len(text)))
            outcome.injected.append("drop_text")
            outcome.details["drop_text"] = {"element": text[i].id, "text": text[i].content}
            text.pop(i)

        typo_able = [k for k, e in enumerate(text) if _typo_candidates(e.content)]
        fires, rng = self._fires("misspell", request, addressed, outcome, bool(typo_able))
        if fires:
            weights = np.array([max(len(w) for w in text[k].content.split()) for k in typo_able], float)
            k = int(rng.choice(typo_able, p=weights / weights.sum()))
            wrong = misspell(text[k].content, rng)
            outcome.injected.append("misspell")
            outcome.details["misspell"] = {"element": text[k].id, "text": text[k].content, "rendered": wrong}
            text[k] = text[k].model_copy(update={"content": wrong})

        fires, rng = self._fires("extra_text", request, addressed, outcome, True)
        if fires:
            forbidden = [_edges(e.region, 0.03) for e in plan.text]
            avoid = [_edges(s.region) for s in plan.subjects]
            words = GIBBERISH[int(rng.integers(len(GIBBERISH)))]
            for w, h in EXTRA_TEXT_SIZES:
                spot = free_spot(w, h, forbidden, avoid, rng, max_avoid_share=0.35)
                if spot is not None:
                    region = Box(x=spot[0], y=spot[1], w=w, h=h)
                    text.append(TextElement(id="simulated-extra", content=words, role="body", region=region))
                    outcome.injected.append("extra_text")
                    outcome.details["extra_text"] = {"text": words, "where": region.describe()}
                    break

        swaps: dict[str, Image.Image] = {}
        persons = [s for s in plan.subjects if s.kind == "person"] if background is None else []
        fires, rng = self._fires("identity_drift", request, addressed, outcome, bool(persons) and store is not None)
        if fires:
            subject = persons[int(rng.integers(len(persons)))]
            ref = store.open(subject.reference).convert("RGB")
            face = detect_face(ref)
            if face is not None:
                swaps[subject.reference.sha256] = drift_identity(ref, face, rng)
                outcome.injected.append("identity_drift")
                outcome.details["identity_drift"] = {"subject": subject.id}

        fires, rng = self._fires("wrong_size", request, addressed, outcome, background is None)
        if fires:
            (width, height), how = wrong_size(width, height, rng)
            outcome.injected.append("wrong_size")
            outcome.details["wrong_size"] = how

        sized = plan.model_copy(update={"text": text, "width": width, "height": height})
        image, meta = render(sized, request.seed, _SwappedStore(store, swaps) if swaps else store,
                             background=background)

        fires, rng = self._fires("extra_face", request, addressed, outcome, bool(persons))
        if fires:
            image = self._extra_face(image, sized, meta, rng, outcome)
        return self._degrade(image, request, addressed, outcome)

    def _extra_face(self, image: Image.Image, plan: Plan, meta: dict[str, Any], rng: np.random.Generator,
                    outcome: _Outcome) -> Image.Image:
        """Paste a copy of a placed person somewhere free (not over text)."""
        placed = [(s, meta.get("subjects", {}).get(s.id)) for s in plan.subjects if s.kind == "person"]
        placed = [(s, m) for s, m in placed if m]
        if not placed:
            return image
        subject, info = placed[int(rng.integers(len(placed)))]
        forbidden = [_edges(e.region, 0.02) for e in plan.text]
        avoid = [_edges(s.region) for s in plan.subjects]
        for scale in EXTRA_FACE_SCALE:
            w, h = subject.region.w * scale, subject.region.h * scale
            spot = free_spot(w, h, forbidden, avoid, rng, max_avoid_share=0.25)
            if spot is not None:
                outcome.injected.append("extra_face")
                outcome.details["extra_face"] = {"copy_of": subject.id,
                                                 "where": Box(x=spot[0], y=spot[1], w=w, h=h).describe()}
                return paste_extra_face(image, info["box"], spot, scale)
        return image

    def _degrade(self, image: Image.Image, request: GenerationRequest, addressed: list[str],
                 outcome: _Outcome) -> Image.Image:
        """Blur, noise and JPEG blocking, in the order a real pipeline would add them."""
        fires, _ = self._fires("blur", request, addressed, outcome, True)
        if fires:
            image = blur(image, self.options.blur_sigma)
            outcome.injected.append("blur")
        fires, rng = self._fires("noise", request, addressed, outcome, True)
        if fires:
            image = add_noise(image, self.options.noise_sigma, rng)
            outcome.injected.append("noise")
        fires, _ = self._fires("jpeg", request, addressed, outcome, True)
        if fires:
            image = jpeg(image, self.options.jpeg_quality)
            outcome.injected.append("jpeg")
        return image

    # ------------------------------------------------------------------ edits

    def _edit(self, request: GenerationRequest, store: Any, outcome: _Outcome) -> Image.Image:
        """A masked edit: regenerate the masked region from the plan (or fail to), keep the rest."""
        base = _open(store, request.base_image, "base image").convert("RGB")
        if request.mask is None:
            return self._generate(request, store, base, outcome)
        mask = _open(store, request.mask, "mask").convert("L")
        if mask.size != base.size:
            mask = mask.resize(base.size, Image.Resampling.BILINEAR)
        alpha = np.asarray(mask, np.float32) / 255.0
        plan = request.plan.model_copy(update={"width": base.width, "height": base.height})
        rng = stream(request, len(FAILURES))
        applied = bool(rng.random() < self.options.edit_response)
        edit: dict[str, Any] = {"applied": applied}
        text, swaps = list(plan.text), {}
        if not applied:
            inside = [k for k, e in enumerate(text) if _covered(alpha, e.region) and _typo_candidates(e.content)]
            persons = [s for s in plan.subjects if s.kind == "person" and _covered(alpha, s.region, 0.3)]
            if inside:
                k = inside[int(rng.integers(len(inside)))]
                text[k] = text[k].model_copy(update={"content": misspell(text[k].content, rng)})
                edit["failure"] = {"misspell": text[k].id, "rendered": text[k].content}
            elif persons:
                ref = store.open(persons[0].reference).convert("RGB")
                face = detect_face(ref)
                if face is not None:
                    swaps[persons[0].reference.sha256] = drift_identity(ref, face, rng)
                    edit["failure"] = {"identity_drift": persons[0].id}
        if applied or "failure" in edit:
            target, _ = render(plan.model_copy(update={"text": text}), request.seed,
                               _SwappedStore(store, swaps) if swaps else store)
            a = alpha[..., None]
            out = np.asarray(base, np.float32) * (1 - a) + np.asarray(target, np.float32) * a
            image = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")
        else:
            image = base
        if rng.random() < self.options.edit_artifacts:
            image = add_noise(blur(image, EDIT_ARTIFACT_BLUR), EDIT_ARTIFACT_NOISE, rng)
            edit["artifacts"] = True
        outcome.details["edit"] = edit
        return image

    # ------------------------------------------------------------------ protocol

    def simulate(self, request: GenerationRequest, store: Any) -> tuple[Image.Image, dict[str, Any]]:
        """The image for a request and its meta (synchronous; `generate` runs it in a worker thread)."""
        outcome = _Outcome()
        if request.base_image is not None:
            if store is None:
                raise BackendError("base_image given but no artifact store to open it")
            image = self._edit(request, store, outcome)
        else:
            image = self._generate(request, store, None, outcome)
        sim: dict[str, Any] = {"injected": outcome.injected, "fixed": outcome.fixed,
                               "addressed": addressed_failures(feedback_text(request)),
                               "attempt": attempt_number(request), "profile": self.options.profile,
                               "native_long_side": self.options.native_long_side,
                               "delivered": [image.width, image.height]}
        if outcome.details:
            sim["details"] = outcome.details
        return image, {"model": "simulated", "seed": request.seed, "simulated": sim}

    async def generate(self, request: GenerationRequest, store: Any) -> GenerationResult:
        """Render and degrade off the event loop; costs the configured estimate per image."""
        try:
            image, meta = await asyncio.to_thread(self.simulate, request, store)
        except BackendError:
            raise
        except (OSError, ValueError) as e:
            raise BackendError(f"simulated backend failed: {type(e).__name__}: {e}") from e
        return GenerationResult(image=image, cost=self.options.cost_per_image, meta=meta)


def _covered(alpha: np.ndarray, region: Box, share: float = 0.5) -> bool:
    """Whether at least `share` of a relative region lies inside the mask."""
    h, w = alpha.shape
    x0, y0, x1, y1 = region.to_pixels(w, h)
    part = alpha[max(0, y0):max(y0 + 1, y1), max(0, x0):max(x0 + 1, x1)]
    return part.size > 0 and float(part.mean()) >= share


def _open(store: Any, ref: Any, what: str) -> Image.Image:
    try:
        return store.open(ref)
    except (OSError, ValueError) as e:
        raise BackendError(f"cannot open {what} {ref.path}: {e}") from e
