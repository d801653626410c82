"""Delivering an image: the one place every image pixloop hands out passes (final images, edits, document images).

In this order, because a signed file may not be edited afterwards:

1. the invisible watermark naming the run (`agent.runtime.watermark`; a short hash of the thread id, never the
   prompt), unless `PixloopConfig.watermark` is off;
2. IPTC `DigitalSourceType` XMP metadata (trainedAlgorithmicMedia; compositeWithTrainedAlgorithmicMedia for an
   edit), written into the container without re-encoding;
3. with a signing certificate and key (`PixloopConfig.sign_cert` / `sign_key`), C2PA Content Credentials: how it
   was made (`c2pa.created`, or `c2pa.edited` with the edit's source as parent), the references as ingredients,
   pixloop's name and version.

Provider provenance: a candidate whose bytes carry the provider's own C2PA manifest was stored byte for byte.
Without signing it is delivered exactly as it came (a watermark or metadata would turn valid credentials into
"tampered"); with signing, pixloop's manifest lists the provider's file as the parent ingredient, so both
stay valid. Each delivery is logged as a `provenance` event with the hashes of what went in and came out.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from agent import __version__
from agent.models import ImageRef, PixloopConfig
from agent.runtime.provenance import Ingredient, has_manifest, sign_image, with_source_type
from agent.runtime.store import ArtifactStore, write_atomic
from agent.runtime.watermark import MIN_SHORT_SIDE, embed, payload_for

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}


@dataclass
class Delivered:
    """What was written, and which provenance steps it carries."""

    path: Path
    sha256: str
    watermark: str | None = None
    source_type: str | None = None
    signed: bool = False
    provider_manifest: bool = False
    notes: list[str] = field(default_factory=list)

    def event(self) -> dict[str, Any]:
        return {"file": self.path.name, "sha256": self.sha256, "watermark": self.watermark,
                "source_type": self.source_type, "signed": self.signed, "provider_manifest": self.provider_manifest,
                "notes": self.notes}


def _encode(image: Image.Image, mime: str) -> tuple[bytes, str]:
    fmt = FORMATS.get(mime, "PNG")
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buf, format="JPEG", quality=95)
    else:
        image.save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buf.getvalue(), mime if mime in FORMATS else "image/png"


def deliver(store: ArtifactStore, ref: ImageRef, name: str, *, run_id: str, config: PixloopConfig,
            edit_source: ImageRef | None = None, references: list[ImageRef] | None = None) -> Delivered:
    """Write `name` (e.g. final.png) in the store's folder from the stored image `ref`, with the provenance steps
    the configuration asks for; raises ProvenanceError when signing was asked for and fails (never a silent
    unsigned delivery)."""
    original = store.read_bytes(ref)
    provider = has_manifest(original, ref.mime)
    signing = bool(config.sign_cert and config.sign_key)
    dest = store.root / name
    if provider and not signing:
        write_atomic(dest, original)
        out = Delivered(dest, hashlib.sha256(original).hexdigest(), provider_manifest=True,
                        notes=["the provider's C2PA-signed file, delivered as it came: a watermark or metadata "
                               "would make its credentials read as tampered"])
        store.log_event("provenance", source=ref.sha256, **out.event())
        return out
    kind = "compositeWithTrainedAlgorithmicMedia" if edit_source is not None else "trainedAlgorithmicMedia"
    image = store.open(ref)
    mark = None
    notes: list[str] = []
    if config.watermark and min(image.size) >= MIN_SHORT_SIDE:
        payload = payload_for(run_id)
        image, mark = embed(image, payload), payload.hex()
    elif config.watermark:
        notes.append(f"not watermarked: {image.width}x{image.height} is below the mark's {MIN_SHORT_SIDE} px")
    data, mime = _encode(image, ref.mime)
    data = with_source_type(data, mime, kind)
    if signing:
        data = _sign(store, data, mime, original if provider else None, config, edit_source, references or [])
        notes.append("signed with " + Path(str(config.sign_cert)).name)
    write_atomic(dest, data)
    out = Delivered(dest, hashlib.sha256(data).hexdigest(), watermark=mark, source_type=kind, signed=signing,
                    provider_manifest=provider, notes=notes)
    store.log_event("provenance", source=ref.sha256, **out.event())
    return out


def _sign(store: ArtifactStore, data: bytes, mime: str, provider_original: bytes | None, config: PixloopConfig,
          edit_source: ImageRef | None, references: list[ImageRef]) -> bytes:
    chain = Path(str(config.sign_cert)).read_bytes()
    key = Path(str(config.sign_key)).read_bytes()
    ingredients = [Ingredient(store.path(r), r.mime, f"reference {i + 1}", "componentOf")
                   for i, r in enumerate(references)]
    parent = None
    if edit_source is not None:
        parent = Ingredient(store.path(edit_source), edit_source.mime, "edit source", "parentOf")
    elif provider_original is not None:
        parent = Ingredient(provider_original, mime, "provider image", "parentOf")
    if parent is not None:
        ingredients.insert(0, parent)
    return sign_image(data, mime, cert_chain=chain, key=key, title="pixloop image",
                      action="c2pa.edited" if parent is not None else "c2pa.created",
                      ingredients=ingredients, generator=("pixloop", __version__))


__all__ = ["Delivered", "deliver"]
