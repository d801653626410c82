"""Planning: a Brief becomes a Plan. `rule` (offline, deterministic) and `llm` (a chat model designs the
layout) are built in; `pixloop.planners` entry points add more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from agent.loop.planning.design import contrasting_text, layout_regions, style_for_prompt
from agent.loop.planning.edit import plan_edit
from agent.loop.planning.masks import DerivedMask, derive_mask, keep_mask, named_colour, read_instruction
from agent.loop.planning.people import looks_like_person
from agent.loop.planning.prompt import generation_prompt
from agent.loop.planning.reading import detect_aspect, detect_size, extract_quoted
from agent.loop.planning.rules import RulePlanner
from agent.models import Brief, ImageRef, Plan
from agent.models.errors import PlanningError, UnknownPlannerError
from agent.runtime.registry import Registry


class Planner(Protocol):
    name: str

    def plan(self, brief: Brief, references: list[ImageRef], store: Any) -> Plan:
        """Make a Plan; references are the brief's images already in the artifact store."""
        ...


PLANNERS: Registry[Planner] = Registry(
    "planner", group="pixloop.planners", error=UnknownPlannerError,
    builtins={"rule": "agent.loop.planning.rules:RulePlanner", "llm": "agent.loop.planning.llm:LLMPlanner"})


def planner_names() -> list[str]:
    return PLANNERS.names()


def register_planner(name: str, factory: Callable[..., Planner]) -> None:
    """Register a planner class (or factory) for this process; it replaces a built-in of the same name."""
    PLANNERS.register(name, factory)


def unregister_planner(name: str) -> None:
    PLANNERS.unregister(name)


def get_planner(name: str, config: object | None = None) -> Planner:
    """A planner for a name; planners with `from_config` get the run configuration."""
    cls = PLANNERS.factory(name)
    if config is not None and hasattr(cls, "from_config"):
        return cls.from_config(config)  # type: ignore[no-any-return]
    return cls()  # type: ignore[no-any-return]


__all__ = [
    "DerivedMask", "PLANNERS", "Planner", "PlanningError", "RulePlanner", "UnknownPlannerError", "contrasting_text",
    "derive_mask", "detect_aspect", "detect_size", "extract_quoted", "generation_prompt", "get_planner", "keep_mask",
    "layout_regions", "looks_like_person", "named_colour", "plan_edit", "planner_names", "read_instruction",
    "register_planner", "style_for_prompt", "unregister_planner",
]
