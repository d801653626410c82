"""pixloop: self-checking image generation (plan -> generate -> check -> correct).

    from agent import generate
    result = generate('poster that says "GRAND OPENING"', out="out/poster")
    print(result.status, result.final_image)

This module is the public surface (pinned by tests/unit/test_public_api.py). Names are imported
lazily, so `import agent.models` (used by every layer) never pulls in the graph and the registries.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
_EXPORTS = {
    # library API
    "RunResult": "agent.interfaces.api", "agenerate": "agent.interfaces.api", "aresume": "agent.interfaces.api",
    "generate": "agent.interfaces.api", "edit": "agent.interfaces.api", "aedit": "agent.interfaces.api",
    "make_brief": "agent.interfaces.api", "resume": "agent.interfaces.api",
    "check_image": "agent.interfaces.image_check", "CheckResult": "agent.interfaces.image_check",
    "story": "agent.interfaces.story", "astory": "agent.interfaces.story", "astream_story": "agent.interfaces.story",
    "aresume_story": "agent.interfaces.story", "StoryResult": "agent.interfaces.story",
    "astream_run": "agent.interfaces.run_stream",
    # models
    "PixloopConfig": "agent.models", "Brief": "agent.models", "Budget": "agent.models", "Plan": "agent.models",
    "Candidate": "agent.models", "Verdict": "agent.models", "Action": "agent.models", "EditSpec": "agent.models",
    "DocumentBrief": "agent.models", "DocumentEvent": "agent.models", "read_event": "agent.models.document",
    "RunEvent": "agent.models.run_events",
    # the error tree
    "PixloopError": "agent.models.errors", "InputError": "agent.models.errors", "BriefError": "agent.models.errors",
    "ImageInputError": "agent.models.errors", "ConfigError": "agent.models.errors",
    "UnknownNameError": "agent.models.errors", "PlanningError": "agent.models.errors",
    "ServiceError": "agent.models.errors", "BackendError": "agent.models.errors", "LLMError": "agent.models.errors",
    "HttpFailure": "agent.models.errors", "CriticError": "agent.models.errors",
    # extension points
    "register_backend": "agent.backends", "register_critic": "critics", "register_planner": "agent.loop.planning",
}
__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
