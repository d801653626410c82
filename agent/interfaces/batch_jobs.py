"""Reading a batch's JOBS file: JSON Lines (`.jsonl`, or `.json`: JSON Lines or one array of objects) or CSV (the
header names the fields), each line checked into a `BatchJob` as the CLI would check it; a bad line becomes a job
with status `bad_input` and its line number. Paths are relative to the JOBS file's folder; the batch's defaults
(`BatchDefaults`) apply to every job unless its line overrides them. See `JobSpec` for a line's fields."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from agent.interfaces.api import make_brief, preflight
from agent.interfaces.story import story_input
from agent.models import ASPECT_RATIOS, EDIT_KEEPS, SIZE_TIERS, Brief, Budget, PixloopConfig
from agent.models.errors import BriefError, PixloopError
from agent.models.validation import format_validation_error
from agent.runtime.paths import check_thread_id

JOB_FILE_SUFFIXES = (".jsonl", ".json", ".csv")
LIST_FIELDS = ("references", "text", "critics")
MAP_FIELDS = ("characters", "thresholds", "backend_option")


class JobSpec(BaseModel):
    """One line of a JOBS file, as written (paths not yet resolved). Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["run", "edit", "story"] | None = None
    """default: story with a script, edit with a source, else run"""
    id: str | None = None
    prompt: str | None = None
    references: list[str] = []
    text: list[str] = []
    aspect: str | None = None
    size: str | None = None
    source: str | None = None
    mask: str | None = None
    region: tuple[int, int, int, int] | None = None
    keep: str | None = None
    script: str | None = None
    characters: dict[str, list[str]] = {}
    layout: str | None = None
    pages: int | None = None
    max_iterations: int | None = None
    max_seconds: float | None = None
    max_cost: float | None = None
    thresholds: dict[str, float] = {}
    seed: int | None = None
    strict: bool | None = None
    backend: str | None = None
    base_url: str | None = None
    model: str | None = None
    backend_option: dict[str, str] = {}
    critics: list[str] = []
    """critics to run besides the plan's (added to the batch's --critic)"""
    patience: int | None = None
    sketch: str | None = None

    @field_validator("references", "text", "critics", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("characters", mode="before")
    @classmethod
    def _photos(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("region", mode="before")
    @classmethod
    def _region_text(cls, value: Any) -> Any:
        return [p.strip() for p in value.split(",")] if isinstance(value, str) else value

    @field_validator("backend_option", mode="before")
    @classmethod
    def _option_text(cls, value: Any) -> Any:
        if isinstance(value, list):  # ["latency=1", ...] as on the command line
            return dict(_pair(v, "backend_option") for v in value)
        if isinstance(value, Mapping):
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
        return value


class BatchDefaults(BaseModel):
    """The batch command's run options, applied to every job unless its line overrides them."""

    backend: str = "compose"
    base_url: str | None = None
    model: str | None = None
    backend_option: dict[str, str] = {}
    max_iterations: int | None = None
    max_seconds: float | None = None
    max_cost: float | None = None
    thresholds: dict[str, float] = {}
    strict: bool = False
    checkpointer: str | None = None
    """where every job's checkpoints go: None for its run folder's SQLite file, or a PostgreSQL URL"""
    critics: list[str] = []
    patience: int | None = None
    planner: str = "rule"
    llm_base_url: str | None = None
    llm_model: str | None = None
    policy: str | None = None
    moderation_base_url: str | None = None
    watermark: bool = True
    sign_cert: str | None = None
    sign_key: str | None = None


@dataclass
class BatchJob:
    """A job of the batch: its id, kind and line, and either what to run or why it cannot run (`error`)."""

    id: str
    kind: str
    line: int
    config: PixloopConfig | None = None
    brief: Brief | None = None
    story_source: str | Path = ""
    """a story job's script (a path) or topic"""
    story: dict[str, Any] = field(default_factory=dict)
    """prepare_story's other arguments for a story job"""
    error: str | None = None


def _pair(text: str, what: str) -> tuple[str, str]:
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{what}: expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def _csv_row(row: dict[str | None, Any]) -> dict[str, Any]:
    """A CSV row as a job line: empty cells are not given, lists are ';'-separated, maps `K=V;K2=V2`
    (characters `Mia=mia.jpg;Leo=leo.png`, a name repeated for more photos)."""
    if None in row:
        raise ValueError("more cells than the header has names")
    data: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or not str(value).strip():
            continue
        key, value = key.strip(), str(value).strip()
        if key in LIST_FIELDS:
            data[key] = [v.strip() for v in value.split(";") if v.strip()]
        elif key in MAP_FIELDS:
            pairs = [_pair(v, key) for v in value.split(";") if v.strip()]
            if key == "characters":
                chars: dict[str, list[str]] = {}
                for name, path in pairs:
                    chars.setdefault(name, []).append(path)
                data[key] = chars
            else:
                data[key] = dict(pairs)
        else:
            data[key] = value
    return data


def read_lines(path: Path) -> list[tuple[int, dict[str, Any] | str]]:
    """(line number, the job's fields) per job of a JOBS file, or (line, why it cannot be read) for a bad line.
    BriefError when the file itself cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in JOB_FILE_SUFFIXES:
        raise BriefError(f"JOBS {path}: unknown format {suffix or '(no extension)'!r}; use .jsonl, .json or .csv")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise BriefError(f"JOBS {path}: cannot be read ({e})") from None
    rows: list[tuple[int, dict[str, Any] | str]] = []
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise BriefError(f"JOBS {path}: no header line naming the fields")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                rows.append((reader.line_num, f"not valid CSV: {e}"))
                continue
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            try:
                rows.append((reader.line_num, _csv_row(row)))
            except ValueError as e:
                rows.append((reader.line_num, str(e)))
        return rows
    if suffix == ".json" and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as e:
            raise BriefError(f"JOBS {path}: not valid JSON ({e})") from None
        return [(i, item if isinstance(item, dict) else f"a job is a JSON object, got {type(item).__name__}")
                for i, item in enumerate(items, 1)]
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            item = json.loads(line)
        except ValueError as e:
            rows.append((number, f"not valid JSON: {e}"))
            continue
        rows.append((number, item if isinstance(item, dict) else
                     f"a job is a JSON object, got {type(item).__name__}"))
    return rows


def read_jobs(path: str | Path, defaults: BatchDefaults | None = None) -> list[BatchJob]:
    """Every job of a JOBS file, checked (files exist, names are known, budgets are valid); a job that is not
    has its `error` set. BriefError when the file itself cannot be read or holds no job."""
    path = Path(path)
    defaults = defaults or BatchDefaults()
    jobs: list[BatchJob] = []
    seen: set[str] = set()
    rows = read_lines(path)
    base = path.absolute().parent  # a job's files as absolute paths: its run (or a Ray worker) may have another cwd
    if not rows:
        raise BriefError(f"JOBS {path}: no jobs in it")
    for number, (line, data) in enumerate(rows, 1):
        default_id = f"job-{number:04d}"
        if isinstance(data, str):
            jobs.append(BatchJob(default_id, "run", line, error=data))
            continue
        raw_id, raw_kind = data.get("id"), data.get("kind")
        job = BatchJob(raw_id if isinstance(raw_id, str) and raw_id else default_id,
                       raw_kind if isinstance(raw_kind, str) and raw_kind in ("run", "edit", "story") else "run",
                       line)
        try:
            spec = JobSpec.model_validate(data)
            job.kind = spec.kind or ("story" if spec.script else "edit" if spec.source else "run")
            check_thread_id(job.id, "id")
            if job.id in seen:
                raise BriefError(f"id: {job.id!r} is the id of an earlier job")
            _prepare(job, spec, defaults, base)
        except ValidationError as e:
            unknown = [str(err["loc"][0]) for err in e.errors() if err["type"] == "extra_forbidden"]
            job.error = (f"unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(JobSpec.model_fields)}"
                         if unknown else format_validation_error(e))
        except (PixloopError, ValueError) as e:
            job.error = str(e)
        seen.add(job.id)
        jobs.append(job)
    return jobs


def _path(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _prepare(job: BatchJob, spec: JobSpec, defaults: BatchDefaults, base: Path) -> None:
    """Fill the job's config and brief (or story arguments) from its line over the defaults; BriefError says what
    is wrong."""
    # the batch's backend options are its backend's: a line naming another backend starts from none
    same_backend = spec.backend is None or spec.backend == defaults.backend
    options = {**(defaults.backend_option if same_backend else {}), **spec.backend_option}
    try:
        job.config = PixloopConfig(
            backend=spec.backend or defaults.backend, base_url=spec.base_url or defaults.base_url,
            model=spec.model or defaults.model, options=options,
            strict=defaults.strict if spec.strict is None else spec.strict, checkpointer=defaults.checkpointer,
            planner=defaults.planner, llm_base_url=defaults.llm_base_url, llm_model=defaults.llm_model,
            policy=defaults.policy, moderation_base_url=defaults.moderation_base_url, watermark=defaults.watermark,
            sign_cert=defaults.sign_cert, sign_key=defaults.sign_key)
    except ValidationError as e:
        raise BriefError(format_validation_error(e)) from None
    thresholds = {**defaults.thresholds, **spec.thresholds}
    max_iterations = spec.max_iterations if spec.max_iterations is not None else defaults.max_iterations
    max_cost = spec.max_cost if spec.max_cost is not None else defaults.max_cost
    if spec.aspect is not None and spec.aspect not in ASPECT_RATIOS:
        raise BriefError(f"aspect: unknown aspect ratio {spec.aspect!r}; choose one of {', '.join(ASPECT_RATIOS)}")
    size = spec.size.upper() if spec.size else None
    if size is not None and size not in SIZE_TIERS:
        raise BriefError(f"size: unknown size {spec.size!r}; choose one of {', '.join(SIZE_TIERS)}")
    given = spec.model_fields_set
    if job.kind == "story":
        wrong = sorted(given & {"references", "text", "source", "mask", "region", "keep", "max_seconds", "critics",
                                "patience", "sketch"})
        if wrong:
            raise BriefError(f"a story job takes no {', '.join(wrong)} (its cues say what each image shows)")
        if not spec.script and not spec.prompt:
            raise BriefError("a story job needs a script (a Markdown file) or a prompt (a topic)")
        source: str | Path = _path(base, spec.script) or spec.prompt or ""
        characters = {name: [str(_path(base, p)) for p in photos] for name, photos in spec.characters.items()}
        job.story_source = source
        job.story = {"characters": characters, "pages": spec.pages, "layout": spec.layout,
                     "max_cost": max_cost, "seed": spec.seed, "aspect_ratio": spec.aspect, "size": size,
                     "thresholds": thresholds or None,
                     "image_budget": Budget(max_iterations=max_iterations) if max_iterations else None}
        story_input(source, **job.story)  # the script, its cues and the photos, checked now
        preflight(Brief(prompt="document", thresholds=thresholds), job.config)
        return
    wrong = sorted(given & {"script", "characters", "layout", "pages"})
    if wrong:
        raise BriefError(f"a {job.kind} job takes no {', '.join(wrong)} (those are a story's)")
    if not spec.prompt:
        raise BriefError("prompt: missing" + (" (the edit's instruction)" if job.kind == "edit" else ""))
    if job.kind == "edit":
        if not spec.source:
            raise BriefError("source: an edit job needs the image to edit")
        if sum(x is not None for x in (spec.mask, spec.region, spec.keep)) > 1:
            raise BriefError("give at most one of mask, region and keep")
        if spec.keep is not None and spec.keep not in EDIT_KEEPS:
            raise BriefError(f"keep: {spec.keep!r} is not one of {', '.join(EDIT_KEEPS)}")
    elif given & {"source", "mask", "region", "keep"}:
        raise BriefError("source, mask, region and keep belong to an edit job (kind \"edit\")")
    job.brief = make_brief(
        spec.prompt, references=[p for r in spec.references if (p := _path(base, r)) is not None],
        required_text=spec.text, aspect=spec.aspect, size=size, thresholds=thresholds, seed=spec.seed or 0,
        max_iterations=max_iterations,
        max_seconds=spec.max_seconds if spec.max_seconds is not None else defaults.max_seconds,
        max_cost=max_cost, source=_path(base, spec.source), mask=_path(base, spec.mask), region=spec.region,
        keep=spec.keep, critics=[*defaults.critics, *spec.critics],
        patience=spec.patience if spec.patience is not None else defaults.patience, sketch=_path(base, spec.sketch))
    preflight(job.brief, job.config)


__all__ = ["JOB_FILE_SUFFIXES", "BatchDefaults", "BatchJob", "JobSpec", "read_jobs", "read_lines"]
