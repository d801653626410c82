"""A user's Markdown script as a DocumentBrief: cues become image specs, everything else stays text as written."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from agent.loop.document.script import MAX_SCRIPT_BYTES, load_script, parse_script
from agent.models.document import ImageCue, TextBlock
from agent.models.errors import BriefError

BAKERY = """# Mia's bakery

## Morning

Mia opens the shop early.
It smells of **bread**.

![Mia waves outside the bakery; the sign says "OPEN"](image)

## Evening

![Leo and Mia close the door](image) Then they walk home.

The end.
"""


def kinds(section: object) -> list[str]:
    return [b.kind for b in section.blocks]  # type: ignore[attr-defined]


def test_image_cues_become_specs_and_the_text_is_kept_verbatim() -> None:
    doc = parse_script(BAKERY, characters={"Mia": [], "Leo": []})
    assert doc.title == "Mia's bakery" and doc.source == "script" and doc.layout == "book"
    s1, s2 = doc.sections
    assert kinds(s1) == ["text", "image"] and kinds(s2) == ["image", "text"]
    assert s1.blocks[0] == TextBlock(text="Mia opens the shop early.\nIt smells of **bread**.")
    cue = s1.blocks[1]
    assert isinstance(cue, ImageCue)
    assert cue.id == "s1-i1" and cue.prompt == cue.caption == 'Mia waves outside the bakery; the sign says "OPEN"'
    assert s2.blocks[0].id == "s2-i1"  # type: ignore[union-attr]
    assert s2.text == "Then they walk home.\n\nThe end."
    assert [c.id for c in doc.images] == ["s1-i1", "s2-i1"]


def test_quoted_words_in_a_cue_are_required_text() -> None:
    doc = parse_script('![A shop whose sign says "OPEN" and a board that says "FRESH BREAD", then "OPEN" again](x)')
    assert doc.images[0].required_text == ["OPEN", "FRESH BREAD"]
    assert parse_script("![A quiet street at dawn](image)").images[0].required_text == []


def test_curly_quotes_are_required_text_too() -> None:
    doc = parse_script("![The banner reads “HAPPY BIRTHDAY” and a card „Danke“](image)")
    assert doc.images[0].required_text == ["HAPPY BIRTHDAY", "Danke"]


def test_character_names_are_found_as_whole_words() -> None:
    script = ("![Mia's dog runs past Amiable Leon](image)\n\n![LEO waves at mia](image)\n\n"
              "![Miami at night](image)\n\n![Anna Maria and Leo](image)")
    doc = parse_script(script, characters={"Mia": ["mia.png"], "Leo": [], "Anna  Maria": []})
    assert [c.characters for c in doc.images] == [["Mia"], ["Mia", "Leo"], [], ["Leo", "Anna Maria"]]
    assert doc.character("mia").references == ["mia.png"]


def test_sections_split_at_level_two_headings() -> None:
    script = ("Before the first heading.\n\n## One\n\n![a cat](image)\n\n### A sub-heading stays text\n\n"
              "---\n\n## Two ##\n\n![a dog](image)\n")
    doc = parse_script(script)
    assert [(s.id, s.title) for s in doc.sections] == [("s1", ""), ("s2", "One"), ("s3", "Two")]
    assert doc.sections[0].text == "Before the first heading."
    assert doc.sections[1].text == "### A sub-heading stays text"  # the rule between sections is dropped
    assert [c.id for c in doc.images] == ["s2-i1", "s3-i1"]


def test_sections_split_at_rules_without_headings() -> None:
    doc = parse_script("First page.\n![a cat](image)\n\n---\n\nSecond page.\n![a dog](image)\n\n***\n\nLast.\n")
    assert [s.text for s in doc.sections] == ["First page.", "Second page.", "Last."]
    assert [len(s.images) for s in doc.sections] == [1, 1, 0]


def test_sections_end_at_each_paragraph_with_a_cue_without_headings_or_rules() -> None:
    doc = parse_script("Intro.\n\nA cat sleeps.\n![a cat](image)\n\nThen a dog.\n\n![a dog](image)\n\nThe end.\n")
    assert [s.text for s in doc.sections] == ["Intro.\n\nA cat sleeps.", "Then a dog.\n\nThe end."]
    assert [kinds(s) for s in doc.sections] == [["text", "image"], ["text", "image", "text"]]


def test_front_matter_sets_title_and_layout() -> None:
    script = ("---\ntitle: \"Leo's day\"\nlayout: Comic\nstyle: watercolour, soft light\naspect: 3x2\n"
              "characters: Mia, Leo\n---\n\n![Mia and Leo at the park](image)\n")
    doc = parse_script(script)
    assert (doc.title, doc.layout, doc.style, doc.aspect_ratio) == ("Leo's day", "comic", "watercolour, soft light",
                                                                    "3:2")
    assert [c.name for c in doc.characters] == ["Mia", "Leo"] and doc.images[0].characters == ["Mia", "Leo"]
    assert parse_script(script, layout="tutorial").layout == "tutorial"  # the caller's layout wins


def test_front_matter_mistakes_name_their_line() -> None:
    with pytest.raises(BriefError, match=r"line 3: unknown key 'layuot' \(did you mean 'layout'\?\)"):
        parse_script("---\ntitle: x\nlayuot: book\n---\n![a cat](image)")
    with pytest.raises(BriefError, match="line 2: layout 'novel'"):
        parse_script("---\nlayout: novel\n---\n![a cat](image)")


def test_a_script_without_cues_is_refused_with_a_clear_error() -> None:
    with pytest.raises(BriefError, match=r"no image cue.*!\[what it shows\]\(image\)"):
        parse_script("# A story\n\nOnce upon a time.\n\n```\n![in code](image)\n```\n`![inline](x)`")
    with pytest.raises(BriefError, match="empty"):
        parse_script("  \n\n")
    with pytest.raises(BriefError, match="line 3: the image cue .* has no description"):
        parse_script("Text.\n\n![](image)")


def test_an_unknown_character_name_is_refused_naming_the_scripts_names() -> None:
    script = "Hello.\n\n![Mia waves](image)\n\n![Leo and Mia bake \"BREAD\"](image)\n"
    with pytest.raises(BriefError) as err:
        parse_script(script, characters={"Mai": ["mai.png"]})
    message = str(err.value)
    assert "'Mai' from --character is not named in any image cue (did you mean 'Mia'?)" in message
    assert "Mia (lines 3, 5)" in message and "Leo (line 5)" in message and "BREAD" not in message


def test_an_existing_image_link_is_kept_as_text(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    (tmp_path / "pics").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "pics" / "no suffix", format="PNG")
    script = ("Our shop: ![the old shop](photo.png)\n\n![a logo](<pics/no suffix>) ![web](https://x.org/a.png)\n\n"
              "![Mia in the new shop](photo-new.png)\n")
    (tmp_path / "story.md").write_text(script, encoding="utf-8")
    doc = load_script(tmp_path / "story.md")
    assert [c.prompt for c in doc.images] == ["Mia in the new shop"]
    assert doc.sections[0].blocks[0] == TextBlock(
        text="Our shop: ![the old shop](photo.png)\n\n![a logo](<pics/no suffix>) ![web](https://x.org/a.png)")
    assert len(parse_script(script, base=tmp_path / "elsewhere").images) == 3  # not there: cues


def test_a_remote_clients_script_never_looks_at_the_servers_files(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "secret.png")
    script = (f"![a server file]({tmp_path / 'secret.png'})\n\n![a web picture](https://x.org/a.png)\n\n"
              "![Mia waves](image)\n")

    local = parse_script(script)  # a file that exists is a picture, kept as text
    assert [c.prompt for c in local.images] == ["Mia waves"]
    remote = parse_script(script, local_files=False)  # whether the file exists is never tested
    assert [c.prompt for c in remote.images] == ["a server file", "Mia waves"]


def test_crlf_line_endings_read_like_lf() -> None:
    crlf = BAKERY.replace("\n", "\r\n")
    assert parse_script(crlf) == parse_script(BAKERY)
    doc = parse_script("---\r\ntitle: T\r\n---\r\n## A\r\n![a cat](image)\r\n")
    assert doc.title == "T" and doc.sections[0].title == "A"


def test_load_script_refuses_missing_binary_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(BriefError, match="no such file"):
        load_script(tmp_path / "missing.md")
    (tmp_path / "latin1.md").write_bytes("caf\xe9 ![a cat](image)".encode("latin-1"))
    with pytest.raises(BriefError, match=r"not UTF-8 text \(byte 0xe9 at line 1\)"):
        load_script(tmp_path / "latin1.md")
    Image.new("RGB", (8, 8)).save(tmp_path / "image.md", format="PNG")
    with pytest.raises(BriefError, match="is an image"):
        load_script(tmp_path / "image.md")
    (tmp_path / "big.md").write_bytes(b"a" * (MAX_SCRIPT_BYTES + 1))
    with pytest.raises(BriefError, match="larger than"):
        load_script(tmp_path / "big.md")
    with pytest.raises(BriefError, match="not readable text"):
        parse_script("abc\x00\x01\x02 ![a cat](image)")
