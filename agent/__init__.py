"""pixloop: self-checking image generation (plan -> generate -> check -> correct).

    from agent import generate
    result = generate('poster that says "GRAND OPENING"', out="out/poster")
    print(result.status, result.final_image)

Names are imported lazily so `import agent.state` (used by the critics) never pulls in
the graph and the registries.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
_EXPORTS = {
    "BriefError": "agent.api", "RunResult": "agent.api", "agenerate": "agent.api", "aresume": "agent.api",
    "generate": "agent.api", "make_brief": "agent.api", "resume": "agent.api",
    "PixloopConfig": "agent.config", "Brief": "agent.state", "Budget": "agent.state", "Plan": "agent.state",
    "check_image": "agent.check",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
