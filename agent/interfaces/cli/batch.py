"""`pixloop batch JOBS --out DIR`: many runs, edits and stories from one JSON Lines or CSV file, a few at a time,
with a progress bar (or a line per finished job), OUT/summary.json, and an exit code for the worst job; with
`--ray [ADDRESS]` the jobs run as Ray tasks on a local Ray or a cluster (`agent.interfaces.batch_ray`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from agent.interfaces.batch import BatchDefaults, BatchJob, BatchResult, JobResult, read_jobs, run_batch, run_job
from agent.interfaces.batch_jobs import JOB_FILE_SUFFIXES
from agent.interfaces.batch_ray import LOCAL, RayRunner, RaySettings
from agent.interfaces.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, fail, fail_with, option_arg, threshold_arg
from agent.interfaces.cli.run import add_delivery_options, add_planner_options, provenance_options
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
  critics     extra critics (a list, added to --critic)   patience   sketch (run: a wireframe to follow)
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

scale-out with Ray (pip install 'pixloop[ray]'):
  pixloop batch jobs.jsonl --out out/batch --ray                 # a local Ray on this machine's cores
  pixloop batch jobs.jsonl --out /mnt/shared/batch --ray auto    # the Ray cluster this machine belongs to
  pixloop batch jobs.jsonl --out /mnt/shared/batch --ray ray://head:10001 --ray-cpus-per-job 2 \
      --checkpointer postgresql://pixloop@db/pixloop
--ray alone starts a local Ray (loopback only, no dashboard) and stops it at the end; --ray ADDRESS joins a
running cluster: auto, HOST:PORT of its head, or ray://HOST:10001 (Ray Client). Each job is a Ray task in a
worker process that is reused between jobs (the critics' models load once per worker). A job writes its run
folder OUT/<id>/ from whichever node runs it, so with a cluster --out must be shared storage mounted at the
same path on every node (NFS, CephFS, ...): pixloop checks that every node sees it before the first job and
stops (exit 2) if one does not. SQLite checkpoints on a network filesystem are fragile: with a cluster prefer
--checkpointer postgresql://... . --ray-cpus-per-job N reserves N CPUs per job and caps the job's worker at N
threads (OpenMP, BLAS, OpenCV, onnxruntime): the critics (OCR and face models on onnxruntime, OpenCV) would
otherwise each start a thread per core, and jobs side by side on one node would oversubscribe it.
--ray-resource NAME=AMOUNT makes each job need a custom resource too (nodes started with
--resources '{"NAME": ...}'), e.g. to keep jobs on some nodes or fewer per node. --concurrency defaults to the
cluster's job slots. This process still decides what runs (--concurrency, --max-total-cost, resume) and writes
summary.json; API keys must be set in every worker's environment: they are never sent with a task. A cluster
with Ray's token authentication needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN) here too.
"""


def add_batch_parser(sub: Any) -> None:
    p = sub.add_parser("batch", help="run many jobs (runs, edits, stories) from a JSON Lines or CSV file",
                       description="Run every job of JOBS in one process (or as Ray tasks with --ray), "
                                   "--concurrency at a time, each in OUT/<id>/, with a summary in OUT/summary.json.",
                       epilog=BATCH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("jobs", metavar="JOBS", nargs="?", help="a .jsonl, .json or .csv file, one job per line")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="the batch folder: OUT/<id>/ per job, "
                   "summary.json (with a Ray cluster: shared storage every node mounts at the same path)")
    p.add_argument("--concurrency", "-j", type=int, metavar="N",
                   help="jobs run at the same time (default 2; with --ray the cluster's job slots)")
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
    p.add_argument("--critic", action="append", default=[], metavar="NAME",
                   help="also run this critic on every job (repeatable); see `pixloop critics`")
    p.add_argument("--patience", type=int, metavar="K", help="each run stops after K rounds without improvement")
    add_planner_options(p)
    add_delivery_options(p)
    p.add_argument("--checkpointer", metavar="URL", help="where every job's checkpoints go: a PostgreSQL URL "
                   "(postgresql://user@host/db, pip install 'pixloop[postgres]') any worker can resume from "
                   "(default: $PIXLOOP_CHECKPOINTER, else each run folder's SQLite file)")
    p.add_argument("--ray", nargs="?", const=LOCAL, metavar="ADDRESS",
                   help="run the jobs as Ray tasks: alone, on a local Ray started for the batch; with an ADDRESS "
                        "(auto, HOST:PORT, ray://HOST:10001) on that cluster, --out on shared storage (see below)")
    p.add_argument("--ray-cpus-per-job", type=float, metavar="N", help="CPUs Ray reserves for each job and the "
                   "job's thread cap (OpenMP, OpenCV, onnxruntime), so jobs side by side do not oversubscribe a "
                   "node (default 1)")
    p.add_argument("--ray-resource", action="append", default=[], type=resource_arg, metavar="NAME[=AMOUNT]",
                   help="a custom Ray resource each job needs too (amount default 1; repeatable)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or per-job lines")


def resource_arg(value: str) -> tuple[str, float]:
    """`NAME[=AMOUNT]` for --ray-resource."""
    name, sep, amount = value.partition("=")
    try:
        number = float(amount) if sep else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME[=AMOUNT] (e.g. pixloop=1), got {value!r}") from None
    if not name.strip() or not number > 0:
        raise argparse.ArgumentTypeError(f"expected NAME[=AMOUNT] with an amount above 0, got {value!r}")
    return name.strip(), number


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
    if args.jobs is None and args.ray and Path(args.ray).suffix.lower() in JOB_FILE_SUFFIXES:
        args.jobs, args.ray = args.ray, LOCAL  # `--ray jobs.jsonl`: the flag took the JOBS file for its ADDRESS
    if args.jobs is None:
        return fail("batch: the JOBS file is missing (pixloop batch JOBS --out DIR)", EXIT_BAD_INPUT)
    if not args.ray and (args.ray_cpus_per_job is not None or args.ray_resource):
        return fail("--ray-cpus-per-job and --ray-resource go with --ray", EXIT_BAD_INPUT)
    if args.concurrency is not None and args.concurrency < 1:
        return fail(f"--concurrency must be at least 1, got {args.concurrency}", EXIT_BAD_INPUT)
    try:
        jobs = read_jobs(Path(args.jobs), batch_defaults(args))
        ray = ray_runner(args)
        with ray or nullcontext():
            concurrency = args.concurrency or (ray.slots if ray is not None else 2)
            if ray is not None and not args.quiet:
                print(f"ray: {len(ray.nodes)} node(s) ({', '.join(sorted({p['host'] for p in ray.probes}))}), "
                      f"{ray.slots} job slot(s) of {ray.settings.cpus_per_job:g} CPU; {concurrency} at a time",
                      file=sys.stderr, flush=True)
            result = _run(jobs, args, concurrency, ray)
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


def batch_defaults(args: argparse.Namespace) -> BatchDefaults:
    """The batch's options every job gets unless its line says otherwise."""
    return BatchDefaults(backend=args.backend, base_url=args.base_url, model=args.model,
                         backend_option=dict(args.backend_option), max_iterations=args.max_iterations,
                         max_seconds=args.max_seconds, max_cost=args.max_cost, thresholds=dict(args.threshold),
                         strict=args.strict, critics=args.critic, patience=args.patience, planner=args.planner,
                         llm_base_url=args.llm_base_url, llm_model=args.llm_model, **provenance_options(args),
                         checkpointer=args.checkpointer or os.environ.get("PIXLOOP_CHECKPOINTER") or None)


def ray_settings(args: argparse.Namespace) -> RaySettings | None:
    """What --ray, --ray-cpus-per-job and --ray-resource ask for, or None without --ray."""
    if not args.ray:
        return None
    return RaySettings(address=args.ray, resources=dict(args.ray_resource),
                       cpus_per_job=1.0 if args.ray_cpus_per_job is None else args.ray_cpus_per_job)


def ray_runner(args: argparse.Namespace) -> RayRunner | None:
    """The Ray runner the flags ask for (started by `with`), or None without --ray; ConfigError without Ray."""
    settings = ray_settings(args)
    return RayRunner(settings, args.out) if settings is not None else None


def _run(jobs: list[BatchJob], args: argparse.Namespace, concurrency: int, ray: RayRunner | None) -> BatchResult:
    progress = BatchProgress(len(jobs), args.quiet)
    with progress:
        return asyncio.run(run_batch(jobs, args.out, jobs_file=args.jobs, concurrency=concurrency,
                                     max_total_cost=args.max_total_cost, on_done=progress.done,
                                     runner=ray or run_job))


__all__ = ["add_batch_parser", "batch_command", "batch_defaults", "ray_runner", "ray_settings"]
