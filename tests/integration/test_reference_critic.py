"""Reference critic: each product reference found in the candidate (SIFT + RANSAC with colour; a colour and
silhouette search for plain objects), or named as missing.

Every image is made here: product renders drawn with Pillow on a white backdrop (a labelled bottle, a plain
mug), a real object cut from scikit-image's coffee photo, and scikit-image's photos as the scenes they are
pasted into. References go through a real ArtifactStore, as in a run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFont
from skimage import data

from agent.interfaces.cli import main
from agent.loop.coverage import assess
from agent.loop.planning.requirements import requirements_for
from agent.models import Box, Brief, CheckSpec, ImageRef, Plan, Subject, Verdict
from agent.models.evidence import ReferenceEvidence, read_evidence
from agent.runtime.store import ArtifactStore
from critics import checks_for, critic_info, get_critic
from critics.base import CheckContext, Critic
from critics.reference import ReferenceCritic, prepare_reference

REPO = Path(__file__).resolve().parents[2]
FONT = REPO / "agent" / "backends" / "compose" / "fonts" / "Lato-Black.ttf"
RED, BLUE = (200, 35, 35), (30, 80, 200)
WHOLE = Box(x=0, y=0, w=1, h=1)


# --------------------------------------------------------------------------- images


def bottle(body: tuple[int, int, int] = (30, 120, 80)) -> tuple[Image.Image, Image.Image]:
    """A labelled bottle on white, and its cut-out alpha."""
    img, alpha = Image.new("RGB", (240, 420), "white"), Image.new("L", (240, 420), 0)
    d, a = ImageDraw.Draw(img), ImageDraw.Draw(alpha)
    for draw, fill in ((d, tuple(max(0, c - 10) for c in body)), (a, 255)):
        draw.rounded_rectangle((95, 10, 145, 90), radius=8, fill=fill)
    for draw, fill in ((d, body), (a, 255)):
        draw.rounded_rectangle((40, 80, 200, 410), radius=40, fill=fill)
    d.rectangle((40, 170, 200, 320), fill=(245, 235, 210))
    d.text((120, 205), "GREEN", font=ImageFont.truetype(str(FONT), 34), fill=(150, 30, 30), anchor="mm")
    d.text((120, 248), "VALLEY", font=ImageFont.truetype(str(FONT), 28), fill=(30, 60, 40), anchor="mm")
    d.text((120, 290), "spring water 1L", font=ImageFont.truetype(str(FONT), 16), fill=(60, 60, 60), anchor="mm")
    return img, alpha


def plain(shape: str, colour: tuple[int, int, int] = RED) -> tuple[Image.Image, Image.Image]:
    """A one-colour object on white (a mug with a handle, or a ball): almost no texture to match."""
    img, alpha = Image.new("RGB", (360, 300), "white"), Image.new("L", (360, 300), 0)
    d, a = ImageDraw.Draw(img), ImageDraw.Draw(alpha)
    if shape == "mug":
        for draw, fill, hole in ((d, colour, "white"), (a, 255, 0)):
            draw.ellipse((210, 90, 330, 230), fill=fill)
            draw.ellipse((240, 120, 300, 200), fill=hole)
            draw.rounded_rectangle((50, 40, 260, 280), radius=24, fill=fill)
    else:
        for draw, fill in ((d, colour), (a, 255)):
            draw.ellipse((50, 20, 310, 280), fill=fill)
    return img, alpha


def coffee_cup() -> Image.Image:
    """A real object: the cup and saucer of scikit-image's coffee photo."""
    return Image.fromarray(data.coffee()).crop((130, 10, 470, 330))


def scene(name: str = "chelsea", size: tuple[int, int] = (1024, 1024)) -> Image.Image:
    return Image.fromarray(getattr(data, name)()).convert("RGB").resize(size, Image.Resampling.LANCZOS)


def paste(bg: Image.Image, obj: Image.Image, alpha: Image.Image | None, at: tuple[int, int], *, scale: float = 1.0,
          rotate: float = 0.0, brightness: float = 1.0) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """`obj` pasted into a copy of `bg` at `at`; returns the image and the object's true box."""
    rgba = obj.convert("RGBA")
    rgba.putalpha(alpha if alpha is not None else Image.new("L", obj.size, 255))
    rgba = rgba.resize((round(obj.width * scale), round(obj.height * scale)), Image.Resampling.LANCZOS)
    if rotate:
        rgba = rgba.rotate(rotate, resample=Image.Resampling.BICUBIC, expand=True)
    rgb = ImageEnhance.Brightness(rgba.convert("RGB")).enhance(brightness)
    out = bg.copy()
    out.paste(rgb, at, rgba.getchannel("A"))
    ys, xs = np.nonzero(np.asarray(rgba.getchannel("A")) > 127)
    return out, (at[0] + int(xs.min()), at[1] + int(ys.min()), at[0] + int(xs.max()) + 1, at[1] + int(ys.max()) + 1)


def iou(a: list[int] | tuple[int, ...], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


@pytest.fixture(scope="module")
def critic() -> ReferenceCritic:
    return ReferenceCritic()


def product_plan(store: ArtifactStore, *refs: tuple[str, Image.Image],
                 threshold: float | None = None) -> tuple[Plan, list[ImageRef]]:
    """A plan with one product subject per (id, reference image), stored in `store`."""
    stored = [store.put_image(img) for _, img in refs]
    subjects = [Subject(id=sid, kind="product", reference=ref, region=WHOLE) for (sid, _), ref in zip(refs, stored)]
    checks = {"reference": CheckSpec(threshold=threshold)} if threshold is not None else {}
    return Plan(prompt="a product shot", width=1024, height=1024, aspect_ratio="1:1", size="1K", subjects=subjects,
                checks=checks), stored


def run_check(critic: ReferenceCritic, image: Image.Image, plan: Plan, store: ArtifactStore,
              refs: list[ImageRef]) -> tuple[Verdict, ReferenceEvidence]:
    v = critic.check(image, plan, CheckContext(candidate_id="c1", store=store, references=refs))
    return v, read_evidence(v, ReferenceEvidence)


# --------------------------------------------------------------------------- protocol and registry


def test_reference_critic_is_registered_and_applies_only_to_plans_with_product_subjects(store) -> None:
    critic = get_critic("reference")
    assert isinstance(critic, Critic) and isinstance(critic, ReferenceCritic)
    info = critic_info("reference")
    assert info.on_by_default and info.measured and info.evidence is ReferenceEvidence and info.threshold == 0.5
    assert "bench/reference.py" in info.threshold_source and info.strategies == ("reprompt", "new_seed")
    plan, _ = product_plan(store, ("bottle", bottle()[0]))
    assert critic.applies(plan) and "reference" in checks_for(plan)  # type: ignore[attr-defined]
    person = plan.model_copy(update={"subjects": [plan.subjects[0].model_copy(update={"kind": "person"})]})
    assert not critic.applies(person) and "reference" not in checks_for(person)  # type: ignore[attr-defined]
    disabled = plan.model_copy(update={"checks": {"reference": CheckSpec(threshold=0.5, enabled=False)}})
    assert not critic.applies(disabled)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- found, with its box


def test_reference_critic_finds_a_bottle_shown_at_60_percent_of_its_size_with_its_box(store, critic) -> None:
    ref, alpha = bottle()
    image, truth = paste(scene(), ref, alpha, (500, 300), scale=0.6)
    plan, refs = product_plan(store, ("bottle.png", ref))
    v, ev = run_check(critic, image, plan, store, refs)
    (found,) = ev.references
    assert v.passed and v.score >= 0.5 and found.found and found.method == "features"
    assert found.inliers >= 10 and (found.colour or 0) >= 0.8
    assert found.box is not None and iou(list(found.box.as_tuple()), truth) >= 0.8
    assert v.feedback.startswith("reference 1 (bottle.png) found")


def test_reference_critic_finds_a_bottle_rotated_10_degrees(store, critic) -> None:
    ref, alpha = bottle()
    image, truth = paste(scene("rocket"), ref, alpha, (200, 350), scale=0.8, rotate=10)
    plan, refs = product_plan(store, ("bottle", ref))
    v, ev = run_check(critic, image, plan, store, refs)
    assert v.passed and ev.references[0].found
    assert iou(list(ev.references[0].box.as_tuple()), truth) >= 0.7  # type: ignore[union-attr]


@pytest.mark.parametrize("brightness", [0.75, 1.25])
def test_reference_critic_finds_a_real_cup_under_25_percent_lighting_change(store, critic, brightness) -> None:
    cup = coffee_cup()
    image, truth = paste(scene("chelsea"), cup, None, (560, 520), scale=0.7, brightness=brightness)
    plan, refs = product_plan(store, ("cup", cup))
    v, ev = run_check(critic, image, plan, store, refs)
    assert v.passed and ev.references[0].found and (ev.references[0].colour or 0) >= 0.7
    assert iou(list(ev.references[0].box.as_tuple()), truth) >= 0.8  # type: ignore[union-attr]


def test_reference_critic_finds_a_partly_covered_bottle(store, critic) -> None:
    ref, alpha = bottle()
    image, truth = paste(scene("rocket"), ref, alpha, (400, 300), scale=0.8)
    ImageDraw.Draw(image).rectangle((truth[0], truth[1], truth[0] + (truth[2] - truth[0]) // 3, truth[3]),
                                    fill=(90, 90, 100))
    plan, refs = product_plan(store, ("bottle", ref))
    v, ev = run_check(critic, image, plan, store, refs)
    assert v.passed and ev.references[0].found


# --------------------------------------------------------------------------- not found


def test_reference_critic_fails_an_image_without_the_bottle_naming_it(store, critic) -> None:
    plan, refs = product_plan(store, ("bottle.png", bottle()[0]))
    v, ev = run_check(critic, scene("astronaut"), plan, store, refs)
    assert not v.passed and v.score < 0.5 and not ev.references[0].found and ev.references[0].box is None
    assert v.feedback.startswith("reference 1 (bottle.png) not found")


def test_two_references_one_missing_the_score_and_feedback_name_the_missing_one(store, critic) -> None:
    ref, alpha = bottle()
    cup = coffee_cup()
    image, _ = paste(scene("chelsea"), ref, alpha, (80, 420), scale=0.8)
    plan, refs = product_plan(store, ("bottle.png", ref), ("cup.png", cup))
    v, ev = run_check(critic, image, plan, store, refs)
    by_name = {r.name: r for r in ev.references}
    assert by_name["bottle.png"].found and not by_name["cup.png"].found
    assert v.score == pytest.approx(by_name["cup.png"].similarity) and not v.passed
    assert "reference 2 (cup.png) not found" in v.feedback and "reference 1" not in v.feedback
    assert [m.name for m in ev.missing(v.threshold)] == ["cup.png"]
    both, _ = paste(image, cup, None, (560, 520), scale=0.7)
    v2, ev2 = run_check(critic, both, plan, store, refs)
    assert v2.passed and all(r.found for r in ev2.references) and v2.feedback.startswith("all 2 reference objects")


def test_a_bottle_in_another_colour_is_not_the_reference(store, critic) -> None:
    ref, _ = bottle()
    other, alpha = bottle(body=(170, 40, 150))  # same label and shape, a purple bottle
    image, _ = paste(scene(), other, alpha, (500, 300), scale=0.8)
    plan, refs = product_plan(store, ("bottle.png", ref))
    v, ev = run_check(critic, image, plan, store, refs)
    assert not v.passed and not ev.references[0].found and ev.references[0].inliers >= 10
    assert "colours differ" in v.feedback


# --------------------------------------------------------------------------- low texture


def test_a_plain_mug_is_found_by_its_colour_and_silhouette_at_60_percent(store, critic) -> None:
    mug, alpha = plain("mug")
    image, truth = paste(scene("astronaut"), mug, alpha, (600, 80), scale=0.6)
    plan, refs = product_plan(store, ("mug.png", mug))
    assert not prepare_reference(mug).textured  # few keypoints: the fallback runs
    v, ev = run_check(critic, image, plan, store, refs)
    (found,) = ev.references
    assert v.passed and found.found and found.method == "template"
    assert iou(list(found.box.as_tuple()), truth) >= 0.8  # type: ignore[union-attr]


def test_a_plain_watch_in_several_flat_colours_is_found_on_a_background_like_its_strap(store, critic) -> None:
    """Its colours alone cover only part of it (strap, bezel, face): the whole stands out from the backdrop."""
    watch = Image.new("RGB", (300, 400), (246, 246, 244))
    d = ImageDraw.Draw(watch)
    d.rectangle((120, 0, 180, 400), fill=(92, 60, 40))
    d.ellipse((70, 120, 230, 280), fill=(190, 190, 200))
    d.ellipse((85, 135, 215, 265), fill=(20, 30, 70))
    alpha = Image.fromarray(((np.asarray(watch).astype(int) - 246).__abs__().sum(axis=2) > 20).astype(np.uint8) * 255)
    ground = np.zeros((768, 1024, 3), np.uint8)
    ground[...] = np.linspace([110, 50, 10], [230, 110, 20], 1024).astype(np.uint8)[None, :, :]
    image, truth = paste(Image.fromarray(ground), watch, alpha, (600, 200), scale=0.9)
    plan, refs = product_plan(store, ("watch.png", watch))
    v, ev = run_check(critic, image, plan, store, refs)
    (found,) = ev.references
    assert v.passed and found.found, v.feedback
    assert iou(list(found.box.as_tuple()), truth) >= 0.8  # type: ignore[union-attr]


@pytest.mark.parametrize("decoy", [("ball", RED), ("mug", BLUE)])
def test_a_red_ball_or_a_blue_mug_is_not_the_plain_red_mug(store, critic, decoy) -> None:
    mug, _ = plain("mug")
    other, alpha = plain(*decoy)
    image, _ = paste(scene("astronaut"), other, alpha, (600, 80), scale=0.6)
    plan, refs = product_plan(store, ("mug.png", mug))
    v, ev = run_check(critic, image, plan, store, refs)
    assert not v.passed and not ev.references[0].found
    assert "reference 1 (mug.png) not found" in v.feedback


# --------------------------------------------------------------------------- pixloop check


def test_check_with_a_faceless_reference_runs_the_reference_critic_and_fails_without_the_object(
        tmp_path: Path, capsys) -> None:
    ref, alpha = bottle()
    ref.save(tmp_path / "bottle.png")
    bg = scene("coffee", (768, 512))
    bg.save(tmp_path / "portrait.png")
    code = main(["check", str(tmp_path / "portrait.png"), "--reference", str(tmp_path / "bottle.png")])
    out = capsys.readouterr().out
    assert code == 3 and "some critics failed" in out
    row = next(line for line in out.splitlines() if line.startswith("reference "))
    assert "FAIL" in row and "reference 1 (bottle.png) not found" in row
    paste(bg, ref, alpha, (420, 100), scale=0.8)[0].save(tmp_path / "ad.png")
    code = main(["check", str(tmp_path / "ad.png"), "--reference", str(tmp_path / "bottle.png"), "--json"])
    result = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in result["critics"]}
    assert code == 0 and rows["reference"]["passed"] and "face" not in rows
    (found,) = rows["reference"]["evidence"]["references"]
    assert found["found"] and found["name"] == "bottle.png" and found["box"]


def test_check_sends_a_person_to_the_face_critic_and_an_object_to_the_reference_critic(
        tmp_path: Path, capsys, faces_dir: Path) -> None:
    ref, alpha = bottle()
    ref.save(tmp_path / "bottle.png")
    image = scene("coffee")
    image.paste(Image.open(faces_dir / "obama_2.jpg").convert("RGB").resize((300, 300)), (60, 60))
    paste(image, ref, alpha, (600, 500), scale=0.8)[0].save(tmp_path / "both.png")
    code = main(["check", str(tmp_path / "both.png"), "--reference", str(faces_dir / "obama_1.jpg"),
                 "--reference", str(tmp_path / "bottle.png"), "--critics", "face,reference", "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["critics"]}
    assert code == 0, rows
    assert [i["subject"] for i in rows["face"]["evidence"]["identities"]] == ["person1"]
    assert [(r["reference"], r["name"], r["found"]) for r in rows["reference"]["evidence"]["references"]] == [
        (2, "bottle.png", True)]


# --------------------------------------------------------------------------- requirements


def test_a_person_and_two_products_are_three_requirements_each_passed_or_failed_on_its_own(
        store, critic, faces_dir: Path) -> None:
    ref, alpha = bottle()
    mug, _ = plain("mug")
    person = store.put_file(faces_dir / "obama_1.jpg")
    products = [store.put_image(ref), store.put_image(mug)]
    plan = Plan(prompt="our host with the bottle and the mug", width=1024, height=1024, aspect_ratio="1:1",
                size="1K", subjects=[Subject(id="person1", kind="person", reference=person, region=WHOLE),
                                     Subject(id="product2", kind="product", reference=products[0], region=WHOLE),
                                     Subject(id="product3", kind="product", reference=products[1], region=WHOLE)])
    plan.checks = checks_for(plan)
    assert {"face", "reference"} <= set(plan.checks)
    reqs = [r for r in requirements_for(Brief(prompt=plan.prompt), plan) if r.kind in ("identity", "object")]
    assert [(r.kind, r.ref, r.verified_by) for r in reqs] == [
        ("identity", "person1", "face"), ("object", "product2", "reference"), ("object", "product3", "reference")]

    image = scene("coffee")
    image.paste(Image.open(faces_dir / "obama_2.jpg").convert("RGB").resize((300, 300)), (60, 60))
    image, _ = paste(image, ref, alpha, (600, 500), scale=0.8)  # the bottle, but no mug
    ctx = CheckContext(candidate_id="c1", store=store, references=[person, *products])
    verdicts = [get_critic(name).check(image, plan, ctx) for name in ("face", "reference")]
    status = {r.ref: (r.status, r.detail) for r in assess(reqs, verdicts)}
    assert status["person1"] == ("passed", "") and status["product2"] == ("passed", "")
    assert status["product3"] == ("failed", "not found in the image")


def test_a_run_with_two_product_references_verifies_each_one(tmp_path: Path, capsys) -> None:
    bottle()[0].save(tmp_path / "bottle.png")
    plain("mug")[0].save(tmp_path / "mug.png")
    code = main(["run", "A poster of this bottle next to this mug", "--reference", str(tmp_path / "bottle.png"),
                 "--reference", str(tmp_path / "mug.png"), "--out", str(tmp_path / "run"), "-q"])
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    objects = [r for r in report["requirements"] if r["kind"] == "object"]
    assert code == 0 and [(r["ref"], r["verified_by"], r["status"]) for r in objects] == [
        ("product1", "reference", "passed"), ("product2", "reference", "passed")]


def test_check_asking_for_the_reference_critic_with_only_a_person_says_it_needs_an_object(
        tmp_path: Path, capsys, faces_dir: Path) -> None:
    scene("coffee", (512, 512)).save(tmp_path / "img.png")
    code = main(["check", str(tmp_path / "img.png"), "--reference", str(faces_dir / "obama_1.jpg"),
                 "--critics", "reference"])
    err = capsys.readouterr().err
    assert code == 2 and "nothing for reference to check" in err and "a --reference image of an object" in err
