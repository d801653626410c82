"""RulePlanner reads a prompt like a designer: text, canvas, style, subjects and checks."""

from __future__ import annotations

import pytest

from agent.interfaces.api import make_brief
from agent.loop.planning import RulePlanner, detect_aspect, detect_size, extract_quoted, generation_prompt
from agent.runtime.store import ArtifactStore
from prompts import render, variables


def plan_for(prompt: str, tmp_path, **kwargs):
    brief = make_brief(prompt, **kwargs)
    store = ArtifactStore(tmp_path / "store")
    refs = [store.put_file(p) for p in brief.references]
    return RulePlanner().plan(brief, refs, store)


def test_quoted_strings_become_required_text_in_order() -> None:
    assert extract_quoted('Poster: "GRAND OPENING", then “Saturday 9am” and «Free coffee»') == [
        "GRAND OPENING", "Saturday 9am", "Free coffee"]
    assert extract_quoted("don't split on apostrophes, it's fine") == []
    assert extract_quoted("say 'HELLO' twice: 'HELLO'") == ["HELLO"]


@pytest.mark.parametrize("prompt, ratio", [
    ("a 16:9 banner", "16:9"), ("a portrait poster", "2:3"), ("an instagram story", "9:16"),
    ("a cinematic shot", "21:9"), ("square logo", "1:1"), ("a 4:5 post", "4:5"), ("at 10:30 today", None),
])
def test_aspect_ratio_words_are_recognised(prompt: str, ratio: str | None) -> None:
    assert detect_aspect(prompt) == ratio


@pytest.mark.parametrize("prompt, size", [("a 4K wallpaper", "4K"), ("in 2k please", "2K"), ("a poster", None)])
def test_size_words_are_recognised(prompt: str, size: str | None) -> None:
    assert detect_size(prompt) == size


def test_plan_has_canvas_text_regions_and_ocr_check(tmp_path) -> None:
    plan = plan_for('A 16:9 2K banner that says "BIG SALE" and "today only"', tmp_path)

    assert (plan.aspect_ratio, plan.size, plan.width, plan.height) == ("16:9", "2K", 2048, 1152)
    assert [e.content for e in plan.text] == ["BIG SALE", "today only"]
    assert [e.role for e in plan.text] == ["headline", "subheading"]
    head, sub = plan.text[0].region, plan.text[1].region
    assert head.y + head.h <= sub.y + 1e-9, "text regions must not overlap"
    assert plan.checks["ocr"].threshold == 0.9 and plan.checks["ocr"].source == "default"


def test_explicit_brief_fields_override_prompt_words(tmp_path) -> None:
    plan = plan_for('A portrait poster "HI"', tmp_path, aspect="1:1", size="4K", thresholds={"ocr": 0.97})
    assert (plan.width, plan.height) == (4096, 4096)
    assert plan.checks["ocr"].threshold == 0.97 and plan.checks["ocr"].source == "brief"


def test_style_words_set_font_background_and_contrast(tmp_path) -> None:
    subtle = plan_for('elegant, subtle tone-on-tone, busy texture "X"', tmp_path)
    assert subtle.style.font == "lato-thin" and subtle.style.background == "texture"
    assert subtle.style.texture_strength == 0.9
    assert any("legibility at risk" in n for n in subtle.notes)
    bold = plan_for('bold red flat poster "X"', tmp_path)
    assert bold.style.font == "lato-black" and bold.style.background == "solid"
    assert bold.style.palette[0] == "#7a1010" and bold.style.text_color == "#ffffff"


def test_no_text_means_no_ocr_check(tmp_path) -> None:
    assert "ocr" not in plan_for("a calm landscape", tmp_path).checks


def test_reference_photo_of_a_face_becomes_a_person_subject(tmp_path, faces_dir, product_png) -> None:
    plan = plan_for('A 16:9 banner "MEET OUR CHEF"', tmp_path,
                    references=[faces_dir / "obama_1.jpg", product_png])
    kinds = [s.kind for s in plan.subjects]
    assert kinds == ["person", "product"]
    for subject in plan.subjects:
        r = subject.region
        assert 0 <= r.x and r.x + r.w <= 1 and 0 <= r.y and r.y + r.h <= 1
    # wide canvas: text on the left, subjects on the right
    assert plan.text[0].region.x + plan.text[0].region.w <= plan.subjects[0].region.x


def test_generation_prompt_spells_out_required_text_and_layout(tmp_path) -> None:
    plan = plan_for('Coffee shop poster "OPEN LATE"', tmp_path)
    prompt = generation_prompt(plan)
    assert '"OPEN LATE"' in prompt and "spelled exactly" in prompt
    assert f"{plan.width} x {plan.height}" in prompt


def test_prompt_templates_declare_the_variables_their_callers_fill() -> None:
    assert variables("generation") == {"prompt", "aspect_ratio", "width", "height", "text_block",
                                       "subject_block", "negative"}
    assert variables("correction") == {"prompt", "iteration", "feedback"}
    with pytest.raises(KeyError, match="feedback"):
        render("correction", prompt="x", iteration=2)


def test_the_briefs_style_words_win_over_colour_words_in_the_prompt_and_are_reported_unverified(tmp_path) -> None:
    from agent.loop.planning.requirements import requirements_for
    from agent.models import Brief

    brief = Brief(prompt='Mia flies a red kite; the sign says "KITE"', style="teal colours, soft gradient background")
    the_plan = RulePlanner().plan(brief, [], ArtifactStore(tmp_path))
    assert the_plan.style.palette == RulePlanner().plan(Brief(prompt="teal"), [], ArtifactStore(tmp_path)).style.palette
    assert the_plan.style.background == "gradient"
    assert "teal colours" in generation_prompt(the_plan), "a model backend is asked for the style too"
    unverified = [r.text for r in requirements_for(brief, the_plan) if r.verified_by is None]
    assert any("teal" in t for t in unverified)
