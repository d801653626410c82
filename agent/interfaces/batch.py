"""Batches: many runs, edits and stories from one JOBS file, in one process, a few at a time.

`read_jobs` parses a JSON Lines (`.jsonl`, or `.json`: JSON Lines or one array of objects) or CSV (`.csv`, the header
names the fields) file into `BatchJob`s, each checked as the CLI would check it (a bad line becomes a job with
status `bad_input` and its line number; the rest still run). `run_batch` runs them with at most `concurrency` at a
time in one event loop (so the models the critics load are loaded once, and backend waits overlap), each in its own
folder `OUT/<job id>/`, and rewrites `OUT/summary.json` atomically after every job. Rerun on the same folder it
resumes: a job whose folder holds a finished report is kept as it was, one with a checkpoint but no final report
continues from it (`aresume` / `prepare_resume`), so nothing is generated twice.

Where a job runs is the `runner`'s choice: `run_job` (the default) runs it in this event loop; the Ray runner
(`agent.interfaces.batch_ray`) sends it to a Ray task that calls the same `run_job` in a worker process. Either
way this process decides what runs when (concurrency, the total budget, resume) and writes the summary.

A job line: `{"kind": "run"|"edit"|"story", "id": ..., "prompt": ..., ...}`, see `JobSpec`. Paths are relative
to the JOBS file's folder. The batch's defaults (`BatchDefaults`) apply to every job unless its line overrides them.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from agent.interfaces.api import aresume, arun, exit_code
from agent.interfaces.batch_index import write_index
from agent.interfaces.batch_jobs import BatchDefaults, BatchJob, JobSpec, read_jobs, read_lines  # noqa: F401 - re-exported
from agent.interfaces.run_folder import holds_run, resumable
from agent.interfaces.story import prepare_resume, prepare_story
from agent.models import Status
from agent.models.errors import BriefError, PixloopError, exit_code_for
from agent.runtime.store import write_atomic

SUMMARY_FILE = "summary.json"
INDEX_EVERY_S = 2.0
"""How often at most index.html is rewritten while jobs finish (every job rewrote it, thumbnails and all)."""
FINAL_STATUSES = ("passed", "below_threshold", "failed", "refused")
"""A report.json with one of these statuses is a finished job: a rerun keeps it as it was."""
JobStatus = Literal["pending", "running", "passed", "below_threshold", "failed", "refused", "bad_input",
                    "skipped_budget"]

EXIT_PRECEDENCE = (1, 4, 2, 5, 3, 0)
"""The batch's exit code is its worst job's, worst first: 1 internal error, 4 failed (backend, planning), 2 bad
input (a bad line, or a job refused as bad input), 5 refused by the content policy, 3 below threshold (and a job
skipped by --max-total-cost), 0 passed."""
SKIPPED_EXIT = 3


class JobResult(BaseModel):
    """A job's row in summary.json."""

    id: str
    kind: str
    line: int
    status: JobStatus = "pending"
    stop_reason: str | None = None
    exit_code: int | None = None
    final: str | None = None
    """the final image (a story: its story.html), relative to the batch's folder"""
    cost: float = 0.0
    seconds: float | None = None
    error: str | None = None
    resumed: bool = False
    """the job continued from a checkpoint a killed batch left"""


def finished_report(run_dir: Path) -> dict[str, Any] | None:
    """The report of a job that finished in `run_dir`, or None."""
    try:
        report = json.loads((run_dir / "report.json").read_text())
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) and report.get("status") in FINAL_STATUSES else None


def row_from_report(job: BatchJob, out: Path, report: dict[str, Any], seconds: float | None) -> JobResult:
    """A finished job's summary row, from its report.json."""
    run_dir = out / job.id
    status: Status = report.get("status") or "failed"
    reason = report.get("stop_reason")
    code = exit_code(status, reason)
    final: Path | None
    if job.kind == "story":
        final = run_dir / "story.html"
        cost = report.get("cost") or 0.0
    else:
        name = (report.get("final") or {}).get("path")
        final = run_dir / name if name else None
        cost = report.get("cost_used") or 0.0
        seconds = seconds if seconds is not None else report.get("elapsed_seconds")
    return JobResult(id=job.id, kind=job.kind, line=job.line, status="bad_input" if code == 2 else status,
                     stop_reason=reason, exit_code=code,
                     final=str(final.relative_to(out)) if final is not None and final.exists() else None,
                     cost=float(cost), seconds=round(seconds, 3) if seconds is not None else None,
                     error=report.get("error"))


def batch_exit_code(rows: list[JobResult]) -> int:
    """The worst job's exit code by EXIT_PRECEDENCE (a job skipped by the total budget counts as 3)."""
    codes = {SKIPPED_EXIT if r.status == "skipped_budget" else r.exit_code for r in rows} - {None}
    return next((c for c in EXIT_PRECEDENCE if c in codes), 0)


def write_summary(out: Path, jobs_file: Path, rows: list[JobResult], spent: float, *, index: bool = True) -> None:
    """OUT/summary.json, replaced atomically (a reader never sees half of it), and (with `index`) the contact
    sheet index.html."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    results, code = [r.model_dump(mode="json") for r in rows], batch_exit_code(rows)
    data = {"jobs_file": str(jobs_file), "jobs": len(rows), "counts": counts, "cost": round(spent, 4),
            "exit_code": code, "results": results}
    write_atomic(out / SUMMARY_FILE, json.dumps(data, indent=2, allow_nan=False).encode())
    if index:
        write_index(out, results, jobs_file=str(jobs_file), spent=spent, exit_code=code)


async def run_job(job: BatchJob, out: Path) -> JobResult:
    """Run (or continue from its checkpoint) one valid job in OUT/<id> to its final summary row; never raises: an
    error becomes the row (bad input, failed, or an internal error). The one per-job function of a batch, called in
    the batch's own process or inside a Ray task (`agent.interfaces.batch_ray`)."""
    started = time.perf_counter()
    try:
        return await _run_job(job, out, started)
    except Exception as e:  # noqa: BLE001 - one job's bug must not stop the others
        return error_row(job, e, time.perf_counter() - started)


def error_row(job: BatchJob, error: BaseException, seconds: float) -> JobResult:
    """The row of a job that raised instead of finishing: one of pixloop's own errors says its exit code (2 bad
    input, 4 failed, ...), anything else is an internal error (1)."""
    if isinstance(error, PixloopError):
        code = exit_code_for(error)
        return JobResult(id=job.id, kind=job.kind, line=job.line, status="bad_input" if code == 2 else "failed",
                         exit_code=code, error=str(error), seconds=round(seconds, 3))
    return JobResult(id=job.id, kind=job.kind, line=job.line, status="failed", stop_reason="internal_error",
                     exit_code=1, error=f"{type(error).__name__}: {error}", seconds=round(seconds, 3))


async def _run_job(job: BatchJob, out: Path, started: float) -> JobResult:
    assert job.config is not None
    run_dir = out / job.id
    # a checkpoint in the run folder, or a run.json naming the database (PostgreSQL) that holds its checkpoints
    can_resume = resumable(run_dir)
    resumed = False
    if job.kind == "story":
        run = None
        if can_resume:
            try:
                run = prepare_resume(job.id, run_dir, base_url=job.config.base_url,
                                     checkpointer=job.config.checkpointer)
                resumed = True
            except BriefError:
                run = None
        if run is None:
            run = prepare_story(job.story_source, job.config, out=run_dir, thread_id=job.id,
                                if_exists="overwrite" if holds_run(run_dir) else "refuse", **job.story)
        async for _ in run.events():
            pass
    else:
        assert job.brief is not None
        result = None
        if can_resume:
            try:
                result = await aresume(job.id, run_dir, base_url=job.config.base_url,
                                       checkpointer=job.config.checkpointer)
                resumed = True
            except BriefError:  # a checkpoint database without a checkpoint yet: start the job again
                result = None
        if result is None:
            await arun(job.brief, job.config, out=run_dir, thread_id=job.id,
                       if_exists="overwrite" if holds_run(run_dir) else "refuse")
    seconds = time.perf_counter() - started
    report = finished_report(run_dir)
    if report is None:
        report = {"status": "failed", "stop_reason": "internal_error", "error": f"no finished report in {run_dir}"}
    row = row_from_report(job, out, report, seconds)
    row.resumed = resumed
    return row


@dataclass
class BatchResult:
    """A finished batch: one row per job in file order, the cost spent, and the exit code."""

    rows: list[JobResult]
    cost: float
    exit_code: int
    summary: Path


JobCallback = Callable[[JobResult], None]
JobRunner = Callable[[BatchJob, Path], Awaitable[JobResult]]
"""Runs one valid job in OUT/<id> to its final row and never raises: `run_job`, or a Ray runner's."""


async def run_batch(jobs: list[BatchJob], out: str | Path, *, jobs_file: str | Path = "", concurrency: int = 2,
                    max_total_cost: float | None = None, on_start: JobCallback | None = None,
                    on_done: JobCallback | None = None, runner: JobRunner = run_job) -> BatchResult:
    """Run the jobs, `concurrency` at a time; stop starting new ones once the finished jobs' cost reaches
    `max_total_cost` (the rest are `skipped_budget`). Jobs already finished in OUT are kept as they were, jobs
    with a checkpoint continue from it. `on_done` is called with every job's row when it is final (bad lines and
    kept jobs first), `on_start` when a job starts. `runner` runs each job: `run_job` here, or a Ray runner
    (`agent.interfaces.batch_ray.RayRunner`) on a cluster."""
    if concurrency < 1:
        raise BriefError(f"--concurrency must be at least 1, got {concurrency}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = _previous_rows(out)
    rows: list[JobResult] = []
    todo: list[tuple[int, BatchJob]] = []
    for i, job in enumerate(jobs):
        report = finished_report(out / job.id) if job.error is None else None
        if job.error is not None:
            row = JobResult(id=job.id, kind=job.kind, line=job.line, status="bad_input", exit_code=2,
                            error=f"line {job.line}: {job.error}")
        elif report is not None:
            old = previous.get(job.id)
            row = old if old is not None and old.status in FINAL_STATUSES + ("bad_input",) else \
                row_from_report(job, out, report, None)
        else:
            row = JobResult(id=job.id, kind=job.kind, line=job.line)
            todo.append((i, job))
        rows.append(row)
    spent = sum(r.cost for r in rows if r.status != "pending")
    lock = asyncio.Lock()
    jobs_path = Path(jobs_file)
    index_at = -math.inf

    async def save(final: bool = False) -> None:
        """summary.json after every change; index.html (a page of thumbnails) at most every INDEX_EVERY_S and at
        the end. Written in a worker thread: the event loop keeps driving the other jobs meanwhile."""
        nonlocal index_at
        async with lock:
            index = final or time.monotonic() - index_at >= INDEX_EVERY_S
            await asyncio.to_thread(write_summary, out, jobs_path, list(rows), spent, index=index)
            if index:
                index_at = time.monotonic()

    await save()
    if on_done is not None:
        for row in rows:
            if row.status != "pending":
                on_done(row)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int, job: BatchJob) -> None:
        nonlocal spent
        async with semaphore:
            if max_total_cost is not None and spent >= max_total_cost:
                rows[i] = rows[i].model_copy(update={
                    "status": "skipped_budget", "exit_code": None,
                    "error": f"not started: the batch spent {spent:g} of --max-total-cost {max_total_cost:g}"})
            else:
                rows[i] = rows[i].model_copy(update={"status": "running"})
                if on_start is not None:
                    on_start(rows[i])
                await save()
                rows[i] = await runner(job, out)
                spent += rows[i].cost
            await save()
            if on_done is not None:
                on_done(rows[i])

    await asyncio.gather(*(one(i, job) for i, job in todo))
    await save(final=True)
    return BatchResult(rows=rows, cost=spent, exit_code=batch_exit_code(rows), summary=out / SUMMARY_FILE)


def _previous_rows(out: Path) -> dict[str, JobResult]:
    """The rows of the summary a killed batch left, by job id."""
    try:
        data = json.loads((out / SUMMARY_FILE).read_text())
        return {r["id"]: JobResult.model_validate(r) for r in data.get("results") or []}
    except (OSError, ValueError, KeyError, TypeError, ValidationError):
        return {}


__all__ = ["EXIT_PRECEDENCE", "FINAL_STATUSES", "SUMMARY_FILE", "BatchDefaults", "BatchJob", "BatchResult",
           "JobResult", "JobRunner", "JobSpec", "batch_exit_code", "error_row", "finished_report", "read_jobs",
           "read_lines", "run_batch", "run_job", "write_summary"]
