"""Planners turn a Brief into a Plan. `RulePlanner` is the offline default.

RulePlanner reads the prompt like a designer would: quoted strings are required text,
ratio and size words set the canvas, style words set fonts, palette and background, and
reference images become subjects placed by a layout that leaves room for the text.
"""

from __future__ import annotations

import random
import re
from typing import Protocol

from critics import checks_for
from prompts import render
from agent.state import (
    ASPECT_RATIOS, Box, Brief, CheckSpec, ImageRef, Plan, Style, Subject, TextElement, canvas_size,
)

_QUOTES = [
    r'"([^"\n]+)"', r"“([^”\n]+)”", r"«([^»\n]+)»", r"„([^“\n]+)“", r"‘([^’\n]+)’",
    r"(?<![\w'])'([^'\n]+)'(?![\w'])",
]
_RATIO_WORDS = [
    (r"\b(square|instagram post|avatar|profile picture)\b", "1:1"),
    (r"\b(ultra[- ]?wide|cinematic|cinemascope|21 ?: ?9)\b", "21:9"),
    (r"\b(wide ?screen|youtube|thumbnail|banner|widescreen|landscape video|desktop wallpaper)\b", "16:9"),
    (r"\b(story|stories|reel|vertical video|phone wallpaper|tiktok)\b", "9:16"),
    (r"\b(instagram portrait|4x5)\b", "4:5"),
    (r"\b(portrait|poster|flyer|book cover)\b", "2:3"),
    (r"\b(landscape|postcard)\b", "3:2"),
]
_SIZE_WORDS = [
    (r"\b(4 ?k|uhd|ultra hd|2160p)\b", "4K"),
    (r"\b(2 ?k|1440p|qhd|high[- ]res(olution)?)\b", "2K"),
    (r"\b(1 ?k|1024)\b", "1K"),
]
_FONT_WORDS = [
    (r"\bhairline\b", "lato-hairline"),
    (r"\b(thin|delicate|elegant|fine)\b", "lato-thin"),
    (r"\b(light|airy)\b", "lato-light"),
    (r"\b(serif|classic|vintage|editorial|retro)\b", "serif-bold"),
    (r"\b(bold|loud|impact|heavy|punchy|sale)\b", "lato-black"),
]
_BACKGROUND_WORDS = [
    (r"\b(texture[d]?|grunge|noisy|busy|pattern(ed)?|abstract|marble|paper)\b", "texture"),
    (r"\b(minimal(ist)?|flat|clean|solid)\b", "solid"),
    (r"\b(gradient|sunset|sky|glow)\b", "gradient"),
]
_PALETTES = {
    "red": ["#7a1010", "#d23b2a", "#ffd166"], "blue": ["#0b2545", "#13315c", "#8da9c4"],
    "green": ["#0b3d20", "#2d6a4f", "#b7e4c7"], "gold": ["#2b1d0e", "#7f5539", "#e6b450"],
    "pink": ["#5a1846", "#c44d8c", "#ffd6e8"], "purple": ["#240046", "#5a189a", "#e0aaff"],
    "orange": ["#6b2c00", "#e85d04", "#ffe8a3"], "black": ["#0d0d0d", "#2b2b2b", "#e0e0e0"],
    "white": ["#f5f5f0", "#dcdcd2", "#1f1f1f"], "pastel": ["#fde2e4", "#cddafd", "#3d405b"],
    "neon": ["#0a0a23", "#3a0ca3", "#f72585"], "coffee": ["#3e2723", "#795548", "#ffe0b2"],
    "teal": ["#003d3d", "#0f7173", "#f2e8cf"],
}
_SUBTLE = r"\b(subtle|tone[- ]on[- ]tone|low[- ]contrast|muted|understated|faint)\b"
_SMALL = r"\b(small text|tiny text|fine print|discreet)\b"
_BUSY = r"\b(busy|grunge|noisy|chaotic)\b"


class PlanningError(ValueError):
    """The brief cannot be planned; the message says why."""


class Planner(Protocol):
    name: str

    def plan(self, brief: Brief, references: list[ImageRef], store: object) -> Plan:
        """Make a Plan; references are the brief's images already in the artifact store."""
        ...


def extract_quoted(prompt: str) -> list[str]:
    """Strings the user quoted, in prompt order, without duplicates."""
    found: list[tuple[int, str]] = []
    for pattern in _QUOTES:
        found += [(m.start(), m.group(1).strip()) for m in re.finditer(pattern, prompt)]
    out: list[str] = []
    for _, text in sorted(found):
        if text and text not in out:
            out.append(text)
    return out


def _first_match(text: str, table: list[tuple[str, str]]) -> str | None:
    for pattern, value in table:
        if re.search(pattern, text, flags=re.IGNORECASE):
            return value
    return None


def detect_aspect(prompt: str) -> str | None:
    """An aspect ratio named in the prompt ('16:9', 'portrait'), or None."""
    for m in re.finditer(r"\b(\d{1,2})\s*[:x×]\s*(\d{1,2})\b", prompt):
        ratio = f"{int(m.group(1))}:{int(m.group(2))}"
        if ratio in ASPECT_RATIOS:
            return ratio
    return _first_match(prompt, _RATIO_WORDS)


def detect_size(prompt: str) -> str | None:
    return _first_match(prompt, _SIZE_WORDS)


def _luminance(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrasting_text(palette: list[str]) -> str:
    """Near-white on dark backgrounds, near-black on light ones."""
    mean = sum(_luminance(c) for c in palette[:2]) / 2
    return "#ffffff" if mean < 0.55 else "#111111"


def _subtle_text(palette: list[str]) -> str:
    """A text colour close to the background: the 'tone-on-tone' look that hurts legibility."""
    r, g, b = (int(palette[0][i:i + 2], 16) for i in (1, 3, 5))
    shift = 28 if _luminance(palette[0]) < 0.5 else -28
    return "#{:02x}{:02x}{:02x}".format(*(max(0, min(255, c + shift)) for c in (r, g, b)))


def _style(prompt: str, seed: int) -> tuple[Style, list[str]]:
    rng = random.Random(seed)
    notes = []
    palette_name = next((n for n in _PALETTES if re.search(rf"\b{n}\b", prompt, re.I)), None)
    if palette_name is None:
        palette_name = rng.choice(sorted(_PALETTES))
        notes.append(f"palette '{palette_name}' chosen by seed")
    palette = list(_PALETTES[palette_name])
    background = _first_match(prompt, _BACKGROUND_WORDS) or "gradient"
    font = _first_match(prompt, _FONT_WORDS) or "lato-bold"
    text_color = contrasting_text(palette)
    if re.search(_SUBTLE, prompt, re.I):
        text_color = _subtle_text(palette)
        notes.append("subtle text colour requested: legibility at risk")
    text_scale = 0.3 if re.search(_SMALL, prompt, re.I) else 0.7
    strength = 0.9 if re.search(_BUSY, prompt, re.I) else 0.5
    return Style(background=background, palette=palette, font=font, text_color=text_color,
                 text_scale=text_scale, texture_strength=strength), notes


def _layout(n_text: int, n_subjects: int, wide: bool) -> tuple[list[Box], list[Box]]:
    """Regions for text elements and subjects; wide canvases put text left, subjects right."""
    if n_subjects and wide:
        text_area, subj_area = (0.05, 0.08, 0.5, 0.84), (0.58, 0.08, 0.37, 0.84)
    elif n_subjects:
        text_area, subj_area = (0.06, 0.04, 0.88, 0.34), (0.1, 0.40, 0.8, 0.56)
        if n_text > 2:
            subj_area = (0.1, 0.40, 0.8, 0.44)
    else:
        text_area, subj_area = (0.07, 0.2, 0.86, 0.6), (0, 0, 0, 0)
    text_boxes: list[Box] = []
    if n_text:
        x, y, w, h = text_area
        weights = [3.0, 1.6] + [1.0] * (n_text - 2) if n_text > 1 else [1.0]
        weights = weights[:n_text]
        total = sum(weights)
        cursor = y
        for wt in weights:
            hh = h * wt / total
            text_boxes.append(Box(x=x, y=cursor, w=w, h=hh * 0.92))
            cursor += hh
        if n_subjects and not wide and n_text > 2:
            # body/cta lines go under the subjects
            for i in range(2, n_text):
                text_boxes[i] = Box(x=0.1, y=0.86 + 0.1 * (i - 2) / max(1, n_text - 2), w=0.8,
                                    h=0.1 / max(1, n_text - 2) * 0.9)
            text_boxes[0] = Box(x=x, y=y, w=w, h=h * 0.6)
            text_boxes[1] = Box(x=x, y=y + h * 0.62, w=w, h=h * 0.34)
    subject_boxes: list[Box] = []
    if n_subjects:
        x, y, w, h = subj_area
        each = w / n_subjects
        subject_boxes = [Box(x=x + i * each + each * 0.03, y=y, w=each * 0.94, h=h) for i in range(n_subjects)]
    return text_boxes, subject_boxes


_ROLES = ["headline", "subheading", "body", "cta"]


def _looks_like_person(store: object, ref: ImageRef) -> bool:
    import cv2
    import numpy as np

    img = store.open(ref).convert("L")  # type: ignore[attr-defined]
    img.thumbnail((640, 640))
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(np.asarray(img), scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    return len(faces) > 0


class RulePlanner:
    """Offline planner: deterministic for a brief and seed, no model needed."""

    name = "rule"

    def plan(self, brief: Brief, references: list[ImageRef], store: object) -> Plan:
        prompt = brief.prompt
        texts = list(brief.required_text)
        for q in extract_quoted(prompt):
            if q not in texts:
                texts.append(q)
        aspect = brief.aspect_ratio or detect_aspect(prompt) or "1:1"
        size = brief.size or detect_size(prompt) or "1K"
        width, height = canvas_size(aspect, size)
        style, notes = _style(prompt, brief.seed)
        wide = width / height >= 1.7
        kinds = ["person" if _looks_like_person(store, r) else "product" for r in references]
        text_boxes, subject_boxes = _layout(len(texts), len(references), wide)
        elements = [
            TextElement(id=_ROLES[i] if i < 2 else f"line{i + 1}", content=t,
                        role=_ROLES[min(i, 3)] if i < 3 else "body", region=text_boxes[i])
            for i, t in enumerate(texts)
        ]
        subjects = [
            Subject(id=f"{k}{i + 1}", kind=k, reference=r, region=subject_boxes[i])  # type: ignore[arg-type]
            for i, (k, r) in enumerate(zip(kinds, references))
        ]
        notes = [f"canvas {aspect} {size} ({width}x{height})"] + notes
        if texts:
            notes.append("required text: " + "; ".join(repr(t) for t in texts))
        plan = Plan(prompt=prompt, width=width, height=height, aspect_ratio=aspect, size=size,
                    text=elements, subjects=subjects, style=style,
                    negative=["misspelled text", "extra text", "watermark", "distorted faces"],
                    notes=notes)
        plan.checks = checks_for(plan, brief.thresholds)
        return plan


def generation_prompt(plan: Plan) -> str:
    """The text prompt a model backend receives for a plan."""
    text_block = ""
    if plan.text:
        lines = [f'- {e.role} at {e.region.describe()}: "{e.content}"' for e in plan.text]
        text_block = "The image must contain exactly this text, spelled exactly as written:\n" + "\n".join(lines)
    subject_block = ""
    if plan.subjects:
        subject_block = "\n".join(
            f"- keep the {s.kind} from reference image {i + 1} recognisable, placed at {s.region.describe()}"
            for i, s in enumerate(plan.subjects))
    return render("generation", prompt=plan.prompt, aspect_ratio=plan.aspect_ratio, width=plan.width,
                  height=plan.height, text_block=text_block, subject_block=subject_block,
                  negative=", ".join(plan.negative) or "nothing in particular")


PLANNERS: dict[str, type | str] = {"rule": RulePlanner, "llm": "agent.llm_planner:LLMPlanner"}


def get_planner(name: str, config: object | None = None) -> Planner:
    """The planner for a name; planners with `from_config` get the run configuration."""
    import importlib

    try:
        cls = PLANNERS[name]
    except KeyError:
        raise PlanningError(f"unknown planner {name!r}; known planners: {', '.join(sorted(PLANNERS))}") from None
    if isinstance(cls, str):
        module, _, attr = cls.partition(":")
        cls = getattr(importlib.import_module(module), attr)
    return cls.from_config(config) if config is not None and hasattr(cls, "from_config") else cls()
