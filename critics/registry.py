"""The critic registry: built-in critics, `pixloop.critics` entry points, and critics registered at run time.

Each critic is created once per process and shared across runs and threads, so its model loads once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from agent.models import CheckSpec, Plan, UnknownCriticError
from agent.runtime.registry import Registry
from critics.base import Critic, CriticInfo, needs_met

log = logging.getLogger("pixloop.critics")

CRITICS: Registry[Critic] = Registry(
    "critic", group="pixloop.critics", error=UnknownCriticError,
    builtins={
        "ocr": "critics.ocr:OcrCritic",
        "face": "critics.face:FaceCritic",
        "artifacts": "critics.artifacts:ArtifactsCritic",
        "spec": "critics.spec:SpecCritic",
        "preservation": "critics.preservation:PreservationCritic",
        "reference": "critics.reference:ReferenceCritic",
        "structure": "critics.structure:StructureCritic",
        "vlm": "critics.vlm:VlmJudge",
    })
"""Adding a built-in critic is one module and one line here; a plugin adds an entry point instead."""


def critic_names() -> list[str]:
    return CRITICS.names()


def get_critic(name: str) -> Critic:
    """The shared critic instance for a name."""
    return CRITICS.instance(name)


def critic_info(name: str) -> CriticInfo:
    """What a critic declares about itself (threshold, weight, needs, strategies, evidence)."""
    return get_critic(name).info


def register_critic(name: str, factory: Callable[[], Critic]) -> None:
    """Register a critic for this process (tests, notebooks); it replaces a built-in of the same name."""
    CRITICS.register(name, factory)


def unregister_critic(name: str) -> None:
    CRITICS.unregister(name)


def is_measured(name: str) -> bool:
    """Whether a critic measures (and so outranks the VLM judge); unknown names count as measured."""
    try:
        return critic_info(name).measured
    except UnknownCriticError:
        return True


def weight(name: str) -> float:
    """A critic's weight in the best-candidate aggregate (1.0 for names no registry holds)."""
    try:
        return critic_info(name).weight
    except UnknownCriticError:
        return 1.0


def applies(critic: Critic, plan: Plan) -> bool:
    """Whether a critic has anything to check in a plan: not disabled there, and its needs are met
    (or its own `applies`, when it defines one, says so)."""
    spec = plan.checks.get(critic.name)
    if spec is not None and not spec.enabled:
        return False
    own = getattr(critic, "applies", None)
    return bool(own(plan)) if callable(own) else needs_met(critic.info.needs, plan)


def check_names(names: Iterable[str], what: str = "critics") -> None:
    """Raise UnknownCriticError naming every name no registry holds."""
    unknown = sorted(set(names) - set(critic_names()))
    if unknown:
        raise UnknownCriticError(f"{what}: unknown critic(s) {', '.join(unknown)}; "
                                 f"known critics: {', '.join(critic_names())}")


def checks_for(plan: Plan, thresholds: Mapping[str, float] | None = None,
               extra: Iterable[str] = ()) -> dict[str, CheckSpec]:
    """The checks a plan enables: every critic that is on by default and applies, plus the ones the brief
    names (in `extra`, or with a threshold, which enables a critic even where it would not apply)."""
    thresholds = dict(thresholds or {})
    asked = set(extra) | set(thresholds)
    check_names(thresholds, "thresholds")
    check_names(extra, "critics")
    checks: dict[str, CheckSpec] = {}
    for name in critic_names():
        try:
            critic = get_critic(name)
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break runs that do not ask for it
            if name in asked:
                raise
            log.warning("critic %s could not be loaded and is skipped: %s", name, e)
            continue
        if name in asked or (critic.info.on_by_default and applies(critic, plan)):
            value = thresholds.get(name, critic.info.threshold)
            checks[name] = CheckSpec(threshold=value, source="brief" if name in thresholds else "default")
    return checks


__all__ = ["CRITICS", "applies", "check_names", "checks_for", "critic_info", "critic_names", "get_critic",
           "is_measured", "register_critic", "unregister_critic", "weight"]
