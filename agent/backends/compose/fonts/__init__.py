"""Font registry for the compose backend: short keys for the bundled OFL fonts, and fallback fonts for
scripts they do not cover.

Plans name fonts by key ("lato-bold", "serif-regular"), never by path, so the corrector
can step a font heavier without knowing where the files live. Fonts are located with
importlib.resources, so they work from a source checkout and from an installed wheel.

The bundled Lato and Liberation Serif cover Latin, Greek and Cyrillic only. A text element with characters
the plan's font lacks is set, whole, in the first font on the search path that has every one of its
characters (``face_for``): the fonts of the installed font packages (``FONT_PACKAGES``: Noto Sans CJK from
the ``manimgx-fonts-cjk`` dependency, variable weight, so a bold plan stays bold), then the system font
folders. ``PIXLOOP_FONT_PATH`` (folders separated by ``os.pathsep``) replaces that search path. When no
font has the characters, ``MissingFontError`` names the script and how to install a font: compose never
renders .notdef boxes ("tofu").
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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


# --------------------------------------------------------------------------- fallback fonts

FONT_PATH_ENV = "PIXLOOP_FONT_PATH"
"""Folders (``os.pathsep``-separated) searched for fallback fonts instead of the defaults."""
FONT_PACKAGES: tuple[str, ...] = ("manimgx_fonts_cjk",)
"""Python packages whose folder holds fallback fonts, searched first (``manimgx-fonts-cjk``: Noto Sans CJK)."""
SYSTEM_FONT_DIRS: tuple[str, ...] = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
MAX_FACES_PER_FILE = 16

WEIGHTS: dict[str, int] = {
    "lato-hairline": 100, "lato-thin": 100, "lato-light": 300, "lato-regular": 400, "lato-bold": 700,
    "lato-black": 900, "serif-regular": 400, "serif-bold": 700,
}
"""CSS weight of each key: a variable fallback font is set at the plan font's weight."""

_LOCALE_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("HANGUL",), "KR"), (("HIRAGANA", "KATAKANA", "HALFWIDTH KATAKANA"), "JP"), (("CJK",), "SC"),
)
"""Which regional face of a pan-CJK collection to prefer: Hangul -> KR, kana -> JP, other Han -> SC."""


class MissingFontError(ConfigError):
    """No installed font has glyphs for some characters of a text element."""


@dataclass(frozen=True)
class Face:
    """One face of a font file: the file, its index in a collection, the weight a variable font is set at."""

    path: str
    index: int = 0
    weight: int | None = None
    name: str = ""
    """Family and style, e.g. 'Noto Sans CJK SC Thin' (a variable font's default instance) or a font key."""


def font_search_path() -> list[Path]:
    """Where fallback fonts are looked for, in order (``PIXLOOP_FONT_PATH`` replaces the defaults)."""
    env = os.environ.get(FONT_PATH_ENV)
    if env is not None:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    dirs: list[Path] = []
    for package in FONT_PACKAGES:
        try:
            resource = files(package)
        except ModuleNotFoundError:
            continue
        with as_file(resource) as p:
            dirs.append(Path(p))
    dirs.extend(Path(d).expanduser() for d in SYSTEM_FONT_DIRS)
    return [d for d in dirs if d.is_dir()]


def _font_files(dirs: Sequence[Path]) -> Iterator[Path]:
    """Font files under `dirs` (recursively), folder by folder in search order, sorted within a folder."""
    for d in dirs:
        yield from sorted(p for p in d.rglob("*") if p.suffix.lower() in FONT_SUFFIXES and p.is_file())


@lru_cache(maxsize=1024)
def _faces_of(path: Path) -> tuple[Face, ...]:
    """Every face of one font file (a collection has several), named 'Family Style'."""
    faces: list[Face] = []
    for index in range(MAX_FACES_PER_FILE):
        try:
            font = ImageFont.truetype(str(path), 32, index=index)
        except OSError:
            break
        family, style = font.getname()
        faces.append(Face(str(path), index, None, f"{family or path.stem} {style or ''}".strip()))
        if path.suffix.lower() not in (".ttc", ".otc"):
            break
    return tuple(faces)


@lru_cache(maxsize=512)
def load_face(face: Face, size: int) -> ImageFont.FreeTypeFont:
    """A face loaded at a pixel size (a variable font set at ``face.weight``), cached."""
    if size < 1:
        raise ValueError(f"font size must be at least 1 px, got {size}")
    font = ImageFont.truetype(face.path, int(size), index=face.index)
    if face.weight is not None:
        try:
            axes = font.get_variation_axes()
        except OSError:  # not a variable font
            axes = []
        if axes:
            values: list[float] = []
            for a in axes:
                want = face.weight if bytes(a.get("name") or b"").lower() == b"weight" else a.get("default")
                lo, hi = float(a.get("minimum") or 0), float(a.get("maximum") or 0)
                values.append(min(max(float(want if want is not None else lo), lo), hi))
            font.set_variation_by_axes(values)
    return font


@lru_cache(maxsize=8192)
def _face_lacks(face: Face, ch: str) -> bool:
    with FONT_LOCK:
        font = load_face(Face(face.path, face.index), 32)
        return _glyph_signature(font, ch) == _glyph_signature(font, _MISSING_PROBE)


def script_of(ch: str) -> str:
    """A readable script name for a character, from its Unicode name ('CJK', 'HIRAGANA', 'ARABIC', ...)."""
    name = unicodedata.name(ch, "")
    if not name:
        return f"U+{ord(ch):04X}"
    for prefix in ("CJK", "HALFWIDTH KATAKANA", "HANGUL", "HIRAGANA", "KATAKANA"):
        if name.startswith(prefix):
            return {"CJK": "Han (CJK)", "HALFWIDTH KATAKANA": "Katakana"}.get(prefix, prefix.title())
    return name.split(" ")[0].title()


def _preferred_locale(chars: Sequence[str]) -> str | None:
    names = [unicodedata.name(ch, "") for ch in chars]
    for prefixes, tag in _LOCALE_HINTS:
        if any(n.startswith(prefixes) for n in names):
            return tag
    return None


def face_for(key: str, text: str) -> Face:
    """The face to set `text` in: the key's bundled font when it has every glyph, else the first fallback face
    (the script's regional face of a pan-CJK collection first) that has them all, at the key's weight.

    Raises MissingFontError naming the script(s) and how to install a font when no installed font has them.
    """
    missing = missing_glyphs(key, text)
    if not missing:
        return Face(str(font_path(key)), 0, None, key)
    return _fallback(key, text, tuple(missing), tuple(font_search_path()))


@lru_cache(maxsize=1024)
def _fallback(key: str, text: str, missing: tuple[str, ...], dirs: tuple[Path, ...]) -> Face:
    needed = [ch for ch in dict.fromkeys(text) if not ch.isspace()]
    locale = _preferred_locale(missing)
    for path in _font_files(dirs):
        faces = _faces_of(path)
        if locale is not None:
            faces = tuple(sorted(faces, key=lambda f: f" {locale}" not in f.name))
        for face in faces:
            if not any(_face_lacks(face, ch) for ch in needed):
                return Face(face.path, face.index, WEIGHTS.get(key), face.name)
    scripts = ", ".join(dict.fromkeys(script_of(ch) for ch in missing))
    sample = "".join(missing[:8])
    searched = os.pathsep.join(str(d) for d in dirs) or "(nothing)"
    cjk = any(unicodedata.name(ch, "").startswith(("CJK", "HANGUL", "HIRAGANA", "KATAKANA", "HALFWIDTH"))
              for ch in missing)
    how = ("`pip install manimgx-fonts-cjk` (Noto Sans CJK, a pixloop dependency) or `apt-get install fonts-noto-cjk`"
           if cjk else "a Noto font for the script, e.g. `apt-get install fonts-noto-core` (Debian)")
    raise MissingFontError(
        f"no installed font has glyphs for {scripts} text ({sample!r} in {text!r}), so compose cannot render it "
        f"without .notdef boxes; install a font that covers it: {how}, or put a .ttf/.otf/.ttc that covers it in a "
        f"folder on {FONT_PATH_ENV} (searched: {searched})")
