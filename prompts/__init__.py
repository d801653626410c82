"""Prompt templates as files, loaded with importlib.resources.

Templates use `string.Template` ($name) placeholders; `render` fails loudly when a
variable is missing, and tests check every template's variables.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from string import Template

VERSION = "1"


@lru_cache(maxsize=None)
def load(name: str) -> Template:
    """The template `prompts/<name>.txt`."""
    return Template(files("prompts").joinpath(f"{name}.txt").read_text(encoding="utf-8"))


def variables(name: str) -> set[str]:
    """The placeholder names a template uses."""
    return set(load(name).get_identifiers())


def render(name: str, **values: object) -> str:
    """Fill a template; a missing variable raises KeyError naming it."""
    return load(name).substitute({k: str(v) for k, v in values.items()}).strip()
