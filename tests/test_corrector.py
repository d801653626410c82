"""The corrector turns failing verdicts into concrete actions that change the next render."""

from __future__ import annotations

from agent.corrector import apply_action, correct, rank
from agent.state import Box, CheckSpec, Plan, Style, TextElement, Verdict


def poster(**style) -> Plan:
    return Plan(prompt="p", width=680, height=1024, aspect_ratio="2:3", size="1K",
                text=[TextElement(id="headline", content="GRAND OPENING", region=Box(x=.1, y=.1, w=.8, h=.3))],
                style=Style(**{"font": "lato-hairline", "text_color": "#2b1d0e", "background": "texture",
                               "palette": ["#2b1d0e", "#7f5539", "#e6b450"], "text_scale": 0.3,
                               "texture_strength": 0.9, **style}),
                checks={"ocr": CheckSpec(threshold=0.9)})


def ocr_fail(score: float = 0.2) -> Verdict:
    return Verdict(critic="ocr", candidate_id="c1", score=score, passed=False, threshold=0.9,
                   feedback="'OPNING' in the headline box at top centre should read 'OPENING'")


def test_failing_ocr_restyles_text_bigger_heavier_with_more_contrast() -> None:
    plan = poster()
    action = correct(plan, [ocr_fail()], [], iteration=2)

    assert action.strategy == "restyle_text" and action.iteration == 2
    assert action.style["text_scale"] > plan.style.text_scale
    assert action.style["font"] == "lato-light", "two weights heavier than hairline"
    assert action.style["text_color"] == "#ffffff"
    assert action.style["text_plate"] is True, "text on a texture gets a plate"
    assert "OPNING" in action.reason and any("OPENING" in f for f in action.feedback)


def test_second_restyle_escalates_to_heaviest_font_and_calmer_background() -> None:
    plan = poster()
    first = correct(plan, [ocr_fail()], [], iteration=2)
    plan2 = apply_action(plan, first)
    second = correct(plan2, [ocr_fail(0.6)], [first], iteration=3)

    assert second.style["font"] == "lato-black"
    assert second.style["texture_strength"] < plan2.style.texture_strength


def test_nothing_left_to_restyle_falls_back_to_a_new_seed() -> None:
    plan = poster(font="lato-black", text_color="#ffffff", text_scale=0.9, text_plate=True,
                  text_outline=True, texture_strength=0.1)
    action = correct(plan, [ocr_fail()], [], iteration=2)
    assert action.strategy == "new_seed" and action.seed is not None


def test_unknown_failing_critic_is_reprompted_with_its_feedback() -> None:
    v = Verdict(critic="judge", candidate_id="c1", score=0.3, passed=False, threshold=0.6,
                feedback="the mug is missing its handle")
    action = correct(poster(), [v], [], iteration=2)
    assert action.strategy == "reprompt" and "handle" in action.prompt_addendum


def test_apply_action_makes_a_new_validated_revision() -> None:
    plan = poster()
    new = apply_action(plan, correct(plan, [ocr_fail()], [], iteration=2))
    assert new.revision == plan.revision + 1
    assert new.style.font == "lato-light" and plan.style.font == "lato-hairline"


def test_rank_prefers_more_passing_critics_then_higher_scores() -> None:
    good = [Verdict(critic="ocr", candidate_id="c", score=0.95, passed=True, threshold=0.9)]
    close = [Verdict(critic="ocr", candidate_id="c", score=0.85, passed=False, threshold=0.9)]
    assert rank(good) > rank(close) > rank([])
