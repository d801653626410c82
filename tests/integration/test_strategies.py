"""Each correction strategy fires on the verdict that calls for it and improves that verdict, in the real loop.

The simulated backend injects one failure mode at a forced rate (1.0, or a rate whose seeded draws give
the sequence under test; every other rate 0) and answers feedback and masked edits deterministically
(feedback_response / edit_response 1.0 or 0.0). The critics are the real ones (OCR, face, artifacts,
spec). Canvases are 1K, runs at most 4 iterations.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import generate
from agent.models import STRATEGIES, PixloopConfig
from agent.runtime.store import ArtifactStore

POSTER = 'A poster that says "GRAND OPENING"'
PORTRAIT = "A portrait of this person"


@pytest.fixture(autouse=True)
def fresh_render_caches():
    """compose caches face boxes by the reference's sha256, and the simulated backend renders a drifted face
    under the real reference's sha256: empty the caches so no test depends on what ran before it."""
    from agent.backends import compose

    compose.clear_caches()
    yield


def run(tmp_path: Path, prompt: str = POSTER, *, options: dict, strategies: list[str] | None = None,
        max_iterations: int = 3, size: str = "1K", **kwargs):
    config = PixloopConfig(backend="simulated", options={"profile": "clean", "edit_artifacts": 0.0, **options},
                           strategies=strategies)
    kwargs.setdefault("aspect", "1:1")
    return generate(prompt, size=size, max_iterations=max_iterations, out=tmp_path / "run", config=config, **kwargs)


def verdict(candidate: dict, critic: str) -> dict:
    return next(v for v in candidate["verdicts"] if v["critic"] == critic)


def action(result, strategy: str) -> dict:
    return next(a for a in result.report["actions"] if a["strategy"] == strategy)


def sequence(result) -> list[str]:
    return ["initial"] + [a["strategy"] for a in result.report["actions"]]


# --------------------------------------------------------------------------- one strategy each


def test_reprompt_fixes_a_misspelling_and_noise_in_one_regeneration(tmp_path) -> None:
    result = run(tmp_path, options={"misspell": 1.0, "noise": 1.0, "feedback_response": 1.0})

    first, second = result.report["candidates"]
    assert not verdict(first, "ocr")["passed"] and not verdict(first, "artifacts")["passed"]
    assert result.status == "passed" and sequence(result) == ["initial", "reprompt"]
    act = result.report["actions"][0]
    assert act["reason"].startswith("ocr ") and "artifacts " in act["reason"], "one action addresses both"
    assert any("letter by letter" in f for f in act["feedback"]) and any("grain" in f for f in act["feedback"])
    assert act["score_changes"]["ocr"] > 0 and act["score_changes"]["artifacts"] > 0
    assert verdict(second, "ocr")["passed"] and verdict(second, "artifacts")["passed"]


def test_edit_region_fixes_a_misspelling_the_reprompt_did_not(tmp_path) -> None:
    # feedback never helps; seed 14's draws: the first render is misspelt and noisy, the re-prompt is only misspelt
    result = run(tmp_path, seed=14, options={"misspell": 1.0, "noise": 0.5, "feedback_response": 0.0,
                                             "edit_response": 1.0})

    assert sequence(result) == ["initial", "reprompt", "edit_region"] and result.status == "passed"
    reprompted, edited = result.report["candidates"][1:]
    assert not verdict(reprompted, "ocr")["passed"] and verdict(edited, "ocr")["passed"]
    act = action(result, "edit_region")
    assert act["base_candidate_id"] == "c2" and act["regions"] and act["score_changes"]["ocr"] > 0
    assert edited["meta"]["simulated"]["details"]["edit"]["applied"]


def test_edit_region_is_the_first_fix_for_a_misspelling_on_a_masking_backend(tmp_path) -> None:
    result = run(tmp_path, options={"misspell": 1.0, "edit_response": 1.0})

    assert sequence(result) == ["initial", "edit_region"] and result.status == "passed"
    assert action(result, "edit_region")["score_changes"]["ocr"] > 0


def test_typeset_text_fixes_text_the_backend_keeps_misspelling(tmp_path) -> None:
    result = run(tmp_path, options={"misspell": 1.0, "feedback_response": 0.0, "edit_response": 0.0})

    assert sequence(result) == ["initial", "edit_region", "typeset_text"] and result.status == "passed"
    edited, typeset = result.report["candidates"][1:]
    assert not verdict(edited, "ocr")["passed"], "the edit misspelt it again"
    assert verdict(typeset, "ocr")["passed"] and typeset["backend"] == "compose-typeset"
    assert action(result, "typeset_text")["score_changes"]["ocr"] > 0
    assert result.report["typeset"] is True and "typeset by pixloop" in result.report["summary"]


def test_reanchor_identity_fixes_identity_drift(tmp_path, faces_dir) -> None:
    result = run(tmp_path, PORTRAIT, references=[faces_dir / "obama_1.jpg"], aspect="4:5",
                 options={"identity_drift": 1.0, "edit_response": 1.0})

    first, second = result.report["candidates"]
    assert first["meta"]["simulated"]["injected"] == ["identity_drift"] and not verdict(first, "face")["passed"]
    assert sequence(result) == ["initial", "reanchor_identity"] and result.status == "passed"
    act = action(result, "reanchor_identity")
    assert act["base_candidate_id"] == "c1" and act["regions"], "an edit of the face box with the references"
    assert act["score_changes"]["face"] > 0 and verdict(second, "face")["passed"]


def test_new_seed_fixes_an_artifact(tmp_path) -> None:
    result = run(tmp_path, options={"noise": 1.0, "feedback_response": 1.0})

    assert sequence(result) == ["initial", "new_seed"] and result.status == "passed"
    first, second = result.report["candidates"]
    assert not verdict(first, "artifacts")["passed"] and verdict(second, "artifacts")["passed"]
    assert action(result, "new_seed")["seed"] != first["seed"]
    assert action(result, "new_seed")["score_changes"]["artifacts"] > 0


def test_best_of_n_fixes_an_artifact_a_new_seed_did_not(tmp_path) -> None:
    # seed 58's draws: the first render and the new seed are noisy, at least one of the three drafts is clean
    result = run(tmp_path, seed=58, options={"noise": 0.75, "feedback_response": 0.0})

    assert sequence(result) == ["initial", "new_seed", "best_of_n"] and result.status == "passed"
    drafts = [c for c in result.report["candidates"] if c["iteration"] == 3]
    assert len(drafts) == 3 and action(result, "best_of_n")["drafts"] == 3
    assert any(verdict(d, "artifacts")["passed"] for d in drafts)
    assert action(result, "best_of_n")["score_changes"]["artifacts"] > 0
    assert result.report["final"]["candidate"] in [d["id"] for d in drafts if verdict(d, "artifacts")["passed"]]


def test_upscale_fixes_a_too_small_delivery_and_the_spec_critic_passes(tmp_path) -> None:
    result = run(tmp_path, size="2K", aspect="16:9", options={"native_long_side": 1024})

    first, second = result.report["candidates"]
    assert (first["width"], first["height"]) == (1024, 576) and not verdict(first, "spec")["passed"]
    assert sequence(result) == ["initial", "upscale"] and result.status == "passed"
    assert (second["width"], second["height"]) == (2048, 1152) and verdict(second, "spec")["passed"]
    assert action(result, "upscale")["score_changes"]["spec"] > 0
    assert "upscaled" in result.report["summary"]


def test_a_fix_on_a_too_small_image_is_delivered_upscaled_in_the_same_iteration(tmp_path) -> None:
    result = run(tmp_path, size="2K", aspect="16:9", options={"native_long_side": 1024, "misspell": 1.0,
                                                             "edit_response": 1.0})

    assert sequence(result) == ["initial", "edit_region"] and result.status == "passed"
    fixed = result.report["candidates"][1]
    assert (fixed["width"], fixed["height"]) == (2048, 1152) and fixed["meta"]["upscaled_from"] == [1024, 576]
    assert verdict(fixed, "spec")["passed"] and verdict(fixed, "ocr")["passed"]


# --------------------------------------------------------------------------- drift, regressions, budgets


def test_restart_from_best_when_a_correction_regresses(tmp_path) -> None:
    # edits and typesetting are off, so the misspelling is re-prompted; seed 1's re-prompt fixes the text but
    # comes back noisy (it broke artifacts): the loop goes back to c1 and edits its text instead
    allowed = [s for s in STRATEGIES if s not in ("edit_region", "typeset_text")]
    result = run(tmp_path, seed=1, strategies=allowed, options={"misspell": 1.0, "noise": 0.5,
                                                                "feedback_response": 1.0, "edit_response": 1.0})

    c1, c2, c3 = result.report["candidates"]
    assert verdict(c1, "artifacts")["passed"] and not verdict(c1, "ocr")["passed"]
    assert verdict(c2, "ocr")["passed"] and not verdict(c2, "artifacts")["passed"]
    assert sequence(result) == ["initial", "reprompt", "restart_from_best"] and result.status == "passed"
    act = action(result, "restart_from_best")
    assert act["base_candidate_id"] == "c1" and "it broke artifacts" in act["feedback"][0]
    assert c3["parent"] == "c1" and verdict(c3, "ocr")["passed"] and verdict(c3, "artifacts")["passed"]


def test_a_candidate_that_breaks_a_passing_critic_is_never_selected_as_best(tmp_path) -> None:
    allowed = [s for s in STRATEGIES if s not in ("edit_region", "typeset_text", "restart_from_best")]
    result = run(tmp_path, seed=1, strategies=allowed, max_iterations=2,
                 options={"misspell": 1.0, "noise": 0.5, "feedback_response": 1.0})

    c1, c2 = result.report["candidates"]
    assert not verdict(c1, "ocr")["passed"] and verdict(c1, "artifacts")["passed"]
    assert verdict(c2, "ocr")["passed"] and not verdict(c2, "artifacts")["passed"], "c2 broke artifacts"
    judged = [e for e in ArtifactStore.for_dir(result.run_dir).events() if e["event"] == "judge"]
    assert [e["best"] for e in judged] == ["c1", "c1"] and judged[-1]["regressions"] == ["artifacts"]
    assert result.status == "below_threshold" and result.report["final"]["candidate"] == "c1"


UNPASSABLE = 'A poster that says "GRAND OPENING"'
NEVER_FIXED = {"misspell": 1.0, "feedback_response": 0.0}
"""Every image misspells the text and no feedback is followed; with only regenerations allowed (no typesetting, no
masked edit) OCR can never pass."""
REGENERATIONS = ["reprompt", "new_seed"]


def test_the_iteration_budget_is_never_exceeded(tmp_path) -> None:
    result = run(tmp_path, UNPASSABLE, max_iterations=3, patience=10, options=NEVER_FIXED, strategies=REGENERATIONS)

    assert result.stop_reason == "max_iterations" and result.iterations == 3
    assert max(c["iteration"] for c in result.report["candidates"]) == 3


def test_the_cost_budget_is_never_exceeded(tmp_path) -> None:
    result = run(tmp_path, UNPASSABLE, max_iterations=10, patience=10, max_cost=2.5,
                 options={**NEVER_FIXED, "cost_per_image": 1.0}, strategies=REGENERATIONS)

    assert result.stop_reason == "max_cost"
    assert result.report["cost_used"] <= 2.5 and sum(c["cost"] for c in result.report["candidates"]) <= 2.5


def test_the_time_budget_is_never_exceeded(tmp_path) -> None:
    result = run(tmp_path, UNPASSABLE, max_iterations=50, patience=50, max_seconds=4.0, options=NEVER_FIXED,
                 strategies=REGENERATIONS)

    assert result.stop_reason == "max_seconds"
    assert result.report["elapsed_seconds"] <= 4.0 and result.iterations < 50


def test_best_of_n_never_draws_more_than_the_cost_budget_pays_for(tmp_path) -> None:
    # the same draws as test_best_of_n_fixes_an_artifact_a_new_seed_did_not, with 4 images of budget
    result = run(tmp_path, seed=58, max_iterations=5, patience=10, max_cost=4.0,
                 options={"noise": 0.75, "feedback_response": 0.0, "cost_per_image": 1.0})

    assert result.report["cost_used"] <= 4.0


def test_a_brief_that_cannot_pass_ends_cleanly_with_the_best_candidate_and_the_failing_critic(tmp_path) -> None:
    result = run(tmp_path, UNPASSABLE, max_iterations=3, patience=10, options=NEVER_FIXED, strategies=REGENERATIONS)

    assert result.status == "below_threshold" and result.stop_reason == "max_iterations"
    assert result.final_image is not None and result.final_image.exists()
    summary = result.report["summary"]
    assert "iteration budget" in summary and "ocr" in summary and "should read 'GRAND'" in summary
    for act in result.report["actions"]:  # every iteration says which strategy ran, why, and what changed
        assert act["strategy"] and act["reason"].startswith("ocr ") and set(act["score_changes"]) >= {"ocr"}
