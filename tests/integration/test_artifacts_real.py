"""The artifact critic on real photos and real designs: repeated structures are not duplicated patches, natural
highlights are not clipping, under-exposure and local blur are found (with a region and a heat map a masked
edit can use), text and pixloop's own flyers are not flagged, and ``pixloop check`` sees a photo as a photo.

Real photos: two small pieces of the Kodak Lossless True Color Image Suite (released by Kodak for unrestricted
use; tests/data/photos/README.md) and scikit-image's bundled photos.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageDraw, ImageFont

from agent.backends.base import Capabilities
from agent.backends.compose import render
from agent.backends.compose.fonts import font_path
from agent.interfaces.cli import main
from agent.loop.correction import CorrectionContext, correct
from agent.loop.correction.diagnosis import local_boxes
from agent.loop.planning import RulePlanner
from agent.models import Brief, Candidate, CheckSpec, ImageRef, Plan, Style, Verdict
from agent.models.evidence import ArtifactsEvidence, read_evidence
from agent.runtime.store import ArtifactStore
from critics import critic_info
from critics.artifacts import ArtifactsCritic, copy_move_check
from critics.base import CheckContext

DATA = Path(__file__).resolve().parents[1] / "data" / "photos"
FACADE = DATA / "kodim08_facade.png"  # a street of facades: rows of near-identical windows
SKY = DATA / "kodim20_sky.png"  # a plane under a white sky: half of the picture is clipped sky
CHECKS = {"artifacts": CheckSpec(threshold=0.5)}


@pytest.fixture(scope="module")
def critic() -> ArtifactsCritic:
    return ArtifactsCritic(brisque=False)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "run")


def rgb(a: np.ndarray | Path | str) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a
    return np.asarray(Image.open(a).convert("RGB"))


def photo(name: str = "astronaut") -> np.ndarray:
    a = getattr(skimage.data, name)()
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def photo_plan(a: np.ndarray) -> Plan:
    return Plan(prompt="a photo", width=a.shape[1], height=a.shape[0], aspect_ratio="1:1", size="1K",
                style=Style(background="image"), checks=dict(CHECKS))


def check_plan(a: np.ndarray) -> Plan:
    """What ``pixloop check`` builds for an image it knows nothing about (the default style)."""
    return Plan(prompt="(pixloop check)", width=a.shape[1], height=a.shape[0], aspect_ratio="1:1", size="1K",
                checks=dict(CHECKS))


def check(critic: ArtifactsCritic, a: np.ndarray, plan: Plan | None, store: ArtifactStore | None = None) -> Verdict:
    return critic.check(Image.fromarray(a), plan, CheckContext(candidate_id="c1", store=store))


def facade(width: int = 768, height: int = 512, seed: int = 0) -> np.ndarray:
    """A synthetic facade: a plastered wall (band-limited texture, soft shading) with a regular grid of framed
    windows whose panes reflect slightly different skies, as on a real street front."""
    rng = np.random.default_rng(seed)
    wall = cv2.resize(rng.normal(0, 1, (height // 8, width // 8)).astype(np.float32), (width, height),
                      interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 1, (height, width)).astype(np.float32)
    base = 170 + 10 * wall + 3 * grain + np.linspace(-12, 12, width, dtype=np.float32)[None, :]
    img = np.stack([base * 1.0, base * 0.93, base * 0.82], axis=-1)
    for y in range(40, height - 90, 110):
        for x in range(40, width - 70, 95):
            img[y - 6:y + 76, x - 6:x + 56] = (235, 232, 225)  # frame
            pane = 60 + 25 * rng.random() + 4 * rng.normal(0, 1, (70, 50, 1)).astype(np.float32)
            img[y:y + 70, x:x + 50] = np.concatenate([pane * 0.8, pane * 0.9, pane * 1.2], axis=-1)
            img[y + 33:y + 37, x:x + 50] = (220, 218, 210)  # transom
            img[y:y + 70, x + 23:x + 27] = (220, 218, 210)  # mullion
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- repeated structures


def test_synthetic_facade_with_repeated_windows_is_not_a_duplicated_patch(critic):
    a = facade()
    for plan in (photo_plan(a), check_plan(a)):
        v = check(critic, a, plan)
        assert v.evidence["style"] == "photo"
        assert v.evidence["checks"]["copy_move"]["passed"], v.evidence["checks"]["copy_move"]
        assert v.passed, v.feedback


def test_real_facade_with_rows_of_windows_passes(critic):
    a = rgb(FACADE)
    v = check(critic, a, photo_plan(a))
    assert v.passed, v.feedback
    assert v.evidence["checks"]["copy_move"]["value"] == 0


def test_a_sign_duplicated_on_the_facade_is_still_found(critic):
    a = facade()
    rng = np.random.default_rng(5)
    sign = cv2.resize(rng.integers(0, 256, (12, 16, 3)).astype(np.uint8), (128, 96), interpolation=cv2.INTER_CUBIC)
    a[250:346, 600:728] = sign  # a unique sign on the wall...
    bad = a.copy()
    bad[380:476, 100:228] = sign  # ...copied onto another spot
    assert check(critic, a, photo_plan(a)).passed
    v = check(critic, bad, photo_plan(bad))
    assert not v.passed and v.evidence["worst"] == "copy_move", v.feedback
    assert len(v.evidence["regions"]) == 2  # the source and its copy, for a masked edit


def test_clean_text_on_a_plain_background_is_not_copy_move(critic):
    img = Image.new("RGB", (1024, 768), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(font_path("lato-bold")), 96)
    for y in range(30, 700, 140):
        draw.text((40, y), "SALE SALE GOOD FOOD", fill="black", font=font)
    a = np.asarray(img)
    assert copy_move_check(a).passed
    # even when a plan says it is a photo (copy-move runs): repeated words on a plain ground are not a paste
    assert check(critic, a, photo_plan(a)).evidence["checks"]["copy_move"]["passed"]
    for plan in (check_plan(a), None):  # judged by its pixels: a design, and a clean one
        v = check(critic, a, plan)
        assert v.evidence["style"] == "graphic", v.evidence["style_reason"]
        assert v.passed, v.feedback


# --------------------------------------------------------------------------- exposure


def test_a_bright_sky_over_a_normally_exposed_scene_passes(critic):
    a = rgb(SKY)
    v = check(critic, a, photo_plan(a))
    exposure = v.evidence["checks"]["exposure"]
    assert exposure["highlights"] > 0.4  # half of the picture is clipped sky...
    assert v.passed and exposure["passed"], v.feedback  # ...and that is a natural highlight


def test_a_synthetic_white_sky_passes_and_the_same_photo_overexposed_fails(critic):
    a = photo("coffee")
    sky = a.copy()
    h = a.shape[0]
    ramp = np.linspace(250, 255, int(h * 0.4), dtype=np.float32)[:, None, None]
    sky[: int(h * 0.4)] = np.clip(ramp + np.zeros((1, a.shape[1], 3), np.float32), 0, 255).astype(np.uint8)
    assert check(critic, sky, photo_plan(sky)).passed
    over = np.clip(a.astype(np.int32) * 2, 0, 255).astype(np.uint8)
    v = check(critic, over, photo_plan(over))
    assert not v.passed and v.evidence["worst"] == "exposure" and "blown out" in v.feedback


def test_a_strongly_underexposed_photo_fails_naming_exposure(critic):
    for name in ("astronaut", "chelsea", "coffee"):
        dark = np.clip(photo(name).astype(np.float32) * 0.3 + 0.5, 0, 255).astype(np.uint8)
        v = check(critic, dark, photo_plan(dark))
        assert not v.passed, name
        assert v.evidence["worst"] == "exposure" and v.evidence["checks"]["exposure"]["kind"] == "under"
        assert "under-exposed" in v.feedback


def test_a_dark_but_well_exposed_photo_passes(critic):
    a = photo("hubble_deep_field")  # a night sky: dark, with its stars reaching the top of the range
    assert check(critic, a, photo_plan(a)).evidence["checks"]["exposure"]["passed"]


# --------------------------------------------------------------------------- local defects


def quarter_blurred() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    a = photo("astronaut")
    h, w = a.shape[:2]
    out = a.copy()
    out[: h // 2, w // 2:] = cv2.GaussianBlur(a, (0, 0), 3.0)[: h // 2, w // 2:]
    return out, (w // 2, 0, w, h // 2)


def test_a_quarter_blurred_photo_fails_with_that_quarter_as_region_and_a_heat_map(critic, store):
    a, (x0, y0, x1, y1) = quarter_blurred()
    v = check(critic, a, photo_plan(a), store=store)
    assert not v.passed and v.evidence["worst"] == "blur", v.feedback
    blur = v.evidence["checks"]["blur"]
    assert blur["local"] and "part of the image is blurred" in v.feedback
    regions = v.evidence["regions"]
    assert regions
    m = np.zeros(a.shape[:2], bool)
    for bx0, by0, bx1, by1 in regions:
        m[by0:by1, bx0:bx1] = True
    assert m[y0:y1, x0:x1].mean() >= 0.75  # the blurred quarter is covered...
    assert m.mean() < 0.4  # ...and the edit stays local
    assert v.evidence["heatmap"] and (store.root / v.evidence["heatmap"]).is_file()
    json.dumps(v.evidence)
    ev = read_evidence(v, ArtifactsEvidence)
    assert ev.local_regions(a.shape[1], a.shape[0], 0.4)


def test_the_whole_image_blurred_is_a_global_failure(critic):
    a = cv2.GaussianBlur(photo("astronaut"), (0, 0), 3.0)
    v = check(critic, a, photo_plan(a))
    assert not v.passed and v.evidence["worst"] == "blur" and not v.evidence["checks"]["blur"]["local"]
    assert v.evidence["regions"] == [[0, 0, a.shape[1], a.shape[0]]]
    assert read_evidence(v, ArtifactsEvidence).local_regions(a.shape[1], a.shape[0], 0.4) is None


def test_a_local_artifact_is_repaired_by_a_masked_edit_of_its_region(critic):
    a, _ = quarter_blurred()
    v = check(critic, a, photo_plan(a))
    plan = photo_plan(a)
    sha = "b" * 64
    cand = Candidate(id="c1", iteration=1, image=ImageRef(sha256=sha, path=f"images/{sha[:2]}/{sha}.png",
                                                          width=a.shape[1], height=a.shape[0]),
                     backend="b", seed=0, plan_revision=0)
    ok = Verdict(critic="spec", candidate_id="c1", score=1.0, passed=True, threshold=0.95)
    assert critic_info("artifacts").evidence is ArtifactsEvidence
    assert "edit_region" in critic_info("artifacts").strategies
    ctx = CorrectionContext(plan=plan, current=cand, verdicts=[v, ok], history=[], iteration=2,
                            capabilities=Capabilities(edit=True, mask=True))
    boxes = local_boxes(ctx, v)
    assert boxes and all(b.x0 >= a.shape[1] // 2 - 40 and b.y1 <= a.shape[0] // 2 + 40 for b in boxes)
    action = correct(ctx)
    assert action.strategy == "edit_region" and action.base_candidate_id == "c1" and action.regions
    no_masks = CorrectionContext(plan=plan, current=cand, verdicts=[v, ok], history=[], iteration=2,
                                 capabilities=Capabilities(edit=False, mask=False))
    assert correct(no_masks).strategy == "new_seed"


# --------------------------------------------------------------------------- pixloop's own designs


def flyer(store: ArtifactStore) -> tuple[Image.Image, Plan]:
    plan = RulePlanner().plan(Brief(prompt='A minimal flyer that says "SUMMER SALE" and "Everything half price"',
                                    aspect_ratio="4:5"), [], store)
    img, _ = render(plan, 0, store)
    return img, plan


def test_a_clean_compose_flyer_passes_as_png_and_as_the_jpeg_an_api_returns(critic, store):
    img, plan = flyer(store)
    for quality in (None, 90, 75):
        im = img
        if quality is not None:
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=quality)
            im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        a = np.asarray(im)
        for p in (plan, check_plan(a)):
            v = critic.check(im, p, CheckContext())
            assert v.passed, (quality, v.feedback)
            assert v.evidence["style"] == "graphic", (quality, v.evidence["style_reason"])
            assert v.evidence["checks"]["blocking"]["passed"]


def test_pixloop_check_on_a_clean_flyer_and_on_dense_text_passes(tmp_path, store, capsys):
    img, _ = flyer(store)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    (tmp_path / "flyer.jpg").write_bytes(buf.getvalue())
    page = Image.new("RGB", (900, 700), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(font_path("lato-regular")), 30)
    for i, y in enumerate(range(20, 680, 42)):
        draw.text((30, y), f"Opening hours {9 + i % 3} to 5, every day - free coffee, free entry", fill="black",
                  font=font)
    page.save(tmp_path / "page.png")
    for name in ("flyer.jpg", "page.png"):
        code = main(["check", str(tmp_path / name), "--critics", "artifacts", "--json"])
        row = json.loads(capsys.readouterr().out)["critics"][0]
        assert code == 0 and row["passed"], (name, row["feedback"])


# --------------------------------------------------------------------------- pixloop check on real photos


@pytest.mark.parametrize("path", [FACADE, SKY])
def test_pixloop_check_on_a_real_photo_without_a_plan_judges_it_as_a_photo(path, capsys):
    code = main(["check", str(path), "--critics", "artifacts", "--json"])
    row = json.loads(capsys.readouterr().out)["critics"][0]
    assert row["evidence"]["style"] == "photo", row["evidence"]["style_reason"]
    assert code == 0 and row["passed"], row["feedback"]
    assert {"blur", "exposure", "copy_move"} <= set(row["evidence"]["checks"])


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket"])
def test_a_soft_or_dark_degraded_photo_is_still_judged_as_a_photo(critic, name):
    a = photo(name)
    for bad in (cv2.GaussianBlur(a, (0, 0), 4.0), np.clip(a.astype(np.float32) * 0.3, 0, 255).astype(np.uint8)):
        v = check(critic, bad, check_plan(bad))
        assert v.evidence["style"] == "photo", v.evidence["style_reason"]
        assert not v.passed
