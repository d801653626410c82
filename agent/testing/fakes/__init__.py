"""Loopback fake servers that speak the real image and LLM APIs, with faults on demand.

They render real images with the compose backend from what they receive (`editing`): an edit with a
mask changes only the pixels the API's own mask convention marks, reference images are placed in the
picture, so a pipeline (or pixloop itself) can be tested end to end offline, mask conversions included.
`pixloop fake-server KIND --fault 429=2*1 --fault slow=0.5` starts one.
Adding a protocol is one module with `create_app(faults, **options) -> Starlette` and one line in FAKES.

The servers need the `fakes` extra (starlette, uvicorn, python-multipart); importing this package does
not, so `fake_render`, the fault vocabulary and `require_web_dependencies` work without it.
"""

from __future__ import annotations

import importlib

from agent.testing.fakes.base import FakeServer, FakeService, Fault, FaultPlan, fake_render, serve

FAKES: dict[str, str] = {
    "gemini": "agent.testing.fakes.gemini:create_app",
    "openai": "agent.testing.fakes.openai:create_app",
    "comfyui": "agent.testing.fakes.comfyui:create_app",
    "a1111": "agent.testing.fakes.a1111:create_app",
    "chat": "agent.testing.fakes.chat:create_app",
}

INSTALL_HINT = "pip install 'pixloop[fakes]'"
"""How to get the fake servers' web dependencies."""

WEB_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "starlette": ("starlette",),
    "uvicorn": ("uvicorn",),
    "python-multipart": ("python_multipart", "multipart"),
}
"""Each web dependency of the fakes (its distribution name) and the module names it can be imported as."""


def missing_web_dependencies() -> list[str]:
    """The distributions of the `fakes` extra that cannot be imported here."""
    missing = []
    for dist, modules in WEB_DEPENDENCIES.items():
        for module in modules:
            try:
                importlib.import_module(module)
                break
            except ImportError:
                continue
        else:
            missing.append(dist)
    return missing


def require_web_dependencies() -> None:
    """Raise ImportError naming the `fakes` extra when a web dependency of the fake servers is missing."""
    missing = missing_web_dependencies()
    if missing:
        raise ImportError(f"the fake servers need {', '.join(missing)}, from the 'fakes' extra: {INSTALL_HINT}")


def create_fake_app(kind: str, faults: FaultPlan | None = None, **options: object) -> object:
    """The ASGI app of the fake server for a protocol (ImportError naming the extra without its dependencies)."""
    if kind not in FAKES:
        raise ValueError(f"unknown fake server {kind!r}; choose one of {', '.join(FAKES)}")
    require_web_dependencies()
    module, _, attr = FAKES[kind].partition(":")
    return getattr(importlib.import_module(module), attr)(faults or FaultPlan(), **options)


__all__ = ["FAKES", "INSTALL_HINT", "WEB_DEPENDENCIES", "Fault", "FaultPlan", "FakeServer", "FakeService", "create_fake_app",
           "fake_render", "missing_web_dependencies", "require_web_dependencies", "serve"]
