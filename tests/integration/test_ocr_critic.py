"""OCR critic: real rapidocr on Pillow-rendered posters, plus pure matching tests without OCR."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from agent.models import Box, CheckSpec, Plan, TextElement, Verdict
from critics import critic_info
from critics.base import CheckContext, Critic
from critics.ocr import OcrCritic, OcrLine, compare_text, prepare_image, read_text, score_elements

FONTS = Path(__file__).resolve().parents[2] / "agent" / "backends" / "compose" / "fonts"
HEAD_BOX = Box(x=0.05, y=0.08, w=0.9, h=0.2)  # top centre
SUB_BOX = Box(x=0.1, y=0.32, w=0.8, h=0.1)  # centre
FOOT_BOX = Box(x=0.1, y=0.8, w=0.8, h=0.12)  # bottom centre


# --------------------------------------------------------------------------- helpers


def headline(content: str = "GRAND OPENING", **kw) -> TextElement:
    return TextElement(id="headline", content=content, role="headline", region=HEAD_BOX, **kw)


def subheading(content: str = "Saturday 10 May, 9am", **kw) -> TextElement:
    return TextElement(id="subheading", content=content, role="subheading", region=SUB_BOX, **kw)


def make_plan(*elements: TextElement, threshold: float | None = 0.9, width: int = 1024,
              height: int = 1024) -> Plan:
    checks = {"ocr": CheckSpec(threshold=threshold)} if threshold is not None else {}
    return Plan(prompt="a poster", width=width, height=height, aspect_ratio="1:1", size="1K",
                text=list(elements), checks=checks)


def render(items: list[tuple[str, Box, str]], size: tuple[int, int] = (1024, 1024),
           bg=(29, 43, 79), fg=(255, 255, 255), mode: str = "RGB") -> tuple[Image.Image, list[tuple]]:
    """Draw each (text, region, font file) centred in its region, as large as fits.

    Returns the image and each text's true pixel bbox.
    """
    w, h = size
    im = Image.new(mode, size, bg)
    d = ImageDraw.Draw(im)
    bboxes = []
    for text, box, font_file in items:
        x0, y0, x1, y1 = box.to_pixels(w, h)
        px = int((y1 - y0) * 0.7)
        font = ImageFont.truetype(str(FONTS / font_file), px)
        while px > 8 and d.textlength(text, font=font) > (x1 - x0) * 0.95:
            px -= 2
            font = ImageFont.truetype(str(FONTS / font_file), px)
        c = ((x0 + x1) / 2, (y0 + y1) / 2)
        d.text(c, text, font=font, fill=fg, anchor="mm")
        bboxes.append(d.textbbox(c, text, font=font, anchor="mm"))
    return im, bboxes


def poster(head: str | None = "GRAND OPENING", sub: str | None = "Saturday 10 May, 9am",
           extra: str | None = None, **kw) -> Image.Image:
    items = []
    if head is not None:
        items.append((head, HEAD_BOX, "Lato-Black.ttf"))
    if sub is not None:
        items.append((sub, SUB_BOX, "Lato-Regular.ttf"))
    if extra is not None:
        items.append((extra, FOOT_BOX, "LiberationSerif-Bold.ttf"))
    return render(items, **kw)[0]


def line(text: str, x0: float, y0: float, x1: float, y1: float, score: float = 0.99) -> OcrLine:
    return OcrLine(text=text, score=score, box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


def inside(inner, outer, margin: float = 0) -> bool:
    return (inner[0] >= outer[0] - margin and inner[1] >= outer[1] - margin
            and inner[2] <= outer[2] + margin and inner[3] <= outer[3] + margin)


@pytest.fixture(scope="module")
def engine():
    """The shared rapidocr engine, loaded once for the module."""
    from critics.ocr.engines import rapidocr_engine

    return rapidocr_engine()


@pytest.fixture(scope="module")
def critic(engine) -> OcrCritic:
    return OcrCritic()


CTX = CheckContext(candidate_id="c1")


# --------------------------------------------------------------------------- engine


def test_engine_is_one_shared_instance_with_quiet_logging(engine):
    from critics.ocr.engines import engine_loaded, rapidocr_engine

    assert rapidocr_engine() is engine
    assert engine_loaded("rapidocr")
    assert logging.getLogger("RapidOCR").getEffectiveLevel() >= logging.WARNING


def test_engine_can_be_called_from_two_threads_at_once(engine):
    a = poster(size=(512, 512))
    b = poster(head="SUMMER SALE", sub="50% off everything", size=(512, 512))
    serial = {k: tuple(ln.text for ln in read_text(im)) for k, im in (("a", a), ("b", b))}
    got: dict[str, list[tuple[str, ...]]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(key: str, im: Image.Image) -> None:
        try:
            barrier.wait()
            got[key].append(tuple(ln.text for ln in read_text(im)))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k, im)) for k, im in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert got == {"a": [serial["a"]], "b": [serial["b"]]}
    assert "GRAND OPENING" in serial["a"] and "SUMMER SALE" in serial["b"]


def test_image_goes_to_rapidocr_as_bgr_array():
    arr, scale = prepare_image(Image.new("RGB", (10, 10), (255, 0, 0)))
    assert scale == 1.0 and arr.dtype == np.uint8 and arr.shape == (10, 10, 3)
    assert arr[0, 0].tolist() == [0, 0, 255]


# --------------------------------------------------------------------------- critic on real OCR


def test_ocr_critic_satisfies_the_critic_protocol():
    assert isinstance(OcrCritic(), Critic)
    assert OcrCritic.name == "ocr"


def test_correct_poster_with_headline_and_subheading_passes(critic):
    plan = make_plan(headline(), subheading())
    v = critic.check(poster(), plan, CTX)
    assert isinstance(v, Verdict)
    assert v.critic == "ocr" and v.candidate_id == "c1"
    assert v.passed and v.score >= 0.95 and v.threshold == 0.9 and v.error is None
    assert v.feedback == "all 2 text elements read correctly"
    ev = v.evidence
    assert ev["engine"] == "rapidocr" and ev["downscaled"] is False
    assert [e["id"] for e in ev["elements"]] == ["headline", "subheading"]
    for e in ev["elements"]:
        assert e["cer"] == 0.0 and e["word_accuracy"] == 1.0 and e["in_region"] is True
        assert inside(e["box"], e["region"], margin=20)
    assert ev["extra_text"] == []
    assert {ln["text"] for ln in ev["lines"]} >= {"GRAND OPENING"}
    assert 0 < v.seconds < 10


def test_ocr_critic_flags_misspelled_headline(critic):
    # 1 wrong char in 12 is only CER 0.083, but one of two words is wrong: the score is
    # min(1 - CER, word accuracy) = 0.5, so the default threshold fails it.
    plan = make_plan(headline("GRAND OPENING"), subheading(), threshold=None)
    v = critic.check(poster(head="GRAND OPNING"), plan, CTX)
    assert not v.passed and v.threshold == critic_info("ocr").threshold
    assert v.score == pytest.approx(0.5, abs=1e-6)
    assert "'OPNING'" in v.feedback and "'OPENING'" in v.feedback
    assert "headline" in v.feedback and "top centre" in v.feedback
    head = v.evidence["elements"][0]
    assert head["read"] == "GRAND OPNING"
    assert head["word_accuracy"] == 0.5
    assert head["wrong_words"] == [["OPNING", "OPENING"]]


def test_a_lenient_threshold_passes_a_near_miss_but_still_names_it_in_feedback(critic):
    v = critic.check(poster(head="GRAND OPNING"), make_plan(headline(), subheading(), threshold=0.5), CTX)
    assert v.passed
    assert "closest miss" in v.feedback and "'OPNING'" in v.feedback


def test_missing_subheading_fails_and_says_missing(critic):
    v = critic.check(poster(sub=None), make_plan(headline(), subheading()), CTX)
    assert not v.passed and v.score == 0.0
    assert "subheading" in v.feedback and "missing" in v.feedback
    assert "Saturday 10 May, 9am" in v.feedback
    sub = v.evidence["elements"][1]
    assert sub["cer"] == 1.0 and sub["read"] == "" and sub["box"] is None and sub["in_region"] is False


def test_case_sensitive_element_fails_on_wrong_case_while_default_passes(critic):
    im = poster(head="Grand Opening", sub=None)
    assert critic.check(im, make_plan(headline("GRAND OPENING")), CTX).passed
    v = critic.check(im, make_plan(headline("GRAND OPENING", case_sensitive=True)), CTX)
    assert not v.passed
    assert "'Grand'" in v.feedback and "'GRAND'" in v.feedback
    assert "missing" not in v.feedback


def test_whitespace_differences_do_not_fail(critic):
    # The headline is drawn on two lines; the plan has stray whitespace.
    im, _ = render([("GRAND", Box(x=0.1, y=0.05, w=0.8, h=0.14), "Lato-Black.ttf"),
                    ("OPENING", Box(x=0.1, y=0.19, w=0.8, h=0.14), "Lato-Black.ttf")])
    v = critic.check(im, make_plan(headline("  GRAND \n  OPENING ")), CTX)
    assert v.passed and v.score == 1.0, v.feedback
    assert v.feedback == "the 1 text element read correctly"
    assert v.evidence["elements"][0]["in_region"] is True


def test_extra_invented_text_is_listed_in_extra_text(critic):
    v = critic.check(poster(extra="XQZV BLORP KRUMTH"), make_plan(headline(), subheading()), CTX)
    assert not v.passed, "confident invented text outside subjects fails the verdict"
    extra = [e["text"] for e in v.evidence["extra_text"]]
    assert len(extra) == 1 and "BLORP" in extra[0].upper()
    assert "extra text" in v.feedback and "bottom centre" in v.feedback


def test_4096_wide_poster_is_downscaled_and_boxes_come_back_in_original_pixels(critic):
    size = (4096, 2304)
    im, bbs = render([("GRAND OPENING", Box(x=0.1, y=0.1, w=0.5, h=0.2), "Lato-Black.ttf")], size=size)
    el = TextElement(id="headline", content="GRAND OPENING", region=Box(x=0.1, y=0.1, w=0.5, h=0.2))
    plan = Plan(prompt="p", width=4096, height=2304, aspect_ratio="16:9", size="4K", text=[el],
                checks={"ocr": CheckSpec(threshold=0.9)})
    v = critic.check(im, plan, CTX)
    assert v.passed and v.evidence["downscaled"] is True
    box, true = v.evidence["elements"][0]["box"], bbs[0]
    # Detector quads are the glyph area grown by rapidocr's unclip padding (~1/3 text height).
    assert inside(box, true, margin=0.4 * (true[3] - true[1]))
    assert abs((box[0] + box[2]) / 2 - (true[0] + true[2]) / 2) < 0.01 * size[0]
    assert abs((box[1] + box[3]) / 2 - (true[1] + true[3]) / 2) < 0.01 * size[1]
    cover_w = (min(box[2], true[2]) - max(box[0], true[0])) / (true[2] - true[0])
    assert cover_w > 0.95 and box[2] > 2048  # really in original (not downscaled) pixels


def test_image_without_text_and_no_required_text_is_not_checked(critic):
    plan = make_plan()
    assert critic.applies(plan) is False
    v = critic.check(Image.new("RGB", (512, 512), (240, 240, 240)), plan, CTX)
    assert v.passed and v.score == 1.0


def test_applies_when_plan_has_text_unless_ocr_is_disabled():
    assert OcrCritic().applies(make_plan(headline()))
    plan = make_plan(headline())
    plan.checks["ocr"] = CheckSpec(threshold=0.9, enabled=False)
    assert not OcrCritic().applies(plan)


def test_blank_image_fails_when_text_is_required(critic):
    v = critic.check(Image.new("RGB", (1024, 1024), (29, 43, 79)), make_plan(headline()), CTX)
    assert not v.passed and v.score == 0.0 and v.error is None
    assert v.feedback == "headline 'GRAND OPENING' at top centre is missing or illegible (OCR read nothing matching it)"


@pytest.mark.parametrize("image", [
    pytest.param(Image.new("RGB", (1, 1)), id="1x1"),
    pytest.param(Image.new("RGB", (0, 0)), id="0x0"),
    pytest.param(Image.new("L", (64, 32), 128), id="grey"),
    pytest.param(Image.new("I;16", (64, 32), 1000), id="16-bit"),
    pytest.param(Image.new("RGBA", (64, 32), (0, 0, 0, 0)), id="transparent"),
])
def test_odd_images_give_a_failing_verdict_instead_of_crashing(critic, image):
    v = critic.check(image, make_plan(headline()), CTX)
    assert not v.passed and v.error is None and "missing" in v.feedback


@pytest.mark.parametrize("mode", ["L", "P", "RGBA"])
def test_grey_palette_and_transparent_posters_are_read(critic, mode):
    if mode == "RGBA":  # dark text on a transparent background: flattened onto white
        im = poster(sub=None, bg=(0, 0, 0, 0), fg=(20, 20, 20, 255), mode="RGBA")
    else:
        im = poster(sub=None).convert(mode)
    v = critic.check(im, make_plan(headline()), CTX)
    assert v.passed and v.score == 1.0, v.feedback


def test_engine_failure_gives_failing_verdict_with_error():
    def broken(_arr):
        raise RuntimeError("onnx session died")

    v = OcrCritic(engine=broken).check(poster(), make_plan(headline()), CTX)
    assert not v.passed and v.score == 0.0
    assert v.error and "onnx session died" in v.error
    assert v.feedback.startswith("OCR failed")


def test_evidence_is_compact(critic):
    v = critic.check(poster(), make_plan(headline(), subheading()), CTX)
    for e in v.evidence["elements"] + v.evidence["lines"]:
        assert all(isinstance(x, int) for x in e["box"])
    for ln in v.evidence["lines"]:
        assert ln["score"] == round(ln["score"], 3)


# --------------------------------------------------------------------------- score_elements (no OCR)

SIZE = (1024, 1024)


def test_cer_is_edit_distance_over_expected_length_without_spaces():
    r = score_elements([headline()], [line("GRAND OPNING", 60, 100, 960, 260)], SIZE)
    m = r.elements[0]
    assert m.cer == pytest.approx(1 / 12)  # "GRANDOPENING" -> 12 chars, one deleted
    assert r.score == pytest.approx(0.5)  # min(1 - CER, word accuracy 1/2)
    assert m.word_accuracy == 0.5 and m.wrong_words == [("OPNING", "OPENING")]


def test_expected_text_is_found_inside_a_longer_line():
    r = score_elements([headline()], [line("WELCOME TO OUR GRAND OPENING TODAY", 40, 100, 980, 260)], SIZE)
    assert r.elements[0].cer == 0.0 and r.elements[0].read == "GRAND OPENING"


def test_text_split_over_lines_is_joined_in_reading_order():
    lines = [line("OPENING", 520, 100, 960, 260), line("GRAND", 60, 104, 500, 262),
             line("Saturday 10 May,", 200, 330, 600, 420), line("9am", 610, 332, 800, 421)]
    r = score_elements([headline(), subheading()], lines, SIZE)
    assert [m.cer for m in r.elements] == [0.0, 0.0]
    assert r.elements[0].box == (60, 100, 960, 262)
    assert r.elements[1].read == "Saturday 10 May, 9am"


def test_dropped_spaces_are_ignored_unless_exact():
    lines = [line("GRANDOPENING", 60, 100, 960, 260)]
    assert score_elements([headline()], lines, SIZE).elements[0].cer == 0.0
    m = score_elements([headline(exact=True)], lines, SIZE).elements[0]
    assert m.cer == pytest.approx(1 / 13)  # the space counts when exact
    assert m.word_accuracy == 1.0  # ...but every word is spelled right


def test_misspelling_without_spaces_still_names_the_wrong_word():
    m = score_elements([headline()], [line("GRANDOPENlNG", 60, 100, 960, 260)], SIZE).elements[0]
    assert m.wrong_words == [("OPENlNG", "OPENING")]


def test_case_counts_only_for_case_sensitive_elements():
    lines = [line("Grand Opening", 60, 100, 960, 260)]
    assert score_elements([headline()], lines, SIZE).elements[0].cer == 0.0
    m = score_elements([headline(case_sensitive=True)], lines, SIZE).elements[0]
    assert m.found and m.cer == pytest.approx(10 / 12)
    assert m.wrong_words == [("Grand", "GRAND"), ("Opening", "OPENING")]


def test_nfkc_folds_full_width_characters():
    r = score_elements([headline("ref: CAT")], [line("ｒｅｆ：ＣＡＴ", 60, 100, 960, 260)], SIZE)
    assert r.elements[0].cer == 0.0


def test_nothing_read_means_missing_with_cer_one():
    r = score_elements([headline()], [], SIZE)
    assert r.score == 0.0 and not r.elements[0].found and r.elements[0].cer == 1.0
    r = score_elements([headline()], [line("Saturday 10 May", 200, 330, 600, 420)], SIZE)
    assert not r.elements[0].found and r.elements[0].read == ""


def test_worst_element_decides_the_score():
    lines = [line("GRAND OPENING", 60, 100, 960, 260), line("Saturdy 10 Mai, 9am", 200, 330, 800, 420)]
    r = score_elements([headline(), subheading()], lines, SIZE)
    assert r.elements[0].cer == 0.0
    assert r.elements[1].cer == pytest.approx(2 / 17)  # "Saturday10May,9am": 17 chars
    assert r.score == pytest.approx(min(1 - 2 / 17, r.elements[1].word_accuracy))
    assert r.worst().id == "subheading"


def test_no_elements_scores_one():
    r = score_elements([], [line("anything", 0, 0, 10, 10)], SIZE)
    assert r.score == 1.0 and r.elements == []


def test_extra_text_needs_confidence_and_no_resemblance():
    lines = [line("GRAND OPENING", 60, 100, 960, 260),
             line("XQZV BLORP", 100, 850, 900, 950),
             line("WQKZ", 100, 950, 300, 1000, score=0.3),  # low confidence: ignored
             line("GRAND OPEN", 100, 600, 900, 700)]  # resembles the headline: not extra
    r = score_elements([headline()], lines, SIZE)
    assert [ln.text for ln in r.extra_text] == ["XQZV BLORP"]


def test_region_is_checked_and_preferred_for_duplicates():
    far = line("GRAND OPENING", 60, 850, 960, 990)
    r = score_elements([headline()], [far], SIZE)
    assert r.elements[0].cer == 0.0 and r.elements[0].in_region is False
    near = line("GRAND OPENING", 60, 100, 960, 260)
    r = score_elements([headline()], [far, near], SIZE)
    assert r.elements[0].in_region is True and r.elements[0].box == (60, 100, 960, 260)


def test_compare_text_reports_missing_words():
    cer, wacc, wrong = compare_text("GRAND OPENING TODAY", "GRAND TODAY")
    assert cer == pytest.approx(7 / 17) and wacc == pytest.approx(2 / 3)
    assert wrong == [("", "OPENING")]


# --------------------------------------------------------------------------- optional tesseract engine


def test_unknown_ocr_engine_is_rejected():
    from critics.ocr import OcrCritic

    with pytest.raises(ValueError, match="unknown OCR engine 'easyocr'"):
        OcrCritic("easyocr")


def test_tesseract_engine_reads_a_clean_poster_when_installed():
    from critics.ocr import OcrCritic
    from critics.ocr.engines import tesseract_available

    if not tesseract_available():
        pytest.skip("optional engine: tesseract binary or pytesseract not installed")
    critic = OcrCritic("tesseract")
    v = critic.check(poster(), make_plan(headline(), subheading()), CTX)
    assert v.evidence["engine"] == "tesseract"
    assert v.passed, v.feedback
    wrong = critic.check(poster(head="GRAND OPNING"), make_plan(headline(), subheading()), CTX)
    assert not wrong.passed and "OPNING" in wrong.feedback


def test_text_inside_a_reference_subject_region_is_not_counted_as_invented(critic):
    from agent.models import ImageRef, Subject

    plan = make_plan(headline(), subheading())
    label_area = Subject(id="product1", kind="product", region=Box(x=0.0, y=0.6, w=1.0, h=0.4),
                         reference=ImageRef(sha256="b" * 64, path=f"images/bb/{'b' * 64}.png", width=10, height=10))
    plan = plan.model_copy(update={"subjects": [label_area]})
    v = critic.check(poster(extra="XQZV BLORP KRUMTH"), plan, CTX)
    assert v.passed, "a product photo's own label is not invented text"
    assert v.evidence["invented_text"] == [] and v.evidence["extra_text"]
