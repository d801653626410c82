"""The simulated backend's planned edits: compose's real edit plus the failures real edit models show, each one
forced (rate 1, the rest 0), measured by the critic that gates it and removed by a correction that addresses it.

A spill changes pixels past the mask (preservation), a shift or zoom moves every pixel (preservation), a rescale
changes the size and aspect ratio (spec), an identity drift changes the kept person's face (face).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from agent.backends.base import Correction, GenerationRequest
from agent.backends.compose import apply_edit
from agent.loop.edit_repair import restore_outside
from agent.models import Box, EditSpec, Plan, Style, Subject, Verdict
from agent.runtime.store import ArtifactStore
from agent.testing.simulated import FAILURES, PROFILES, SimulatedBackend, addressed_failures, parse_options
from critics import CheckContext, checks_for, get_critic

PORTRAIT = "alex_lacamoire_1.jpg"  # 746x1024, one face, a near-white studio backdrop
INSTRUCTION = "put him in front of a deep navy studio background"


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


@pytest.fixture
def source(faces_dir: Path) -> Image.Image:
    return Image.open(faces_dir / PORTRAIT).convert("RGB")


def backdrop_mask(img: Image.Image) -> Image.Image:
    """White where the studio backdrop is (may change): the pixels near the border colour, outside the person."""
    rgb = np.asarray(img, np.float32)
    border = np.concatenate([rgb[:8].reshape(-1, 3), rgb[:, :8].reshape(-1, 3), rgb[:, -8:].reshape(-1, 3)])
    person = (np.linalg.norm(rgb - np.median(border, axis=0), axis=2) > 40).astype(np.uint8)
    person = cv2.morphologyEx(person, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(person)
    person = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    cv2.floodFill(person, np.zeros((person.shape[0] + 2, person.shape[1] + 2), np.uint8), (0, 0), 2)
    return Image.fromarray((person == 2).astype(np.uint8) * 255, "L")


def edit_plan(source: Image.Image, store: ArtifactStore) -> Plan:
    """What the edit planner makes of the instruction: the source's size, its backdrop as the mask, and the person
    in it (found by the face critic's detector, referenced by a crop of the source) as the identity to keep."""
    w, h = source.size
    mask = backdrop_mask(source)
    x0, y0, x1, y1 = get_critic("face").find_faces(source)[0]
    px, py = round(0.6 * (x1 - x0)), round(0.6 * (y1 - y0))
    crop = source.crop((max(0, x0 - px), max(0, y0 - py), min(w, x1 + px), min(h, y1 + py)))
    person = Subject(id="source_person1", kind="person", reference=store.put_image(crop),
                     region=Box(x=x0 / w, y=y0 / h, w=(x1 - x0) / w, h=(y1 - y0) / h))
    share = float(np.asarray(mask).mean() / 255)
    plan = Plan(prompt=INSTRUCTION, width=w, height=h, aspect_ratio="3:4", size="1K", subjects=[person],
                style=Style(background="gradient", palette=["#0b2545", "#13315c"]),
                source=store.put_image(source), mask=store.put_image(mask),
                edit=EditSpec(instruction=INSTRUCTION, kind="background", keep="subject", mask_origin="derived",
                              mask_share=round(share, 4)))
    plan.checks = checks_for(plan, {})
    return plan


def backend(**options: object) -> SimulatedBackend:
    """Every rate 0 unless given; edits always applied and never degraded unless asked."""
    return SimulatedBackend(parse_options({"profile": "clean", "edit_response": 1, "edit_artifacts": 0, **options}))


def request(plan: Plan, seed: int = 0, correction: Correction | None = None) -> GenerationRequest:
    return GenerationRequest(plan=plan, seed=seed, prompt=INSTRUCTION, base_image=plan.source, mask=plan.mask,
                             instruction=INSTRUCTION, correction=correction)


def check(name: str, image: Image.Image, plan: Plan, store: ArtifactStore) -> Verdict:
    return get_critic(name).check(image, plan, CheckContext(store=store, references=[s.reference for s in plan.subjects]))


def outside_changed(image: Image.Image, source: Image.Image, mask: Image.Image, band: int = 8) -> float:
    """Share of the pixels more than `band` px outside the mask whose colour changed."""
    edit = np.asarray(mask.convert("L")) >= 128
    far = cv2.distanceTransform((~edit).astype(np.uint8), cv2.DIST_L2, 5) > band
    diff = np.abs(np.asarray(image, np.int16) - np.asarray(source, np.int16)).max(axis=2)
    return float((diff[far] > 0).mean())


# --------------------------------------------------------------------------- a clean edit


def test_a_clean_planned_edit_is_composes_real_edit_and_passes_every_edit_gate(source, store):
    plan = edit_plan(source, store)
    image, meta = backend().simulate(request(plan, 3), store)
    expected, _ = apply_edit(source, store.open(plan.mask), plan, 3, store)

    assert image.tobytes() == expected.tobytes()
    assert meta["simulated"]["injected"] == [] and meta["simulated"]["details"]["edit"]["applied"] is True
    for critic in ("preservation", "face", "spec"):
        assert check(critic, image, plan, store).passed, critic


def test_the_new_failure_kinds_have_rates_in_every_profile_and_draw_from_their_own_streams(source, store):
    assert {"edit_spill", "edit_shift"} <= set(FAILURES)
    assert PROFILES["clean"]["edit_spill"] == 0 and PROFILES["hard"]["edit_shift"] >= PROFILES["typical"]["edit_shift"]
    plan = edit_plan(source, store)
    spilled, _ = backend(edit_spill=1).simulate(request(plan, 5), store)
    both, meta = backend(edit_spill=1, edit_shift=1).simulate(request(plan, 5), store)
    assert meta["simulated"]["injected"] == ["edit_spill", "edit_shift"]
    assert meta["simulated"]["details"]["edit_spill"] == backend(edit_spill=1).simulate(
        request(plan, 5), store)[1]["simulated"]["details"]["edit_spill"], "the shift's rate leaves the spill alone"


# --------------------------------------------------------------------------- each failure is measurable


def test_a_spill_changes_pixels_outside_the_mask_and_fails_preservation(source, store):
    plan = edit_plan(source, store)
    mask = store.open(plan.mask)
    clean, _ = backend().simulate(request(plan, 1), store)
    spilled, meta = backend(edit_spill=1).simulate(request(plan, 1), store)

    details = meta["simulated"]["details"]["edit_spill"]
    assert meta["simulated"]["injected"] == ["edit_spill"] and details["reach_px"] >= 0.03 * 1024 - 1
    assert outside_changed(clean, source, mask) == 0
    assert outside_changed(spilled, source, mask) > 0.02
    verdict = check("preservation", spilled, plan, store)
    assert not verdict.passed and "outside the mask" in verdict.feedback


def test_a_shift_a_zoom_or_a_rescale_moves_every_pixel_or_changes_the_size(source, store):
    plan = edit_plan(source, store)
    seen: dict[str, Image.Image] = {}
    for seed in range(12):
        image, meta = backend(edit_shift=1).simulate(request(plan, seed), store)
        seen.setdefault(meta["simulated"]["details"]["edit_shift"]["kind"], image)
    assert set(seen) == {"shift", "zoom", "rescale"}

    assert seen["rescale"].size != source.size
    spec = check("spec", seen["rescale"], plan, store)
    assert not spec.passed and "aspect ratio" in spec.feedback
    for kind in ("shift", "zoom"):
        assert seen[kind].size == source.size
        assert outside_changed(seen[kind], source, store.open(plan.mask)) > 0.05, kind
        assert not check("preservation", seen[kind], plan, store).passed, kind


def test_an_identity_drift_changes_the_kept_face_and_fails_the_face_critic(source, store):
    plan = edit_plan(source, store)
    drifted, meta = backend(identity_drift=1).simulate(request(plan, 2), store)

    assert meta["simulated"]["injected"] == ["identity_drift"]
    verdict = check("face", drifted, plan, store)
    assert not verdict.passed, verdict.feedback
    assert verdict.evidence["identities"][0]["similarity"] < verdict.evidence["same_threshold"]


# --------------------------------------------------------------------------- corrections remove them


def test_a_correction_addressing_the_edit_gates_removes_their_failures(source, store):
    plan = edit_plan(source, store)
    every = {"edit_spill": 1, "edit_shift": 1, "identity_drift": 1, "feedback_response": 1}
    broken, meta = backend(**every).simulate(request(plan, 4), store)
    assert meta["simulated"]["injected"] == ["edit_spill", "identity_drift", "edit_shift"]

    fix = Correction(attempt=2, strategy="new_seed", addresses=["preservation", "face", "spec"])
    fixed, meta = backend(**every).simulate(request(plan, 4, fix), store)
    assert meta["simulated"]["injected"] == [] and set(meta["simulated"]["fixed"]) == {"edit_spill", "edit_shift",
                                                                                       "identity_drift"}
    for critic in ("preservation", "face", "spec"):
        assert check(critic, fixed, plan, store).passed, critic

    other = Correction(attempt=2, strategy="reprompt", addresses=["ocr"], feedback=["'OPNING' should read 'OPENING'"])
    _, meta = backend(**every).simulate(request(plan, 4, other), store)
    assert meta["simulated"]["fixed"] == [], "a correction about something else fixes nothing"
    assert addressed_failures("keep everything outside the mask unchanged") == ["edit_spill"]
    assert addressed_failures("", ["spec"]) == ["edit_shift"]


def test_restoring_the_source_outside_the_mask_repairs_a_spill_a_shift_and_a_rescale(source, store):
    # the loop's restore_source correction: no backend call, the source's pixels back where the mask keeps them
    plan = edit_plan(source, store)
    mask = store.open(plan.mask)
    for options, seed in (({"edit_spill": 1}, 1), ({"edit_shift": 1}, 0), ({"edit_shift": 1}, 3)):
        broken, meta = backend(**options).simulate(request(plan, seed), store)
        assert not (check("preservation", broken, plan, store).passed and check("spec", broken, plan, store).passed)
        repaired, _ = restore_outside(broken, source, mask)
        label = meta["simulated"]["details"].get("edit_shift", {}).get("kind", "spill")
        assert check("preservation", repaired, plan, store).passed, label
        assert check("spec", repaired, plan, store).passed, label
