"""What a run starts from, checked before anything is planned: the brief, the run folder, the references.

Input reaches the graph from the library, the CLI or a LangGraph server client. Everything here is bad
input when wrong (the run ends `failed` with stop reason `bad_input` and a report, not an exception): a
brief that does not validate, thresholds or critics no registry holds, and, on a server (a `Confinement`),
a run folder outside the output root or a reference file outside the input root.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

from agent.models import Brief, PixloopConfig
from agent.models.errors import InputError
from agent.models.validation import format_validation_error
from agent.runtime.confine import Confinement
from critics import check_names


@dataclass(frozen=True)
class Intake:
    """A checked start: the brief, where the run writes, and each reference as a path or a data URL."""

    brief: Brief
    run_dir: str
    references: list[str]
    source: str | None = None
    """An edit's source image (a path or data URL), confined like the references."""
    mask: str | None = None
    sketch: str | None = None
    """A sketch whose layout the image follows, confined like the references."""
    draft: str | None = None
    """An image already made for the brief, checked as the first candidate; confined like the references."""


def thread_of(config: RunnableConfig | None) -> str | None:
    thread = ((config or {}).get("configurable") or {}).get("thread_id")
    return str(thread) if thread is not None else None


def default_run_dir(config: RunnableConfig | None, out_root: str) -> str:
    """`<out_root>/<thread id>` (a local run; a server confines it instead)."""
    return str(Path(out_root) / (thread_of(config) or f"run-{int(time.time())}"))


def safe_run_dir(state: dict[str, Any], config: RunnableConfig | None, settings: PixloopConfig,
                 confinement: Confinement | None) -> str:
    """Where a refused run writes its report: never a folder the input asked for on a server."""
    if confinement is not None:
        return str(confinement.default_run_dir(thread_of(config)))
    return str(state.get("run_dir") or default_run_dir(config, settings.out_root))


def take_in(state: dict[str, Any], config: RunnableConfig | None, settings: PixloopConfig,
            confinement: Confinement | None) -> Intake:
    """The checked start of a run, or InputError naming what is wrong."""
    raw = state.get("brief")
    try:
        brief = raw if isinstance(raw, Brief) else Brief.model_validate(raw)
    except ValidationError as e:
        raise InputError(f"brief: {format_validation_error(e)}") from None
    check_names(brief.thresholds, "thresholds")
    check_names(brief.critics, "critics")
    if confinement is not None:
        run_dir = str(confinement.run_dir(state.get("run_dir"), thread_of(config)))
        references = [confinement.reference(r, i) for i, r in enumerate(brief.references)]
        source = confinement.reference(brief.source, "source") if brief.source is not None else None
        mask = confinement.reference(brief.mask, "mask") if brief.mask is not None else None
        sketch = confinement.reference(brief.sketch, "sketch") if brief.sketch is not None else None
        draft = confinement.reference(brief.draft, "draft") if brief.draft is not None else None
    else:
        run_dir = str(state.get("run_dir") or default_run_dir(config, settings.out_root))
        references = list(brief.references)
        source, mask, sketch, draft = brief.source, brief.mask, brief.sketch, brief.draft
    return Intake(brief=brief, run_dir=run_dir, references=references, source=source, mask=mask, sketch=sketch,
                  draft=draft)


__all__ = ["Intake", "default_run_dir", "safe_run_dir", "take_in", "thread_of"]
