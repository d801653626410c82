"""Image backends behind one Protocol (`agent.backends.base.ImageBackend`), found by name.

Built-ins are import paths, so optional backends (diffusers) cost nothing until used; third-party
packages add a backend with an entry point in the group `pixloop.backends` whose value is a class
with `from_config(config)` (or a factory taking the config). Instances are created once per process
per (name, base_url, model, options).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agent.backends.base import (
    BackendOptions,
    Capabilities,
    Correction,
    GenerationRequest,
    GenerationResult,
    ImageBackend,
    parse_options,
)
from agent.models.errors import BackendError, UnknownBackendError
from agent.runtime.registry import Registry

BACKENDS: Registry[ImageBackend] = Registry(
    "backend", group="pixloop.backends", error=UnknownBackendError,
    unavailable_hint=lambda name: f"install its extra, e.g. pip install 'pixloop[{name}]'",
    builtins={
        "compose": "agent.backends.compose:ComposeBackend",
        "gemini": "agent.backends.gemini:GeminiBackend",
        "openai": "agent.backends.openai:OpenAIBackend",
        "comfyui": "agent.backends.comfyui:ComfyUIBackend",
        "a1111": "agent.backends.a1111:A1111Backend",
        "diffusers": "agent.backends.diffusers:DiffusersBackend",
        "simulated": "agent.testing.simulated:SimulatedBackend",
    })
"""Adding a built-in backend is one module and one line here; a plugin adds an entry point instead."""


def backend_names() -> list[str]:
    return BACKENDS.names()


def register_backend(name: str, factory: Callable[[Any], ImageBackend]) -> None:
    """Register a backend factory for this process (tests, notebooks); it takes a PixloopConfig."""
    BACKENDS.register(name, factory)


def unregister_backend(name: str) -> None:
    BACKENDS.unregister(name)


def _make(factory: Any, config: Any) -> ImageBackend:
    make = getattr(factory, "from_config", factory)
    return make(config)


def get_backend(name: str, config: Any = None) -> ImageBackend:
    """The backend instance for a name and config, created once per process."""
    options = json.dumps(getattr(config, "options", None) or {}, sort_keys=True, default=str)
    key = (getattr(config, "base_url", None), getattr(config, "model", None), options)
    return BACKENDS.instance(name, lambda factory: _make(factory, config), key=key)


__all__ = [
    "BACKENDS", "BackendError", "BackendOptions", "Capabilities", "Correction", "GenerationRequest",
    "GenerationResult", "ImageBackend", "UnknownBackendError", "backend_names", "get_backend", "parse_options",
    "register_backend", "unregister_backend",
]
