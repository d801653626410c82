"""The simulated backend: seeded failure injection that the REAL critics must detect, and partial repair.

Every failure is forced (rate 1, all others 0) and judged by the critic that owns it: OCR for text,
the face critic (YuNet + SFace, on shared/data/faces photos; skipped when absent) for identity and
extra faces, the artifacts critic for blur/noise/blocking and the spec critic for sizes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.backends import BACKENDS, UnknownBackendError, register_backend, unregister_backend
from agent.backends.base import Correction, GenerationRequest, GenerationResult
from agent.loop.planning import generation_prompt
from agent.models import Box, PixloopConfig, Plan, Style, Subject, TextElement, Verdict
from agent.runtime.store import ArtifactStore
from agent.testing.simulated import (
    FAILURES,
    PROFILES,
    SimulatedBackend,
    addressed_failures,
    attempt_number,
    misspell,
    parse_options,
)
from critics import CheckContext, UnknownCriticError, checks_for, get_critic
from prompts import render as render_prompt

FACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces"
HEADLINE = TextElement(id="headline", content="GRAND OPENING", region=Box(x=0.1, y=0.72, w=0.8, h=0.14))
SUBHEAD = TextElement(id="subhead", content="Saturday at noon", role="subheading",
                      region=Box(x=0.2, y=0.87, w=0.6, h=0.08))


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


@pytest.fixture(scope="module")
def faces() -> Path:
    if not (FACES / "labels.csv").exists():
        pytest.skip(f"face photos not found at {FACES}")
    return FACES


def poster(store: ArtifactStore, *, person: Path | None = None, product: Path | None = None,
           background: str = "gradient", size: tuple[int, int] = (768, 768), aspect: str = "1:1") -> Plan:
    """A 1K-tier poster plan: two text elements and optionally a person or a product above them."""
    subjects = []
    if person is not None:
        subjects.append(Subject(id="host", kind="person", reference=store.put_file(person),
                                region=Box(x=0.25, y=0.06, w=0.5, h=0.6)))
    if product is not None:
        subjects.append(Subject(id="mug", kind="product", reference=store.put_file(product),
                                region=Box(x=0.3, y=0.1, w=0.4, h=0.5)))
    plan = Plan(prompt="a poster for our grand opening", width=size[0], height=size[1], aspect_ratio=aspect,
                size="1K", text=[HEADLINE, SUBHEAD], subjects=subjects, style=Style(background=background))
    plan.checks = checks_for(plan, {})
    return plan


def backend(**options: object) -> SimulatedBackend:
    """A backend with every rate 0 unless given (the "clean" profile)."""
    return SimulatedBackend(parse_options({"profile": "clean", **options}))


def request(plan: Plan, seed: int = 0, prompt: str | dict | None = None, **edit: object) -> GenerationRequest:
    fix = prompt if isinstance(prompt, dict) else {"prompt": prompt or generation_prompt(plan)}
    return GenerationRequest(plan=plan, seed=seed, references=[s.reference for s in plan.subjects], **fix, **edit)


def check(name: str, image: Image.Image, plan: Plan, store: ArtifactStore) -> Verdict:
    try:
        critic = get_critic(name)
    except UnknownCriticError:  # the artifacts critic exists before its registry line
        from critics.artifacts import ArtifactsCritic

        critic = ArtifactsCritic()
    return critic.check(image, plan, CheckContext(store=store, references=[s.reference for s in plan.subjects]))


def correction(plan: Plan, *feedback: str, attempt: int = 2) -> dict:
    """What pixloop sends on a later attempt: the prompt (prompts/correction.txt with the critics' feedback)
    and the same correction as data."""
    return {"prompt": render_prompt("correction", prompt=generation_prompt(plan), iteration=attempt,
                                    feedback="\n".join(f"- {f}" for f in feedback)),
            "correction": Correction(attempt=attempt, strategy="reprompt", feedback=list(feedback))}


# --------------------------------------------------------------------------- determinism and options


def test_the_same_request_gives_identical_pixels_and_another_seed_gives_another_image(store, product_png):
    plan = poster(store, product=product_png, size=(512, 512))
    sim = SimulatedBackend(parse_options({"profile": "hard"}))
    first = asyncio.run(sim.generate(request(plan, seed=3), store))
    again = asyncio.run(sim.generate(request(plan, seed=3), store))

    assert isinstance(first, GenerationResult) and first.cost == pytest.approx(0.04)
    assert first.image.tobytes() == again.image.tobytes() and first.meta == again.meta
    assert first.meta["simulated"]["profile"] == "hard" and first.meta["simulated"]["attempt"] == 1
    others = [sim.simulate(request(plan, seed=s), store) for s in range(4, 10)]
    assert all(img.tobytes() != first.image.tobytes() for img, _ in others)
    assert len({tuple(m["simulated"]["injected"]) for _, m in others}) > 1


def test_each_failure_kind_draws_from_its_own_stream_so_one_rate_never_reshuffles_another(store):
    plan = poster(store, size=(256, 256))
    alone = backend(blur=0.5)
    crowded = backend(blur=0.5, noise=1.0, extra_text=1.0, misspell=0.3)
    for seed in range(12):
        a = "blur" in alone.simulate(request(plan, seed), store)[1]["simulated"]["injected"]
        b = "blur" in crowded.simulate(request(plan, seed), store)[1]["simulated"]["injected"]
        assert a == b, seed


def test_options_come_from_cli_strings_and_bad_ones_name_the_known_options():
    sim = SimulatedBackend.from_config(PixloopConfig(options={
        "profile": "hard", "misspell": "0.05", "native_long_side": "2048", "feedback_response": "0.2"}))
    assert sim.rates["misspell"] == 0.05 and sim.rates["blur"] == PROFILES["hard"]["blur"]
    assert sim.options.native_long_side == 2048 and sim.options.feedback_response == 0.2
    caps = sim.capabilities
    assert caps.edit and caps.mask and caps.deterministic and caps.max_references == 8
    assert caps.sizes == ["1K", "2K"] and caps.native_long_side == 2048 and len(caps.aspect_ratios) == 10
    assert SimulatedBackend.from_config(PixloopConfig()).capabilities.sizes == ["1K"]
    assert SimulatedBackend.from_config(PixloopConfig()).rates == PROFILES["typical"]
    for bad, message in (({"misspell": "1.5"}, "misspell"), ({"profile": "awful"}, "unknown profile"),
                         ({"colour": "red"}, "colour")):
        with pytest.raises(UnknownBackendError, match=message) as e:
            SimulatedBackend.from_config(PixloopConfig(options=bad))
        assert "known options" in str(e.value)


def test_misspellings_change_one_interior_letter_of_a_longer_word():
    rng = np.random.default_rng(0)
    for _ in range(50):
        wrong = misspell("GRAND OPENING", rng)
        assert wrong != "GRAND OPENING" and wrong.split()[0][0] == "G" and abs(len(wrong) - 13) <= 1
    assert misspell("A 5 %", rng) == "A 5 %"


# --------------------------------------------------------------------------- each failure vs its critic


def test_clean_profile_output_passes_the_real_ocr_spec_and_artifacts_critics(store, product_png):
    plan = poster(store, product=product_png)
    image, meta = backend().simulate(request(plan, seed=1), store)

    assert meta["simulated"]["injected"] == [] and image.size == (768, 768)
    for critic in ("ocr", "spec", "artifacts"):
        verdict = check(critic, image, plan, store)
        assert verdict.passed, (critic, verdict.feedback)


def test_a_forced_misspelling_fails_ocr_which_names_the_wrong_word(store):
    plan = poster(store)
    image, meta = backend(misspell=1.0).simulate(request(plan, seed=2), store)
    detail = meta["simulated"]["details"]["misspell"]
    verdict = check("ocr", image, plan, store)

    assert meta["simulated"]["injected"] == ["misspell"] and detail["rendered"] != detail["text"]
    assert not verdict.passed and "should read" in verdict.feedback
    wrong = {w for _, w in next(e for e in verdict.evidence["elements"] if e["id"] == detail["element"])["wrong_words"]}
    assert wrong and wrong <= set(detail["text"].split())


def test_dropped_text_is_reported_missing_and_extra_text_shows_up_as_ocr_evidence(store):
    plan = poster(store)
    dropped, meta = backend(drop_text=1.0).simulate(request(plan, seed=0), store)
    verdict = check("ocr", dropped, plan, store)
    gone = meta["simulated"]["details"]["drop_text"]["text"]
    assert not verdict.passed and f"'{gone}'" in verdict.feedback and "missing" in verdict.feedback

    extra, meta = backend(extra_text=1.0).simulate(request(plan, seed=0), store)
    verdict = check("ocr", extra, plan, store)
    words = meta["simulated"]["details"]["extra_text"]["text"]
    read = " ".join(e["text"] for e in verdict.evidence["extra_text"]).replace(" ", "").upper()
    assert meta["simulated"]["injected"] == ["extra_text"] and words.replace(" ", "") in read
    assert "extra text not in the plan" in verdict.feedback and not verdict.passed


@pytest.mark.parametrize("reference,seed", [("obama_1", 0), ("kit_harington_2", 5)])
def test_identity_drift_fails_the_real_face_critic_while_the_clean_render_passes(store, faces, reference, seed):
    plan = poster(store, person=faces / f"{reference}.jpg")
    clean, _ = backend().simulate(request(plan, seed), store)
    drifted, meta = backend(identity_drift=1.0).simulate(request(plan, seed), store)

    assert check("face", clean, plan, store).passed
    verdict = check("face", drifted, plan, store)
    assert meta["simulated"]["injected"] == ["identity_drift"]
    assert not verdict.passed and "does not look like the reference" in verdict.feedback
    assert verdict.evidence["identities"][0]["similarity"] < verdict.evidence["same_threshold"] - 0.1


def test_an_extra_face_is_reported_by_the_face_critic_and_lowers_its_score(store, faces):
    plan = poster(store, person=faces / "rose_leslie_1.jpg")
    clean, _ = backend().simulate(request(plan, 1), store)
    crowded, meta = backend(extra_face=1.0).simulate(request(plan, 1), store)
    before, after = check("face", clean, plan, store), check("face", crowded, plan, store)

    assert meta["simulated"]["injected"] == ["extra_face"]
    assert after.evidence["faces_found"] == 2 and len(after.evidence["extra_faces"]) == 1
    assert "extra face" in after.feedback and after.score < before.score
    assert check("ocr", crowded, plan, store).passed, "the extra face never covers planned text"


@pytest.mark.parametrize("kind,sub_check", [("blur", "blur"), ("noise", "noise"), ("jpeg", "blocking")])
def test_degradations_fail_the_real_artifacts_critic_on_the_matching_sub_check(store, product_png, kind, sub_check):
    plan = poster(store, product=product_png)
    image, meta = backend(**{kind: 1.0}).simulate(request(plan, 4), store)
    verdict = check("artifacts", image, plan, store)

    assert meta["simulated"]["injected"] == [kind]
    assert not verdict.passed and not verdict.evidence["checks"][sub_check]["passed"], verdict.feedback


def test_wrong_sizes_half_or_another_ratio_fail_the_spec_critic(store):
    plan = poster(store, size=(640, 640))
    seen = {}
    for seed in range(10):
        image, meta = backend(wrong_size=1.0).simulate(request(plan, seed), store)
        seen.setdefault(meta["simulated"]["details"]["wrong_size"], image)
    assert set(seen) == {"half size", "4:3 instead of 1:1"}
    assert seen["half size"].size == (320, 320) and seen["4:3 instead of 1:1"].size == (640, 480)
    for image in seen.values():
        assert not check("spec", image, plan, store).passed


def test_a_request_above_the_native_long_side_is_delivered_smaller_and_spec_asks_to_upscale(store):
    plan = poster(store, size=(1024, 576), aspect="16:9")
    image, meta = backend(native_long_side=512).simulate(request(plan), store)
    verdict = check("spec", image, plan, store)

    assert image.size == (512, 288) and meta["simulated"]["delivered"] == [512, 288]
    assert not verdict.passed and "upscale" in verdict.feedback
    assert backend().simulate(request(plan), store)[0].size == (1024, 576)


# --------------------------------------------------------------------------- feedback and edits


def test_feedback_that_names_a_failure_fixes_it_often_but_not_always(store):
    plan = poster(store)
    image, _ = backend(misspell=1.0).simulate(request(plan, seed=2), store)
    ocr_feedback = check("ocr", image, plan, store).feedback
    prompt = correction(plan, ocr_feedback)
    sim = backend(misspell=1.0, feedback_response=0.7)

    outcomes = [sim.simulate(request(plan, seed, prompt), store) for seed in range(20)]
    fixed = [m["simulated"]["fixed"] == ["misspell"] and "misspell" not in m["simulated"]["injected"]
             for _, m in outcomes]
    assert addressed_failures(ocr_feedback) == ["misspell"] and attempt_number(request(plan, 0, prompt)) == 2
    assert 0.4 <= sum(fixed) / len(fixed) <= 0.95
    repaired = outcomes[fixed.index(True)][0]
    assert check("ocr", repaired, plan, store).passed


def test_feedback_about_something_else_does_not_fix_a_failure(store, product_png):
    plan = poster(store, product=product_png, size=(512, 512))
    blurred, _ = backend(blur=1.0).simulate(request(plan), store)
    blur_feedback = check("artifacts", blurred, plan, store).feedback
    prompt = correction(plan, blur_feedback)
    sim = backend(misspell=1.0, feedback_response=1.0)

    assert addressed_failures(blur_feedback) == ["blur"]
    for seed in range(20):
        meta = sim.simulate(request(plan, seed, prompt), store)[1]["simulated"]
        assert meta["injected"] == ["misspell"] and meta["fixed"] == []


def test_a_masked_edit_changes_only_the_masked_region_and_repairs_the_text_there_mostly(store):
    plan = poster(store)
    base, meta = backend(misspell=1.0).simulate(request(plan, seed=7), store)
    element = next(e for e in plan.text if e.id == meta["simulated"]["details"]["misspell"]["element"])
    x0, y0, x1, y1 = element.region.to_pixels(*base.size)
    mask = Image.new("L", base.size, 0)
    mask.paste(255, (x0, y0, x1, y1))
    base_ref, mask_ref = store.put_image(base), store.put_image(mask)
    outside = np.asarray(mask) == 0
    sim = backend(edit_response=0.85, edit_artifacts=0.0)

    results = []
    for seed in range(30):
        edit = request(plan, seed, base_image=base_ref, mask=mask_ref, instruction=f"Fix the text: {element.content}")
        image, meta = sim.simulate(edit, store)
        assert np.array_equal(np.asarray(image)[outside], np.asarray(base)[outside]), seed
        results.append((image, meta["simulated"]["details"]["edit"]["applied"]))
    applied = [ok for _, ok in results]
    assert 0.65 <= sum(applied) / len(applied) <= 0.97
    assert check("ocr", results[applied.index(True)][0], plan, store).passed
    assert not check("ocr", results[applied.index(False)][0], plan, store).passed


def test_edit_artifacts_degrade_the_whole_image_slightly(store):
    plan = poster(store, size=(512, 512))
    base, _ = backend().simulate(request(plan), store)
    mask = Image.new("L", base.size, 0)
    mask.paste(255, (0, 0, 64, 64))
    edit = request(plan, 1, base_image=store.put_image(base), mask=store.put_image(mask), instruction="tidy the corner")
    image, meta = backend(edit_artifacts=1.0).simulate(edit, store)
    diff = np.abs(np.asarray(image, np.int16) - np.asarray(base, np.int16))[100:, 100:]

    assert meta["simulated"]["details"]["edit"]["artifacts"] is True
    assert 0.5 < float(diff.mean()) < 6.0


def test_the_loop_repairs_a_misspelling_when_the_backend_heeds_the_ocr_feedback(tmp_path):
    # Whichever strategy the corrector picks (re-prompt with the OCR feedback, masked edit, typesetting),
    # a backend that always heeds feedback and edits must pass on the second attempt.
    from agent import generate

    registered = "simulated" not in BACKENDS
    if registered:
        register_backend("simulated", SimulatedBackend.from_config)
    try:
        config = PixloopConfig(backend="simulated",
                               options={"profile": "clean", "misspell": "1", "feedback_response": "1",
                                        "edit_response": "1", "edit_artifacts": "0"})
        result = generate('A bold poster that says "GRAND OPENING"', config=config, out=tmp_path / "run",
                          max_iterations=3)
    finally:
        if registered:
            unregister_backend("simulated")
    first, second = result.report["candidates"][:2]
    assert result.status == "passed" and result.iterations == 2
    assert not next(v for v in first["verdicts"] if v["critic"] == "ocr")["passed"]
    assert next(v for v in second["verdicts"] if v["critic"] == "ocr")["passed"]


def test_every_failure_kind_has_a_rate_in_every_profile():
    for name, rates in PROFILES.items():
        assert set(rates) == set(FAILURES), name
        assert all(0.0 <= r <= 1.0 for r in rates.values())
    assert all(r == 0 for r in PROFILES["clean"].values())
    assert all(PROFILES["hard"][k] >= PROFILES["typical"][k] for k in FAILURES)


def test_latency_makes_each_image_take_at_least_that_long_without_blocking_the_event_loop(store):
    import asyncio
    import time

    plan = poster(store)

    async def two_at_once() -> tuple[float, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        tick = asyncio.create_task(ticker())
        t0 = time.perf_counter()
        await asyncio.gather(*(backend(latency=0.3).generate(request(plan, s), store) for s in (1, 2)))
        tick.cancel()
        return time.perf_counter() - t0, ticks

    took, ticks = asyncio.run(two_at_once())
    assert took >= 0.3, "no image arrives before its latency"
    assert ticks >= 5, "the event loop kept running while the images waited"
