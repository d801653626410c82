"""The cross-image consistency step of a document: real SFace on labelled photos, compose renders for palettes.

The face photos (shared/data/faces) are test fixtures only; appearances are the photos themselves or posters
with photos pasted in; palettes come from the offline compose backend rendering one plan with several seeds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.backends import get_backend
from agent.backends.base import GenerationRequest
from agent.loop.document.consistency import PALETTE_THRESHOLD, STYLE_THRESHOLD, check_document, reading_order
from agent.loop.document.style import document_palette, image_look
from agent.models import Box, PixloopConfig, Plan, Style, Subject, TextElement
from agent.models.document import CharacterConsistency, ConsistencyReport
from agent.runtime.store import ArtifactStore
from critics.face.engines import Face, FaceEngine, as_bgr

TEAL = ["#003d3d", "#0f7173", "#f2e8cf"]
PINK = ["#5a1846", "#c44d8c", "#ffd6e8"]


def photo(faces_dir: Path, name: str) -> Path:
    return faces_dir / f"{name}.jpg"


def photos(faces_dir: Path, *names: str) -> dict[str, Path]:
    """Image id (the photo's name with '-' for '_') -> the photo file."""
    return {n.replace("_", "-"): photo(faces_dir, n) for n in names}


def poster(path: Path, faces_dir: Path, *items: tuple[str, tuple[int, int], int]) -> Path:
    """A 1024x1024 grey canvas with each photo scaled to fit `side` px pasted at (x, y), saved to path."""
    canvas = Image.new("RGB", (1024, 1024), (70, 80, 90))
    for name, xy, side in items:
        p = Image.open(photo(faces_dir, name)).convert("RGB")
        p.thumbnail((side, side), Image.Resampling.LANCZOS)
        canvas.paste(p, xy)
    canvas.save(path)
    return path


def render(tmp_path: Path, name: str, palette: list[str], seed: int, faces_dir: Path | None = None,
           person: str | None = None) -> Path:
    """A 1024x1024 storybook page from the compose backend: textured background, a title, maybe a person."""
    store = ArtifactStore(tmp_path / "store")
    subjects = []
    if person is not None and faces_dir is not None:
        subjects = [Subject(id="hero", kind="person", reference=store.put_file(photo(faces_dir, person)),
                            region=Box(x=0.1, y=0.4, w=0.8, h=0.56))]
    plan = Plan(prompt="a storybook page", width=1024, height=1024, aspect_ratio="1:1", size="1K",
                text=[TextElement(id="title", content="Chapter one", region=Box(x=0.06, y=0.04, w=0.88, h=0.3))],
                subjects=subjects, style=Style(background="texture", palette=palette, texture_strength=0.5))
    backend = get_backend("compose", PixloopConfig())
    result = asyncio.run(backend.generate(GenerationRequest(plan=plan, seed=seed, prompt=plan.prompt), store))
    path = tmp_path / f"{name}.png"
    result.image.save(path)
    return path


def check_faces(appearances: dict[str, list[str]], images: dict[str, Path], sheet: dict[str, list[Path]],
                engine: str | FaceEngine | None = None) -> ConsistencyReport:
    """check_document with the look checks off: photos from different shoots do not share a palette, and that
    is not what the face tests test."""
    return check_document(appearances, images, sheet, engine=engine, palette_threshold=float("inf"),
                          style_threshold=float("inf"))


def character(report: ConsistencyReport, name: str) -> CharacterConsistency:
    return next(c for c in report.characters if c.name == name)


class _BrokenEngine:
    name = "broken"
    same_threshold = 0.4
    copy_threshold = 0.9
    score_floor = 0.0

    def detect(self, bgr: np.ndarray) -> list[Face]:
        raise RuntimeError("model file is corrupt")

    def embed(self, bgr: np.ndarray, face: Face) -> np.ndarray:
        raise RuntimeError("model file is corrupt")

    def similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        return 0.0


# --------------------------------------------------------------------------------------------- faces


def test_same_person_in_every_image_is_consistent_with_the_sheet(faces_dir: Path):
    images = photos(faces_dir, "obama_2", "obama_3", "obama_4", "obama_5")
    report = check_faces({"Mia": list(images)}, images, {"Mia": [photo(faces_dir, "obama_1")]})
    mia = character(report, "Mia")
    assert report.passed and report.failing == [] and report.reasons == {}
    assert mia.verified and mia.failing == []
    assert mia.threshold == pytest.approx(0.363, abs=0.01)
    assert all(s is not None and s >= mia.threshold for s in mia.matrix[0][1:])
    assert all(p.passed for p in mia.pairs)
    assert "4 of 4" in mia.note


def test_an_image_of_another_person_is_the_one_that_fails(faces_dir: Path):
    images = photos(faces_dir, "obama_2", "obama_3", "biden_1", "obama_4")
    report = check_faces({"Mia": list(images)}, images, {"Mia": [photo(faces_dir, "obama_1")]})
    assert report.failing == ["biden-1"]
    assert character(report, "Mia").failing == ["biden-1"]
    reason = report.reasons["biden-1"]
    assert reason.startswith("Mia's face: similarity 0.") and "to the sheet < 0.36" in reason
    low = character(report, "Mia").matrix[0][3]
    assert low is not None and f"{low:.2f}" in reason


def test_several_references_make_one_mean_sheet_row(faces_dir: Path):
    images = photos(faces_dir, "obama_4", "obama_5", "rose_leslie_1")
    sheet = {"Mia": [photo(faces_dir, "obama_1"), photo(faces_dir, "obama_2"), photo(faces_dir, "obama_3")]}
    mia = character(check_faces({"Mia": list(images)}, images, sheet), "Mia")
    assert mia.labels == ["sheet", "obama-4", "obama-5", "rose-leslie-1"]
    assert len(mia.matrix) == 4 and mia.failing == ["rose-leslie-1"]


def test_without_references_the_first_appearance_anchors_the_character(faces_dir: Path):
    images = photos(faces_dir, "kit_harington_1", "kit_harington_2", "alex_lacamoire_1", "kit_harington_3")
    report = check_faces({"Tom": list(images)}, images, {"Tom": []})
    tom = character(report, "Tom")
    assert tom.labels == list(images)  # no sheet row
    assert "kit-harington-1 anchors" in tom.note
    assert report.failing == ["alex-lacamoire-1"]
    assert "mean similarity" in report.reasons["alex-lacamoire-1"] and "other appearances" in report.reasons[
        "alex-lacamoire-1"]


def test_two_appearances_that_disagree_keep_the_anchor_and_fail_the_second(faces_dir: Path):
    images = photos(faces_dir, "rose_leslie_1", "biden_2")
    report = check_faces({"Ann": list(images)}, images, {})
    assert report.failing == ["biden-2"]


def test_two_characters_in_one_image_get_different_faces(faces_dir: Path, tmp_path: Path):
    # Obama's face is the larger one in the shared image: Rose (no sheet) must not get it just for its size.
    both = poster(tmp_path / "both.png", faces_dir, ("obama_2", (20, 100), 620), ("rose_leslie_1", (660, 300), 340))
    images = {"p1": both, "p2": photo(faces_dir, "obama_3"), "p3": photo(faces_dir, "rose_leslie_2")}
    appearances = {"Obama": ["p1", "p2"], "Rose": ["p1", "p3"]}
    report = check_faces(appearances, images, {"Obama": [photo(faces_dir, "obama_1")]})
    obama, rose = character(report, "Obama"), character(report, "Rose")
    assert report.failing == []
    assert obama.labels == ["sheet", "p1", "p2"] and rose.labels == ["p1", "p3"]
    assert rose.matrix[0][1] is not None and rose.matrix[0][1] >= rose.threshold  # Rose's own face in p1


def test_two_characters_with_sheets_in_one_image_both_match(faces_dir: Path, tmp_path: Path):
    both = poster(tmp_path / "both.png", faces_dir, ("rose_leslie_1", (20, 100), 480), ("obama_2", (520, 100), 480))
    sheet = {"Obama": [photo(faces_dir, "obama_1")], "Rose": [photo(faces_dir, "rose_leslie_2")]}
    report = check_faces({"Obama": ["p1"], "Rose": ["p1"]}, {"p1": both}, sheet)
    assert report.failing == []
    assert all(c.matrix[0][1] is not None and c.matrix[0][1] >= c.threshold for c in report.characters)


def test_a_character_with_more_appearances_than_faces_fails_where_no_face_is_left(faces_dir: Path, tmp_path: Path):
    one_face = poster(tmp_path / "one.png", faces_dir, ("obama_2", (200, 200), 600))
    sheet = {"Obama": [photo(faces_dir, "obama_1")], "Rose": [photo(faces_dir, "rose_leslie_1")]}
    report = check_faces({"Obama": ["p1"], "Rose": ["p1"]}, {"p1": one_face}, sheet)
    assert character(report, "Obama").failing == [] and character(report, "Rose").failing == ["p1"]
    assert report.reasons["p1"] == "Rose's face: no face found for Rose"


def test_unavailable_face_engine_leaves_faces_unverified_not_failed(faces_dir: Path):
    images = photos(faces_dir, "obama_2", "biden_1")
    for engine in (_BrokenEngine(), "no-such-engine"):
        report = check_faces({"Mia": list(images)}, images, {"Mia": [photo(faces_dir, "obama_1")]},
                                engine=engine)
        mia = character(report, "Mia")
        assert not mia.verified and mia.failing == [] and mia.matrix == []
        assert "not verified" in mia.note
        assert report.passed


def test_matrix_labels_put_the_sheet_first(faces_dir: Path):
    images = photos(faces_dir, "kit_harington_2", "kit_harington_3")  # e.g. in the order the renders finished
    report = check_faces({"Tom": ["kit-harington-3", "kit-harington-2"]}, images,
                         {"Tom": [photo(faces_dir, "kit_harington_1")]})
    tom = character(report, "Tom")
    assert tom.labels == ["sheet", "kit-harington-3", "kit-harington-2"]  # then the appearances, in reading order
    assert tom.images == ["kit-harington-3", "kit-harington-2"]
    assert len(tom.matrix) == 3 and all(len(row) == 3 for row in tom.matrix)
    assert [tom.matrix[i][i] for i in range(3)] == [1.0, 1.0, 1.0]
    assert tom.matrix[0][2] == tom.matrix[2][0]
    assert [(p.a, p.b) for p in tom.pairs] == [("sheet", "kit-harington-3"), ("sheet", "kit-harington-2"),
                                              ("kit-harington-3", "kit-harington-2")]


def test_reading_order_merges_the_appearances_whatever_order_the_images_come_in():
    images = {i: Path(f"{i}.png") for i in ["c", "x", "a", "d", "b"]}
    appearances = {"Ann": ["a", "b", "d"], "Bo": ["b", "c"], "Cy": ["a", "c", "d"]}
    assert reading_order(appearances, images) == ["x", "a", "b", "c", "d"]
    assert reading_order({"Ann": ["b", "a"], "Bo": ["a", "b"]}, {"a": Path("a"), "b": Path("b")}) == ["a", "b"]


def test_without_a_sheet_the_anchor_is_the_first_appearance_even_if_its_render_finished_last(faces_dir: Path):
    images = photos(faces_dir, "alex_lacamoire_1", "rose_leslie_2", "alex_lacamoire_2")
    report = check_faces({"Ann": ["rose-leslie-2", "alex-lacamoire-1", "alex-lacamoire-2"]}, images, {})
    ann = character(report, "Ann")
    assert ann.labels == ["rose-leslie-2", "alex-lacamoire-1", "alex-lacamoire-2"]
    assert "rose-leslie-2 anchors" in ann.note
    assert report.failing == ["rose-leslie-2"]  # the two others agree with each other: the anchor is the outlier


def test_references_without_a_face_are_noted_and_the_first_appearance_anchors(faces_dir: Path, tmp_path: Path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 400), (200, 180, 160)).save(blank)
    images = photos(faces_dir, "kit_harington_2", "kit_harington_3")
    tom = character(check_faces({"Tom": list(images)}, images, {"Tom": [blank]}), "Tom")
    assert tom.labels == list(images) and tom.failing == []
    assert "no face in reference blank.png" in tom.note and "kit-harington-2 anchors" in tom.note


def test_an_image_that_cannot_be_read_fails_and_the_rest_is_still_checked(faces_dir: Path, tmp_path: Path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    images = photos(faces_dir, "obama_2", "obama_3") | {"gone": broken}
    report = check_faces({"Mia": list(images)}, images, {"Mia": [photo(faces_dir, "obama_1")]})
    assert report.failing == ["gone"] and report.reasons["gone"].startswith("cannot read the image")
    assert character(report, "Mia").images == ["obama-2", "obama-3"]


def test_an_appearance_that_was_not_rendered_is_noted_not_failed(faces_dir: Path):
    images = photos(faces_dir, "obama_2")
    report = check_document({"Mia": ["obama-2", "s9-i1"]}, images, {"Mia": [photo(faces_dir, "obama_1")]})
    mia = character(report, "Mia")
    assert mia.images == ["obama-2"] and "not rendered, not checked: s9-i1" in mia.note
    assert report.passed


# --------------------------------------------------------------------------------------------- palette and style


@pytest.fixture(scope="module")
def teal_pages(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path) -> list[Path]:
    tmp = tmp_path_factory.mktemp("teal")
    people = ["kit_harington_1", "kit_harington_2", "kit_harington_3", "kit_harington_1"]
    return [render(tmp, f"teal-{i}", TEAL, 100 + i, faces_dir, person) for i, person in enumerate(people)]


def test_renders_of_one_style_share_the_palette_and_pass(teal_pages: list[Path]):
    images = {f"p{i}": p for i, p in enumerate(teal_pages)}
    report = check_document({}, images, {})
    assert report.failing == [] and len(report.styles) == 4
    assert report.palette_threshold == PALETTE_THRESHOLD and report.style_threshold == STYLE_THRESHOLD
    for st in report.styles:
        assert st.passed and st.palette_distance < PALETTE_THRESHOLD / 2 and st.style_distance < STYLE_THRESHOLD
        assert len(st.palette) == 5 and all(c.startswith("#") and len(c) == 7 for c in st.palette)


def test_an_image_in_another_palette_fails_the_palette_check(teal_pages: list[Path], tmp_path: Path,
                                                              faces_dir: Path):
    pink = render(tmp_path, "pink", PINK, 7, faces_dir, "kit_harington_2")
    images = {"p1": teal_pages[0], "p2": teal_pages[1], "p3": pink, "p4": teal_pages[2], "p5": teal_pages[3]}
    report = check_document({"Kit": list(images)}, images, {"Kit": [photo(faces_dir, "kit_harington_3")]})
    assert report.failing == ["p3"]
    odd = next(s for s in report.styles if s.id == "p3")
    assert not odd.passed and odd.palette_distance > PALETTE_THRESHOLD
    assert report.reasons["p3"].startswith(f"palette: Delta E {odd.palette_distance:.1f}")
    assert character(report, "Kit").failing == []  # the same person: only the look is wrong


def test_a_photo_among_drawings_is_out_of_style(teal_pages: list[Path], faces_dir: Path):
    images = {f"p{i}": p for i, p in enumerate(teal_pages)} | {"photo": photo(faces_dir, "biden_2")}
    report = check_document({}, images, {})
    assert report.failing == ["photo"]


def test_the_palette_is_ordered_by_share(tmp_path: Path):
    arr = np.zeros((100, 100, 3), np.uint8)
    arr[:, :70] = (200, 30, 30)
    arr[:, 70:90] = (30, 30, 200)
    arr[:, 90:] = (240, 240, 240)
    look = image_look(as_bgr(Image.fromarray(arr)))
    assert look.hex[:3] == ("#c81e1e", "#1e1ec8", "#f0f0f0")
    assert list(look.shares) == sorted(look.shares, reverse=True)


def test_a_document_of_one_image_has_nothing_to_compare(teal_pages: list[Path]):
    report = check_document({}, {"p1": teal_pages[0]}, {})
    assert report.passed
    assert report.styles[0].palette_distance == 0.0 and report.styles[0].passed


def test_failing_follows_reading_order_and_the_report_times_itself(teal_pages: list[Path], faces_dir: Path,
                                                                    tmp_path: Path):
    pink = render(tmp_path, "pink", PINK, 3)
    images = {"a": photo(faces_dir, "biden_1"), "b": teal_pages[0], "c": pink, "d": teal_pages[1],
              "e": teal_pages[2], "f": teal_pages[3]}
    report = check_document({"Kit": ["a", "b", "e"]}, images, {"Kit": [photo(faces_dir, "kit_harington_3")]},
                            round=2)
    assert report.round == 2
    assert report.failing == ["a", "c"], report.reasons
    assert "Kit's face" in report.reasons["a"] and "palette" in report.reasons["c"]
    assert 0 < report.seconds < 30


def test_two_images_in_another_palette_do_not_vouch_for_each_other(teal_pages: list[Path], tmp_path: Path):
    pinks = [render(tmp_path, f"pink-{i}", PINK, 10 + i) for i in range(2)]
    images = {"t1": teal_pages[0], "k1": pinks[0], "t2": teal_pages[1], "t3": teal_pages[2], "k2": pinks[1],
              "t4": teal_pages[3]}
    report = check_document({}, images, {})
    assert report.failing == ["k1", "k2"]


def test_the_document_palette_is_the_share_weighted_union_of_the_pages(teal_pages: list[Path]):
    looks = [image_look(as_bgr(Image.open(p))) for p in teal_pages]
    palette = document_palette(looks)
    assert len(palette) == 5 and len(set(palette)) == 5
    r, g, b = (int(palette[0][i:i + 2], 16) for i in (1, 3, 5))
    assert g > r + 40 and b > r + 40  # the background's dark teal has the largest share
