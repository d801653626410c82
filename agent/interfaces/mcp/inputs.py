"""What an MCP client may name: image inputs and finished runs, confined to the server's roots.

An MCP client is a remote user. An image it sends is either the image itself (a `data:image/...;base64,` URL),
a file under the server's input root, or a file the server wrote itself (under its output root: a run's final
image, to edit or check it again). A data URL is decoded once and written into the run folder (`inputs/`), so
the brief names a real file, the library validates it like any other, and the run folder keeps what it was
made from. A run a client asks about must lie under the output root.
"""

from __future__ import annotations

import base64
import binascii
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from agent.interfaces.run_folder import holds_run
from agent.models.brief import is_data_url
from agent.models.errors import ImageInputError, InputError
from agent.runtime.confine import Confinement
from agent.runtime.images import sniff_mime
from agent.runtime.paths import THREAD_ID, check_thread_id, inside

MAX_DATA_BYTES = 32 * 1024 * 1024
"""A data URL larger than this (decoded) is refused before it is written anywhere."""
SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}
"""The formats a data URL may hold (those `sniff_mime` names), and the suffix its staged file gets."""


class ImageInputs:
    """Turns the images a client names into files pixloop may read; data URLs are written into `staging`."""

    def __init__(self, confinement: Confinement, staging: Path):
        self.confinement = confinement
        self.staging = staging

    def file(self, source: str, label: str) -> str:
        """The file for one image input, or InputError naming `label` and why it is refused."""
        if is_data_url(source):
            return str(self._stage(source, label))
        path = Path(source)
        if path.is_absolute() and inside(self.confinement.output_root, path):
            return str(path.resolve())
        try:
            return self.confinement.reference(source, label)
        except InputError as e:
            raise InputError(f"{e} (files this server wrote itself, under its output root "
                             f"{self.confinement.output_root}, are accepted too)") from None

    def files(self, sources: list[str] | None, field: str) -> list[str]:
        return [self.file(s, f"{field}[{i}]") for i, s in enumerate(sources or [])]

    def optional(self, source: str | None, label: str) -> str | None:
        return self.file(source, label) if source else None

    @contextmanager
    def kept_if_run_starts(self) -> Iterator[ImageInputs]:
        """Staged inputs stay with the run they were sent for; a call that fails (or is cancelled) before its run
        starts leaves no folder behind, so bad requests cannot litter the output root."""
        try:
            yield self
        except BaseException:
            if not holds_run(self.staging.parent):
                shutil.rmtree(self.staging, ignore_errors=True)
                with suppress(OSError):
                    self.staging.parent.rmdir()
            raise

    def _stage(self, url: str, label: str) -> Path:
        header, sep, payload = url.partition(",")
        if not sep or not header.endswith(";base64"):
            raise ImageInputError(f"{label}: a data URL must be data:image/...;base64,<data>")
        if len(payload) > MAX_DATA_BYTES * 4 // 3 + 4:
            raise ImageInputError(f"{label}: the image is larger than {MAX_DATA_BYTES // (1024 * 1024)} MiB")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise ImageInputError(f"{label}: the data URL is not valid base64") from None
        mime = sniff_mime(data[:16])
        if mime not in SUFFIXES:
            raise ImageInputError(f"{label}: the data URL does not hold an image pixloop reads "
                                  f"({', '.join(SUFFIXES)})")
        self.staging.mkdir(parents=True, exist_ok=True)
        name = "".join(c if c.isalnum() else "-" for c in label).strip("-")
        path = self.staging / f"{name}{SUFFIXES[mime]}"
        if path.exists():  # two labels that differ only in punctuation
            path = self.staging / f"{name}-{len(list(self.staging.iterdir())) + 1}{SUFFIXES[mime]}"
        path.write_bytes(data)
        return path


def find_run(confinement: Confinement, run: str) -> Path:
    """The folder of a finished run a client names: its run id, or its folder under the output root (absolute, as
    the tools report it, or relative to the root). InputError when it is outside or holds no report."""
    if THREAD_ID.fullmatch(run):
        folder = confinement.output_root / check_thread_id(run, "run")
    elif Path(run).is_absolute():
        if not inside(confinement.output_root, Path(run)):
            raise InputError(f"run {run!r} is outside the server's output root")
        folder = Path(run)
    else:
        folder = confinement.run_dir(run, None)
    if not (folder / "report.json").is_file():
        raise InputError(f"run {run!r}: no finished run there (no report.json in {folder})")
    return folder


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object pixloop wrote (report.json, run.json); {} when it is missing, InputError when damaged."""
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InputError(f"{path} cannot be read: {e}") from None
    return value if isinstance(value, dict) else {}


__all__ = ["MAX_DATA_BYTES", "ImageInputs", "find_run", "read_json"]
