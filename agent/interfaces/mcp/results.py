"""What a tool sends back: the image to look at (downscaled, so a chat stays small) and a JSON summary with the
paths of the full-size files, the status and what failed, so a client can act on a run without reading its folder.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any, Literal

from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent
from pydantic import BaseModel

from agent.interfaces.image_check import CheckResult
from agent.runtime.images import flatten_rgb, load_image
from agent.runtime.paths import inside

PNG_LIMIT = 768 * 1024
"""A preview whose PNG is larger than this (a photo, usually) is sent as JPEG instead."""
MAX_DOCUMENT_PREVIEWS = 4
"""A document sends at most this many of its images; the summary lists every one with its path."""
FAILED_STATUSES = ("failed", "refused")
"""Run statuses that delivered no image: the tool result is marked as an error (the summary says why)."""


class RunFiles(BaseModel):
    """The full-size files of an image run (None: not written, e.g. no image for a failed run)."""

    run_dir: str
    final_image: str | None = None
    report_json: str | None = None
    report_html: str | None = None


class DocumentFiles(BaseModel):
    run_dir: str
    story_md: str | None = None
    story_html: str | None = None
    report_json: str | None = None


class RunSummary(BaseModel):
    """One finished image run as a client reads it."""

    kind: Literal["image"] = "image"
    run_id: str
    status: str
    stop_reason: str | None = None
    iterations: int = 0
    summary: str | None = None
    error: str | None = None
    failed_critics: list[str] = []
    """Critics the final image failed (checked and below threshold)."""
    unverified: list[str] = []
    """Requirements no critic could verify: `passed` says nothing about these."""
    files: RunFiles


class DocumentImage(BaseModel):
    id: str
    status: str
    iterations: int = 0
    path: str | None = None
    failed_critics: list[str] = []


class DocumentSummary(BaseModel):
    """One finished illustrated document as a client reads it."""

    kind: Literal["document"] = "document"
    run_id: str
    status: str
    stop_reason: str | None = None
    error: str | None = None
    images: list[DocumentImage] = []
    unverified: list[str] = []
    files: DocumentFiles


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None


def _file_in(run_dir: Path, relative: str | None) -> str | None:
    """A file a report names, relative to its run folder; only inside that folder (the preview reads it)."""
    if not relative or not inside(run_dir, run_dir / relative):
        return None
    return _existing(run_dir / relative)


def _failed_critics(report: dict[str, Any]) -> list[str]:
    """The critics the final candidate failed (checked, below threshold)."""
    final = (report.get("final") or {}).get("candidate")
    chosen: dict[str, Any] = next((c for c in report.get("candidates") or [] if c.get("id") == final), {})
    return [v["critic"] for v in chosen.get("verdicts") or [] if v.get("status") == "checked" and not v.get("passed")]


def run_summary(run_dir: Path, run_id: str, report: dict[str, Any]) -> RunSummary:
    """The summary of an image run from its report.json (the run's own record, also for `report`)."""
    files = RunFiles(run_dir=str(run_dir), final_image=_file_in(run_dir, (report.get("final") or {}).get("path")),
                     report_json=_existing(run_dir / "report.json"), report_html=_existing(run_dir / "report.html"))
    return RunSummary(run_id=run_id, status=report.get("status") or "failed", stop_reason=report.get("stop_reason"),
                      iterations=report.get("iterations") or 0, summary=report.get("summary"),
                      error=report.get("error"), failed_critics=_failed_critics(report),
                      unverified=report.get("unverified") or [], files=files)


def document_summary(run_dir: Path, run_id: str, report: dict[str, Any]) -> DocumentSummary:
    """The summary of a document from its report.json."""
    images = [DocumentImage(id=row["id"], status=row.get("status") or "failed",
                            iterations=row.get("final_iterations") or row.get("iterations") or 0,
                            path=_file_in(run_dir, row.get("image")),
                            failed_critics=[k for k, ok in (row.get("verdicts") or {}).items() if not ok])
              for row in report.get("images") or []]
    files = DocumentFiles(run_dir=str(run_dir), story_md=_existing(run_dir / "story.md"),
                          story_html=_existing(run_dir / "story.html"), report_json=_existing(run_dir / "report.json"))
    return DocumentSummary(run_id=run_id, status=report.get("status") or "failed",
                           stop_reason=report.get("stop_reason"), error=report.get("error"), images=images,
                           unverified=report.get("not_verified") or [], files=files)


def check_summary(result: CheckResult) -> dict[str, Any]:
    """`pixloop check --json` without the evidence (the feedback says what it showed), plus the failing critics."""
    critics = [{k: v for k, v in row.items() if k != "evidence"} for row in result.critics]
    return {"kind": "check", "image": result.image, "width": result.width, "height": result.height,
            "passed": result.passed, "failed_critics": [r["name"] for r in critics if r["status"] == "checked"
                                                        and not r["passed"]],
            "unverified": result.unverified, "critics": critics}


def preview(path: Path, max_side: int) -> ImageContent:
    """An image as MCP image content, at most `max_side` px on its long side: PNG, or JPEG when that is large."""
    rgb = flatten_rgb(load_image(path))  # bounded decode, EXIF orientation applied: what the critics saw
    rgb.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    rgb.save(buf, format="PNG", optimize=True)
    mime = "image/png"
    if buf.tell() > PNG_LIMIT:
        buf = io.BytesIO()
        rgb.save(buf, format="JPEG", quality=85)
        mime = "image/jpeg"
    return ImageContent(type="image", data=base64.b64encode(buf.getvalue()).decode("ascii"), mime_type=mime)


def previews(paths: list[Path], max_side: int) -> list[ContentBlock]:
    return [preview(p, max_side) for p in paths]


def tool_result(summary: BaseModel | dict[str, Any], images: list[ContentBlock], *, failed: bool = False) -> \
        CallToolResult:
    """The images first, then the summary as JSON text (and as structured content for clients that read it)."""
    data = summary.model_dump(mode="json") if isinstance(summary, BaseModel) else summary
    text = TextContent(type="text", text=json.dumps(data, indent=2, allow_nan=False))
    return CallToolResult(content=[*images, text], structured_content=data, is_error=failed)


__all__ = ["FAILED_STATUSES", "MAX_DOCUMENT_PREVIEWS", "DocumentFiles", "DocumentSummary", "RunFiles", "RunSummary",
           "check_summary", "document_summary", "preview", "previews", "run_summary", "tool_result"]
