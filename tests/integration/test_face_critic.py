"""Face identity critic: real YuNet + SFace (and dlib when installed) on labelled photos pasted into posters.

The photos (shared/data/faces, 6 identities) are test fixtures only; each test builds its candidate
by pasting them into a Pillow canvas, and its references go through a real ArtifactStore.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from agent.models import Box, CheckSpec, ImageRef, Plan, Subject, Verdict
from agent.runtime.store import ArtifactStore
from critics import critic_info
from critics.base import CheckContext, Critic
from critics.face import (
    FaceCritic,
    asks_for_new_pose,
    check_consistency,
    similarity_to_score,
    where,
)
from critics.face.engines import (
    ARCFACE_TEMPLATE_112,
    Face,
    FaceEngine,
    SFaceEngine,
    align_face,
    arcface_blob,
    as_bgr,
    dlib_available,
    face_engine,
    filter_faces,
    largest_face,
    similarity_transform,
)

FACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "faces"
BG = (29, 43, 79)


# --------------------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def photos() -> Path:
    if not (FACES / "labels.csv").exists():
        pytest.skip(f"face photos not found at {FACES}")
    return FACES


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


@pytest.fixture(scope="module")
def sface() -> FaceEngine:
    return face_engine("sface")


def photo(photos: Path, name: str) -> Image.Image:
    return Image.open(photos / f"{name}.jpg").convert("RGB")


def poster(photos: Path, *items: tuple[str, tuple[int, int], int], size: tuple[int, int] = (1024, 1024)) -> Image.Image:
    """A poster canvas (gradient + a title bar) with each photo scaled to fit `side` px pasted at its (x, y)."""
    w, h = size
    grad = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    arr = (np.array(BG, np.float32) * (1 - grad) + np.array((63, 111, 181), np.float32) * grad)
    canvas = Image.fromarray(np.repeat(arr, w, axis=1).astype(np.uint8), "RGB")
    ImageDraw.Draw(canvas).rectangle((40, h - 120, w - 40, h - 40), fill=(242, 193, 78))
    for name, (x, y), side in items:
        p = photo(photos, name)
        p.thumbnail((side, side), Image.Resampling.LANCZOS)
        canvas.paste(p, (x, y))
    return canvas


def person_plan(store: ArtifactStore, photos: Path, *refs: str | Path, prompt: str = "a poster of our host",
                threshold: float | None = None) -> tuple[Plan, list[ImageRef]]:
    """A plan with one person subject per reference (a photo name or a file path), stored in `store`."""
    subjects, refs_out = [], []
    for i, r in enumerate(refs):
        path = r if isinstance(r, Path) else photos / f"{r}.jpg"
        ref = store.put_file(path)
        refs_out.append(ref)
        subjects.append(Subject(id=f"person{i + 1}", kind="person", reference=ref,
                                region=Box(x=0.1 + 0.4 * (i % 2), y=0.2, w=0.4, h=0.5)))
    checks = {"face": CheckSpec(threshold=threshold)} if threshold is not None else {}
    return Plan(prompt=prompt, width=1024, height=1024, aspect_ratio="1:1", size="1K",
                subjects=subjects, checks=checks), refs_out


def run_check(critic: FaceCritic, image: Image.Image, plan: Plan, store: ArtifactStore,
              refs: list[ImageRef], cid: str = "c1") -> Verdict:
    return critic.check(image, plan, CheckContext(candidate_id=cid, store=store, references=refs))


def centre_x(box: list[int]) -> float:
    return (box[0] + box[2]) / 2


# --------------------------------------------------------------------------- protocol


def test_face_critic_satisfies_the_critic_protocol_and_applies_only_to_people(store, photos):
    critic = FaceCritic()
    assert isinstance(critic, Critic) and critic.name == "face"
    plan, _ = person_plan(store, photos, "obama_1")
    assert critic.applies(plan)
    product = plan.model_copy(update={"subjects": [plan.subjects[0].model_copy(update={"kind": "product"})]})
    assert not critic.applies(product)
    disabled = plan.model_copy(update={"checks": {"face": CheckSpec(threshold=0.5, enabled=False)}})
    assert not critic.applies(disabled)


def test_threshold_comes_from_the_plan_else_the_default(store, photos):
    critic = FaceCritic()
    image = poster(photos, ("obama_2", (300, 200), 600))
    plan, refs = person_plan(store, photos, "obama_1")
    assert run_check(critic, image, plan, store, refs).threshold == critic_info("face").threshold
    strict, _ = person_plan(store, photos, "obama_1", threshold=0.95)
    v = run_check(critic, image, strict, store, refs)
    assert v.threshold == 0.95 and not v.passed
    assert "only a weak match" in v.feedback and "0.95" in v.feedback


# --------------------------------------------------------------------------- identity


def test_two_photos_of_one_person_pass(store, photos):
    plan, refs = person_plan(store, photos, "obama_1")
    image = poster(photos, ("obama_2", (300, 200), 600))
    v = run_check(FaceCritic(), image, plan, store, refs)
    assert v.passed, v.feedback
    assert 0.5 <= v.score <= 1.0 and v.error is None
    ident = v.evidence["identities"][0]
    assert ident["subject"] == "person1" and ident["same"] is True
    assert ident["similarity"] >= face_engine("sface").same_threshold
    assert ident["reference_sha"] == refs[0].sha256[:12]
    x0, y0, x1, y1 = ident["box"]
    assert 300 <= x0 < x1 <= 900 and 200 <= y0 < y1 <= 800  # inside the pasted photo
    assert v.evidence["faces_found"] == 1 and v.evidence["extra_faces"] == []
    assert v.evidence["engine"] == "sface"
    assert "matches its reference" in v.feedback


def test_two_different_people_fail_with_feedback_naming_the_subject(store, photos):
    plan, refs = person_plan(store, photos, "obama_1")
    image = poster(photos, ("biden_1", (300, 200), 600))
    v = run_check(FaceCritic(), image, plan, store, refs)
    assert not v.passed and v.error is None
    assert v.score < 0.5
    assert v.evidence["identities"][0]["same"] is False
    assert "person1 (reference 1) does not look like the reference" in v.feedback
    assert "similarity" in v.feedback and "keep the reference face's identity" in v.feedback


def test_a_candidate_without_a_face_fails_no_face_found(store, photos):
    plan, refs = person_plan(store, photos, "obama_1")
    v = run_check(FaceCritic(), poster(photos), plan, store, refs)
    assert not v.passed and v.score == 0.0 and v.error is None
    assert v.evidence["faces_found"] == 0
    assert v.evidence["identities"][0]["box"] is None
    assert v.feedback.startswith("no face found for person1 (reference 1); the image shows 0 faces")


def test_an_extra_face_is_reported_and_lowers_the_score(store, photos):
    plan, refs = person_plan(store, photos, "obama_1")
    critic = FaceCritic()
    alone = run_check(critic, poster(photos, ("obama_2", (40, 200), 450)), plan, store, refs)
    crowd = run_check(critic, poster(photos, ("obama_2", (40, 200), 450), ("kit_harington_2", (560, 300), 450)),
                      plan, store, refs)
    assert crowd.evidence["faces_found"] == 2
    assert len(crowd.evidence["extra_faces"]) == 1
    assert centre_x(crowd.evidence["extra_faces"][0]) > 512  # kit, on the right
    assert "1 extra face at middle right that matches no reference" in crowd.feedback
    assert not crowd.passed, "a person the brief did not ask for fails the verdict"
    assert crowd.score == pytest.approx(min(alone.score * 0.8, 0.9 * crowd.threshold), abs=0.02)


def test_a_reference_with_no_face_gives_a_failing_verdict_with_error_not_a_crash(store, photos, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 400), (200, 60, 60)).save(blank)
    plan, refs = person_plan(store, photos, blank)
    v = run_check(FaceCritic(), poster(photos, ("obama_2", (300, 200), 600)), plan, store, refs)
    assert not v.passed and v.score == 0.0
    assert v.error is not None
    assert v.feedback.startswith(f"reference 1 (sha {refs[0].sha256[:12]}) has no detectable face")


def test_an_unreadable_reference_or_missing_store_fails_with_error(store, photos):
    plan, refs = person_plan(store, photos, "obama_1")
    image = poster(photos, ("obama_2", (300, 200), 600))
    no_store = FaceCritic().check(image, plan, CheckContext(candidate_id="c1", store=None, references=refs))
    assert not no_store.passed and no_store.error and "no artifact store" in no_store.feedback
    store.path(refs[0]).write_bytes(b"tampered")
    tampered = run_check(FaceCritic(), image, plan, store, refs)
    assert not tampered.passed and tampered.error and "cannot open reference image" in tampered.feedback


def test_hungarian_assignment_matches_two_references_to_the_right_faces_regardless_of_order(store, photos):
    image = poster(photos, ("obama_2", (40, 200), 450), ("kit_harington_2", (560, 300), 450))
    critic = FaceCritic()
    for order in (("kit_harington_1", "obama_1"), ("obama_1", "kit_harington_1")):
        plan, refs = person_plan(store, photos, *order)
        v = run_check(critic, image, plan, store, refs)
        assert v.passed, v.feedback
        assert v.evidence["extra_faces"] == []
        for name, ident in zip(order, v.evidence["identities"]):
            assert ident["same"] is True
            on_right = centre_x(ident["box"]) > 512
            assert on_right == name.startswith("kit"), (order, v.evidence)
        assert "all 2 people match their references" in v.feedback


def test_a_second_reference_without_its_person_is_reported_missing(store, photos):
    plan, refs = person_plan(store, photos, "obama_1", "biden_1")
    v = run_check(FaceCritic(), poster(photos, ("obama_2", (300, 200), 600)), plan, store, refs)
    assert not v.passed and v.score == 0.0
    assert [i["same"] for i in v.evidence["identities"]] == [True, False]
    assert v.evidence["identities"][1]["box"] is None
    assert v.feedback.startswith("no face found for person2 (reference 2); the image shows 1 face, matched to person1")


def test_copy_paste_is_flagged_when_the_prompt_asks_for_a_new_pose(store, photos):
    image = poster(photos, ("obama_1", (200, 80), 800))  # the reference itself, pasted
    critic = FaceCritic()
    plan, refs = person_plan(store, photos, "obama_1", prompt="the host in a new pose, turning to the crowd")
    v = run_check(critic, image, plan, store, refs)
    assert not v.passed and v.error is None
    assert v.evidence["new_pose_requested"] is True
    assert [c["subject"] for c in v.evidence["copy_paste"]] == ["person1"]
    assert v.evidence["copy_paste"][0]["similarity"] > face_engine("sface").copy_threshold
    assert "is a copy of the reference photo" in v.feedback and "new pose" in v.feedback
    # Same pixels, no pose asked for: just a very good match.
    plain, refs = person_plan(store, photos, "obama_1", prompt="a poster of our host")
    ok = run_check(critic, image, plain, store, refs)
    assert ok.passed and ok.evidence["copy_paste"] == [] and ok.score > 0.9
    # A genuinely different photo in a new-pose prompt is not a copy.
    other = run_check(critic, poster(photos, ("obama_2", (300, 200), 600)), plan, store, refs)
    assert other.passed and other.evidence["copy_paste"] == []


def test_reference_embeddings_are_cached_by_sha(store, photos):
    opened: list[str] = []

    class CountingStore:
        def open(self, ref):
            opened.append(ref.sha256)
            return store.open(ref)

    plan, refs = person_plan(store, photos, "obama_1")
    critic = FaceCritic()
    ctx = CheckContext(candidate_id="c", store=CountingStore(), references=refs)
    a = critic.check(poster(photos, ("obama_2", (300, 200), 600)), plan, ctx)
    b = critic.check(poster(photos, ("obama_3", (300, 200), 600)), plan, ctx)
    assert a.passed and b.passed
    assert opened == [refs[0].sha256]


def test_an_unknown_engine_gives_an_error_verdict(store, photos):
    plan, refs = person_plan(store, photos, "obama_1")
    v = run_check(FaceCritic(engine="nope"), poster(photos), plan, store, refs)
    assert not v.passed and v.error and "unknown face engine" in v.error


# --------------------------------------------------------------------------- cross-image consistency


def test_cross_image_consistency_passes_for_three_photos_of_one_person(photos):
    v = check_consistency([photo(photos, n) for n in ("obama_1", "obama_2", "obama_3")])
    assert v.passed, v.feedback
    assert v.critic == "face_consistency"
    assert len(v.evidence["pairwise"]) == 3 and v.evidence["outlier"] is None
    assert v.evidence["min_similarity"] >= face_engine("sface").same_threshold
    assert "the same character in all 3 images" in v.feedback


def test_cross_image_consistency_flags_the_outlier(photos):
    v = check_consistency([photo(photos, n) for n in ("obama_1", "biden_1", "obama_2")])
    assert not v.passed and v.error is None
    assert v.evidence["outlier"] == 2
    assert v.feedback.startswith("image 2 does not show the same character as the others")


def test_cross_image_consistency_reports_an_image_without_a_face_and_bad_input(photos):
    v = check_consistency([photo(photos, "obama_1"), Image.new("RGB", (512, 512), BG)])
    assert not v.passed and v.score == 0.0 and v.evidence["outlier"] == 2
    assert "no face found in image 2" in v.feedback
    one = check_consistency([photo(photos, "obama_1")])
    assert not one.passed and one.error and "at least 2 images" in one.error


# --------------------------------------------------------------------------- engines and threads


def test_the_engine_is_created_once_per_process():
    a = face_engine("sface")
    assert face_engine("sface") is a and face_engine() is a
    assert isinstance(a, SFaceEngine) and isinstance(a, FaceEngine)
    results: list[FaceEngine] = []
    barrier = threading.Barrier(4)

    def grab():
        barrier.wait()
        results.append(face_engine("sface"))

    threads = [threading.Thread(target=grab) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert all(r is a for r in results)
    assert FaceCritic().engine is a


def test_concurrent_checks_from_two_threads_match_serial_results(store, photos):
    critic = FaceCritic()
    plan, refs = person_plan(store, photos, "obama_1")
    images = [poster(photos, ("obama_2", (300, 200), 600)),
              poster(photos, ("obama_3", (40, 200), 450), ("kit_harington_2", (560, 300), 450)),
              poster(photos, ("biden_1", (300, 200), 600)),
              poster(photos, ("obama_4", (100, 100), 800))]
    serial = [run_check(critic, im, plan, store, refs, cid=str(i)) for i, im in enumerate(images)]
    out: dict[int, Verdict] = {}
    barrier = threading.Barrier(2)

    def worker(ids: list[int]) -> None:
        barrier.wait()
        for _ in range(2):
            for i in ids:
                out[i] = run_check(critic, images[i], plan, store, refs, cid=str(i))

    threads = [threading.Thread(target=worker, args=([0, 2],)), threading.Thread(target=worker, args=([1, 3],))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for i, v in enumerate(serial):
        assert out[i].score == pytest.approx(v.score, abs=1e-6)
        assert out[i].evidence == v.evidence
        assert out[i].feedback == v.feedback


def test_detection_maps_boxes_back_from_a_downscaled_large_image(photos, sface):
    small = poster(photos, ("obama_2", (300, 200), 600))
    big = small.resize((2048, 2048), Image.Resampling.LANCZOS)
    fs, fb = largest_face(sface.detect(as_bgr(small))), largest_face(sface.detect(as_bgr(big)))
    assert fs is not None and fb is not None
    assert np.allclose(np.array(fb.box) / 2, fs.box, atol=12)
    ref = sface.embed(as_bgr(photo(photos, "obama_1")), largest_face(sface.detect(as_bgr(photo(photos, "obama_1")))))
    assert sface.similarity(ref, sface.embed(as_bgr(big), fb)) >= sface.same_threshold


def test_embeddings_are_unit_norm_and_same_vs_different_pairs_separate(photos, sface):
    embs = {}
    for n in ("obama_1", "obama_2", "biden_1", "kit_harington_1"):
        bgr = as_bgr(photo(photos, n))
        embs[n] = sface.embed(bgr, largest_face(sface.detect(bgr)))
        assert np.linalg.norm(embs[n]) == pytest.approx(1.0, abs=1e-4)
    same = sface.similarity(embs["obama_1"], embs["obama_2"])
    diffs = [sface.similarity(embs["obama_1"], embs[k]) for k in ("biden_1", "kit_harington_1")]
    assert same >= sface.same_threshold > max(diffs)


def test_tiny_faces_are_dropped_unless_they_are_all_there_is():
    big = Face(box=(0, 0, 200, 200), score=0.9, landmarks5=((0, 0),) * 5)
    tiny = Face(box=(0, 0, 10, 10), score=0.9, landmarks5=((0, 0),) * 5)
    assert filter_faces([tiny, big], (1000, 1000, 3)) == [big]
    assert filter_faces([tiny], (1000, 1000, 3)) == [tiny]


# --------------------------------------------------------------------------- dlib (optional extra)

needs_dlib = pytest.mark.skipif(
    not dlib_available(),
    reason="dlib engine not installed: pip install dlib-bin face_recognition_models (optional extra 'faces-dlib')")


@needs_dlib
def test_dlib_engine_separates_same_and_different_people(photos):
    eng = face_engine("dlib")
    assert face_engine("dlib") is eng and eng.name == "dlib"
    embs = {}
    for n in ("obama_1", "obama_2", "biden_1"):
        bgr = as_bgr(photo(photos, n))
        faces = eng.detect(bgr)
        assert faces, n
        embs[n] = eng.embed(bgr, faces[0])
        assert np.linalg.norm(embs[n]) == pytest.approx(1.0, abs=1e-4)
    assert eng.similarity(embs["obama_1"], embs["obama_2"]) >= eng.same_threshold
    assert eng.similarity(embs["obama_1"], embs["biden_1"]) < eng.same_threshold


@needs_dlib
def test_dlib_critic_passes_one_person_and_fails_another(store, photos):
    critic = FaceCritic(engine="dlib")
    plan, refs = person_plan(store, photos, "obama_1")
    ok = run_check(critic, poster(photos, ("obama_2", (300, 200), 600)), plan, store, refs)
    bad = run_check(critic, poster(photos, ("biden_1", (300, 200), 600)), plan, store, refs)
    assert ok.passed and ok.evidence["engine"] == "dlib", ok.feedback
    assert not bad.passed and "does not look like the reference" in bad.feedback


# --------------------------------------------------------------------------- ArcFace ONNX (by path)


def test_similarity_transform_recovers_a_known_rotation_scale_and_shift():
    angle, scale, shift = np.deg2rad(12.0), 1.7, np.array([5.0, -3.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_TEMPLATE_112.astype(np.float64)
    dst = src @ rot.T + shift
    m = similarity_transform(src, dst)
    assert np.allclose(m[:, :2], rot, atol=1e-4) and np.allclose(m[:, 2], shift, atol=1e-3)


def test_align_face_puts_the_landmarks_on_the_arcface_template():
    img = np.zeros((400, 400, 3), np.uint8)
    pts = ARCFACE_TEMPLATE_112 * 2.5 + np.array([60.0, 40.0], np.float32)  # a face 2.5x the template size
    for x, y in pts:
        cv_x, cv_y = int(round(x)), int(round(y))
        img[cv_y - 2:cv_y + 3, cv_x - 2:cv_x + 3] = 255
    crop = align_face(img, pts, 112)
    assert crop.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE_112:
        assert crop[int(round(y)), int(round(x))].max() > 100


def test_arcface_blob_is_normalised_rgb_in_the_requested_layout():
    bgr = np.zeros((112, 112, 3), np.uint8)
    bgr[..., 2] = 255  # red in BGR
    nchw = arcface_blob(bgr)
    assert nchw.shape == (1, 3, 112, 112) and nchw.dtype == np.float32
    assert nchw[0, 0].max() == pytest.approx(1.0) and nchw[0, 2].min() == pytest.approx(-1.0)  # R first
    nhwc = arcface_blob(bgr, mean=0, std=1, swap_rb=False, layout="NHWC")
    assert nhwc.shape == (1, 112, 112, 3) and nhwc[0, 0, 0, 2] == 255


def _tiny_arcface_onnx(path: Path) -> None:
    onnx = pytest.importorskip("onnx", reason="onnx not installed: cannot build a test ArcFace model")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    conv_w = rng.standard_normal((8, 3, 8, 8)).astype(np.float32) * 0.05
    fc_w = rng.standard_normal((8 * 14 * 14, 32)).astype(np.float32) * 0.05
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input.1", "conv_w"], ["c"], strides=[8, 8]),
         helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("Flatten", ["r"], ["f"], axis=1),
         helper.make_node("MatMul", ["f", "fc_w"], ["embedding"])],
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [None, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 32])],
        [numpy_helper.from_array(conv_w, "conv_w"), numpy_helper.from_array(fc_w, "fc_w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_onnx_arcface_engine_runs_a_model_given_by_path(tmp_path, photos, store):
    model = tmp_path / "tiny_arcface.onnx"
    _tiny_arcface_onnx(model)
    name = f"arcface:{model}"
    eng = face_engine(name)
    assert face_engine(name) is eng and eng.size == 112 and eng.layout == "NCHW"
    bgr = as_bgr(photo(photos, "obama_1"))
    faces = eng.detect(bgr)
    e1, e2 = eng.embed(bgr, faces[0]), eng.embed(bgr, faces[0])
    assert e1.shape == (32,) and np.linalg.norm(e1) == pytest.approx(1.0, abs=1e-4)
    assert eng.similarity(e1, e2) == pytest.approx(1.0, abs=1e-5)
    # The critic runs end to end on it (a random model says nothing about identity: no pass/fail assert).
    plan, refs = person_plan(store, photos, "obama_1")
    v = run_check(FaceCritic(engine=name), poster(photos, ("obama_2", (300, 200), 600)), plan, store, refs)
    assert v.error is None and v.evidence["engine"] == eng.name and v.evidence["faces_found"] == 1


def test_a_missing_arcface_file_is_an_error_verdict(store, photos, tmp_path):
    plan, refs = person_plan(store, photos, "obama_1")
    v = run_check(FaceCritic(engine=f"arcface:{tmp_path / 'nope.onnx'}"), poster(photos), plan, store, refs)
    assert not v.passed and v.error and "not found" in v.error


# --------------------------------------------------------------------------- pure helpers


def test_similarity_maps_the_engines_same_threshold_to_half_a_score():
    assert similarity_to_score(0.363, 0.363) == pytest.approx(0.5)
    assert similarity_to_score(1.0, 0.363) == 1.0 and similarity_to_score(-0.2, 0.363) == 0.0
    assert similarity_to_score(0.36, 0.363) < 0.5 <= similarity_to_score(0.3631, 0.363)
    assert similarity_to_score(0.80, 0.91, floor=0.80) == 0.0


def test_new_pose_words_are_whole_words_case_insensitive():
    assert asks_for_new_pose("Same man, NEW POSE")
    assert asks_for_new_pose("she is turning to the left") and asks_for_new_pose("in profile")
    assert asks_for_new_pose("from a different   angle")
    assert not asks_for_new_pose("return of the king") and not asks_for_new_pose("a studio portrait")
    assert asks_for_new_pose("a studio portrait", words=("portrait",))


def test_where_names_the_part_of_the_image():
    assert where((0, 0, 100, 100), (1024, 1024)) == "top left"
    assert where((462, 462, 562, 562), (1024, 1024)) == "centre"
    assert where((900, 500, 1000, 600), (1024, 1024)) == "middle right"


def test_the_dnn_fallback_for_sface_gives_the_same_embedding_as_feature(photos, sface):
    bgr = as_bgr(photo(photos, "obama_1"))
    face = largest_face(sface.detect(bgr))
    fallback = SFaceEngine(detector=sface.detector)
    fallback._use_net = True  # what happens when FaceRecognizerSF.feature() raises (OpenCV 5.0)
    assert sface.similarity(sface.embed(bgr, face), fallback.embed(bgr, face)) == pytest.approx(1.0, abs=1e-4)


def test_a_tight_headshot_filling_a_large_reference_is_still_found(store, photos, tmp_path):
    full = photo(photos, "obama_1")
    x0, y0, x1, y1 = largest_face(face_engine("sface").detect(as_bgr(full))).int_box()
    tight = tmp_path / "tight.png"
    full.crop((x0, y0, x1, y1)).resize((800, round(800 * (y1 - y0) / (x1 - x0)))).save(tight)
    plan, refs = person_plan(store, photos, tight)
    v = run_check(FaceCritic(), poster(photos, ("obama_2", (300, 200), 600)), plan, store, refs)
    assert v.passed and v.error is None, v.feedback
