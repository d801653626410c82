"""Loopback fake servers that speak the real image and LLM APIs, with faults on demand.

They render real images with the compose backend, so a pipeline (or pixloop itself) can be
tested end to end offline. `pixloop fake-server KIND --fault 429=2*1 --fault slow=0.5` starts one.
Adding a protocol is one module with `create_app(faults, **options) -> Starlette` and one line in FAKES.
"""

from __future__ import annotations

from agent.fakes.base import Fault, FaultPlan, FakeServer, fake_render, serve

FAKES: dict[str, str] = {}

__all__ = ["FAKES", "Fault", "FaultPlan", "FakeServer", "fake_render", "serve"]
