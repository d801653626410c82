"""The corrector picks the strategy a failing verdict calls for, given history and backend capabilities."""

from __future__ import annotations

from agent.backends.base import Capabilities
from agent.loop.correction import CorrectionContext, apply_action, correct
from agent.loop.selection import is_better, rank
from agent.models import STRATEGIES, Action, Box, Candidate, CheckSpec, ImageRef, Plan, Style, TextElement, Verdict

SHA = "a" * 64


def poster(**style) -> Plan:
    return Plan(prompt="p", width=680, height=1024, aspect_ratio="2:3", size="1K",
                text=[TextElement(id="headline", content="GRAND OPENING", region=Box(x=.1, y=.1, w=.8, h=.3))],
                style=Style(**{"font": "lato-hairline", "text_color": "#2b1d0e", "background": "texture",
                               "palette": ["#2b1d0e", "#7f5539", "#e6b450"], "text_scale": 0.3,
                               "texture_strength": 0.9, **style}),
                checks={"ocr": CheckSpec(threshold=0.9), "spec": CheckSpec(threshold=0.95)})


def cand(cid: str = "c1", w: int = 680, h: int = 1024) -> Candidate:
    return Candidate(id=cid, iteration=int(cid[1:2]), image=ImageRef(sha256=SHA, path=f"images/{SHA[:2]}/{SHA}.png", width=w, height=h),
                     backend="b", seed=0, plan_revision=0)


def ocr(score=0.5, read="GRAND OPNING", wrong=(("OPNING", "OPENING"),), cid="c1") -> Verdict:
    element = {"id": "headline", "expected": "GRAND OPENING", "read": read, "cer": 1 - score if read else 1.0,
               "word_accuracy": score if read else 0.0, "wrong_words": [list(w) for w in wrong], "box": [80, 110, 600, 400]}
    return Verdict(critic="ocr", candidate_id=cid, score=score, passed=False, threshold=0.9,
                   evidence={"elements": [element], "extra_text": []},
                   feedback="'OPNING' in the headline box at top centre should read 'OPENING'")


def ok(critic: str, cid: str = "c1", score: float = 1.0) -> Verdict:
    return Verdict(critic=critic, candidate_id=cid, score=score, passed=True, threshold=0.5)


def ctx(verdicts, history=(), caps=None, plan=None, **kw) -> CorrectionContext:
    return CorrectionContext(plan=plan or poster(), current=kw.pop("current", cand()), verdicts=list(verdicts),
                             history=list(history), iteration=len(history) + 2,
                             capabilities=caps or Capabilities(edit=True, mask=True), **kw)


def past(strategy: str, critic: str = "ocr") -> Action:
    return Action(iteration=2, strategy=strategy, reason=f"{critic} 0.50 < 0.90: ...", addresses=[critic])


def test_illegible_text_is_restyled_bigger_heavier_with_more_contrast() -> None:
    plan = poster()
    action = correct(ctx([ocr(0.0, read="", wrong=())]))
    assert action.strategy == "restyle_text"
    assert action.style["text_scale"] > plan.style.text_scale and action.style["font"] == "lato-light"
    assert action.style["text_color"] == "#ffffff" and action.style["text_plate"] is True


def test_first_misspelling_is_edited_in_place_when_the_backend_takes_masks() -> None:
    # policy (bench/quality.py): a masked edit repairs the word and keeps the rest; a re-prompt re-draws everything
    action = correct(ctx([ocr(), ok("spec")]))
    assert action.strategy == "edit_region" and action.base_candidate_id == "c1"
    assert any("O-P-E-N-I-N-G" in f for f in action.feedback)


def test_first_misspelling_without_masks_reprompts_with_the_word_spelled_letter_by_letter() -> None:
    action = correct(ctx([ocr(), ok("spec")], caps=Capabilities(edit=False)))
    assert action.strategy == "reprompt"
    assert any("O-P-E-N-I-N-G" in f for f in action.feedback)
    assert '"GRAND OPENING"' in action.prompt_addendum and "Keep everything else unchanged" in action.prompt_addendum
    assert action.seed is not None


def test_a_misspelling_with_a_global_failure_is_reprompted_with_every_critics_feedback() -> None:
    art = Verdict(critic="artifacts", candidate_id="c1", score=0.2, passed=False, threshold=0.5,
                  feedback="image is noisy: re-render clean, without grain")
    action = correct(ctx([ocr(), art, ok("spec")]))
    assert action.strategy == "reprompt" and action.reason.startswith("ocr ")
    assert any("O-P-E-N-I-N-G" in f for f in action.feedback) and any("grain" in f for f in action.feedback)


def test_text_and_face_failures_are_fixed_by_one_edit_with_both_boxes() -> None:
    face = Verdict(critic="face", candidate_id="c1", score=0.2, passed=False, threshold=0.5, feedback="drift",
                   evidence={"identities": [{"subject": "person1", "box": [300, 600, 400, 720], "same": False}],
                             "extra_faces": []})
    action = correct(ctx([ocr(), face]))
    assert action.strategy == "reanchor_identity" and action.base_candidate_id == "c1"  # the worse one leads
    assert "ocr " in action.reason and any("O-P-E-N-I-N-G" in f for f in action.feedback)
    assert len(action.regions) == 2, "two boxes, not one box around both"


def test_too_small_result_of_another_fix_is_delivered_upscaled() -> None:
    spec = Verdict(critic="spec", candidate_id="c1", score=0.45, passed=False, threshold=0.95, feedback="small",
                   evidence={"width": 680, "height": 1024, "requested": [1360, 2048],
                             "aspect_ratio": {"rel_error": 0.0}, "blank": False})
    action = correct(ctx([ocr(), spec]))
    assert action.strategy == "edit_region"
    assert any(f.startswith("upscale the result to 680x1024") for f in action.feedback)
    assert apply_action(poster(), action).deliver_at_planned_size
    no_upscale = correct(ctx([ocr(), spec], enabled=frozenset(STRATEGIES) - {"upscale"}))
    assert not any(f.startswith("upscale") for f in no_upscale.feedback)


def test_second_misspelling_edits_the_text_region_when_the_backend_can_edit() -> None:
    action = correct(ctx([ocr(), ok("spec")], history=[past("reprompt")]))
    assert action.strategy == "edit_region" and action.base_candidate_id == "c1"
    x0, y0, x1, y1 = action.regions[0].as_tuple()
    assert x0 <= 68 and y0 <= 102 and x1 >= 612 and y1 >= 400, "covers the planned region and the OCR box"


def test_misspelling_without_edit_support_is_typeset() -> None:
    caps = Capabilities(edit=False)
    action = correct(ctx([ocr(), ok("spec")], history=[past("reprompt")], caps=caps))
    assert action.strategy == "typeset_text" and action.elements == ["headline"]


def test_persistent_misspelling_after_an_edit_is_typeset() -> None:
    action = correct(ctx([ocr(), ok("spec")], history=[past("reprompt"), past("edit_region")]))
    assert action.strategy == "typeset_text"


def test_disabled_strategy_is_never_chosen() -> None:
    enabled = frozenset(STRATEGIES) - {"typeset_text", "edit_region"}
    action = correct(ctx([ocr(), ok("spec")], history=[past("reprompt"), past("edit_region")], enabled=enabled))
    assert action.strategy not in ("typeset_text", "edit_region")


def test_identity_drift_edits_the_face_region_with_references() -> None:
    face = Verdict(critic="face", candidate_id="c1", score=0.2, passed=False, threshold=0.5,
                   feedback="person1 does not look like the reference",
                   evidence={"identities": [{"subject": "person1", "box": [300, 300, 400, 420], "same": False}],
                             "extra_faces": []})
    action = correct(ctx([face, ok("ocr")]))
    assert action.strategy == "reanchor_identity" and action.base_candidate_id == "c1"
    assert action.regions[0].x0 < 300 and action.regions[0].x1 > 400
    again = correct(ctx([face, ok("ocr")], history=[past("reanchor_identity", "face")]))
    assert again.strategy == "reanchor_identity" and again.base_candidate_id == "c1", "a second edit: 85% vs a re-draw"
    third = correct(ctx([face, ok("ocr")], history=[past("reanchor_identity", "face")] * 2))
    assert third.strategy == "reanchor_identity" and third.base_candidate_id is None and third.seed is not None


def test_too_small_image_is_upscaled() -> None:
    spec = Verdict(critic="spec", candidate_id="c1", score=0.45, passed=False, threshold=0.95,
                   feedback="delivered 1024x576 but 2048x1152 (2K) was requested",
                   evidence={"width": 1024, "height": 576, "requested": [2048, 1152],
                             "aspect_ratio": {"rel_error": 0.0}, "blank": False})
    action = correct(ctx([spec, ok("ocr")], current=cand(w=1024, h=576)))
    assert action.strategy == "upscale" and action.base_candidate_id == "c1"


def test_artifacts_get_a_new_seed_then_best_of_n() -> None:
    art = Verdict(critic="artifacts", candidate_id="c1", score=0.2, passed=False, threshold=0.5, feedback="blurred")
    first = correct(ctx([art, ok("ocr")]))
    assert first.strategy == "new_seed"
    second = correct(ctx([art, ok("ocr")], history=[past("new_seed", "artifacts")]))
    assert second.strategy == "best_of_n" and second.drafts == 3


def test_best_of_n_draws_no_more_than_the_budget_pays_for() -> None:
    art = Verdict(critic="artifacts", candidate_id="c1", score=0.2, passed=False, threshold=0.5, feedback="blurred")
    history = [past("new_seed", "artifacts")]
    assert correct(ctx([art, ok("ocr")], history=history, max_drafts=2)).drafts == 2
    assert correct(ctx([art, ok("ocr")], history=history, max_drafts=1)).strategy == "new_seed"


def test_regression_restarts_from_the_best_candidate() -> None:
    best = cand("c1")
    current = cand("c2")
    best_verdicts = [ok("ocr", "c1"), Verdict(critic="artifacts", candidate_id="c1", score=0.4, passed=False,
                                              threshold=0.5, feedback="noise")]
    now = [ocr(cid="c2"), ok("artifacts", "c2")]
    action = correct(ctx(now, current=current, best=best, best_verdicts=best_verdicts))
    assert action.strategy == "restart_from_best" and action.base_candidate_id == "c1"
    assert "broke ocr" in action.feedback[0]


def test_measured_critics_are_fixed_before_the_vlm_judge() -> None:
    vlm = Verdict(critic="vlm", candidate_id="c1", score=0.1, passed=False, threshold=0.6, feedback="no mug handle")
    action = correct(ctx([vlm, ocr()]))
    assert action.reason.startswith("ocr ")


def test_apply_action_makes_a_new_validated_revision() -> None:
    plan = poster()
    new = apply_action(plan, correct(ctx([ocr(0.0, read="", wrong=())])))
    assert new.revision == plan.revision + 1
    assert new.style.font == "lato-light" and plan.style.font == "lato-hairline"


def test_selection_never_accepts_a_regression_as_better() -> None:
    best = rank([ok("ocr"), Verdict(critic="face", candidate_id="c", score=0.4, passed=False, threshold=0.5)])
    broke_ocr = rank([Verdict(critic="ocr", candidate_id="c", score=0.8, passed=False, threshold=0.9),
                      ok("face", score=1.0)])
    assert not is_better(broke_ocr, best)
    both = rank([ok("ocr"), ok("face")])
    assert is_better(both, best) and not is_better(best, both)
