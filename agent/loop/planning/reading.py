"""Reading a prompt like a designer: quoted strings are required text, ratio and size words set the canvas."""

from __future__ import annotations

import re

from agent.models import ASPECT_RATIOS

QUOTE_PATTERNS = [
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


def extract_quoted(prompt: str) -> list[str]:
    """Strings the user quoted, in prompt order, without duplicates."""
    found: list[tuple[int, str]] = []
    for pattern in QUOTE_PATTERNS:
        found += [(m.start(), m.group(1).strip()) for m in re.finditer(pattern, prompt)]
    out: list[str] = []
    for _, text in sorted(found):
        if text and text not in out:
            out.append(text)
    return out


def first_match(text: str, table: list[tuple[str, str]]) -> str | None:
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
    return first_match(prompt, _RATIO_WORDS)


def detect_size(prompt: str) -> str | None:
    return first_match(prompt, _SIZE_WORDS)


__all__ = ["detect_aspect", "detect_size", "extract_quoted", "first_match"]
