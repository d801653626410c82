"""Prompt templates as files, loaded with importlib.resources.

Templates use `string.Template` ($name) placeholders; `render` fails loudly when a
variable is missing, and tests check every template's variables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from string import Template

_OVERRIDES: dict[str, str] = {}
"""Template texts that replace their files while an `override` block runs (tests only)."""


@cache
def load(name: str) -> Template:
    """The template `prompts/<name>.txt` (or its text from an active `override`)."""
    if name in _OVERRIDES:
        return Template(_OVERRIDES[name])
    return Template(files("prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8"))


def clear_cache() -> None:
    """Forget loaded templates and their parse patterns, so the next use reads them again."""
    load.cache_clear()
    _pattern.cache_clear()


@contextmanager
def override(name: str, text: str) -> Iterator[None]:
    """Use `text` as template `name` inside the block: tests reword a template to show nothing depends on its
    wording. The new text must use exactly the template's variables (ValueError otherwise)."""
    wanted, got = variables(name), set(Template(text).get_identifiers())
    if got != wanted:
        raise ValueError(f"override of {name!r} must use the variables {sorted(wanted)}, not {sorted(got)}")
    previous = _OVERRIDES.get(name)
    _OVERRIDES[name] = text
    clear_cache()
    try:
        yield
    finally:
        if previous is None:
            _OVERRIDES.pop(name, None)
        else:
            _OVERRIDES[name] = previous
        clear_cache()


def variables(name: str) -> set[str]:
    """The placeholder names a template uses."""
    return set(load(name).get_identifiers())


def render(name: str, **values: object) -> str:
    """Fill a template; a missing variable raises KeyError naming it."""
    return load(name).substitute({k: str(v) for k, v in values.items()}).strip()


@cache
def _pattern(name: str) -> re.Pattern[str]:
    """A regex that recovers a template's variables from text rendered with it."""
    template = load(name).template.strip()
    out, pos, seen = [], 0, set()
    for m in Template.pattern.finditer(template):
        out.append(re.escape(template[pos:m.start()]))
        var = m.group("named") or m.group("braced")
        if var is None:  # "$$" (a literal dollar) or an invalid placeholder
            out.append(re.escape(m.group(0).replace("$$", "$")))
        elif var in seen:
            out.append(f"(?P={var})")
        else:
            seen.add(var)
            last = m.end() == len(template)  # a variable that ends the template takes the rest of the text
            out.append(f"(?P<{var}>.*)" if last else f"(?P<{var}>.*?)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out), re.DOTALL)


def parse(name: str, text: str) -> dict[str, str] | None:
    """The variables of template `name` in `text` rendered with it (None when `text` is not such a text).

    Test doubles read what pixloop asked through this, so rewording a template can never make them
    misread a prompt: they read it through the same template."""
    m = _pattern(name).search(text.strip())
    return m.groupdict() if m else None
