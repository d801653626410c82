"""Content-addressed artifact store: images are written once, by SHA-256, under the run folder.

Graph state and checkpoints carry ImageRefs (hash + relative path), never pixels, so a
checkpoint stays a few KB whatever the image size.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from agent.models import ImageRef
from agent.runtime.events import EVENTS_FILE, EventLog
from agent.runtime.images import decode_image_bytes, load_image, sniff_mime

_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


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
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

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
        """Copy an input image file (a reference) into the store after validating it."""
        img = load_image(path)
        data = Path(path).read_bytes()
        return self.put_bytes(data, img.width, img.height)

    def path(self, ref: ImageRef) -> Path:
        return self.root / ref.path

    def open(self, ref: ImageRef) -> Image.Image:
        """Decode a stored image; the hash is checked so a tampered file is never used silently."""
        data = self.path(ref).read_bytes()
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ValueError(f"artifact {ref.path} does not match its hash {ref.sha256[:12]}")
        return decode_image_bytes(data, label=ref.path)

    def put_document(self, obj: Any, kind: str = "docs") -> str:
        """Store a JSON document by content hash (e.g. a plan revision); returns its relative path."""
        data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
        rel = f"{kind}/{hashlib.sha256(data).hexdigest()}.json"
        self._write_once(rel, data)
        return rel

    def load_document(self, rel: str) -> Any:
        return json.loads((self.root / rel).read_text())

    def put_json(self, name: str, obj: Any) -> Path:
        """Write a JSON document (report, run settings) atomically under a fixed name."""
        data = json.dumps(obj, indent=2, default=str).encode()
        dest = self.root / name
        if dest.exists():
            dest.unlink()
        return self._write_once(name, data)

    def log_event(self, event: str, **fields: Any) -> None:
        """Append one structured event to the run's events log (events.jsonl)."""
        self.event_log.append(event, **fields)

    def events(self) -> list[dict[str, Any]]:
        return self.event_log.read()
