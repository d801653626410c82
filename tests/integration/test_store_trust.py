"""The artifact store at the trust boundary: references as data URLs, hash-checked reads, store-shaped paths."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image
from pydantic import ValidationError

from agent.models import ImageRef
from agent.models.errors import ArtifactError, ImageInputError
from agent.runtime.store import ArtifactStore


def data_url(image: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode()}"


def test_a_reference_sent_as_a_data_url_is_decoded_checked_and_stored(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put_reference(data_url(Image.new("RGB", (40, 30), "green")), "references[0]")
    assert (ref.width, ref.height, ref.mime) == (40, 30, "image/png")
    assert store.open(ref).getpixel((5, 5)) == (0, 128, 0)


@pytest.mark.parametrize(("url", "words"), [
    ("data:text/plain;base64,aGVsbG8=", "must be data:image/<type>;base64"),
    ("data:image/png,rawbytes", "must be data:image/<type>;base64"),
    ("data:image/png;base64,%%%not-base64", "does not decode"),
    ("data:image/png;base64," + base64.b64encode(b"not an image at all").decode(), "references[0]"),
])
def test_a_bad_data_url_is_an_image_input_error_naming_the_reference(tmp_path: Path, url: str, words: str) -> None:
    with pytest.raises(ImageInputError, match=words.replace("[", r"\[").replace("]", r"\]")):
        ArtifactStore(tmp_path).put_reference(url, "references[0]")


def test_a_large_data_url_is_stored_reduced_like_a_large_file(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put_reference(data_url(Image.new("RGB", (5000, 100), "white")), "references[0]")
    assert max(ref.width, ref.height) <= 4096
    assert any(e["event"] == "input_reduced" for e in store.events())


def test_a_changed_stored_image_is_never_read_or_copied(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    ref = store.put_image(Image.new("RGB", (8, 8), "red"))
    store.copy_to(ref, "final.png")
    store.path(ref).write_bytes(store.path(ref).read_bytes() + b"tampered")
    for read in (store.read_bytes, store.open, lambda r: store.copy_to(r, "final.png")):
        with pytest.raises(ArtifactError, match="does not match its hash"):
            read(ref)


def test_an_image_reference_can_only_name_the_stores_own_path_for_its_hash() -> None:
    sha = "ab" * 32
    assert ImageRef(sha256=sha, path=f"images/ab/{sha}.png", width=1, height=1)
    for path in ("../../etc/passwd", f"images/ab/{sha}.png/../../x", f"images/cd/{sha}.png", f"/abs/{sha}.png",
                 f"images/ab/{sha}.exe"):
        with pytest.raises(ValidationError, match="not the store's path"):
            ImageRef(sha256=sha, path=path, width=1, height=1)


def test_documents_are_read_only_by_their_own_hash_path(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    rel = store.put_document({"a": 1}, "plans")
    assert store.load_document(rel) == {"a": 1}
    for bad in ("../outside.json", "plans/../../x.json", "plans/notahash.json", "/etc/passwd"):
        with pytest.raises(ArtifactError, match="not a path of this store"):
            store.load_document(bad)
    (tmp_path / rel).write_text('{"a": 2}')
    with pytest.raises(ArtifactError, match="does not match its hash"):
        store.load_document(rel)
