"""VlmJudge: adherence and consistency from a vision model, opt-in, below the measured critics, never crashing."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image, ImageDraw

from agent.llm import OpenAIChatClient
from agent.models import Box, CheckSpec, Plan, TextElement
from agent.runtime.http import HttpSettings
from agent.testing.fakes import FakeServer, FaultPlan
from agent.testing.fakes.chat import create_app
from critics.base import CheckContext
from critics.vlm import VlmJudge, outranked_by

FAST = HttpSettings(connect_timeout=1, read_timeout=2, max_attempts=2, backoff_initial=0.01, backoff_max=0.02)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch) -> None:
    for var in ("PIXLOOP_VLM_BASE_URL", "PIXLOOP_VLM_MODEL", "PIXLOOP_VLM_FLAVOUR"):
        monkeypatch.delenv(var, raising=False)


def poster() -> Image.Image:
    img = Image.new("RGB", (256, 256), (20, 30, 80))
    d = ImageDraw.Draw(img)
    d.rectangle((30, 60, 226, 120), fill=(250, 220, 80))
    d.ellipse((80, 140, 176, 236), fill=(220, 40, 40))
    return img


def plan(threshold: float | None = None) -> Plan:
    p = Plan(prompt='A bold poster that says "HELLO" with a red ball', width=1024, height=1024, aspect_ratio="1:1",
             size="1K", text=[TextElement(id="headline", content="HELLO", region=Box(x=0.1, y=0.2, w=0.8, h=0.25))])
    if threshold is not None:
        p.checks = {"vlm": CheckSpec(threshold=threshold)}
    return p


def judge_on(image: Image.Image, plan_: Plan | None = None, **options: Any):
    app = create_app(FaultPlan.parse(options.pop("faults", [])), **options)
    with FakeServer(app) as srv:
        judge = VlmJudge(OpenAIChatClient(srv.url + "/v1", "fake-vlm", settings=FAST))
        verdict = judge.check(image, plan_ or plan(), CheckContext(candidate_id="c1"))
    return verdict, app


def test_judge_scores_adherence_and_consistency_with_reasons() -> None:
    verdict, app = judge_on(poster())
    ev = verdict.evidence
    assert verdict.critic == "vlm" and verdict.passed and verdict.error is None
    assert verdict.score == pytest.approx((0.6 * ev["adherence"] + 0.4 * ev["consistency"]) / 10, abs=1e-4)
    assert ev["reasons"] and ev["problems"] == [] and ev["model"] == "fake-vlm"
    assert ev["outranked_by"] == outranked_by() and verdict.threshold == 0.6
    body = app.state.requests.items[0].body
    assert body["response_format"]["json_schema"]["name"] == "pixloop_judge"
    assert body["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_score_is_the_weighted_mean_and_feedback_the_most_important_problem() -> None:
    problems = [{"what": "the ball floats without a shadow", "where": "bottom centre"},
                {"what": "the background banding", "where": "top"}]
    verdict, _ = judge_on(poster(), plan(0.8), judge_scores=(5, 10), judge_problems=problems)
    assert verdict.score == pytest.approx(0.7) and not verdict.passed and verdict.threshold == 0.8
    assert verdict.feedback == "the ball floats without a shadow (bottom centre)"


def test_a_blank_image_fails_with_a_reason() -> None:
    verdict, _ = judge_on(Image.new("RGB", (128, 128), "white"))
    assert not verdict.passed and verdict.score < 0.3 and verdict.feedback == "the image is blank (whole image)"


def test_spelling_and_identity_problems_are_deferred_to_the_measured_critics() -> None:
    problems = [{"what": "the headline is misspelled as HELO", "where": "top"},
                {"what": "the face does not resemble the reference photo", "where": "centre"},
                {"what": "the ball casts two shadows", "where": "bottom"}]
    verdict, app = judge_on(poster(), judge_problems=problems)
    assert [p["what"] for p in verdict.evidence["problems"]] == ["the ball casts two shadows"]
    assert len(verdict.evidence["deferred"]) == 2 and verdict.feedback.startswith("the ball casts two shadows")
    prompt = app.state.requests.items[0].body["messages"][0]["content"][0]["text"]
    assert "do not judge spelling" in prompt and "resembles a reference photo" in prompt
    assert {"ocr", "face", "spec", "artifacts", "preservation", "reference", "structure"} == set(outranked_by())


def test_applies_only_when_configured(monkeypatch) -> None:
    assert VlmJudge().applies(plan()) is False
    monkeypatch.setenv("PIXLOOP_VLM_BASE_URL", "http://127.0.0.1:9/v1")
    assert VlmJudge().applies(plan()) is False, "a base URL without a model is not configured"
    monkeypatch.setenv("PIXLOOP_VLM_MODEL", "qwen2.5-vl")
    assert VlmJudge().applies(plan()) is True
    disabled = plan()
    disabled.checks = {"vlm": CheckSpec(threshold=0.6, enabled=False)}
    assert VlmJudge().applies(disabled) is False
    assert VlmJudge(OpenAIChatClient("http://x:1/v1", "m")).applies(plan()) is True


def test_environment_configuration_reaches_the_fake(monkeypatch) -> None:
    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        monkeypatch.setenv("PIXLOOP_VLM_BASE_URL", srv.url + "/v1")
        monkeypatch.setenv("PIXLOOP_VLM_MODEL", "env-model")
        verdict = VlmJudge().check(poster(), plan(), CheckContext(candidate_id="c1"))
    assert verdict.passed and verdict.evidence["model"] == "env-model"
    assert app.state.requests.items[0].body["model"] == "env-model"


@pytest.mark.parametrize("options, error", [
    ({"mode": "refusal"}, "LLMRefusal"), ({"mode": "invalid"}, "LLMOutputError"),
    ({"faults": ["500*3"]}, "ServerError"), ({"mode": "vllm_error"}, "BadRequest"),
])
def test_failures_become_failing_verdicts_with_the_error(options: dict, error: str) -> None:
    verdict, _ = judge_on(poster(), **options)
    assert not verdict.passed and verdict.score == 0.0 and verdict.error.startswith(error)
    assert verdict.feedback.startswith("the vlm judge could not score the image")


def test_unreachable_or_unconfigured_judge_gives_a_failing_verdict_not_an_exception() -> None:
    down = VlmJudge(OpenAIChatClient("http://127.0.0.1:9/v1", "m", settings=FAST))
    v = down.check(poster(), plan(), CheckContext(candidate_id="c1"))
    assert not v.passed and "ServerError" in v.error and "connection failed" in v.error
    v = VlmJudge().check(poster(), plan(0.5), CheckContext(candidate_id="c2"))
    assert not v.passed and v.threshold == 0.5 and "PIXLOOP_VLM_BASE_URL" in v.error


def test_judge_runs_inside_the_pixloop_loop_when_registered(tmp_path) -> None:
    from agent.interfaces.api import generate
    from critics import register_critic, unregister_critic

    app = create_app(FaultPlan())
    with FakeServer(app) as srv:
        register_critic("vlm", lambda: VlmJudge(OpenAIChatClient(srv.url + "/v1", "fake-vlm", settings=FAST)))
        try:
            result = generate('A bold poster that says "HELLO"', out=tmp_path / "run")
        finally:
            unregister_critic("vlm")
    assert result.status == "passed"
    assert result.report["thresholds"]["vlm"]["source"] == "default"
    verdicts = {v["critic"]: v for v in result.report["candidates"][0]["verdicts"]}
    assert verdicts["vlm"]["threshold"] == result.report["thresholds"]["vlm"]["threshold"]
    assert verdicts["vlm"]["passed"] and verdicts["vlm"]["evidence"]["reasons"] and verdicts["ocr"]["passed"]
    assert len(app.state.requests.items) == 1
