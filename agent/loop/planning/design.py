"""Designer defaults: the style a prompt's words ask for, legible text colours, and the layout of regions."""

from __future__ import annotations

import random
import re

from agent.loop.planning.reading import first_match
from agent.models import Box, Style

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
PALETTES: dict[str, tuple[str, ...]] = {name: tuple(colours) for name, colours in _PALETTES.items()}
"""The rule planner's named palettes (hex), read-only: a document names the one its first images are closest to."""
PALETTE_NAMES: tuple[str, ...] = tuple(sorted(_PALETTES))
"""Colour words the rule planner turns into a palette (a document's style sheet picks one for all its images)."""
_SUBTLE = r"\b(subtle|tone[- ]on[- ]tone|low[- ]contrast|muted|understated|faint)\b"
_SMALL = r"\b(small text|tiny text|fine print|discreet)\b"
_BUSY = r"\b(busy|grunge|noisy|chaotic)\b"


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


def style_for_prompt(prompt: str, seed: int, style: str = "") -> tuple[Style, list[str]]:
    """The style a prompt asks for; words in `style` (the brief's style words, e.g. a document's palette) take
    precedence over the prompt's own, so a red kite in one cue does not turn one page of a teal book red."""
    rng = random.Random(seed)
    notes = []
    palette_name = next((n for text in (style, prompt) for n in _PALETTES if re.search(rf"\b{n}\b", text, re.I)),
                        None)
    if palette_name is None:
        palette_name = rng.choice(sorted(_PALETTES))
        notes.append(f"palette '{palette_name}' chosen by seed")
    palette = list(_PALETTES[palette_name])
    background = first_match(style, _BACKGROUND_WORDS) or first_match(prompt, _BACKGROUND_WORDS) or "gradient"
    font = first_match(style, _FONT_WORDS) or first_match(prompt, _FONT_WORDS) or "lato-bold"
    prompt = f"{style} {prompt}"
    text_color = contrasting_text(palette)
    if re.search(_SUBTLE, prompt, re.I):
        text_color = _subtle_text(palette)
        notes.append("subtle text colour requested: legibility at risk")
    text_scale = 0.3 if re.search(_SMALL, prompt, re.I) else 0.7
    strength = 0.9 if re.search(_BUSY, prompt, re.I) else 0.5
    return Style(background=background, palette=palette, font=font, text_color=text_color,
                 text_scale=text_scale, texture_strength=strength), notes


def layout_regions(n_text: int, n_subjects: int, wide: bool) -> tuple[list[Box], list[Box]]:
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


__all__ = ["contrasting_text", "layout_regions", "style_for_prompt"]
