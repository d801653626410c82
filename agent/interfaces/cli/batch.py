"""`pixloop batch JOBS --out DIR`: many runs, edits and stories from one JSON Lines or CSV file, a few at a time,
with a progress bar (or a line per finished job), OUT/summary.json, and an exit code for the worst job."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from agent.interfaces.batch import BatchDefaults, JobResult, read_jobs, run_batch
from agent.interfaces.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, fail, fail_with, option_arg, threshold_arg
from agent.models.errors import PixloopError
from agent.runtime.secrets import redact

BATCH_EPILOG = """\
examples:
  pixloop batch jobs.jsonl --out out/batch --concurrency 4 --max-total-cost 20
  pixloop batch jobs.csv --out out/batch --backend simulated --backend-option latency=1
  pixloop batch jobs.jsonl --out out/batch        # again after a kill: finished jobs are kept, the rest continue

JOBS: JSON Lines (.jsonl, or .json: JSON Lines or one array) or CSV (.csv, the header names the fields),
one job per line. Paths are relative to the JOBS file's folder. Fields:
  kind        run | edit | story (default: story with a script, edit with a source, else run)
  id          the job's name and folder OUT/<id> (default job-0001, job-0002, ... by line)
  prompt      what to make (run), the instruction (edit), or a topic (story)
  references  reference images (a list; in CSV ';'-separated)      text  extra required text (likewise)
  aspect, size, seed, strict, max_iterations, max_seconds, max_cost (per job)
  thresholds  {"ocr": 0.95} (CSV: ocr=0.95;face=0.6)   backend, base_url, model
  backend_option {"latency": "1"} (CSV: latency=1;profile=clean)
  edit:  source, mask | region ("x,y,w,h" or [x,y,w,h]) | keep
  story: script (a Markdown file), characters {"Mia": ["mia.jpg"]} (CSV: Mia=mia.jpg;Leo=leo.png), layout, pages
  e.g. {"id": "bakery", "prompt": "A poster that says \\"OPEN\\"", "aspect": "2:3", "max_iterations": 3}
       {"kind": "edit", "source": "shop.jpg", "prompt": "make the sky blue", "keep": "subject"}
A line's fields override the batch options (--backend, --max-cost, --threshold ...; its backend_option and
thresholds are merged over the batch's, and a line naming another backend gets none of the batch's
--backend-option). A bad line (not JSON,
an unknown field, no prompt, a missing file) is reported with its line number and the other jobs still run.

outputs in --out: <id>/ per job (its run or document folder), summary.json (per job: status, stop_reason,
exit_code, final, cost, seconds, error), rewritten atomically after every job. Run the same command again to
resume a killed batch: finished jobs are kept, a job with a checkpoint continues from it, nothing is made twice.
exit codes: the worst job's, in this order: 1 internal error > 4 failed (backend, planning) > 2 bad input
(a bad line, or a job refused as bad input) > 5 refused by the content policy > 3 below threshold (also a job
--max-total-cost skipped) > 0 every job passed; 130 interrupted (run it again to resume)
"""


def add_batch_parser(sub: Any) -> None:
    p = sub.add_parser("batch", help="run many jobs (runs, edits, stories) from a JSON Lines or CSV file",
                       description="Run every job of JOBS in one process, --concurrency at a time, each in OUT/<id>/, "
                                   "with a summary in OUT/summary.json.",
                       epilog=BATCH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("jobs", metavar="JOBS", help="a .jsonl, .json or .csv file, one job per line")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="the batch folder: OUT/<id>/ per job, summary.json")
    p.add_argument("--concurrency", "-j", type=int, default=2, metavar="N", help="jobs run at the same time (default 2)")
    p.add_argument("--max-total-cost", type=float, metavar="C",
                   help="start no new job once the finished jobs' cost reaches C (the rest are skipped_budget)")
    p.add_argument("--backend", "-b", default="compose", help="image backend (default: compose, offline)")
    p.add_argument("--base-url", help="backend endpoint")
    p.add_argument("--model", help="backend model id")
    p.add_argument("--backend-option", action="append", default=[], type=option_arg, metavar="KEY=VALUE",
                   help="backend-specific option (repeatable)")
    p.add_argument("--max-iterations", "-n", type=int, metavar="N", help="each job's most candidates")
    p.add_argument("--max-seconds", type=float, metavar="S", help="each run's time budget (not stories)")
    p.add_argument("--max-cost", type=float, metavar="C", help="each job's cost budget")
    p.add_argument("--threshold", action="append", default=[], type=threshold_arg, metavar="CRITIC=VALUE",
                   help="a critic's pass threshold for every job (repeatable)")
    p.add_argument("--strict", action="store_true", help="a job that leaves a requirement unverified ends below "
                   "threshold")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or per-job lines")


class BatchProgress:
    """A rich progress bar on stderr when it is a terminal, else one plain line per finished job."""

    def __init__(self, total: int, quiet: bool):
        from rich.console import Console

        self.quiet, self.total, self.t0 = quiet, total, time.perf_counter()
        self.counts = {"done": 0, "failed": 0, "refused": 0}
        self.cost = 0.0
        self.console = Console(stderr=True)
        self.bar: Any = None
        if not quiet and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), console=self.console)
            self.task = self.bar.add_task("batch", total=total, stats=self._stats())

    def _stats(self) -> str:
        c = self.counts
        return f"done {c['done']} · failed {c['failed']} · refused {c['refused']} · cost {self.cost:g}"

    def __enter__(self) -> BatchProgress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def error(self, message: str) -> None:
        """A bad line: always said, above the bar."""
        text = f"pixloop: error: {redact(message)}"
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def done(self, row: JobResult) -> None:
        key = {"refused": "refused", "failed": "failed", "bad_input": "failed"}.get(row.status, "done")
        self.counts[key] += 1
        self.cost += row.cost
        if row.status == "bad_input":
            self.error(f"job {row.id}: {row.error}")
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.update(self.task, advance=1, stats=self._stats())
            return
        line = (f"[{time.perf_counter() - self.t0:6.1f}s] {sum(self.counts.values())}/{self.total} {row.id} "
                f"{row.status}" + (f" ({row.stop_reason})" if row.stop_reason else "")
                + (f" exit {row.exit_code}" if row.exit_code is not None else "")
                + (f" cost {row.cost:g}" if row.cost else "") + (f" -> {row.final}" if row.final else ""))
        if row.error and row.status not in ("bad_input",):
            line += f" | {redact(row.error)}"
        print(line, file=sys.stderr, flush=True)


def batch_command(args: argparse.Namespace) -> int:
    defaults = BatchDefaults(backend=args.backend, base_url=args.base_url, model=args.model,
                             backend_option=dict(args.backend_option), max_iterations=args.max_iterations,
                             max_seconds=args.max_seconds, max_cost=args.max_cost,
                             thresholds=dict(args.threshold), strict=args.strict)
    if args.concurrency < 1:
        return fail(f"--concurrency must be at least 1, got {args.concurrency}", EXIT_BAD_INPUT)
    try:
        jobs = read_jobs(Path(args.jobs), defaults)
    except PixloopError as e:
        return fail_with(e)
    progress = BatchProgress(len(jobs), args.quiet)
    try:
        with progress:
            result = asyncio.run(run_batch(jobs, args.out, jobs_file=args.jobs, concurrency=args.concurrency,
                                           max_total_cost=args.max_total_cost, on_done=progress.done))
    except PixloopError as e:
        return fail_with(e)
    except KeyboardInterrupt:
        print(f"\ninterrupted; run the same command again to resume (summary: {Path(args.out) / 'summary.json'})",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    counts: dict[str, int] = {}
    for row in result.rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    print(f"batch: {len(result.rows)} job(s): " + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f"; cost {result.cost:g}; exit {result.exit_code}")
    print(f"summary: {result.summary}")
    return result.exit_code


__all__ = ["add_batch_parser", "batch_command"]
