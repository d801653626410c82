"""Critic registry: adding a critic is one new module and one line in CRITICS.

Each critic is created once per process and shared across runs and threads, so its
model loads once.
"""

from __future__ import annotations

import importlib
import threading
from typing import Callable

from critics.base import CheckContext, Critic, UnknownCriticError

CRITICS: dict[str, str] = {
    "ocr": "critics.ocr:OcrCritic",
    "face": "critics.face:FaceCritic",
    "artifacts": "critics.artifacts:ArtifactsCritic",
    "spec": "critics.spec:SpecCritic",
    "preservation": "critics.preservation:PreservationCritic",
    "vlm": "critics.vlm:VlmJudge",
}

_extra: dict[str, Callable[[], Critic]] = {}
_instances: dict[str, Critic] = {}
_lock = threading.Lock()


def critic_names() -> list[str]:
    return sorted({*CRITICS, *_extra})


def register_critic(name: str, factory: Callable[[], Critic]) -> None:
    """Register a critic at run time (plugins, tests)."""
    with _lock:
        _extra[name] = factory
        _instances.pop(name, None)


def unregister_critic(name: str) -> None:
    with _lock:
        _extra.pop(name, None)
        _instances.pop(name, None)


def get_critic(name: str) -> Critic:
    """The shared critic instance for a name."""
    with _lock:
        if name not in _instances:
            if name in _extra:
                _instances[name] = _extra[name]()
            elif name in CRITICS:
                module, _, attr = CRITICS[name].partition(":")
                _instances[name] = getattr(importlib.import_module(module), attr)()
            else:
                raise UnknownCriticError(f"unknown critic {name!r}; known critics: {', '.join(critic_names())}")
        return _instances[name]


def checks_for(plan, thresholds: dict[str, float] | None = None) -> dict:
    """The checks a plan enables: every registered critic that applies, with its threshold.

    A threshold given for a critic that does not apply enables it anyway (the user asked).
    """
    from agent.state import CheckSpec
    from critics.thresholds import DEFAULTS

    thresholds = thresholds or {}
    unknown = sorted(set(thresholds) - set(critic_names()))
    if unknown:
        raise UnknownCriticError(
            f"thresholds name unknown critic(s) {', '.join(unknown)}; known critics: {', '.join(critic_names())}")
    checks = {}
    for name in critic_names():
        critic = get_critic(name)
        if name in thresholds or critic.applies(plan):
            default = DEFAULTS.get(name)
            value = thresholds.get(name, default.value if default else 0.5)
            source = "brief" if name in thresholds else "default"
            checks[name] = CheckSpec(threshold=value, source=source)
    return checks


__all__ = ["checks_for", "CRITICS", "CheckContext", "Critic", "UnknownCriticError", "critic_names", "get_critic",
           "register_critic", "unregister_critic"]
