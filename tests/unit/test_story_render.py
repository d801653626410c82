"""story.md and story.html: the document's text as written, its images by relative path (or embedded), placeholders
for images not made yet, every layout, escaping, the consistency section, and atomic writes."""

from __future__ import annotations

import base64
import hashlib
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from agent.loop.document.render import markdown_html, story_html, story_markdown, write_story
from agent.models.base import ImageRef
from agent.models.document import (
    Character,
    CharacterConsistency,
    CharacterSheet,
    ConsistencyReport,
    DocumentBrief,
    ImageCue,
    ImageOutcome,
    PairScore,
    Section,
    SheetEntry,
    StyleDistance,
    TextBlock,
)
from agent.runtime.store import ArtifactStore

TEXT_1 = "Once upon a time **Mira** found a *lantern*.\nIt glowed."
TEXT_2 = "She walked into the forest.\n\nThe trees whispered."


class Page(HTMLParser):
    """The parts of a page the tests look at: every start tag with its attributes, text, table rows."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.rows: list[list[tuple[str, dict[str, str], str]]] = []
        self._cell: tuple[str, dict[str, str], list[str]] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = (tag, a, [])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            name, attrs, parts = self._cell
            self.rows[-1].append((name, attrs, "".join(parts).strip()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell[2].append(data)

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in a.get("class", "").split())]

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def png(store: ArtifactStore, colour: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> ImageRef:
    return store.put_image(Image.new("RGB", size, colour))


def make_doc(layout: str = "book", title: str = "The Lantern") -> DocumentBrief:
    return DocumentBrief(
        title=title, layout=layout, characters=[Character(name="Mira")],
        sections=[
            Section(id="s1", title="The find", blocks=[
                TextBlock(text=TEXT_1),
                ImageCue(id="s1-i1", prompt="a girl holding a lantern", characters=["Mira"],
                         caption="Mira and the lantern")]),
            Section(id="s2", title="The forest", blocks=[
                ImageCue(id="s2-i1", prompt="a dark forest at dusk", aspect_ratio="16:9"),
                TextBlock(text=TEXT_2)]),
        ])


def outcome(cue_id: str, ref: ImageRef | None, status: str = "passed", iterations: int = 2) -> ImageOutcome:
    return ImageOutcome(id=cue_id, status=status, iterations=iterations, image=ref,
                        run_dir=f"images/{cue_id}", verdicts={"ocr": status == "passed", "spec": True})


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore.for_dir(tmp_path)


@pytest.fixture
def done(store: ArtifactStore) -> dict[str, ImageOutcome]:
    return {"s1-i1": outcome("s1-i1", png(store, (200, 40, 40))),
            "s2-i1": outcome("s2-i1", png(store, (20, 90, 30)), status="below_threshold", iterations=3)}


def assert_self_contained(page: Page, text: str, doc_dir: Path) -> None:
    assert not page.find("script") and not page.find("link") and not page.find("iframe")
    assert "://" not in text and "url(" not in text and "@import" not in text
    for attrs in page.find("img"):
        src = attrs["src"]
        assert src.startswith("data:image/") or (doc_dir / src).is_file(), src


# ---------------------------------------------------------------------------------------------- markdown

def test_markdown_keeps_the_text_as_written_and_links_each_image(tmp_path: Path,
                                                                    done: dict[str, ImageOutcome]) -> None:
    md = story_markdown(make_doc(), done, tmp_path)
    lines = md.splitlines()
    assert lines[0] == "# The Lantern"
    assert "## The find" in lines and "## The forest" in lines
    assert TEXT_1 in md and TEXT_2 in md
    ref1, ref2 = done["s1-i1"].image, done["s2-i1"].image
    assert ref1 is not None and ref2 is not None
    assert f"![Mira and the lantern]({ref1.path})" in lines
    assert f"![a dark forest at dusk]({ref2.path})" in lines  # no caption: the prompt
    assert (tmp_path / ref1.path).is_file() and (tmp_path / ref2.path).is_file()
    assert md.index(TEXT_1) < md.index(ref1.path) < md.index(ref2.path) < md.index("The trees whispered.")


def test_a_pending_image_is_a_placeholder_until_it_is_ready(tmp_path: Path, store: ArtifactStore) -> None:
    doc = make_doc()
    outcomes = {"s1-i1": outcome("s1-i1", None, status="running", iterations=0)}
    md = story_markdown(doc, outcomes, tmp_path)
    assert "<!-- image s1-i1: being made -->" in md and "<!-- image s2-i1: being made -->" in md
    assert "![" not in md
    page = Page(story_html(doc, outcomes, tmp_path, live=True))
    assert not page.find("img") and len(page.find("div", "placeholder")) == 2
    assert "being made…" in page.all_text
    assert {"http-equiv": "refresh", "content": "2"} in page.find("meta")
    assert not [m for m in Page(story_html(doc, outcomes, tmp_path)).find("meta") if "http-equiv" in m]

    outcomes["s1-i1"] = outcome("s1-i1", png(store, (1, 2, 3)))
    md = story_markdown(doc, outcomes, tmp_path)
    assert "<!-- image s1-i1" not in md and "<!-- image s2-i1: being made -->" in md
    page = Page(story_html(doc, outcomes, tmp_path))
    assert len(page.find("img")) == 1 and len(page.find("div", "placeholder")) == 1


def test_a_failed_image_without_a_picture_says_so(tmp_path: Path) -> None:
    outcomes = {"s2-i1": outcome("s2-i1", None, status="failed", iterations=1)}
    assert "<!-- image s2-i1: not made (failed) -->" in story_markdown(make_doc(), outcomes, tmp_path)
    page = Page(story_html(make_doc(), outcomes, tmp_path))
    assert "✗ failed · 1 iteration" in page.all_text and "not made" in page.all_text


# ---------------------------------------------------------------------------------------------- html

def test_html_is_self_contained_with_no_external_urls(tmp_path: Path, done: dict[str, ImageOutcome]) -> None:
    text = story_html(make_doc(), done, tmp_path)
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>") and page.find("style")
    imgs = page.find("img")
    assert len(imgs) == 2
    assert_self_contained(page, text, tmp_path)
    assert all(not a["src"].startswith(("data:", "/")) for a in imgs)  # relative: the images lie next to it


def test_embedded_html_carries_the_images_as_data_urls(tmp_path: Path, done: dict[str, ImageOutcome]) -> None:
    text = story_html(make_doc(), done, tmp_path, embed=True)
    page = Page(text)
    imgs = page.find("img")
    assert len(imgs) == 2
    assert_self_contained(page, text, tmp_path)
    for attrs, cue in zip(imgs, ("s1-i1", "s2-i1")):
        head, _, payload = attrs["src"].partition(",")
        assert head == "data:image/png;base64"
        ref = done[cue].image
        assert ref is not None and hashlib.sha256(base64.b64decode(payload)).hexdigest() == ref.sha256


def test_each_image_carries_a_status_badge(tmp_path: Path, done: dict[str, ImageOutcome]) -> None:
    page = Page(story_html(make_doc(), done, tmp_path))
    badges = page.find("span", "badge")
    assert [b["class"] for b in badges] == ["badge passed", "badge below_threshold"]
    assert "✓ passed · 2 iterations" in page.all_text and "△ below threshold · 3 iterations" in page.all_text


def test_book_layout_has_one_numbered_page_per_section(tmp_path: Path, done: dict[str, ImageOutcome]) -> None:
    page = Page(story_html(make_doc("book"), done, tmp_path))
    assert page.find("main", "book") and len(page.find("section", "page")) == 2
    assert len(page.find("div", "page-number")) == 2
    assert "<strong>" not in page.all_text and "Mira" in page.all_text
    assert page.find("strong") and page.find("em") and page.find("br")


def test_comic_layout_renders_a_grid_of_panels(tmp_path: Path, done: dict[str, ImageOutcome]) -> None:
    text = story_html(make_doc("comic"), done, tmp_path)
    page = Page(text)
    assert page.find("main", "comic") and "grid-template-columns:repeat(2,1fr)" in text
    panels = page.find("article", "panel")
    assert [p["id"] for p in panels] == ["sec-s1", "sec-s2"]
    assert len(page.find("div", "caption")) == 2 and len(page.find("img")) == 2


def test_storyboard_layout_numbers_its_frames(tmp_path: Path, done: dict[str, ImageOutcome]) -> None:
    text = story_html(make_doc("storyboard"), done, tmp_path)
    page = Page(text)
    assert "grid-template-columns:repeat(3,1fr)" in text and len(page.find("article", "frame")) == 2
    assert "Frame 1" in page.all_text and "Frame 2" in page.all_text and len(page.find("div", "notes")) == 2


def test_tutorial_layout_numbers_its_steps(tmp_path: Path, done: dict[str, ImageOutcome]) -> None:
    page = Page(story_html(make_doc("tutorial"), done, tmp_path))
    assert len(page.find("li", "step")) == 2 and len(page.find("div", "media")) == 2
    assert "Step 1" in page.all_text and "Step 2" in page.all_text


def test_user_text_is_escaped_in_html(tmp_path: Path, store: ArtifactStore) -> None:
    evil = '<script>alert("x")</script> & <img src=http://evil.example/x.png>'
    doc = DocumentBrief(title="<b>Bold</b> title", layout="comic", sections=[Section(id="s1", title="<i>t</i>", blocks=[
        TextBlock(text=evil + "\n**still <u>safe</u>**"),
        ImageCue(id="s1-i1", prompt='a "quoted" <prompt>', caption='cap" onerror="alert(1)')])])
    outcomes = {"s1-i1": outcome("s1-i1", png(store, (9, 9, 9)))}
    text = story_html(doc, outcomes, tmp_path)
    page = Page(text)
    assert not page.find("script") and not page.find("b") and not page.find("i") and not page.find("u")
    imgs = page.find("img")
    assert len(imgs) == 1 and "onerror" not in imgs[0]
    assert imgs[0]["alt"] == 'cap" onerror="alert(1)'
    assert evil in page.all_text and "<b>Bold</b> title" in page.all_text and "still <u>safe</u>" in page.all_text
    assert "evil.example" not in {a.get("src", "") for _, a in page.tags}


def test_markdown_rendering_is_minimal_and_safe() -> None:
    assert markdown_html("a **b** *c* _d_ snake_case_name\nline\n\n<p>x</p>") == (
        "<p>a <strong>b</strong> <em>c</em> <em>d</em> snake_case_name<br>\nline</p>\n<p>&lt;p&gt;x&lt;/p&gt;</p>\n")


# ---------------------------------------------------------------------------------------------- consistency

def consistency_report() -> ConsistencyReport:
    labels = ["sheet", "s1-i1", "s2-i1"]
    mira = CharacterConsistency(
        name="Mira", images=["s1-i1", "s2-i1"], labels=labels, threshold=0.5,
        matrix=[[1.0, 0.8, 0.3], [0.8, 1.0, None], [0.3, None, 1.0]],
        pairs=[PairScore(a="sheet", b="s1-i1", similarity=0.8, passed=True),
               PairScore(a="sheet", b="s2-i1", similarity=0.3, passed=False),
               PairScore(a="s1-i1", b="s2-i1", similarity=None, passed=True)],
        failing=["s2-i1"])
    styles = [StyleDistance(id="s1-i1", palette=["#aa2222", "#ffeecc", "red;x:url(http://e)"], palette_distance=3.0,
                            style_distance=0.1, passed=True),
              StyleDistance(id="s2-i1", palette=["#113311"], palette_distance=22.0, style_distance=0.9, passed=False)]
    return ConsistencyReport(characters=[mira], styles=styles, failing=["s2-i1"],
                             reasons={"s2-i1": "Mira does not look like her sheet"})


def test_consistency_matrix_marks_the_failing_pair(tmp_path: Path, done: dict[str, ImageOutcome]) -> None:
    text = story_html(make_doc(), done, tmp_path, consistency=consistency_report())
    page = Page(text)
    assert page.find("section", "consistency")
    matrix = [r for r in page.rows if r and r[0][0] == "th"][:4]
    header = [c[2] for c in matrix[0]]
    assert header == ["", "sheet", "s1-i1", "s2-i1"]
    failing = {(row[0][2].rstrip(" ✗"), header[j]) for row in matrix[1:] for j, c in enumerate(row)
               if "fail" in c[1].get("class", "").split()}
    assert failing == {("sheet", "s2-i1"), ("s2-i1", "sheet")}
    assert "no face" in page.all_text and "Mira does not look like her sheet" in page.all_text
    swatches = page.find("span", "swatch")
    assert [s["title"] for s in swatches] == ["#aa2222", "#ffeecc", "#113311"]  # the malformed colour is dropped
    assert "://" not in text


def test_character_sheet_shows_its_reference_thumbnails(tmp_path: Path, store: ArtifactStore,
                                                        done: dict[str, ImageOutcome]) -> None:
    ref = png(store, (50, 60, 70), (8, 8))
    sheet = CharacterSheet(characters=[SheetEntry(name="Mira", references=[ref], origin="given")],
                           palette=["#123456"])
    page = Page(story_html(make_doc(), done, tmp_path, sheet=sheet))
    thumbs = [a for a in page.find("img") if a["src"] == ref.path]
    assert len(thumbs) == 1 and (tmp_path / ref.path).is_file()
    assert "Character sheet" in page.all_text and page.find("span", "swatch")
    assert not Page(story_html(make_doc(), done, tmp_path)).find("section", "consistency")


# ---------------------------------------------------------------------------------------------- writing

def test_write_story_replaces_files_atomically(tmp_path: Path, done: dict[str, ImageOutcome],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    doc_dir = tmp_path
    (doc_dir / "story.md").write_text("old")
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    md_path, html_path = write_story(make_doc(), {}, doc_dir, live=True)
    assert (md_path, html_path) == (doc_dir / "story.md", doc_dir / "story.html")
    assert [dst for _, dst in replaced] == [md_path, html_path]
    assert all(src.parent == doc_dir and src != dst for src, dst in replaced)
    assert "<!-- image s1-i1: being made -->" in md_path.read_text()

    write_story(make_doc(), done, doc_dir)
    assert "<!-- image" not in md_path.read_text() and len(Page(html_path.read_text()).find("img")) == 2

    def broken(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    before = md_path.read_text()
    with pytest.raises(OSError, match="disk full"):
        write_story(make_doc(title="Another"), {}, doc_dir)
    assert md_path.read_text() == before  # the old file stays whole
    assert not [p.name for p in doc_dir.iterdir() if p.name.endswith(".tmp")]  # no temporary file is left
