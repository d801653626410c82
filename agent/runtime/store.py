"""Content-addressed artifact store: images are written once, by SHA-256, under the run folder.

Graph state and checkpoints carry ImageRefs (hash + relative path), never pixels, so a
checkpoint stays a few KB whatever the image size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from agent.models import ImageRef
from agent.models.brief import is_data_url
from agent.models.errors import ArtifactError, ImageInputError
from agent.runtime.events import EVENTS_FILE, EventLog
from agent.runtime.images import (
    INPUT_MAX_SIDE,
    InputImage,
    decode_image_bytes,
    load_input_bytes,
    load_input_image,
    sniff_mime,
)

_DOC_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def write_atomic(dest: Path, data: bytes) -> Path:
    """Write `dest` so a reader sees the old file or the new one, never a part (a temporary file in the same
    folder, then `os.replace`)."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


class ArtifactStore:
    """A folder of immutable, hash-named files plus the run's append-only event log."""

    _shared: dict[str, ArtifactStore] = {}
    _shared_lock = threading.Lock()

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.event_log = EventLog(self.root / EVENTS_FILE)

    @classmethod
    def for_dir(cls, root: str | Path) -> ArtifactStore:
        """The process-wide store for a folder, so parallel branches share one events-log lock."""
        key = str(Path(root).absolute())
        store = cls._shared.get(key)
        if store is None or not store.root.exists():
            with cls._shared_lock:
                store = cls._shared[key] = cls(root)
        return store

    def _write_once(self, rel: str, data: bytes) -> Path:
        dest = self.root / rel
        if dest.exists() and dest.stat().st_size == len(data):
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(dest, data)

    def put_bytes(self, data: bytes, width: int, height: int, mime: str | None = None) -> ImageRef:
        """Store encoded image bytes as they are (no re-encoding) and return their reference."""
        mime = sniff_mime(data) or mime or "application/octet-stream"
        sha = hashlib.sha256(data).hexdigest()
        rel = f"images/{sha[:2]}/{sha}.{_EXT.get(mime, 'bin')}"
        self._write_once(rel, data)
        return ImageRef(sha256=sha, path=rel, width=width, height=height, mime=mime, bytes=len(data))

    def put_image(self, image: Image.Image, format: str = "PNG") -> ImageRef:
        """Encode a PIL image (PNG by default, lossless) and store it."""
        buf = io.BytesIO()
        if format.upper() == "JPEG" and image.mode != "RGB":
            image = image.convert("RGB")
        image.save(buf, format=format, optimize=False, compress_level=1) if format.upper() == "PNG" \
            else image.save(buf, format=format, quality=95)
        return self.put_bytes(buf.getvalue(), image.width, image.height)

    def put_file(self, path: str | Path) -> ImageRef:
        """Copy an input image file (a reference, an edit source or mask) into the store after validating it.

        An image within `INPUT_MAX_SIDE` is stored byte for byte, as read. A larger one is decoded reduced
        and stored re-encoded (high-quality JPEG for JPEG input, else PNG) at that long side; an
        `input_reduced` event records it. Raises ImageInputError for a file that is not a usable image.
        """
        return self.put_input(load_input_image(path), str(path))

    def put_input(self, src: InputImage, label: str) -> ImageRef:
        """Store a decoded input (`load_input_image`, `load_input_bytes`) as `put_file` does; `label` names it."""
        if not src.reduced:
            return self.put_bytes(src.data, *src.size)
        data, mime = src.encode()
        ref = self.put_bytes(data, src.image.width, src.image.height, mime)
        self.log_event("input_reduced", file=label, original_size=list(src.size), original_bytes=len(src.data),
                       original_format=src.format, stored=ref.path, stored_size=[ref.width, ref.height],
                       max_side=INPUT_MAX_SIDE)
        return ref

    def put_reference(self, source: str | Path, label: str = "reference") -> ImageRef:
        """Store a reference image given as a file path or as a `data:image/...;base64,` URL (a remote client's
        upload); either way it is decoded and validated first. ImageInputError names `label`."""
        text = str(source)
        if not is_data_url(text):
            return self.put_file(source)
        head, sep, payload = text.partition(",")
        if not sep or not head.endswith(";base64") or not head[len("data:"):].startswith("image/"):
            raise ImageInputError(f"{label}: a data URL must be data:image/<type>;base64,<data>")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ImageInputError(f"{label}: the data URL's base64 does not decode") from None
        return self.put_input(load_input_bytes(data, label), label)

    def path(self, ref: ImageRef) -> Path:
        """Where a stored image is (its ImageRef path always has the store's layout: no way out of the root)."""
        return self.root / ref.path

    def read_bytes(self, ref: ImageRef) -> bytes:
        """A stored image's bytes, after checking they still match its hash (send these, never the file unread)."""
        try:
            data = self.path(ref).read_bytes()
        except OSError as e:
            raise ArtifactError(f"artifact {ref.path} cannot be read: {e.strerror or e}") from None
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ArtifactError(f"artifact {ref.path} does not match its hash {ref.sha256[:12]}: it was changed")
        return data

    def open(self, ref: ImageRef) -> Image.Image:
        """Decode a stored image; the hash is checked so a tampered file is never used silently."""
        return decode_image_bytes(self.read_bytes(ref), label=ref.path)

    def copy_to(self, ref: ImageRef, name: str) -> Path:
        """Write a stored image under a fixed name in the run folder (final.png), from hash-checked bytes."""
        dest = self.root / name
        if dest.exists():
            dest.unlink()
        return self._write_once(name, self.read_bytes(ref))

    def put_document(self, obj: Any, kind: str = "docs") -> str:
        """Store a JSON document by content hash (e.g. a plan revision); returns its relative path."""
        data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, allow_nan=False).encode()
        rel = f"{kind}/{hashlib.sha256(data).hexdigest()}.json"
        self._write_once(rel, data)
        return rel

    def load_document(self, rel: str) -> Any:
        """A document stored by `put_document`; its path must have the store's layout and match its hash."""
        kind, _, name = rel.partition("/")
        digest = name.removesuffix(".json")
        if not (_DOC_KIND.fullmatch(kind) and _SHA256.fullmatch(digest) and name.endswith(".json")):
            raise ArtifactError(f"document {rel!r} is not a path of this store (<kind>/<sha256>.json)")
        try:
            data = (self.root / rel).read_bytes()
        except OSError as e:
            raise ArtifactError(f"document {rel} cannot be read: {e.strerror or e}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactError(f"document {rel} does not match its hash: it was changed")
        return json.loads(data)

    def put_json(self, name: str, obj: Any) -> Path:
        """Write a JSON document (report, run settings) atomically under a fixed name."""
        data = json.dumps(obj, indent=2, default=str, allow_nan=False).encode()
        dest = self.root / name
        if dest.exists():
            dest.unlink()
        return self._write_once(name, data)

    def log_event(self, event: str, **fields: Any) -> None:
        """Append one structured event to the run's events log (events.jsonl)."""
        self.event_log.append(event, **fields)

    def events(self) -> list[dict[str, Any]]:
        return self.event_log.read()
