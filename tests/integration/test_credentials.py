"""C2PA Content Credentials (the real c2pa library) and IPTC DigitalSourceType XMP: signing, validation with an
explicit trust anchor, tamper detection, never editing a signed file, provider-signed images kept as they came."""

from __future__ import annotations

import asyncio
import io
import zlib
from pathlib import Path

import pytest
from PIL import Image

from agent.backends import get_backend
from agent.backends.base import GenerationRequest
from agent.interfaces.cli import main
from agent.models import PixloopConfig, Plan
from agent.runtime.provenance import (
    IPTC_DIGITAL_SOURCE_TYPE,
    Ingredient,
    TestCerts,
    has_manifest,
    make_test_certificates,
    metadata_refusal,
    read_manifest,
    read_source_type,
    sign_image,
    with_source_type,
)
from agent.runtime.provenance.metadata import png_chunk, png_chunks
from agent.runtime.store import ArtifactStore
from agent.testing.fakes import FakeServer, FaultPlan
from agent.testing.fakes.gemini import create_app
from agent.testing.fakes.provenance import provider_trust_anchor

TRAINED = IPTC_DIGITAL_SOURCE_TYPE + "trainedAlgorithmicMedia"
COMPOSITE = IPTC_DIGITAL_SOURCE_TYPE + "compositeWithTrainedAlgorithmicMedia"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_test_certificates(tmp_path_factory.mktemp("certs"))


def encoded(fmt: str, colour: tuple[int, int, int] = (200, 40, 30), size: tuple[int, int] = (96, 64)) -> bytes:
    img = Image.new("RGB", size, colour)
    img.putpixel((10, 10), (0, 0, 255))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def pixels(data: bytes) -> bytes:
    return Image.open(io.BytesIO(data)).convert("RGB").tobytes()


def sign(data: bytes, mime: str, certs: TestCerts, **kw) -> bytes:
    _, chain, key = certs.read()
    return sign_image(data, mime, cert_chain=chain, key=key, **kw)


def test_a_signed_png_validates_with_the_c2pa_library(certs: TestCerts) -> None:
    png = encoded("PNG")
    signed = sign(png, "image/png", certs, title="final.png")
    assert has_manifest(signed, "image/png") and not has_manifest(png, "image/png")
    assert pixels(signed) == pixels(png)

    anchored = read_manifest(signed, "image/png", trust_anchors=certs.ca.read_bytes())
    assert anchored is not None and anchored.present and anchored.valid
    assert anchored.status == "trusted" and anchored.state == "Trusted" and anchored.failure_codes == []

    # the same file without the test CA as anchor: a valid signature by a certificate nobody vouches for
    plain = read_manifest(signed, "image/png")
    assert plain is not None and plain.valid and plain.status == "untrusted"
    assert plain.failure_codes == ["signingCredential.untrusted"]
    assert "untrusted certificate" in plain.summary() and "tampered" not in plain.summary()
    assert read_manifest(png, "image/png") is None


def test_a_signed_jpeg_validates(certs: TestCerts) -> None:
    jpg = encoded("JPEG")
    signed = sign(jpg, "image/jpeg", certs, title="final.jpg")
    assert has_manifest(signed, "image/jpeg") and not has_manifest(jpg, "image/jpeg")
    info = read_manifest(signed, "image/jpeg", trust_anchors=certs.ca.read_bytes())
    assert info is not None and info.status == "trusted" and info.valid
    assert pixels(signed) == pixels(jpg)  # the same entropy-coded data: the library adds an APP11 segment only


def test_the_manifest_says_trained_algorithmic_media_and_pixloop_made_it(certs: TestCerts) -> None:
    from agent import __version__

    ref = encoded("JPEG", (10, 120, 40))
    signed = sign(encoded("PNG"), "image/png", certs, title="poster.png",
                  ingredients=[Ingredient(ref, "image/jpeg", "reference.jpg", "componentOf")])
    info = read_manifest(signed, "image/png", trust_anchors=certs.ca.read_bytes())
    assert info is not None and info.status == "trusted"
    assert info.actions == ["c2pa.created"]
    assert info.digital_source_type == TRAINED
    assert info.claim_generator == f"pixloop {__version__}"
    assert info.title == "poster.png"
    assert [(i.title, i.relationship) for i in info.ingredients] == [("reference.jpg", "componentOf")]
    assert info.signer_common_name == "pixloop test signer" and info.signer_issuer == "pixloop test"


def test_an_edit_is_signed_as_edited_with_its_source_as_parent_ingredient(certs: TestCerts, tmp_path: Path) -> None:
    source = sign(encoded("PNG"), "image/png", certs, title="source.png")  # itself signed: its manifest is kept
    ref = tmp_path / "logo.jpg"
    ref.write_bytes(encoded("JPEG", (0, 0, 0), (32, 32)))
    edited = sign(encoded("PNG", (30, 40, 200)), "image/png", certs, title="edited.png", action="c2pa.edited",
                  ingredients=[Ingredient(source, "image/png", "source.png", "parentOf"),
                               Ingredient(ref, "image/jpeg", "logo.jpg", "componentOf")])
    info = read_manifest(edited, "image/png", trust_anchors=certs.ca.read_bytes())
    assert info is not None and info.status == "trusted"
    assert info.actions == ["c2pa.opened", "c2pa.edited"]
    assert info.digital_source_type == COMPOSITE
    parent, component = info.ingredients
    assert (parent.title, parent.relationship, parent.has_manifest) == ("source.png", "parentOf", True)
    assert (component.title, component.relationship) == ("logo.jpg", "componentOf")
    assert info.manifest_count == 2

    with pytest.raises(ValueError, match="edit"):
        sign(encoded("PNG"), "image/png", certs, ingredients=[Ingredient(source, "image/png", "s", "parentOf")])


def _change_one_pixel(png: bytes) -> bytes:
    """The same PNG container with one byte of one pixel changed inside IDAT (CRCs fixed), every other
    chunk (the manifest's caBX included) left as it was."""
    out = [png[:8]]
    for offset, kind, body in png_chunks(png):
        if kind == b"IDAT":
            raw = bytearray(zlib.decompress(body))
            raw[1 + 3 * 5] ^= 0x55  # row 0, pixel 5, red (byte 0 of each row is its filter type)
            out.append(png_chunk(b"IDAT", zlib.compress(bytes(raw))))
        else:
            out.append(png[offset:offset + 12 + len(body)])
    return b"".join(out)


def test_changing_one_pixel_after_signing_reads_as_tampered(certs: TestCerts) -> None:
    signed = sign(encoded("PNG"), "image/png", certs)
    changed = _change_one_pixel(signed)
    assert pixels(changed) != pixels(signed)
    info = read_manifest(changed, "image/png", trust_anchors=certs.ca.read_bytes())
    assert info is not None and info.present and not info.valid
    assert info.status == "tampered" and info.tampered
    assert "assertion.dataHash.mismatch" in info.failure_codes
    assert info.summary().startswith("tampered")


def test_adding_metadata_to_a_signed_file_is_refused_so_it_is_never_tampered(certs: TestCerts) -> None:
    for fmt, mime in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
        signed = sign(encoded(fmt), mime, certs)
        assert "C2PA manifest" in (metadata_refusal(signed, mime) or "")
        again = with_source_type(signed, mime, "compositeWithTrainedAlgorithmicMedia")
        assert again == signed
        info = read_manifest(again, mime, trust_anchors=certs.ca.read_bytes())
        assert info is not None and info.status == "trusted"

    # the right order: XMP first, then sign; the signed file keeps both
    png = with_source_type(encoded("PNG"), "image/png")
    signed = sign(png, "image/png", certs)
    assert read_source_type(signed, "image/png") == TRAINED
    info = read_manifest(signed, "image/png", trust_anchors=certs.ca.read_bytes())
    assert info is not None and info.status == "trusted"


def test_source_type_metadata_is_written_on_unsigned_png_and_jpeg_without_changing_pixels() -> None:
    for fmt, mime in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
        plain = encoded(fmt)
        assert read_source_type(plain, mime) is None and metadata_refusal(plain, mime) is None
        tagged = with_source_type(plain, mime)
        assert tagged != plain and read_source_type(tagged, mime) == TRAINED
        assert pixels(tagged) == pixels(plain)
        # a second write replaces the value in the same packet, it does not add another packet
        retagged = with_source_type(tagged, mime, "compositeWithTrainedAlgorithmicMedia")
        assert read_source_type(retagged, mime) == COMPOSITE and retagged.count(b"Iptc4xmpExt:DigitalSourceType>") == 2
        assert pixels(retagged) == pixels(plain)
        # the library (Pillow here) still reads the packet as XMP
        assert "DigitalSourceType" in str(Image.open(io.BytesIO(retagged)).info.get("xmp")
                                          or Image.open(io.BytesIO(retagged)).info.get("XML:com.adobe.xmp"))
    # the image data itself is untouched: the same IDAT bytes / the same scan
    png = encoded("PNG")
    idat = [b for _, k, b in png_chunks(png) if k == b"IDAT"]
    assert [b for _, k, b in png_chunks(with_source_type(png, "image/png")) if k == b"IDAT"] == idat
    jpg = encoded("JPEG")
    assert with_source_type(jpg, "image/jpeg").endswith(jpg[jpg.index(b"\xff\xda"):])
    with pytest.raises(ValueError, match="unknown digital source type"):
        with_source_type(png, "image/png", "madeUp")


def test_a_provider_signed_image_from_the_fake_keeps_its_valid_manifest_byte_for_byte(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, certs: TestCerts) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    store = ArtifactStore.for_dir(tmp_path / "store")
    prompt = 'A bold poster that says "GRAND OPENING"'
    with FakeServer(create_app(FaultPlan.parse([]), c2pa_sign=True)) as server:
        backend = get_backend("gemini", PixloopConfig(backend="gemini", base_url=server.url))

        async def go():
            try:
                return await backend.generate(GenerationRequest(
                    plan=Plan(prompt=prompt, width=1024, height=1024, aspect_ratio="1:1", size="1K"),
                    seed=3, prompt=prompt), store)
            finally:
                await backend.aclose()

        result = asyncio.run(go())
    original = result.original
    assert original is not None and result.meta.get("c2pa_manifest") is True
    assert pixels(original) == result.image.convert("RGB").tobytes()
    provider = read_manifest(original, "image/png", trust_anchors=provider_trust_anchor("gemini"))
    # any changed byte would read as tampered: the backend kept the provider's file exactly as it came
    assert provider is not None and provider.status == "trusted", provider and provider.failures
    assert provider.claim_generator == "fake-gemini 1.0" and provider.digital_source_type == TRAINED
    assert provider.signer_issuer == "Fake Google LLC"
    assert with_source_type(original, "image/png") == original  # metadata never spoils it

    # pixloop's own manifest lists the provider's image as its parent, whose manifest stays valid inside
    ours = sign(original, "image/png", certs, title="final.png")
    info = read_manifest(ours, "image/png", trust_anchors=certs.ca.read_bytes())
    assert info is not None and info.status == "trusted" and not info.tampered
    assert [(i.relationship, i.has_manifest) for i in info.ingredients] == [("parentOf", True)]
    assert info.actions == ["c2pa.opened"] and info.digital_source_type == TRAINED
    assert info.manifest_count == 2


def test_test_cert_cli_writes_a_certificate_the_library_accepts(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "certs"
    assert main(["provenance", "test-cert", str(folder)]) == 0
    out = capsys.readouterr().out
    for name in ("ca.pem", "signer-chain.pem", "signer-key.pem"):
        assert str(folder / name) in out
    assert f"--sign-cert {folder / 'signer-chain.pem'} --sign-key {folder / 'signer-key.pem'}" in out
    chain, key = (folder / "signer-chain.pem").read_bytes(), (folder / "signer-key.pem").read_bytes()
    assert chain.count(b"BEGIN CERTIFICATE") == 2
    signed = sign_image(encoded("JPEG"), "image/jpeg", cert_chain=chain, key=key)
    info = read_manifest(signed, "image/jpeg", trust_anchors=(folder / "ca.pem").read_bytes())
    assert info is not None and info.status == "trusted"
    # a second run does not overwrite the key unless told to
    assert main(["provenance", "test-cert", str(folder)]) == 2
    assert main(["provenance", "test-cert", str(folder), "--force"]) == 0
