"""The five tools `pixloop mcp` serves: generate, edit, check, story and report.

Each is an async method whose typed, described parameters become the tool's input schema. A run goes through the
async library API (`arun`, `astory`), file work and critics run in worker threads, so one server keeps answering
while runs go on. Bad input (pixloop's InputError tree) comes back as a tool error with the library's own message;
a run that finishes, even below threshold or failed, comes back as its summary.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult
from pydantic import Field

from agent.interfaces.api import arun, make_brief, new_thread_id
from agent.interfaces.image_check import check_image, parse_size
from agent.interfaces.mcp import results
from agent.interfaces.mcp.inputs import ImageInputs, find_run, read_json
from agent.interfaces.mcp.progress import DocumentProgress, LoopProgress, ProgressRelay
from agent.interfaces.mcp.settings import ServerSettings
from agent.interfaces.story import astory
from agent.loop.document.script import parse_script
from agent.models import AspectRatio, Brief, Budget, EditKeep, SizeTier
from agent.models.document import DocumentBrief, Layout
from agent.models.errors import BriefError, PixloopError
from agent.runtime.secrets import redact

P = ParamSpec("P")
R = TypeVar("R")

Prompt = Annotated[str, Field(description='what to make; "quoted strings" must appear verbatim in the image')]
Instruction = Annotated[str, Field(description='what to change; "quoted strings" must appear verbatim in the result')]
Texts = Annotated[list[str] | None, Field(description="more text that must appear verbatim (besides quoted strings)")]
Images = Annotated[list[str] | None, Field(description="reference images of people or products to place: "
                                                       "data:image/...;base64, URLs, or paths the server allows")]
ImageArg = Annotated[str, Field(description="an image: a data:image/...;base64, URL, a file under the server's input "
                                         "root, or a file this server wrote (a run's final image)")]
OptionalImageArg = Annotated[str | None, Field(description="an image, given like `image`/`source`")]
Aspect = Annotated[AspectRatio | None, Field(description="aspect ratio (default: from the prompt, else 1:1)")]
Size = Annotated[SizeTier | None, Field(description="long side: 1K=1024, 2K=2048, 4K=4096 px")]
Seed = Annotated[int | None, Field(ge=0, le=2**32 - 1, description="seed for deterministic backends")]
Iterations = Annotated[int | None, Field(ge=1, le=100, description="most candidates to generate (server default)")]
Thresholds = Annotated[dict[str, Annotated[float, Field(ge=0, le=1)]] | None,
                       Field(description="pass thresholds by critic, e.g. {\"ocr\": 0.95}")]
Backend = Annotated[str | None, Field(description="image backend (default: the server's); another backend runs "
                                                  "without the server's endpoint and model settings")]


def tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """pixloop's own errors become tool errors carrying their message (secrets redacted); anything else stays a
    crash, which the SDK reports without its text."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (PixloopError, ValueError) as e:
            raise ToolError(redact(str(e))) from e

    return wrapper


class PixloopTools:
    """The tool bodies of one server; `settings` decide confinement, configuration and defaults."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings

    def _new_run(self) -> tuple[str, Path, ImageInputs]:
        """A run's id, its folder under the output root, and the inputs it stages there (`inputs/`)."""
        thread_id = new_thread_id()
        run_dir = self.settings.confinement.run_dir(None, thread_id)
        return thread_id, run_dir, ImageInputs(self.settings.confinement, run_dir / "inputs")

    @tool_errors
    async def generate(self, prompt: Prompt, ctx: Context, required_text: Texts = None, aspect: Aspect = None,
                       size: Size = None, references: Images = None, seed: Seed = None,
                       max_iterations: Iterations = None, thresholds: Thresholds = None,
                       backend: Backend = None) -> CallToolResult:
        """Make an image from a prompt and correct it until every critic passes (OCR reads the required text,
        references are found, the size holds) or the budget is spent. Returns the final image and a JSON summary
        with the run id, status, failed critics and the paths of the full-size image and its report."""
        def brief(inputs: ImageInputs, options: dict[str, Any]) -> Brief:
            return make_brief(prompt, references=inputs.files(references, "references"),
                              required_text=required_text or [], aspect=aspect, size=size, **options)

        return await self._run(brief, ctx, backend, seed=seed, max_iterations=max_iterations, thresholds=thresholds)

    @tool_errors
    async def edit(self, source: ImageArg, instruction: Instruction, ctx: Context, mask: OptionalImageArg = None,
                   region: Annotated[list[int] | None, Field(min_length=4, max_length=4, description=(
                       "only this box may change: x, y, width, height in source pixels"))] = None,
                   keep: Annotated[EditKeep | None, Field(description="keep this, change the rest")] = None,
                   references: Images = None, required_text: Texts = None, seed: Seed = None,
                   max_iterations: Iterations = None, thresholds: Thresholds = None,
                   backend: Backend = None) -> CallToolResult:
        """Edit an image as the instruction says, changing only where intended (a mask: white may change, a
        region, or what to keep; with none, the mask is derived from the instruction), and check that nothing
        else changed and people keep their identity. Returns the edited image and a JSON summary."""
        def brief(inputs: ImageInputs, options: dict[str, Any]) -> Brief:
            return make_brief(instruction, source=inputs.file(source, "source"), mask=inputs.optional(mask, "mask"),
                              region=region, keep=keep, references=inputs.files(references, "references"),
                              required_text=required_text or [], **options)

        return await self._run(brief, ctx, backend, seed=seed, max_iterations=max_iterations, thresholds=thresholds)

    async def _run(self, make: Callable[[ImageInputs, dict[str, Any]], Brief], ctx: Context, backend: str | None,
                   **given: Any) -> CallToolResult:
        """Run the loop on the brief `make` builds (in a worker thread: it stages and decodes images) from the run's
        inputs and the brief options (the server's, with the call's `given` over them)."""
        thread_id, run_dir, inputs = self._new_run()
        with inputs.kept_if_run_starts():
            brief = await asyncio.to_thread(make, inputs, self.settings.brief_options(**given))
            async with ProgressRelay(ctx.report_progress) as relay:
                result = await arun(brief, self.settings.config_for(backend), out=run_dir, thread_id=thread_id,
                                    on_event=LoopProgress(relay, brief.budget.max_iterations))
        summary = results.run_summary(result.run_dir, result.thread_id, {
            "status": result.status, "stop_reason": result.stop_reason, "iterations": result.iterations,
            "error": result.error, **result.report})
        return await self._image_result(summary)

    async def _image_result(self, summary: results.RunSummary) -> CallToolResult:
        final = [Path(summary.files.final_image)] if summary.files.final_image else []
        images = await asyncio.to_thread(results.previews, final, self.settings.preview_side)
        return results.tool_result(summary, images, failed=summary.status in results.FAILED_STATUSES)

    @tool_errors
    async def check(self, image: ImageArg, required_text: Texts = None, references: Images = None,
                    original: OptionalImageArg = None, mask: OptionalImageArg = None,
                    size: Annotated[str | None, Field(description="the pixel size that was asked for, WIDTHxHEIGHT, "
                                                                  "e.g. 2048x1152")] = None,
                    aspect: Aspect = None,
                    critics: Annotated[list[str] | None, Field(description="critics to run (default: all that "
                                                                           "apply)")] = None,
                    thresholds: Thresholds = None) -> CallToolResult:
        """Run pixloop's critics on an existing image without generating: OCR against the required text, the
        reference critics against reference photos, preservation against the original and mask, spec against
        the size or aspect. Returns the image and a JSON verdict per critic, `passed`, and the failing critics."""
        def run() -> CallToolResult:
            with tempfile.TemporaryDirectory(prefix="pixloop-mcp-check-") as tmp:
                inputs = ImageInputs(self.settings.confinement, Path(tmp))
                path = inputs.file(image, "image")
                result = check_image(path, texts=required_text or [], references=inputs.files(references,
                                                                                              "references"),
                                     original=inputs.optional(original, "original"),
                                     mask=inputs.optional(mask, "mask"), size=parse_size(size) if size else None,
                                     aspect=aspect, critics=critics, thresholds=thresholds)
                shown = results.previews([Path(path)], self.settings.preview_side)
            return results.tool_result(results.check_summary(result), shown)

        return await asyncio.to_thread(run)

    @tool_errors
    async def story(self, ctx: Context,
                    script: Annotated[str | None, Field(description=(
                        "the document as Markdown: '# Title', a '## heading' per section, and an image cue "
                        "![what the image shows; \"QUOTED\" words must appear](image) for each picture"))] = None,
                    topic: Annotated[str | None, Field(description="instead of a script: a topic the server's "
                                                                   "chat model writes the document about")] = None,
                    characters: Annotated[dict[str, list[str]] | None, Field(description=(
                        "reference photos by character name (images given like `references`)"))] = None,
                    pages: Annotated[int | None, Field(ge=1, le=24, description="sections to write from a "
                                                                                "topic")] = None,
                    layout: Annotated[Layout | None, Field(description="book (default), comic, storyboard, "
                                                                       "tutorial")] = None,
                    style: Annotated[str | None, Field(description="style words every image shares")] = None,
                    aspect: Aspect = None, size: Size = None, seed: Seed = None, max_iterations: Iterations = None,
                    thresholds: Thresholds = None, backend: Backend = None) -> CallToolResult:
        """Make an illustrated document (a story, tutorial, comic or storyboard) from a Markdown script or a
        topic: every image is made and corrected by its own loop and characters are checked for consistency.
        Returns the first images and a JSON summary with each image's status and path, story.md and story.html."""
        thread_id, run_dir, inputs = self._new_run()
        options = self.settings.brief_options(seed=seed, thresholds=thresholds)
        iterations = max_iterations or options.get("max_iterations")
        with inputs.kept_if_run_starts():
            source, refs = await asyncio.to_thread(self._story_source, script, topic, characters, layout, inputs)
            cues = len(source.images) if isinstance(source, DocumentBrief) else None
            async with ProgressRelay(ctx.report_progress) as relay:
                result = await astory(source, self.settings.config_for(backend), characters=refs, pages=pages,
                                      layout=layout, out=run_dir, thread_id=thread_id, style=style,
                                      aspect_ratio=aspect, size=size, seed=options.get("seed"),
                                      thresholds=options.get("thresholds") or None,
                                      image_budget=Budget(max_iterations=iterations) if iterations else None,
                                      on_event=DocumentProgress(relay, cues))
        return await self._document_result(results.document_summary(result.run_dir, thread_id, result.report))

    def _story_source(self, script: str | None, topic: str | None, characters: dict[str, list[str]] | None,
                      layout: Layout | None, inputs: ImageInputs) -> tuple[DocumentBrief | str, dict[str, list[str]]]:
        """The document to make (a script parsed here: it is text, not a file to read) and its characters'
        reference files. A script's image links resolve nowhere: a client's script cannot reach server files."""
        if (script is None) == (topic is None):
            raise BriefError("give either script (Markdown with image cues) or topic, not both or neither")
        refs = {name: inputs.files(files, f"characters[{name}]") for name, files in (characters or {}).items()}
        if script is None:
            return str(topic), refs
        doc = parse_script(script, characters={name: [] for name in refs}, layout=layout, local_files=False)
        return doc, refs

    async def _document_result(self, summary: results.DocumentSummary) -> CallToolResult:
        shown = [Path(i.path) for i in summary.images if i.path][:results.MAX_DOCUMENT_PREVIEWS]
        images = await asyncio.to_thread(results.previews, shown, self.settings.preview_side // 2)
        return results.tool_result(summary, images, failed=summary.status in results.FAILED_STATUSES)

    @tool_errors
    async def report(self, run: Annotated[str, Field(description=(
            "the run id a tool returned (run_id), or its run folder under the server's output root"))]) -> \
            CallToolResult:
        """Read a finished run's report (an image run or a document): its status, stop reason, failed critics,
        unverified requirements and file paths, with its final image(s)."""
        folder = await asyncio.to_thread(find_run, self.settings.confinement, run)
        report, meta = await asyncio.to_thread(lambda: (read_json(folder / "report.json"),
                                                        read_json(folder / "run.json")))
        run_id = str(meta.get("thread_id") or folder.name)
        if report.get("kind") == "document":
            return await self._document_result(results.document_summary(folder, run_id, report))
        return await self._image_result(results.run_summary(folder, run_id, report))


TOOL_NAMES = ("generate", "edit", "check", "story", "report")
READ_ONLY = ("check", "report")
"""Tools that only read: they write nothing a client keeps (a check's evidence goes to a temporary folder)."""


def tool_functions(tools: PixloopTools) -> dict[str, Callable[..., Any]]:
    return {name: getattr(tools, name) for name in TOOL_NAMES}


__all__ = ["READ_ONLY", "TOOL_NAMES", "PixloopTools", "tool_errors", "tool_functions"]
