"""Image backend registry: adding a backend is one new module and one line in BACKENDS.

Entries are import paths so optional backends (diffusers) cost nothing until used.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Callable

from agent.backends.base import (
    BackendError,
    Capabilities,
    GenerationRequest,
    GenerationResult,
    ImageBackend,
    UnknownBackendError,
)

BACKENDS: dict[str, str] = {
    "compose": "agent.backends.compose:ComposeBackend",
    "gemini": "agent.backends.gemini:GeminiBackend",
    "openai": "agent.backends.openai:OpenAIBackend",
    "comfyui": "agent.backends.comfyui:ComfyUIBackend",
    "a1111": "agent.backends.a1111:A1111Backend",
    "diffusers": "agent.backends.diffusers:DiffusersBackend",
    "simulated": "agent.backends.simulated:SimulatedBackend",
}

_extra: dict[str, Callable[[Any], ImageBackend]] = {}
_cache: dict[tuple, ImageBackend] = {}
_lock = threading.Lock()


def backend_names() -> list[str]:
    return sorted({*BACKENDS, *_extra})


def register_backend(name: str, factory: Callable[[Any], ImageBackend]) -> None:
    """Register a backend factory at run time (plugins, tests); it takes a PixloopConfig."""
    with _lock:
        _extra[name] = factory
        for key in [k for k in _cache if k[0] == name]:
            del _cache[key]


def unregister_backend(name: str) -> None:
    with _lock:
        _extra.pop(name, None)
        for key in [k for k in _cache if k[0] == name]:
            del _cache[key]


def _factory(name: str) -> Callable[[Any], ImageBackend]:
    if name in _extra:
        return _extra[name]
    if name not in BACKENDS:
        raise UnknownBackendError(f"unknown backend {name!r}; known backends: {', '.join(backend_names())}")
    module, _, attr = BACKENDS[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except ImportError as e:
        raise UnknownBackendError(f"backend {name!r} is not available here: {e} "
                                  f"(install its extra, e.g. pip install 'pixloop[{name}]')") from None
    return cls.from_config


def get_backend(name: str, config: Any = None) -> ImageBackend:
    """The backend instance for a name and config, created once per process."""
    import json

    options = json.dumps(getattr(config, "options", None) or {}, sort_keys=True, default=str)
    key = (name, getattr(config, "base_url", None), getattr(config, "model", None), options)
    with _lock:
        if key not in _cache:
            _cache[key] = _factory(name)(config)
        return _cache[key]


__all__ = [
    "BACKENDS", "BackendError", "Capabilities", "GenerationRequest", "GenerationResult",
    "ImageBackend", "UnknownBackendError", "backend_names", "get_backend", "register_backend",
    "unregister_backend",
]
