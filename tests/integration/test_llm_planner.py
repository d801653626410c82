"""LLMPlanner: a model designs the plan, the brief stays in charge; the corrector's prompt rewrite."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agent.interfaces.api import make_brief
from agent.llm import LLMOutputError, OpenAIChatClient, rewrite_prompt, spell_out
from agent.loop.planning import PlanningError
from agent.loop.planning.llm import DesignBox, DesignText, LLMPlanner, enforce_text, free_band, required_text
from agent.models import Box, PixloopConfig, Plan, TextElement, Verdict
from agent.runtime.http import HttpSettings
from agent.runtime.store import ArtifactStore
from agent.testing.fakes import FakeService
from agent.testing.fakes.chat import create_app
from prompts import variables

FAST_OPTIONS = {"llm_read_timeout": 2, "llm_max_attempts": 2, "llm_backoff_initial": 0.01, "llm_backoff_max": 0.02}


class Fake(FakeService):
    """The fake chat server; `base_url` is its OpenAI-compatible endpoint."""

    def __init__(self, **options: Any):
        super().__init__(create_app, prefix="/v1", **options)

    def config(self, **options: Any) -> PixloopConfig:
        return PixloopConfig(planner="llm", llm_base_url=self.base_url, llm_model="fake", options={**FAST_OPTIONS, **options})



def plan_with(fake: Fake, prompt: str, tmp_path: Path, *, planner: LLMPlanner | None = None, **brief: Any) -> Plan:
    b = make_brief(prompt, **brief)
    store = ArtifactStore(tmp_path / "store")
    refs = [store.put_file(p) for p in b.references]
    return (planner or LLMPlanner(fake.config())).plan(b, refs, store)


# --------------------------------------------------------------------------- planning


def test_llm_planner_turns_the_models_design_into_a_valid_plan(tmp_path) -> None:
    with Fake() as fake:
        plan = plan_with(fake, 'A bold 16:9 banner that says "BIG SALE" and "today only"', tmp_path)
    assert [(e.content, e.role) for e in plan.text] == [("BIG SALE", "headline"), ("today only", "subheading")]
    assert (plan.aspect_ratio, plan.width, plan.height) == ("16:9", 1024, 576)
    assert plan.style.font == "lato-black" and plan.checks["ocr"].threshold == 0.9
    assert plan.notes[0] == "planned by llm fake" and not any("fixed" in n or "added" in n for n in plan.notes)
    body = fake.bodies[0]
    assert body["response_format"]["json_schema"]["name"] == "pixloop_plan"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert '"BIG SALE"\n"today only"' in body["messages"][1]["content"]


def test_required_text_the_model_drops_is_added_back_verbatim(tmp_path) -> None:
    with Fake(drop_text=True) as fake:
        plan = plan_with(fake, 'A bold poster that says "HELLO" and "see you soon"', tmp_path)
    assert [e.content for e in plan.text] == ["HELLO", "see you soon"]
    assert any("left out added: 'HELLO'" in n for n in plan.notes)
    added, kept = plan.text[0].region, plan.text[1].region
    assert added.y >= kept.y + kept.h or added.y + added.h <= kept.y, "added text goes in a free band"


def test_required_text_the_model_misspells_is_corrected_and_extra_text_dropped(tmp_path) -> None:
    with Fake(alter_text=True, extra_text=True) as fake:
        plan = plan_with(fake, 'A poster that says "GRAND OPENING"', tmp_path, required_text=["Saturday 9am"])
    assert [e.content for e in plan.text] == ["Saturday 9am", "GRAND OPENING"]
    assert any("'GRND OPENING' -> 'GRAND OPENING'" in n for n in plan.notes)
    assert any("unrequested text dropped: 'LIMITED OFFER'" in n for n in plan.notes)


def test_brief_aspect_and_size_override_the_model(tmp_path) -> None:
    with Fake(aspect="1:1") as fake:
        plan = plan_with(fake, 'A square poster "HI"', tmp_path, aspect="16:9", size="2K",
                         thresholds={"ocr": 0.97})
    assert (plan.aspect_ratio, plan.size, plan.width, plan.height) == ("16:9", "2K", 2048, 1152)
    assert "brief aspect ratio 16:9 overrides the model's 1:1" in plan.notes
    assert plan.checks["ocr"].threshold == 0.97 and plan.checks["ocr"].source == "brief"
    assert "aspect ratio must be 16:9; size must be 2K" in fake.bodies[0]["messages"][1]["content"]


def test_reference_images_are_attached_and_become_the_plans_subjects(tmp_path, product_png) -> None:
    with Fake() as fake:
        plan = plan_with(fake, 'A 16:9 ad for this mug, "MUG DAY"', tmp_path, references=[product_png])
    parts = fake.bodies[0]["messages"][1]["content"]
    image = next(p for p in parts if p["type"] == "image_url")["image_url"]["url"]
    assert Image.open(io.BytesIO(base64.b64decode(image.split(",", 1)[1]))).size == (400, 300)
    assert [(s.id, s.kind) for s in plan.subjects] == [("product1", "product")]
    assert plan.subjects[0].reference.sha256 and plan.subjects[0].region.x > 0.5
    assert "Reference images attached: 1" in parts[0]["text"]


@pytest.mark.parametrize("options, match", [
    ({"mode": "refusal"}, "LLMRefusal: .*refused"),
    ({"mode": "invalid"}, "LLMOutputError: .*after one repair retry"),
    ({"mode": "length"}, "LLMTruncated"),
    ({"faults": ["500*5"]}, r"ServerError: .*HTTP 500.*\(after 2 attempts\)"),
])
def test_model_failures_raise_a_clear_planning_error(tmp_path, options: dict, match: str) -> None:
    with Fake(**options) as fake:
        with pytest.raises(PlanningError, match="llm planner failed: " + match):
            plan_with(fake, 'A poster "HI"', tmp_path)


def test_invalid_json_is_repaired_once_and_planning_succeeds(tmp_path) -> None:
    with Fake(mode="invalid_once") as fake:
        plan = plan_with(fake, 'A poster "HI"', tmp_path)
    assert [e.content for e in plan.text] == ["HI"] and len(fake.bodies) == 2


def test_rule_fallback_is_opt_in_and_noted(tmp_path) -> None:
    with Fake(mode="refusal") as fake:
        plan = plan_with(fake, 'A poster "HI"', tmp_path, planner=LLMPlanner(fake.config(llm_fallback="rule")))
    assert [e.content for e in plan.text] == ["HI"]
    assert plan.notes[0].startswith("llm planner failed (LLMRefusal") and "planned by rules instead" in plan.notes[0]


def test_unconfigured_llm_planner_says_what_to_set(tmp_path) -> None:
    b = make_brief('A poster "HI"')
    with pytest.raises(PlanningError, match="llm_base_url and llm_model"):
        LLMPlanner(PixloopConfig(planner="llm")).plan(b, [], ArtifactStore(tmp_path))


def test_enforce_text_fixes_near_misses_adds_missing_text_away_from_subjects() -> None:
    box = DesignBox(x=0.1, y=0.05, w=0.8, h=0.2)
    notes: list[str] = []
    out = enforce_text([DesignText(content="Grand  opening", role="headline", region=box)],
                       ["GRAND OPENING", "Free coffee"], notes, avoid=[Box(x=0.1, y=0.3, w=0.8, h=0.5)])
    assert [(c, r) for c, r, _ in out] == [("GRAND OPENING", "headline"), ("Free coffee", "body")]
    added = out[1][2]
    assert added.y >= 0.8 - 1e-9, "the free band is below the subject"
    assert free_band([]).y + free_band([]).h <= 0.96 + 1e-9
    assert required_text(make_brief('say "A" and "B"', required_text=["B", "C"])) == ["B", "C", "A"]
    notes = []
    out = enforce_text([DesignText(content="SALE 50%", role="headline", region=box)], ["SALE", "SALE 50%"], notes)
    assert out[1] == ("SALE 50%", "headline", Box(x=0.1, y=0.05, w=0.8, h=0.2)), "an exact match is never stolen"
    assert out[0][0] == "SALE" and "left out added: 'SALE'" in notes[0]


def test_pixloop_generate_with_the_llm_planner_passes(tmp_path, monkeypatch) -> None:
    import agent.loop.planning
    from agent.interfaces.api import generate

    with agent.loop.planning.PLANNERS.registered("llm", LLMPlanner), Fake() as fake:
        result = generate('A bold poster that says "HELLO"', config=fake.config(), out=tmp_path / "run")
    assert result.status == "passed", result.report.get("verdicts")
    assert result.final_image is not None and result.final_image.exists()
    assert len(fake.bodies) == 1 and fake.bodies[0]["response_format"]["json_schema"]["name"] == "pixloop_plan"


# --------------------------------------------------------------------------- prompt rewrite (corrector)


def _ocr_verdict() -> Verdict:
    return Verdict(critic="ocr", candidate_id="c1", score=0.6, passed=False, threshold=0.9,
                   feedback="'HELLO' read as 'HELO'", evidence={"elements": [
                       {"id": "headline", "expected": "HELLO WORLD", "read": "HELO WORLD",
                        "wrong_words": [["HELO", "HELLO"]]}]})


def _plan() -> Plan:
    return Plan(prompt='A poster "HELLO WORLD"', width=1024, height=1024, aspect_ratio="1:1", size="1K",
                text=[TextElement(id="headline", content="HELLO WORLD", region=Box(x=0.1, y=0.1, w=0.8, h=0.3))])


def test_rewrite_prompt_sends_failing_feedback_and_letter_by_letter_spelling() -> None:
    with Fake() as fake:
        client = OpenAIChatClient(fake.base_url, "fake", settings=HttpSettings(max_attempts=1))
        passing = Verdict(critic="spec", candidate_id="c1", score=1.0, passed=True, threshold=0.95)

        async def go() -> str:
            try:
                return await rewrite_prompt(client, 'A poster "HELLO WORLD"', [_ocr_verdict(), passing], _plan())
            finally:
                await client.aclose()

        text = asyncio.run(go())
    sent = fake.bodies[0]
    assert "response_format" not in sent and len(sent["messages"]) == 1
    user = sent["messages"][0]["content"]
    assert 'OCR read "HELO" where the image must say "HELLO": spell it H-E-L-L-O' in user
    assert "ocr scored 0.60 (needs 0.90): 'HELLO' read as 'HELO'" in user and "spec scored" not in user
    assert text.startswith("A bold, high-contrast poster") and '"HELLO WORLD"' in text
    assert spell_out("HELLO WORLD") == "H-E-L-L-O-W-O-R-L-D"


class _Canned:
    model = "canned"

    def __init__(self, text: str):
        self.text = text

    async def complete(self, messages, **kwargs):
        from agent.llm import ChatResult

        return ChatResult(text=self.text)

    async def aclose(self) -> None:
        return None


def test_rewrite_prompt_strips_wrappers_and_never_loses_required_text() -> None:
    text = asyncio.run(rewrite_prompt(_Canned("```\nPrompt: A bright poster with big letters\n```"), "p",
                                      [_ocr_verdict()], _plan()))
    assert text == 'A bright poster with big letters\nThe image must contain exactly this text: "HELLO WORLD".'
    with pytest.raises(LLMOutputError, match="came back empty"):
        asyncio.run(rewrite_prompt(_Canned("  "), "p", [_ocr_verdict()], _plan()))


def test_prompt_templates_use_exactly_the_variables_the_code_fills() -> None:
    assert variables("planner_system") == {"ratios", "sizes", "fonts", "backgrounds"}
    assert variables("planner_user") == {"prompt", "required_text", "canvas", "references"}
    assert variables("rewrite_prompt") == {"prompt", "problems", "spelling", "required_text"}
    assert variables("vlm_judge") == {"prompt", "canvas", "text", "subjects"}
