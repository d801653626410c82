"""Property-based tests: whatever a user types, the brief, the planner and the plan either work or fail with
pixloop's own input error (never a raw ValueError, UnicodeError or pydantic error, never a crash)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.interfaces.api import make_brief
from agent.loop.planning import RulePlanner, extract_quoted, generation_prompt
from agent.models import ASPECT_RATIOS, SIZE_TIERS, Brief, Plan
from agent.models.errors import BriefError, InputError

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=60)
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 5)


@PROPERTY
@given(prompt=text, texts=st.lists(text, max_size=4),
       thresholds=st.dictionaries(st.sampled_from(["ocr", "spec", "face", "nope", ""]), numbers, max_size=3),
       aspect=st.none() | st.sampled_from([*ASPECT_RATIOS, "7:3", ""]) | text,
       size=st.none() | st.sampled_from([*SIZE_TIERS, "8K"]) | text,
       budget=st.fixed_dictionaries({}, optional={"max_cost": numbers, "max_seconds": numbers,
                                                   "max_iterations": st.integers(-2, 200)}))
def test_any_brief_either_plans_or_fails_with_a_brief_error(prompt: str, texts: list[str], thresholds: dict[str, Any],
                                                            aspect: str | None, size: str | None,
                                                            budget: dict[str, Any]) -> None:
    try:
        brief = make_brief(prompt, required_text=texts, aspect=aspect, size=size, thresholds=thresholds,
                           **budget)
    except BriefError:
        return
    assert brief.prompt.strip() and all(t.strip() for t in brief.required_text)
    for value in (brief.budget.max_cost, brief.budget.max_seconds):
        assert value is None or math.isfinite(value)
    try:
        plan = RulePlanner().plan(brief, [], store=None)
    except InputError:  # e.g. a threshold for a critic no registry holds
        assert set(brief.thresholds) - {"ocr", "spec", "face"}
        return
    wanted = [*brief.required_text, *(q for q in extract_quoted(brief.prompt) if q not in brief.required_text)]
    assert [e.content for e in plan.text] == wanted
    assert Plan.model_validate(plan.model_dump(mode="json")) == plan
    assert generation_prompt(plan)


@PROPERTY
@given(raw=st.dictionaries(st.sampled_from(["prompt", "required_text", "thresholds", "references", "critics",
                                            "aspect_ratio", "size", "seed", "budget", "colour"]),
                           st.none() | text | numbers | st.lists(text, max_size=2)
                           | st.dictionaries(text, numbers, max_size=2), max_size=6))
def test_any_json_brief_either_validates_or_fails_with_a_pydantic_error_naming_fields(raw: dict[str, Any]) -> None:
    try:
        brief = Brief.model_validate(raw)
    except ValidationError as e:
        assert all(err["loc"] for err in e.errors()) or not raw
        return
    assert brief.prompt.strip()


@PROPERTY
@given(x=numbers, y=numbers, w=numbers, h=numbers, width=st.integers(-5, 9000), height=st.integers(-5, 9000),
       content=text)
def test_plans_with_any_geometry_either_validate_or_fail_naming_the_field(x: float, y: float, w: float, h: float,
                                                                          width: int, height: int,
                                                                          content: str) -> None:
    raw = {"prompt": "p", "width": width, "height": height, "aspect_ratio": "1:1", "size": "1K",
           "text": [{"id": "t", "content": content, "region": {"x": x, "y": y, "w": w, "h": h}}]}
    try:
        plan = Plan.model_validate(raw)
    except ValidationError as e:
        assert {str(err["loc"][0]) for err in e.errors()} <= {"width", "height", "text"}
        return
    box = plan.text[0].region.to_pixels(plan.width, plan.height)
    assert 0 <= box[0] <= box[2] <= round(2 * plan.width) and 0 <= box[1] <= box[3] <= round(2 * plan.height)


def test_the_store_is_not_needed_to_plan_without_references(tmp_path: Path) -> None:
    assert RulePlanner().plan(make_brief('a poster "HI"'), [], store=None).text[0].content == "HI"
