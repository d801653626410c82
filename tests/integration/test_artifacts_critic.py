"""Artifact critic: degraded skimage photos are flagged by the right sub-check, clean photos and clean
compose posters pass, odd inputs never crash, and each sub-check works on synthetic arrays."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from agent.backends.compose import render
from agent.models import Box, CheckSpec, Plan, Style, TextElement, Verdict, canvas_size
from agent.runtime.store import ArtifactStore
from critics import artifacts as A
from critics import critic_info
from critics.artifacts import (
    LIMITS,
    ArtifactsCritic,
    SubCheck,
    as_rgb,
    banding_check,
    blocking_check,
    blocking_ratio,
    blur_check,
    classify_style,
    copy_move_check,
    exposure_check,
    limit_score,
    naturalness,
    naturalness_check,
    noise_check,
    noise_sigma,
    prepare,
    smooth_fraction,
    text_mask,
)
from critics.base import CheckContext, Critic

PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera"]
CHECKS = {"artifacts": CheckSpec(threshold=0.5)}


# --------------------------------------------------------------------------- helpers


def photo(name: str = "astronaut") -> np.ndarray:
    a = getattr(skimage.data, name)()
    if isinstance(a, tuple):  # stereo_motorcycle: (left, right, disparity)
        a = a[0]
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def photo_plan(a: np.ndarray | Image.Image, background: str = "image", **kw) -> Plan:
    w, h = (a.shape[1], a.shape[0]) if isinstance(a, np.ndarray) else a.size
    return Plan(prompt="a photo", width=w, height=h, aspect_ratio="1:1", size="1K",
                style=Style(background=background), checks=dict(CHECKS), **kw)


def default_plan(a: np.ndarray) -> Plan:
    """What `pixloop check` builds for an arbitrary image: the default Style (a gradient background)."""
    return Plan(prompt="(pixloop check)", width=a.shape[1], height=a.shape[0], aspect_ratio="1:1", size="1K",
                checks=dict(CHECKS))


def poster_plan(background: str, plate: bool = False, aspect: str = "1:1", **style) -> Plan:
    w, h = canvas_size(aspect, "1K")
    text = [
        TextElement(id="headline", content="GRAND OPENING", region=Box(x=0.05, y=0.08, w=0.9, h=0.25)),
        TextElement(id="sub", content="Saturday 10am, Main Street - free coffee for everyone", role="subheading",
                    region=Box(x=0.1, y=0.45, w=0.8, h=0.2)),
        TextElement(id="cta", content="Visit us", role="cta", region=Box(x=0.3, y=0.8, w=0.4, h=0.12)),
    ]
    return Plan(prompt="a poster", width=w, height=h, aspect_ratio=aspect, size="1K", text=text,
                style=Style(background=background, text_plate=plate, **style), checks=dict(CHECKS))


def jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def noisy(a: np.ndarray, sigma: float = 25.0) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)


def paste_patch(a: np.ndarray) -> np.ndarray:
    """Copy a patch of 1/5 the short side from the top-left quarter centre to the bottom-right one."""
    h, w = a.shape[:2]
    p = min(h, w) // 5
    sy, sx = h // 4 - p // 2, w // 4 - p // 2
    ty, tx = 3 * h // 4 - p // 2, 3 * w // 4 - p // 2
    out = a.copy()
    out[ty:ty + p, tx:tx + p] = a[sy:sy + p, sx:sx + p]
    return out


DEGRADE = {
    "blur": lambda a: cv2.GaussianBlur(a, (0, 0), 3),
    "blocking": lambda a: jpeg(a, 5),
    "noise": noisy,
    "exposure": lambda a: np.clip(a.astype(np.int32) * 2, 0, 255).astype(np.uint8),
    "banding": lambda a: (a & 0xE0).astype(np.uint8),
    "copy_move": paste_patch,
}
FEEDBACK = {
    "blur": "blurred",
    "blocking": "JPEG blocking",
    "noise": "noisy",
    "exposure": "blown out",
    "banding": "posterised",
    "copy_move": "duplicated patch",
}


@pytest.fixture(scope="module")
def critic() -> ArtifactsCritic:
    return ArtifactsCritic(brisque=False)  # naturalness is optional: keep results independent of installs


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "run")


def check(critic: ArtifactsCritic, a: np.ndarray | Image.Image, plan: Plan | None, store=None) -> Verdict:
    img = Image.fromarray(a) if isinstance(a, np.ndarray) else a
    return critic.check(img, plan, CheckContext(candidate_id="c1", store=store))


# --------------------------------------------------------------------------- the protocol


def test_artifacts_critic_satisfies_the_critic_protocol_and_applies_to_every_plan():
    critic = ArtifactsCritic()
    assert isinstance(critic, Critic)
    assert critic.name == "artifacts"
    assert critic.applies(poster_plan("solid"))
    assert critic.applies(photo_plan(photo()))
    off = photo_plan(photo())
    off.checks["artifacts"] = CheckSpec(threshold=0.5, enabled=False)
    assert not critic.applies(off)


def test_verdict_evidence_lists_style_checks_skipped_and_heatmap(critic):
    v = check(critic, photo(), photo_plan(photo()))
    assert v.critic == "artifacts" and v.candidate_id == "c1"
    assert {"style", "checks", "skipped", "heatmap"} <= set(v.evidence)
    assert v.evidence["style"] == "photo"
    for name in ("blur", "noise", "blocking", "exposure", "banding", "copy_move"):
        entry = v.evidence["checks"][name]
        assert {"value", "limit", "passed", "score"} <= set(entry)
        assert 0.0 <= entry["score"] <= 1.0
    assert "naturalness" in v.evidence["skipped"]
    assert v.evidence["heatmap"] is None
    assert v.score == pytest.approx(min(c["score"] for c in v.evidence["checks"].values()), abs=1e-4)
    json.dumps(v.evidence)  # plain JSON types only: verdicts go into reports and checkpoints


def test_threshold_comes_from_the_plan_else_from_the_defaults(critic):
    a = photo()
    plan = photo_plan(a)
    plan.checks["artifacts"] = CheckSpec(threshold=0.99)
    strict = check(critic, a, plan)
    assert strict.threshold == 0.99 and strict.passed == (strict.score >= 0.99)
    plan.checks = {}
    assert check(critic, a, plan).threshold == critic_info("artifacts").threshold


def test_check_runs_without_a_plan_or_context():
    v = ArtifactsCritic(brisque=False).check(Image.fromarray(photo()), None)
    assert v.passed and v.evidence["style"] == "photo"


# --------------------------------------------------------------------------- degradations are flagged


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "camera"])
@pytest.mark.parametrize("degradation", list(DEGRADE))
def test_artifacts_critic_flags_each_degradation_with_the_right_sub_check(critic, name: str, degradation: str):
    bad = DEGRADE[degradation](photo(name))
    v = check(critic, bad, photo_plan(bad))
    assert not v.passed
    assert v.evidence["worst"] == degradation
    assert not v.evidence["checks"][degradation]["passed"]
    assert FEEDBACK[degradation] in v.feedback
    assert "\n" not in v.feedback


def test_artifacts_critic_flags_blurred_photo(critic):
    bad = DEGRADE["blur"](photo("coffee"))
    v = check(critic, bad, photo_plan(bad))
    assert not v.passed and v.feedback.startswith("image is blurred (sharpness")
    assert "re-render sharp" in v.feedback


def test_artifacts_critic_flags_jpeg_blocking_and_suggests_png(critic):
    bad = jpeg(photo("rocket"), 5)
    v = check(critic, bad, photo_plan(bad))
    assert not v.passed and "regenerate as PNG or at higher quality" in v.feedback


def test_duplicated_patch_feedback_says_where_it_was_copied_from_and_to(critic):
    bad = paste_patch(photo("chelsea"))
    v = check(critic, bad, photo_plan(bad))
    json.dumps(v.evidence)
    assert not v.passed
    assert "region at top left is copied to bottom right" in v.feedback
    cm = v.evidence["checks"]["copy_move"]
    assert cm["value"] >= 6 and cm["source"] == "top left" and cm["target"] == "bottom right"
    h, w = bad.shape[:2]
    assert abs(cm["displacement"][0] - w // 2) <= 4 and abs(cm["displacement"][1] - h // 2) <= 4


def test_degraded_photo_is_flagged_under_the_default_plan_that_pixloop_check_uses(critic):
    bad = DEGRADE["banding"](photo("coffee"))
    v = check(critic, bad, default_plan(bad))
    assert v.evidence["style"] == "photo"
    assert not v.passed and v.evidence["worst"] == "banding"


# --------------------------------------------------------------------------- clean images pass


@pytest.mark.parametrize("name", PHOTOS + ["stereo_motorcycle"])
def test_clean_photo_passes_with_an_image_plan_and_with_the_default_plan(critic, name: str):
    a = photo(name)
    for plan in (photo_plan(a), default_plan(a)):
        v = check(critic, a, plan)
        assert v.passed, (name, v.feedback)
        assert v.evidence["style"] == "photo"
        assert v.feedback.startswith("no artifacts")


def test_clean_photo_upscaled_2x_is_not_called_blurred(critic):
    a = cv2.resize(photo("chelsea"), None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    v = check(critic, a, photo_plan(a))
    assert v.passed, v.feedback


def test_clean_photo_saved_as_jpeg_q90_passes(critic):
    a = jpeg(photo("astronaut"), 90)
    assert check(critic, a, photo_plan(a)).passed


@pytest.mark.parametrize("background", ["solid", "gradient"])
@pytest.mark.parametrize("plate", [False, True])
def test_clean_flat_poster_with_text_passes_as_a_graphic(critic, background: str, plate: bool):
    plan = poster_plan(background, plate)
    img, _ = render(plan, 3, None)
    v = check(critic, img, plan)
    assert v.passed, v.feedback
    assert v.evidence["style"] == "graphic"
    for skipped in ("blur", "banding", "exposure", "copy_move", "naturalness"):
        assert skipped in v.evidence["skipped"]
    assert set(v.evidence["checks"]) == {"noise", "blocking"}


def test_white_poster_with_few_levels_passes(critic):
    plan = poster_plan("solid", palette=["#ffffff", "#f0f0f0", "#202020"], text_color="#000000")
    img, _ = render(plan, 0, None)
    v = check(critic, img, plan)
    assert v.passed and v.evidence["style"] == "graphic"


@pytest.mark.parametrize("strength", [0.2, 0.5, 0.9])
def test_clean_compose_texture_poster_passes_without_the_noise_check(critic, strength: float):
    plan = poster_plan("texture", plate=True, texture_strength=strength)
    img, _ = render(plan, 1, None)
    v = check(critic, img, plan)
    assert v.passed, v.feedback
    assert v.evidence["style"] == "texture"
    assert "grain is intended" in v.evidence["skipped"]["noise"]
    assert "copy_move" in v.evidence["checks"]


def test_clean_flat_poster_under_the_default_plan_is_detected_as_graphic(critic):
    plan = poster_plan("gradient")
    img, _ = render(plan, 2, None)
    v = check(critic, img, Plan(prompt="(pixloop check)", width=img.width, height=img.height,
                                aspect_ratio="1:1", size="1K", checks=dict(CHECKS)))
    assert v.evidence["style"] == "graphic" and v.passed


def test_photo_poster_with_repeated_text_is_not_a_copy_move_because_text_regions_are_excluded(critic, store):
    ref = store.put_image(Image.fromarray(photo("coffee")))
    text = [TextElement(id=f"t{i}", content="SALE SALE SALE", region=Box(x=0.1, y=y, w=0.8, h=0.2))
            for i, y in enumerate((0.05, 0.7))]
    plan = Plan(prompt="sale", width=1024, height=1024, aspect_ratio="1:1", size="1K", text=text,
                style=Style(background="image", background_image=ref), checks=dict(CHECKS))
    img, _ = render(plan, 1, store)
    v = check(critic, img, plan)
    assert v.passed, v.feedback
    # The same pixels without the plan's text regions: the repeated words are recognised as repeats (each word
    # matches more than one other place), not taken for a pasted patch (the issue: text is not copy-move).
    unplanned = check(critic, img, plan.model_copy(update={"text": []}))
    cm = unplanned.evidence["checks"]["copy_move"]
    assert cm["passed"] and cm["rejected"]


# --------------------------------------------------------------------------- heat maps


def test_heatmap_is_written_and_listed_when_blocking_is_flagged(critic, store):
    bad = jpeg(photo("astronaut"), 5)
    v = check(critic, bad, photo_plan(bad), store=store)
    assert v.evidence["worst"] == "blocking"
    path = v.evidence["heatmap"]
    assert path and (store.root / path).is_file()
    with Image.open(store.root / path) as hm:
        assert hm.mode == "RGB" and 0 < max(hm.size) <= A.HEATMAP_SIDE


def test_heatmap_is_written_for_a_duplicated_patch(critic, store):
    bad = paste_patch(photo("chelsea"))
    v = check(critic, bad, photo_plan(bad), store=store)
    assert v.evidence["worst"] == "copy_move"
    assert (store.root / v.evidence["heatmap"]).is_file()


def test_no_heatmap_without_a_store_or_when_the_image_passes(critic, store):
    bad = jpeg(photo("astronaut"), 5)
    assert check(critic, bad, photo_plan(bad), store=None).evidence["heatmap"] is None
    good = photo("astronaut")
    assert check(critic, good, photo_plan(good), store=store).evidence["heatmap"] is None


# --------------------------------------------------------------------------- odd inputs


ODD = {
    "1x1": lambda: Image.new("RGB", (1, 1), "white"),
    "16x16": lambda: Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)),
    "rgba": lambda: Image.fromarray(np.dstack([photo(), np.full((512, 512), 200, np.uint8)]), "RGBA"),
    "grayscale": lambda: Image.fromarray(skimage.data.camera(), "L"),
    "16-bit": lambda: Image.fromarray(skimage.data.camera().astype(np.uint16) * 257),
    "float": lambda: Image.fromarray(skimage.data.camera().astype(np.float32) / 255),
    "palette": lambda: Image.fromarray(photo()).convert("P"),
    "1-bit": lambda: Image.new("1", (100, 100)),
    "thin": lambda: Image.new("RGB", (4000, 3), "red"),
    "uniform": lambda: Image.new("RGB", (256, 256), (40, 40, 40)),
    "huge": lambda: Image.fromarray(cv2.resize(photo(), (5000, 3000), interpolation=cv2.INTER_LINEAR)),
}


@pytest.mark.parametrize("kind", list(ODD))
def test_odd_input_gives_a_verdict_never_a_crash(critic, kind: str):
    img = ODD[kind]()
    for plan in (photo_plan(img), default_plan(np.zeros((img.height, img.width), np.uint8)), None):
        v = critic.check(img, plan, CheckContext())
        assert isinstance(v, Verdict)
        assert v.error is None, v.error
        assert 0.0 <= v.score <= 1.0
        assert v.feedback


def test_tiny_image_skips_every_sub_check_that_needs_more_pixels(critic):
    v = check(critic, Image.new("RGB", (1, 1), "white"), photo_plan(Image.new("RGB", (1, 1))))
    assert v.passed and v.score == 1.0
    assert "too small" in v.evidence["skipped"]["blur"]
    assert "no artifact sub-check applies" in v.feedback


def test_rgba_transparency_is_composited_on_grey_not_read_as_clipped_white(critic):
    rgba = np.zeros((256, 256, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[64:192, 64:192, 3] = 255  # a white square, the rest fully transparent
    v = check(critic, Image.fromarray(rgba, "RGBA"), photo_plan(rgba))
    assert v.evidence["alpha"]
    assert v.evidence["checks"]["exposure"]["highlights"] == pytest.approx(0.25, abs=0.01)


def test_huge_image_is_read_from_tiles_and_a_subsample(critic):
    img = ODD["huge"]()
    prep = prepare(img)
    assert prep.subsampled and prep.native.size <= 3 * A.NATIVE_MAX_PIXELS
    assert all(t.shape[:2] == (A.TILE, A.TILE) for t in prep.tiles)
    assert max(prep.work.shape[:2]) == A.WORK_SIDE and max(prep.sharp.shape) == A.BLUR_SIDE
    v = check(critic, img, photo_plan(img))
    assert v.evidence["checks"]["noise"]["sampled"].startswith("4 native tiles")


# --------------------------------------------------------------------------- naturalness (optional BRISQUE)


def test_naturalness_is_skipped_with_a_reason_when_no_brisque_model_is_available(monkeypatch):
    monkeypatch.setattr(naturalness, "brisque_engine", lambda: (None, "no BRISQUE model offline"))
    a = photo()
    v = ArtifactsCritic().check(Image.fromarray(a), photo_plan(a), CheckContext())
    assert "no BRISQUE model offline" in v.evidence["skipped"]["naturalness"]


def test_naturalness_uses_the_given_scorer_and_flags_a_high_brisque():
    a = photo()
    v = ArtifactsCritic(brisque=lambda rgb: 80.0).check(Image.fromarray(a), photo_plan(a), CheckContext())
    assert not v.passed and v.evidence["worst"] == "naturalness"
    assert "BRISQUE 80 > 40" in v.feedback
    ok = ArtifactsCritic(brisque=lambda rgb: 12.0).check(Image.fromarray(a), photo_plan(a), CheckContext())
    assert ok.passed and ok.evidence["checks"]["naturalness"]["value"] == 12.0


def test_naturalness_is_not_judged_on_flat_posters():
    plan = poster_plan("gradient")
    img, _ = render(plan, 0, None)
    v = ArtifactsCritic(brisque=lambda rgb: 99.0).check(img, plan, CheckContext())
    assert v.passed and "naturalness" in v.evidence["skipped"]


def test_brisque_model_files_come_from_the_environment(monkeypatch, tmp_path: Path):
    model, rng = tmp_path / "model.yml", tmp_path / "range.yml"
    model.write_text("%YAML:1.0\n")
    rng.write_text("%YAML:1.0\n")
    monkeypatch.setenv("PIXLOOP_BRISQUE_MODEL", str(model))
    monkeypatch.setenv("PIXLOOP_BRISQUE_RANGE", str(rng))
    assert A.brisque_files() == (str(model), str(rng))


def test_brisque_engine_never_raises_and_explains_itself():
    engine, how = A.brisque_engine()
    assert (engine is None) == ("no BRISQUE" in how or "failed" in how)


# --------------------------------------------------------------------------- sub-checks on synthetic arrays


def texture(seed: int = 0, size: int = 256) -> np.ndarray:
    """Band-limited random texture: detailed, but not noise."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 4, size // 4, 3)).astype(np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def test_limit_score_is_one_half_at_the_limit_and_monotonic():
    assert limit_score(8, 8) == pytest.approx(0.5)
    assert limit_score(30, 30, higher_is_worse=False) == pytest.approx(0.5)
    assert limit_score(0, 8) == 1.0 and limit_score(0, 30, higher_is_worse=False) == 0.0
    vals = [limit_score(v, 8) for v in (1, 4, 8, 16, 64, 1e30)]
    assert vals == sorted(vals, reverse=True) and 0.0 <= vals[-1] < 1e-6
    assert limit_score(1.0, 1.5, baseline=1.0) == 1.0
    assert limit_score(float("nan"), 8) in (0.0, 1.0)


def test_subcheck_passes_exactly_when_its_score_is_at_least_one_half():
    for value in (0, 4, 5, 6, 50):
        sub = A.make_subcheck("copy_move", value)
        assert isinstance(sub, SubCheck)
        assert sub.passed == (value <= LIMITS["copy_move"].value) == (sub.score >= 0.5)


def test_blur_check_separates_sharp_from_blurred_texture():
    sharp = texture()
    assert blur_check(sharp).passed
    soft = blur_check(cv2.GaussianBlur(sharp, (0, 0), 4))
    assert not soft.passed and soft.value < LIMITS["blur"].value


def test_blur_check_ignores_a_flat_backdrop_around_a_sharp_object():
    canvas = np.full((512, 512, 3), 200, np.uint8)
    canvas[200:300, 200:300] = texture(size=100)
    assert blur_check(canvas).passed


def test_noise_sigma_recovers_added_gaussian_noise():
    flat = np.full((256, 256), 128, np.uint8)
    assert noise_sigma(flat) == 0.0
    rng = np.random.default_rng(0)
    noisy_flat = np.clip(128 + rng.normal(0, 10, flat.shape), 0, 255).astype(np.uint8)
    assert noise_sigma(noisy_flat) == pytest.approx(10, rel=0.15)
    assert not noise_check(noisy_flat).passed
    assert noise_check([noisy_flat[:128], noisy_flat[128:]]).value == pytest.approx(10, rel=0.15)


def test_blocking_ratio_is_high_for_8x8_blocks_and_near_one_otherwise():
    rng = np.random.default_rng(0)
    blocks = np.kron(rng.integers(0, 256, (32, 32)), np.ones((8, 8))).astype(np.uint8)
    blocks = cv2.GaussianBlur(blocks, (0, 0), 0.6)  # soft inside, stepped at the boundaries
    assert blocking_ratio(blocks) > 3
    assert not blocking_check(blocks).passed
    assert blocking_ratio(texture()[..., 0]) == pytest.approx(1.0, abs=0.15)
    assert blocking_ratio(np.full((64, 64), 7, np.uint8)) == 1.0
    # An 8-bit gradient stepping by one level exactly every 8 px is not JPEG blocking.
    ramp = np.tile((np.arange(256) // 8).astype(np.uint8), (64, 1))
    assert blocking_check(ramp).passed
    # Pixel doubling (period-2 steps) is not 8x8 blocking either.
    doubled = np.repeat(np.repeat(texture()[..., 0][:128, :128], 2, axis=0), 2, axis=1)
    assert blocking_check(doubled).passed


def test_exposure_check_reports_blown_highlights_and_crushed_shadows():
    img = np.full((100, 100, 3), 120, np.uint8)
    img[:30] = 255
    hi = exposure_check(img)
    assert not hi.passed and hi.detail["kind"] == "highlights" and hi.value == pytest.approx(0.3)
    assert hi.detail["where"] == "along the top"
    corner = np.full((90, 90, 3), 120, np.uint8)
    corner[60:, 60:] = 255
    assert exposure_check(corner).detail["where"] == "at bottom right"
    dark = np.zeros((100, 100, 3), np.uint8)
    dark[:, :40] = 90
    lo = exposure_check(dark)
    assert not lo.passed and lo.detail["kind"] == "shadows" and lo.value == pytest.approx(0.6)
    exclude = np.zeros((100, 100), bool)
    exclude[:30] = True
    assert exposure_check(img, exclude=exclude).passed


def test_banding_check_counts_levels_in_the_richest_channel():
    ramp = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
    rgb = np.dstack([ramp, ramp, ramp])
    assert banding_check(rgb).passed
    assert not banding_check(rgb & 0xE0).passed
    duotone = np.dstack([ramp, np.zeros_like(ramp), np.full_like(ramp, 40)])
    assert banding_check(duotone).passed


def test_copy_move_check_finds_a_pasted_patch_and_not_a_clean_texture():
    clean = texture(seed=3, size=512)
    assert copy_move_check(clean).passed
    bad = clean.copy()
    bad[300:400, 320:420] = clean[40:140, 60:160]
    sub = copy_move_check(bad)
    assert not sub.passed and sub.value >= 6
    assert sub.detail["source"] == "top left" and sub.detail["target"] == "bottom right"
    assert sub.detail["displacement"] == pytest.approx([260, 260], abs=3)
    mask = np.ones(bad.shape[:2], np.uint8)
    mask[290:410, 310:430] = 0  # leave the copy out of the search
    assert copy_move_check(bad, mask=mask).passed


def test_as_rgb_accepts_grey_alpha_float_and_wide_integer_arrays():
    assert as_rgb(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
    assert as_rgb(np.ones((4, 5, 1), np.float32))[0, 0, 0] == 255
    assert as_rgb(np.full((4, 5), 65535, np.uint16))[0, 0, 0] == 255
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert as_rgb(rgba)[0, 0, 0] == 128  # fully transparent -> mid grey
    assert as_rgb(np.zeros((3, 3, 2), np.uint8)).shape == (3, 3, 3)
    with pytest.raises(ValueError):
        as_rgb(np.zeros((2, 2, 2, 2)))


def test_style_comes_from_the_plan_and_the_pixels():
    a = photo()
    assert classify_style(photo_plan(a), a)[0] == "photo"
    assert classify_style(default_plan(a), A.downscale(a, 512))[0] == "photo"
    assert classify_style(poster_plan("texture"), a)[0] == "texture"
    plan = poster_plan("solid")
    img, _ = render(plan, 0, None)
    work = A.downscale(np.asarray(img), 512)
    style, why = classify_style(plan, work, text_mask(plan, work.shape[1], work.shape[0]))
    assert style == "graphic" and "flat or smooth" in why
    assert classify_style(None, np.zeros((1, 1, 3), np.uint8))[0] == "graphic"


def test_smooth_fraction_ignores_planned_text():
    plan = poster_plan("solid")
    img = np.asarray(render(plan, 0, None)[0])
    mask = text_mask(plan, img.shape[1], img.shape[0])
    assert mask is not None and 0.2 < mask.mean() < 0.75
    assert smooth_fraction(img, mask) == pytest.approx(1.0)
    assert smooth_fraction(img) < smooth_fraction(img, mask)


def test_naturalness_check_returns_none_without_an_engine(monkeypatch):
    monkeypatch.setattr(naturalness, "brisque_engine", lambda: (None, "none"))
    assert naturalness_check(photo()) is None
    sub = naturalness_check(photo(), engine=lambda rgb: float(max(rgb.shape)))
    assert sub is not None and sub.value == 512.0 and not sub.passed
