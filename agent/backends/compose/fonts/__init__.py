"""Font registry for the compose backend: short keys for the bundled OFL fonts.

Plans name fonts by key ("lato-bold", "serif-regular"), never by path, so the corrector
can step a font heavier without knowing where the files live. Fonts are located with
importlib.resources, so they work from a source checkout and from an installed wheel.
"""

from __future__ import annotations

import threading
from functools import cache, lru_cache
from importlib.resources import as_file, files
from pathlib import Path

from PIL import ImageFont

from agent.models.errors import ConfigError

FONTS: dict[str, str] = {
    "lato-hairline": "Lato-Hairline.ttf",
    "lato-thin": "Lato-Thin.ttf",
    "lato-light": "Lato-Light.ttf",
    "lato-regular": "Lato-Regular.ttf",
    "lato-bold": "Lato-Bold.ttf",
    "lato-black": "Lato-Black.ttf",
    "serif-regular": "LiberationSerif-Regular.ttf",
    "serif-bold": "LiberationSerif-Bold.ttf",
}
"""Font key -> TTF file name inside agent/backends/compose/fonts/."""

WEIGHT_ORDER: tuple[str, ...] = (
    "lato-hairline", "lato-thin", "lato-light", "lato-regular", "lato-bold", "lato-black",
)
"""Sans keys from thinnest to heaviest."""

SERIF_WEIGHT_ORDER: tuple[str, ...] = ("serif-regular", "serif-bold")
"""Serif keys from thinnest to heaviest."""

FONT_LOCK = threading.RLock()
"""Held while rendering with cached fonts: a FreeType face must not be used by two threads at once."""

_MISSING_PROBE = "\uffff"


def _check_key(key: str) -> str:
    if key not in FONTS:
        raise ConfigError(f"unknown font {key!r}; known fonts: {', '.join(FONTS)}")
    return key


@cache
def font_path(key: str) -> Path:
    """Filesystem path of the TTF for a font key; ValueError lists the known keys."""
    resource = files("agent.backends.compose.fonts") / FONTS[_check_key(key)]
    with as_file(resource) as p:
        path = Path(p)
    if not path.is_file():
        raise ValueError(f"font file for {key!r} is missing: {path}")
    return path


@lru_cache(maxsize=512)
def load_font(key: str, size: int) -> ImageFont.FreeTypeFont:
    """A loaded font at a pixel size, cached so binary searches over sizes stay cheap."""
    if size < 1:
        raise ValueError(f"font size must be at least 1 px, got {size}")
    return ImageFont.truetype(str(font_path(key)), int(size))


def heavier(key: str, steps: int = 1) -> str:
    """The key `steps` weights heavier in the same family; the heaviest stays as it is."""
    _check_key(key)
    order = WEIGHT_ORDER if key in WEIGHT_ORDER else SERIF_WEIGHT_ORDER
    i = order.index(key) + max(0, steps)
    return order[min(i, len(order) - 1)]


def _glyph_signature(font: ImageFont.FreeTypeFont, ch: str) -> tuple[object, ...]:
    mask = font.getmask(ch)
    return (mask.size, font.getbbox(ch), bytes(mask))


@lru_cache(maxsize=4096)
def _is_missing(key: str, ch: str) -> bool:
    with FONT_LOCK:
        font = load_font(key, 32)
        return _glyph_signature(font, ch) == _glyph_signature(font, _MISSING_PROBE)


def missing_glyphs(key: str, text: str) -> list[str]:
    """Characters of `text` the font has no glyph for (they render as .notdef boxes), in order, once each."""
    _check_key(key)
    out: list[str] = []
    for ch in dict.fromkeys(text):
        if ch.isspace():
            continue
        if ch == _MISSING_PROBE or _is_missing(key, ch):
            out.append(ch)
    return out
