"""Preservation critic: masked edits keep the outside and change the inside; unmasked edits keep the layout."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter
from skimage import data
from skimage.metrics import structural_similarity

from agent.models import Box, CheckSpec, Plan, Subject, Verdict
from agent.runtime.store import ArtifactStore
from critics import critic_info
from critics.base import CheckContext, Critic
from critics.preservation import (
    SSIM_OUTSIDE_LIMIT,
    PreservationCritic,
    mask_edit_area,
    score_at_least,
    score_at_most,
    ssim_map,
)

SIZE = 512
MASK_BOX = (180, 120, 380, 320)  # x0, y0, x1, y1: the area that may change (top-centre/middle)
CRITIC = PreservationCritic()
EVIDENCE_KEYS = {"mode", "ssim_outside", "changed_inside", "ssim_global", "resized", "diff_map", "worst_region"}


# --------------------------------------------------------------------------- helpers


def photo(name: str = "astronaut", size: int = SIZE) -> Image.Image:
    arr = getattr(data, name)()
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return Image.fromarray(cv2.resize(arr, (size, size), interpolation=cv2.INTER_AREA))


def jpeg(im: Image.Image, quality: int = 90) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def white_mask(box=MASK_BOX, size: int = SIZE, mode: str = "L") -> Image.Image:
    m = Image.new("L", (size, size), 0)
    ImageDraw.Draw(m).rectangle(box, fill=255)
    return m.convert(mode)


def inpaint(original: Image.Image, box=MASK_BOX, colour=(220, 40, 40)) -> Image.Image:
    """A realistic masked edit: new content inside the box with a feathered seam, then JPEG q90 overall."""
    new = original.copy()
    d = ImageDraw.Draw(new)
    x0, y0, x1, y1 = box
    d.rectangle(box, fill=(90, 140, 200))
    d.ellipse((x0 + 30, y0 + 30, x1 - 30, y1 - 30), fill=colour)
    feather = white_mask(box, original.width).filter(ImageFilter.GaussianBlur(4))
    return jpeg(Image.composite(new, original, feather), 90)


def setup(tmp_path: Path, original: Image.Image, mask: Image.Image | None = None,
          threshold: float = 0.5, **plan_kw) -> tuple[Plan, CheckContext, ArtifactStore]:
    store = ArtifactStore(tmp_path / "run")
    src = store.put_image(original)
    mref = store.put_image(mask) if mask is not None else None
    plan = Plan(prompt="x", width=original.width, height=original.height, aspect_ratio="1:1", size="1K",
                source=src, mask=mref, checks={"preservation": CheckSpec(threshold=threshold)}, **plan_kw)
    return plan, CheckContext(candidate_id="c1", store=store), store


def overlap(a, b) -> float:
    """Intersection over the area of b."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / ((b[2] - b[0]) * (b[3] - b[1]))


# --------------------------------------------------------------------------- protocol


def test_preservation_critic_follows_protocol_and_applies_only_to_edits(tmp_path):
    assert isinstance(CRITIC, Critic) and CRITIC.name == "preservation"
    plan, _, _ = setup(tmp_path, photo())
    assert CRITIC.applies(plan)
    assert not CRITIC.applies(plan.model_copy(update={"source": None}))


# --------------------------------------------------------------------------- with a mask


def test_preservation_critic_passes_edit_only_inside_mask(tmp_path):
    original = photo()
    plan, ctx, store = setup(tmp_path, original, white_mask())
    v = CRITIC.check(inpaint(original), plan, ctx)
    assert v.passed, v.feedback
    assert v.error is None and v.score >= critic_info("preservation").threshold
    assert EVIDENCE_KEYS <= set(v.evidence)
    assert v.evidence["mode"] == "mask" and v.evidence["mask_convention"] == "luminance"
    assert v.evidence["ssim_outside"] >= SSIM_OUTSIDE_LIMIT
    assert v.evidence["changed_inside"] > 0.1
    assert v.evidence["resized"] is False
    assert "kept the area outside the mask" in v.feedback


def test_preservation_critic_flags_change_outside_mask_and_names_worst_region(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask())
    edited = inpaint(original)
    ImageDraw.Draw(edited).rectangle((10, 380, 130, 500), fill=(250, 250, 120))  # bottom left, outside
    v = CRITIC.check(edited, plan, ctx)
    assert not v.passed and v.error is None
    assert v.evidence["ssim_outside"] < SSIM_OUTSIDE_LIMIT
    assert overlap(v.evidence["worst_region"], (10, 380, 130, 500)) > 0.8
    assert v.feedback.startswith("the edit changed the area outside the mask at bottom left (SSIM ")
    assert "keep everything outside the mask unchanged" in v.feedback


def test_preservation_critic_flags_colour_shift_outside_mask(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask())
    edited = ImageEnhance.Brightness(inpaint(original)).enhance(1.25)
    v = CRITIC.check(edited, plan, ctx)
    assert not v.passed and "colours outside the mask" in v.feedback


def test_preservation_critic_fails_when_masked_region_not_changed(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask())
    for unchanged in (original, jpeg(original, 85)):
        v = CRITIC.check(unchanged, plan, ctx)
        assert not v.passed and v.error is None
        assert v.feedback.startswith("the masked region was not changed")
        assert "apply the requested edit inside the mask" in v.feedback
        assert v.evidence["changed_inside"] < 4 / 255


def test_preservation_critic_counts_a_small_object_edited_inside_a_big_mask_as_changed(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask((40, 40, 470, 470)))
    edited = original.copy()
    ImageDraw.Draw(edited).ellipse((200, 200, 300, 300), fill=(20, 200, 20))  # 5 % of the mask
    v = CRITIC.check(edited, plan, ctx)
    assert v.passed, v.feedback


def test_preservation_critic_rejects_mask_of_wrong_size_without_crashing(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask(size=256))
    v = CRITIC.check(inpaint(original), plan, ctx)
    assert isinstance(v, Verdict) and not v.passed and v.score == 0.0
    assert v.error == "mask is 256x256 but the original is 512x512"
    assert "provide a mask of 512x512" in v.feedback


def test_preservation_critic_rejects_empty_mask(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, Image.new("L", original.size, 0))
    v = CRITIC.check(inpaint(original), plan, ctx)
    assert not v.passed and v.error is not None and "no edit area" in v.error


def test_preservation_critic_reads_openai_style_rgba_alpha_mask(tmp_path):
    original = photo()
    rgba = original.convert("RGBA")  # OpenAI: the image itself with a transparent hole = edit area
    alpha = Image.new("L", original.size, 255)
    ImageDraw.Draw(alpha).rectangle(MASK_BOX, fill=0)
    rgba.putalpha(alpha)
    plan, ctx, _ = setup(tmp_path, original, rgba)
    v = CRITIC.check(inpaint(original), plan, ctx)
    assert v.passed, v.feedback
    assert v.evidence["mask_convention"] == "alpha"
    edited = inpaint(original)
    ImageDraw.Draw(edited).rectangle((400, 10, 500, 110), fill=(0, 0, 0))
    assert not CRITIC.check(edited, plan, ctx).passed


@pytest.mark.parametrize("mode", ["L", "1", "RGB", "RGBA", "LA", "P"])
def test_preservation_mask_modes_mean_white_may_change(mode):
    edit, convention = mask_edit_area(white_mask(mode=mode))
    assert convention == "luminance"
    assert edit.shape == (SIZE, SIZE) and edit[200, 250] and not edit[10, 10]
    assert edit.sum() == (MASK_BOX[2] - MASK_BOX[0] + 1) * (MASK_BOX[3] - MASK_BOX[1] + 1)


def test_preservation_mask_alpha_with_0_and_255_means_transparent_may_change():
    m = Image.new("RGBA", (64, 64), (255, 255, 255, 255))
    ImageDraw.Draw(m).rectangle((10, 10, 20, 20), fill=(0, 0, 0, 0))
    edit, convention = mask_edit_area(m)
    assert convention == "alpha" and edit[15, 15] and not edit[40, 40]


def test_preservation_critic_prefers_context_original_and_mask(tmp_path):
    original = photo()
    plan, ctx, store = setup(tmp_path, photo("coffee"), white_mask(size=256))  # plan refs are wrong
    ctx.original = store.put_image(original)
    ctx.mask = store.put_image(white_mask())
    v = CRITIC.check(inpaint(original), plan, ctx)
    assert v.passed, v.feedback


def test_preservation_critic_resizes_candidate_of_another_size_and_notes_it(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask())
    bigger = inpaint(original).resize((1024, 1024), Image.Resampling.BICUBIC)
    v = CRITIC.check(bigger, plan, ctx)
    assert v.passed, v.feedback
    assert v.evidence["resized"] is True and v.evidence["aspect_changed"] is False
    assert v.evidence["candidate_size"] == [1024, 1024] and v.evidence["original_size"] == [512, 512]
    assert v.evidence["worst_region"] is None or all(0 <= c <= 512 for c in v.evidence["worst_region"])


def test_preservation_critic_writes_diff_map_artifact(tmp_path):
    original = photo()
    plan, ctx, store = setup(tmp_path, original, white_mask())
    edited = inpaint(original)
    ImageDraw.Draw(edited).rectangle((10, 380, 130, 500), fill=(250, 250, 120))
    v = CRITIC.check(edited, plan, ctx)
    path = store.root / v.evidence["diff_map"]
    assert path.exists()
    heat = Image.open(path)
    assert heat.size == original.size and heat.mode == "RGB"
    hot = np.asarray(heat)[420, 60]
    cold = np.asarray(heat)[450, 450]
    assert int(hot.sum()) > int(cold.sum())


# --------------------------------------------------------------------------- without a mask


def test_preservation_critic_passes_lightly_retouched_image_without_mask(tmp_path):
    original = photo("chelsea")
    plan, ctx, _ = setup(tmp_path, original)
    retouched = jpeg(ImageEnhance.Contrast(ImageEnhance.Brightness(original).enhance(1.1)).enhance(1.1), 80)
    ImageDraw.Draw(retouched).ellipse((380, 40, 440, 100), fill=(240, 220, 60))  # a small added object
    v = CRITIC.check(retouched, plan, ctx)
    assert v.passed, v.feedback
    assert v.evidence["mode"] == "global" and v.evidence["ssim_outside"] is None
    assert v.evidence["ssim_global"] > 0.9 and v.evidence["edge_correlation"] > 0.9
    assert v.evidence["identity"] == "no people in the plan"
    assert v.evidence["diff_map"] is not None


def test_preservation_critic_tolerates_a_small_shift_without_mask(tmp_path):
    original = photo("coffee")
    plan, ctx, _ = setup(tmp_path, original)
    shifted = original.transform(original.size, Image.Transform.AFFINE, (1, 0, 8, 0, 1, 0))  # 1.5 %
    assert CRITIC.check(shifted, plan, ctx).passed


@pytest.mark.parametrize("other", ["coffee", "chelsea", "camera"])
def test_preservation_critic_fails_completely_different_image_without_mask(tmp_path, other):
    original = photo("astronaut")
    plan, ctx, _ = setup(tmp_path, original)
    v = CRITIC.check(photo(other), plan, ctx)
    assert not v.passed and v.error is None
    assert v.feedback.startswith("the edit changed the layout of the original")
    assert v.evidence["ssim_global"] < 0.6


def test_preservation_critic_fails_blank_candidate_without_mask(tmp_path):
    plan, ctx, _ = setup(tmp_path, photo())
    assert not CRITIC.check(Image.new("RGB", (SIZE, SIZE), (128, 128, 128)), plan, ctx).passed


def test_preservation_critic_leaves_identity_to_face_critic(tmp_path):
    original = photo()
    store = ArtifactStore(tmp_path / "refs")
    ref = store.put_image(original)
    plan, ctx, _ = setup(tmp_path, original,
                         subjects=[Subject(id="p", kind="person", reference=ref, region=Box(x=0, y=0, w=1, h=1))])
    v = CRITIC.check(jpeg(original), plan, ctx)
    assert "face critic" in v.evidence["identity"]


# --------------------------------------------------------------------------- bad input, odd modes


def test_preservation_critic_without_store_or_original_gives_error_verdict(tmp_path):
    original = photo()
    plan, _, _ = setup(tmp_path, original, white_mask())
    v = CRITIC.check(original, plan, CheckContext(candidate_id="c1"))
    assert not v.passed and v.error is not None and "store" in v.error
    no_source = plan.model_copy(update={"source": None})
    v = CRITIC.check(original, no_source, CheckContext(candidate_id="c1", store=ArtifactStore(tmp_path / "x")))
    assert not v.passed and v.error is not None


def test_preservation_critic_missing_original_file_gives_error_verdict(tmp_path):
    plan, ctx, store = setup(tmp_path, photo(), white_mask())
    store.path(plan.source).unlink()
    v = CRITIC.check(photo(), plan, ctx)
    assert not v.passed and v.error is not None and "FileNotFoundError" in v.error


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "1", "I;16"])
def test_preservation_critic_gives_a_verdict_for_any_candidate_mode(tmp_path, mode):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask())
    cand = inpaint(original)
    cand = cand.convert("L").convert("I;16") if mode == "I;16" else cand.convert(mode)
    v = CRITIC.check(cand, plan, ctx)
    assert isinstance(v, Verdict) and v.error is None


def test_preservation_critic_gives_a_verdict_for_a_1x1_candidate(tmp_path):
    plan, ctx, _ = setup(tmp_path, photo(), white_mask())
    v = CRITIC.check(Image.new("RGB", (1, 1), "red"), plan, ctx)
    assert isinstance(v, Verdict) and not v.passed and v.evidence["resized"] is True


# --------------------------------------------------------------------------- building blocks


def test_preservation_ssim_map_matches_skimage():
    rng = np.random.default_rng(0)
    a = np.asarray(photo("camera", 200).convert("L"), dtype=np.float32) / 255
    b = np.clip(a + rng.normal(0, 0.05, a.shape).astype(np.float32), 0, 1)
    _, ref = structural_similarity(a, b, data_range=1.0, full=True)
    assert np.abs(ssim_map(a, b) - ref).max() < 1e-3


def test_preservation_score_mapping_puts_the_limit_at_one_half():
    assert score_at_least(0.95, 0.95) == pytest.approx(0.5)
    assert score_at_least(1.0, 0.95) == pytest.approx(1.0)
    assert score_at_least(0.0, 0.95) == pytest.approx(0.0)
    assert score_at_least(0.9, 0.95) < 0.5 < score_at_least(0.97, 0.95)
    assert score_at_most(0.0, 0.05) == 1.0 and score_at_most(0.05, 0.05) == pytest.approx(0.5)
    assert score_at_most(0.2, 0.05) < 0.5


def test_preservation_critic_uses_plan_threshold(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask(), threshold=0.99)
    v = CRITIC.check(inpaint(original), plan, ctx)  # JPEG q90 outside: fine at 0.5, not perfect
    assert v.threshold == 0.99 and not v.passed and v.score >= 0.5


def test_preservation_critic_flags_small_local_change_that_mean_ssim_dilutes(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask())
    edited = inpaint(original)
    ImageDraw.Draw(edited).rectangle((420, 400, 480, 460), fill=(255, 255, 255))  # 1.4 % of the image
    v = CRITIC.check(edited, plan, ctx)
    assert v.evidence["ssim_outside"] >= SSIM_OUTSIDE_LIMIT  # the mean alone would pass
    assert not v.passed and "bottom right" in v.feedback
    assert overlap(v.evidence["worst_region"], (420, 400, 480, 460)) > 0.8


def test_preservation_critic_is_deterministic_and_reuses_the_prepared_original(tmp_path):
    original = photo()
    plan, ctx, _ = setup(tmp_path, original, white_mask())
    edited = inpaint(original)
    first, second = CRITIC.check(edited, plan, ctx), CRITIC.check(edited, plan, ctx)
    assert first.score == second.score and first.evidence == second.evidence
