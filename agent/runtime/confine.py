"""The server trust boundary: where a remote client may have pixloop write, and which files it may have it read.

A LangGraph server's clients are remote users: the run folder they ask for (`run_dir`, the thread id that
names it, `PixloopConfig.out_root`) must stay under the server's output root, and the reference images they
name must lie under the server's input root, or come as data (`data:image/...;base64,` URLs). The server
sets both roots in its environment (`PIXLOOP_OUTPUT_ROOT`, default `pixloop-out`; `PIXLOOP_INPUT_ROOT`,
default none: references only as data). The library and the CLI are local users and are not confined.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from pydantic import BaseModel, ConfigDict

from agent.models.brief import is_data_url
from agent.models.errors import InputError
from agent.runtime.paths import check_thread_id, inside

OUTPUT_ROOT_ENV = "PIXLOOP_OUTPUT_ROOT"
INPUT_ROOT_ENV = "PIXLOOP_INPUT_ROOT"


class Confinement(BaseModel):
    """Run folders only under `output_root`; reference files only under `input_root` (None: data URLs only)."""

    model_config = ConfigDict(frozen=True)

    output_root: Path
    input_root: Path | None = None

    @classmethod
    def from_env(cls) -> Confinement:
        input_root = os.environ.get(INPUT_ROOT_ENV)
        return cls(output_root=Path(os.environ.get(OUTPUT_ROOT_ENV) or "pixloop-out").absolute(),
                   input_root=Path(input_root).absolute() if input_root else None)

    def default_run_dir(self, thread_id: str | None) -> Path:
        """The run folder for a thread: `<output root>/<thread id>` (a safe name even for a hostile id)."""
        name = thread_id if thread_id and _is_name(thread_id) else "invalid-thread"
        return self.output_root / name

    def run_dir(self, requested: str | None, thread_id: str | None) -> Path:
        """The run folder a client may use: its relative `run_dir` under the output root, or the thread's."""
        if not requested:
            if thread_id is None:
                raise InputError("no thread id to name the run folder")
            check_thread_id(thread_id, "thread_id")
            return self.output_root / thread_id
        path = PurePath(requested)
        if path.is_absolute() or ".." in path.parts:
            raise InputError(f"run_dir {requested!r} must be a relative path inside the server's output root, "
                             "without '..'")
        folder = self.output_root / path
        if not inside(self.output_root, folder):
            raise InputError(f"run_dir {requested!r} leaves the server's output root")
        return folder

    def check_run_dir(self, run_dir: str | Path) -> None:
        """A run folder found in graph state must still be under the output root (state can be updated)."""
        if not inside(self.output_root, Path(run_dir)):
            raise InputError(f"run_dir {str(run_dir)!r} is outside the server's output root")

    def reference(self, source: str, index: int | str) -> str:
        """An input image a client may use (a reference, or an edit's source or mask: `index` is the reference's
        number or the field's name): a data URL, or a file under the input root (returned absolute)."""
        label = f"references[{index}]" if isinstance(index, int) else index
        if is_data_url(source):
            return source
        if self.input_root is None:
            raise InputError(f"{label}: this server takes images only as data "
                             f"(data:image/...;base64,...) URLs, not file paths")
        path = Path(source)
        path = path if path.is_absolute() else self.input_root / path
        if not inside(self.input_root, path):
            raise InputError(f"{label}: {source!r} is outside the server's input root")
        return str(path.resolve())


def _is_name(thread_id: str) -> bool:
    try:
        check_thread_id(thread_id)
    except InputError:
        return False
    return True


__all__ = ["INPUT_ROOT_ENV", "OUTPUT_ROOT_ENV", "Confinement"]
