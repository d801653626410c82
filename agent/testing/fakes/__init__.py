"""Loopback fake servers that speak the real image and LLM APIs, with faults on demand.

They render real images with the compose backend, so a pipeline (or pixloop itself) can be
tested end to end offline. `pixloop fake-server KIND --fault 429=2*1 --fault slow=0.5` starts one.
Adding a protocol is one module with `create_app(faults, **options) -> Starlette` and one line in FAKES.
"""

from __future__ import annotations

from agent.testing.fakes.base import Fault, FaultPlan, FakeServer, fake_render, serve

FAKES: dict[str, str] = {
    "gemini": "agent.testing.fakes.gemini:create_app",
    "openai": "agent.testing.fakes.openai:create_app",
    "comfyui": "agent.testing.fakes.comfyui:create_app",
    "a1111": "agent.testing.fakes.a1111:create_app",
    "chat": "agent.testing.fakes.chat:create_app",
}


def create_fake_app(kind: str, faults: FaultPlan | None = None, **options: object) -> object:
    """The ASGI app of the fake server for a protocol."""
    import importlib

    if kind not in FAKES:
        raise ValueError(f"unknown fake server {kind!r}; choose one of {', '.join(FAKES)}")
    module, _, attr = FAKES[kind].partition(":")
    return getattr(importlib.import_module(module), attr)(faults or FaultPlan(), **options)

__all__ = ["FAKES", "create_fake_app", "Fault", "FaultPlan", "FakeServer", "fake_render", "serve"]
