"""Each node of the loop on its own: state in, partial update out, against a temporary run folder.

The backend and the critics are in-process doubles registered for the test, so nothing here starts a
server or loads a model; the graph itself is not involved.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from agent.backends import BACKENDS, Capabilities, GenerationResult
from agent.loop.planning import PLANNERS
from agent.models import Action, Brief, Budget, Candidate, CheckSpec, PixloopConfig, Verdict
from agent.models.errors import BackendError, PlanningError
from agent.runtime.store import ArtifactStore
from critics import CRITICS, CriticInfo
from graphs import nodes


class Flat:
    """A backend double: a flat image of the planned size, free."""

    name = "flat"
    capabilities = Capabilities(cost_per_image=0.0, deterministic=True)

    async def generate(self, request: Any, store: Any) -> GenerationResult:
        return GenerationResult(image=Image.new("RGB", (request.plan.width // 8, request.plan.height // 8), "teal"))


class Broken(Flat):
    async def generate(self, request: Any, store: Any) -> GenerationResult:
        raise BackendError("flat: the render farm is on fire")


class Judge:
    """A critic double whose score the test sets."""

    name = "judge_double"
    info = CriticInfo(threshold=0.5, threshold_source="test double")
    score = 1.0

    def check(self, image: Image.Image, plan: Any, context: Any) -> Verdict:
        t = plan.checks[self.name].threshold
        return Verdict(critic=self.name, candidate_id=context.candidate_id, score=self.score,
                       passed=self.score >= t, threshold=t, feedback="double")


class Crashing(Judge):
    name = "crashing_double"

    def check(self, image: Image.Image, plan: Any, context: Any) -> Verdict:
        raise RuntimeError("critic bug")


@pytest.fixture(autouse=True)
def doubles() -> Iterator[None]:
    with BACKENDS.registered("flat", lambda config: Flat()), BACKENDS.registered("broken", lambda config: Broken()), \
            CRITICS.registered("judge_double", Judge), CRITICS.registered("crashing_double", Crashing):
        yield


def runtime(**config: Any) -> Any:
    return SimpleNamespace(context=PixloopConfig(**{"backend": "flat", **config}))


def planned(tmp_path: Path, **brief: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"brief": Brief(prompt='A poster that says "HI"', critics=["judge_double"], **brief),
                             "run_dir": str(tmp_path)}
    state.update(nodes.plan(state, {}, runtime()))  # type: ignore[arg-type]
    return state


def generated(state: dict[str, Any], **config: Any) -> dict[str, Any]:
    update = asyncio.run(nodes.generate(state, runtime(**config)))  # type: ignore[arg-type]
    out = {**state, **update}
    out["candidates"] = state.get("candidates", []) + update.get("candidates", [])
    return out


def test_plan_stores_the_plan_by_reference_and_logs_it(tmp_path: Path) -> None:
    state = planned(tmp_path)
    plan = state["plan"]
    assert [e.content for e in plan.text] == ["HI"] and {"ocr", "spec", "judge_double"} <= set(plan.checks)
    assert ArtifactStore(tmp_path).load_document(state["plan_ref"])["text"][0]["content"] == "HI"
    assert state["status"] == "running" and state["iteration"] == 0
    events = [e["event"] for e in ArtifactStore(tmp_path).events()]
    assert events[:2] == ["policy", "plan"], "the brief passes the content policy before it is planned"


def test_plan_restricts_checks_to_the_configured_critics(tmp_path: Path) -> None:
    state = {"brief": Brief(prompt='A poster "HI"'), "run_dir": str(tmp_path)}
    update = nodes.plan(state, {}, runtime(critics=["spec"]))  # type: ignore[arg-type]
    assert list(update["plan"].checks) == ["spec"]


def test_a_planning_failure_ends_the_run_with_its_own_stop_reason(tmp_path: Path) -> None:
    class Refusing:
        name = "refusing"

        def plan(self, brief: Any, references: Any, store: Any) -> Any:
            raise PlanningError("no")

    with PLANNERS.registered("rule", Refusing):
        update = nodes.plan({"brief": Brief(prompt="x"), "run_dir": str(tmp_path)}, {}, runtime())  # type: ignore
    assert update["status"] == "failed" and update["stop_reason"] == "planning_error"
    assert "rule planner failed: no" in update["error"] and nodes.route_after_plan(update) == "finalize"


def test_generate_stores_the_candidate_as_a_reference_and_names_it(tmp_path: Path) -> None:
    state = generated(planned(tmp_path))
    (c1,) = state["candidates"]
    assert isinstance(c1, Candidate) and c1.id == "c1" and c1.strategy == "initial" and c1.backend == "flat"
    assert (tmp_path / c1.image.path).exists() and (tmp_path / "candidates" / "01-c1.png").exists()
    assert state["iteration"] == 1 and state["cost_used"] == 0.0


def test_a_backend_failure_in_generate_ends_the_run_as_failed(tmp_path: Path) -> None:
    update = asyncio.run(nodes.generate(planned(tmp_path), runtime(backend="broken")))  # type: ignore[arg-type]
    assert update["status"] == "failed" and update["stop_reason"] == "backend_error"
    assert "render farm is on fire" in update["error"]


def test_dispatch_sends_one_branch_per_critic_and_candidate_with_the_plan_by_reference(tmp_path: Path) -> None:
    state = generated(planned(tmp_path))
    sends = nodes.dispatch_checks(state)  # type: ignore[arg-type]
    assert isinstance(sends, list) and {s.arg["critic"] for s in sends} == set(state["plan"].checks)
    assert all(s.node == "check" and s.arg["plan_ref"] == state["plan_ref"] for s in sends)


def test_run_critic_turns_a_crashing_critic_into_a_failing_verdict(tmp_path: Path) -> None:
    state = generated(planned(tmp_path, thresholds={"crashing_double": 0.5}))
    task = next(s.arg for s in nodes.dispatch_checks(state) if s.arg["critic"] == "crashing_double")  # type: ignore
    (verdict,) = nodes.run_critic(task)["verdicts"]
    assert not verdict.passed and verdict.error == "RuntimeError: critic bug"


def checked(state: dict[str, Any], score: float) -> dict[str, Any]:
    Judge.score = score
    task = next(s.arg for s in nodes.dispatch_checks(state) if s.arg["critic"] == "judge_double")  # type: ignore
    return {**state, "verdicts": state.get("verdicts", []) + nodes.run_critic(task)["verdicts"]}


def test_judge_stops_when_every_check_passes(tmp_path: Path) -> None:
    state = checked(generated(planned(tmp_path)), 1.0)
    state["plan"].checks = {"judge_double": CheckSpec(threshold=0.5)}
    update = nodes.judge(state, runtime())  # type: ignore[arg-type]
    assert update["stop_reason"] == "passed" and update["best_id"] == "c1"
    assert nodes.route_after_judge(update) == "finalize"


def test_judge_goes_on_correcting_within_budget_and_stops_at_the_iteration_limit(tmp_path: Path) -> None:
    state = checked(generated(planned(tmp_path, budget=Budget(max_iterations=2))), 0.1)
    update = nodes.judge(state, runtime())  # type: ignore[arg-type]
    assert update["stop_reason"] is None and nodes.route_after_judge(update) == "correct"
    spent = {**state, "brief": state["brief"].model_copy(update={"budget": Budget(max_iterations=1)})}
    assert nodes.judge(spent, runtime())["stop_reason"] == "max_iterations"  # type: ignore[arg-type]


def test_correct_records_an_action_that_addresses_the_failure_and_a_new_plan_revision(tmp_path: Path) -> None:
    state = checked(generated(planned(tmp_path)), 0.1)
    state.update(nodes.judge(state, runtime()))  # type: ignore[arg-type]
    update = nodes.correct_node(state, runtime())  # type: ignore[arg-type]
    (action,) = update["actions"]
    assert isinstance(action, Action) and action.iteration == 2 and "judge_double" in action.addresses
    assert update["plan"].revision == 1 and update["plan_ref"] != state["plan_ref"]


def test_finalize_writes_the_best_candidate_and_an_honest_report(tmp_path: Path) -> None:
    state = checked(generated(planned(tmp_path)), 0.1)
    state.update(nodes.judge(state, runtime()))  # type: ignore[arg-type]
    state["stop_reason"] = "max_iterations"
    update = nodes.finalize(state, runtime())  # type: ignore[arg-type]
    report = json.loads((tmp_path / "report.json").read_text())
    assert update["status"] == "below_threshold" and update["final"].id == "c1"
    assert (tmp_path / "final.png").exists() and report["status"] == "below_threshold"
    assert report["final"]["candidate"] == "c1" and "iteration budget ran out" in report["summary"]
