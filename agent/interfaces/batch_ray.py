"""A batch's jobs as Ray tasks: `pixloop batch JOBS --out DIR --ray [ADDRESS]`.

`RayRunner` is a `JobRunner` for `run_batch`: it sends each job to a Ray task that calls the batch's own `run_job`
in a Ray worker process, so a job runs the same code as in one process and its row comes back the same. This
process (the driver) keeps doing what the batch does without Ray: it decides what runs when (`--concurrency`
jobs in flight, no new job once `--max-total-cost` is spent, finished jobs kept and partial ones continued on a
rerun), writes summary.json and index.html, and moves the progress bar as tasks finish.

- Where: `--ray` alone starts a local Ray on this machine (quiet, on the loopback address only, no dashboard);
  `--ray ADDRESS` joins a running cluster (`auto`, `host:port` of its head, or `ray://host:10001` for Ray Client).
- What travels: the job as JSON (`JobPayload`: its `PixloopConfig` and `Brief` as pydantic dumps), the batch
  folder's absolute path, and the job's thread cap. A job writes its run folder OUT/<id>/ itself, so OUT must
  be a path every node sees (shared storage mounted at the same path); before the first job one probe task per
  node checks that it reads a marker file this process wrote there, and stops with a clear error if not.
  Checkpoints go to the run folder's SQLite file, or to `PixloopConfig.checkpointer` (a PostgreSQL URL).
- Resources: each job asks Ray for `cpus_per_job` CPUs (and any custom resources), and its worker caps the
  OpenMP/BLAS/OpenCV/onnxruntime thread pools at that many threads. Without the cap every critic's
  onnxruntime session (OCR, faces) starts a thread per physical core, and N jobs side by side on a node run N
  times as many busy threads as it has cores. onnxruntime reads no environment variable for its pool size, so
  the engines that build sessions ask `agent.runtime.threads.job_threads()` (PIXLOOP_JOB_THREADS).
- Ray's workers are reused between tasks, so the critics' models load once per worker, not once per job.

Ray is imported only here and only when asked for (`pip install 'pixloop[ray]'`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from pydantic import BaseModel

from agent.interfaces.batch import BatchJob, JobResult, error_row, run_job
from agent.models import Brief, Budget, PixloopConfig
from agent.models.errors import ConfigError
from agent.runtime.threads import JOB_THREADS_ENV, job_threads

LOCAL = "local"
"""`--ray` without an address: start a Ray of its own on this machine (ray.init's own word for it)."""
RAY_MISSING = "--ray needs Ray, which is not installed: pip install 'pixloop[ray]'"
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", JOB_THREADS_ENV)
"""Set in every job's worker (Ray's runtime_env) to the job's CPU share, before any library reads them."""
CONNECT_TIMEOUT_S = 10.0
"""How long the head of `--ray HOST:PORT` may take to accept a connection."""
PROBE_TIMEOUT_S = 180.0
"""How long the start-up probes (one per node) may take: a worker's first start imports pixloop."""
MARKER_PREFIX = ".pixloop-ray-check-"


@dataclass(frozen=True)
class RaySettings:
    """Where and how a batch's jobs run on Ray."""

    address: str = LOCAL
    """`local` (start one here), `auto`, `host:port` or `ray://host:10001`"""
    cpus_per_job: float = 1.0
    """CPUs Ray reserves for each job, and the job's thread cap (at least 1)"""
    resources: Mapping[str, float] = field(default_factory=dict)
    """custom Ray resources each job needs too, e.g. {"pixloop": 1} on nodes started with --resources"""
    num_cpus: int | None = None
    """a local Ray's CPUs (default: what Ray counts on this machine); not used with an address"""

    def __post_init__(self) -> None:
        if not self.cpus_per_job > 0:
            raise ConfigError(f"--ray-cpus-per-job must be above 0, got {self.cpus_per_job:g}")
        bad = [f"{k}={v:g}" for k, v in self.resources.items() if not k or not v > 0]
        if bad:
            raise ConfigError(f"--ray-resource: each needs a name and an amount above 0, got {', '.join(bad)}")

    @property
    def threads(self) -> int:
        """The job's thread cap: its whole CPUs, at least one."""
        return max(1, int(self.cpus_per_job))

    def env_vars(self) -> dict[str, str]:
        """The thread variables of a job's worker."""
        return dict.fromkeys(THREAD_ENV_VARS, str(self.threads))

    def task_options(self) -> dict[str, Any]:
        """The Ray options of a job's task: its CPUs and resources, and the thread caps of its worker. A task whose
        worker died (its node lost, Ray's memory monitor) is tried once more: it continues from its checkpoint."""
        options: dict[str, Any] = {"num_cpus": self.cpus_per_job, "max_retries": 1,
                                   "runtime_env": {"env_vars": self.env_vars()}}
        if self.resources:
            options["resources"] = dict(self.resources)
        return options

    def fits(self, node: Mapping[str, float]) -> int:
        """How many jobs a node with these total resources takes at once (0: none)."""
        need = {"CPU": self.cpus_per_job, **self.resources}
        return min(int(math.floor(node.get(name, 0.0) / amount + 1e-9)) for name, amount in need.items())


def import_ray() -> ModuleType:
    """The ray module, or ConfigError (exit 2) saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


# --- in the worker ------------------------------------------------------------------------------------------------


def limit_threads(threads: int) -> dict[str, Any]:
    """Cap this worker's thread pools at `threads` (the job's CPU share) before a job loads its critics; returns the
    settings now in effect. Idempotent: every task of a reused worker calls it. onnxruntime reads none of these
    variables: the engines that build its sessions ask `agent.runtime.threads.job_threads()`."""
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:  # pragma: no cover - a core dependency
        pass
    return thread_settings()


def thread_settings() -> dict[str, Any]:
    """This process's thread caps: the environment's, OpenCV's, and what the onnxruntime sessions of the critics
    are given (`job_threads()`; None: one thread per physical core, onnxruntime's default)."""
    settings: dict[str, Any] = {"env": {name: os.environ.get(name) for name in THREAD_ENV_VARS}}
    if "cv2" in sys.modules:
        settings["opencv"] = sys.modules["cv2"].getNumThreads()
    settings["onnxruntime"] = job_threads()
    return settings


class JobPayload(BaseModel):
    """A valid batch job as it travels to a Ray worker: JSON, its config and brief as pydantic dumps."""

    id: str
    kind: str
    line: int
    config: PixloopConfig
    brief: Brief | None = None
    story_source: str = ""
    story_script: bool = False
    """the story's source is a script file (a path), not a topic"""
    story: dict[str, Any] = {}

    @classmethod
    def of(cls, job: BatchJob) -> JobPayload:
        assert job.config is not None and job.error is None
        story = {k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v for k, v in job.story.items()}
        return cls(id=job.id, kind=job.kind, line=job.line, config=job.config, brief=job.brief,
                   story_source=str(job.story_source), story_script=isinstance(job.story_source, Path), story=story)

    def job(self) -> BatchJob:
        story = dict(self.story)
        if isinstance(story.get("image_budget"), dict):
            story["image_budget"] = Budget.model_validate(story["image_budget"])
        return BatchJob(self.id, self.kind, self.line, config=self.config, brief=self.brief, story=story,
                        story_source=Path(self.story_source) if self.story_script else self.story_source)


def execute_job(payload: dict[str, Any], out: str, threads: int) -> dict[str, Any]:
    """A Ray task: run one job with the batch's own `run_job` in this worker; its summary row as JSON."""
    limit_threads(threads)
    job = JobPayload.model_validate(payload).job()
    return asyncio.run(run_job(job, Path(out))).model_dump(mode="json")


def sees_marker(marker: str | Path, token: str) -> bool:
    """Whether this machine sees the marker file the driver wrote into the batch folder, with this batch's token."""
    try:
        return Path(marker).read_text() == token
    except OSError:
        return False


def probe_node(marker: str, token: str, threads: int) -> dict[str, Any]:
    """A Ray task on one node: whether it sees the batch folder, its pixloop version, and the thread caps a job's
    worker gets."""
    from agent import __version__

    return {"host": socket.gethostname(), "sees_out": sees_marker(marker, token), "version": __version__,
            "threads": limit_threads(threads)}


# --- in the driver ------------------------------------------------------------------------------------------------


class RayRunner:
    """Runs a batch's jobs as Ray tasks (a `JobRunner` for `run_batch`); `with RayRunner(settings, out) as runner`
    starts or joins Ray, checks the cluster can run a job and sees OUT, and leaves Ray at the end (a local Ray
    stops; a Ray this process was already connected to is left as it was)."""

    def __init__(self, settings: RaySettings, out: str | Path):
        self.settings = settings
        self.out = Path(out).absolute()
        self.ray = import_ray()
        self.owned = False
        """this runner called ray.init, so it calls ray.shutdown"""
        self.nodes: list[dict[str, Any]] = []
        """the live nodes that can take a job"""
        self.probes: list[dict[str, Any]] = []
        """each node's answer to the start-up probe"""
        self._task: Any = None

    def __enter__(self) -> RayRunner:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def slots(self) -> int:
        """How many jobs the cluster runs at once: the default --concurrency with Ray."""
        return max(1, sum(self.settings.fits(n["Resources"]) for n in self.nodes))

    def start(self) -> None:
        ray = self.ray
        if not ray.is_initialized():
            if self.settings.address == LOCAL:
                self._start_local()
            else:
                self._connect()
            self.owned = True
        self.nodes = [n for n in ray.nodes() if n.get("Alive") and self.settings.fits(n.get("Resources") or {})]
        if not self.nodes:
            need = ", ".join(f"{k} {v:g}" for k, v in {"CPU": self.settings.cpus_per_job,
                                                        **self.settings.resources}.items())
            raise ConfigError(f"no node of the Ray cluster ({self.settings.address}) can run a job that needs {need}: "
                              "lower --ray-cpus-per-job, or start the nodes with those --resources")
        self.out.mkdir(parents=True, exist_ok=True)
        self.probes = self._probe()
        self._task = ray.remote(execute_job).options(**self.settings.task_options())

    def _start_local(self) -> None:
        cpus = self.settings.num_cpus  # None: Ray counts this machine's (or its container's) CPUs
        most = cpus or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        # declared in the amount as many jobs as CPUs need, so a custom resource never holds back a local batch
        resources = {k: v * max(1, int(most // self.settings.cpus_per_job)) for k, v in self.settings.resources.items()}
        try:
            with _loopback_only():
                self.ray.init(address=LOCAL, num_cpus=cpus, resources=resources or None, include_dashboard=False,
                              log_to_driver=False, logging_level=logging.ERROR, namespace="pixloop")
        except (ConnectionError, RuntimeError, ValueError, OSError) as e:
            raise ConfigError(f"--ray: a local Ray could not start ({type(e).__name__}: {e})") from None

    def _connect(self) -> None:
        address = self.settings.address
        head = head_endpoint(address)
        if head is not None:  # Ray itself retries an address where nothing listens for minutes
            try:
                socket.create_connection(head, timeout=CONNECT_TIMEOUT_S).close()
            except OSError as e:
                raise ConfigError(f"--ray {address}: nothing answers at {head[0]}:{head[1]} ({e}); is the Ray "
                                  "head running (ray start --head)?") from None
        try:
            with _environ(RAY_USAGE_STATS_ENABLED="0"):
                self.ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR,
                              namespace="pixloop")
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
            hint = ("" if os.environ.get("RAY_AUTH_MODE") else "; a cluster with token authentication (Ray's "
                    "default) needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN or ~/.ray/auth_token) here")
            raise ConfigError(f"--ray {address}: cannot connect to the Ray cluster ({e}){hint}") from None

    def _probe(self) -> list[dict[str, Any]]:
        """One task per node that can take a job: does it see OUT (a marker file written here), does it run the
        same pixloop, which thread caps does a job's worker get. ConfigError when not."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        token = secrets.token_hex(8)
        marker = self.out / f"{MARKER_PREFIX}{token}"
        marker.write_text(token)
        probe = self.ray.remote(probe_node)
        env = {"env_vars": self.settings.env_vars()}
        try:
            refs = [probe.options(num_cpus=0, runtime_env=env, scheduling_strategy=NodeAffinitySchedulingStrategy(
                node_id=n["NodeID"], soft=False)).remote(str(marker), token, self.settings.threads)
                for n in self.nodes]
            answers: list[dict[str, Any]] = self.ray.get(refs, timeout=PROBE_TIMEOUT_S)
        except self.ray.exceptions.GetTimeoutError:
            raise ConfigError(f"the Ray cluster's nodes did not answer in {PROBE_TIMEOUT_S:g} s (a worker "
                              "could not start: is pixloop installed on every node?)") from None
        except self.ray.exceptions.RayError as e:
            raise ConfigError(f"a Ray node could not run pixloop's probe task ({type(e).__name__}: {e}); "
                              "install pixloop on every node") from None
        finally:
            marker.unlink(missing_ok=True)
        for node, answer in zip(self.nodes, answers):
            answer["node"] = (f"{answer['host']} ({node.get('NodeManagerAddress', '?')}, "
                              f"node {str(node.get('NodeID', '?'))[:8]})")
        blind = [str(a["node"]) for a in answers if not a["sees_out"]]
        if blind:
            raise ConfigError(f"--out {self.out} is not visible on Ray node(s) {', '.join(blind)}: each job writes "
                              "its run folder there, so --out must be shared storage mounted at the same path on "
                              "every node (NFS, CephFS, ...)")
        from agent import __version__

        other = [f"{a['node']}: {a['version']}" for a in answers if a["version"] != __version__]
        if other:
            raise ConfigError(f"Ray node(s) {', '.join(other)} run another pixloop than this one ({__version__}): "
                              "install the same version everywhere")
        return answers

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
        self.owned = False

    async def __call__(self, job: BatchJob, out: Path) -> JobResult:
        """Run one job as a Ray task and wait for its row without blocking the event loop; a task that Ray could
        not finish (its worker died twice, its node was lost) is the job's internal error."""
        assert self._task is not None, "use RayRunner as a context manager"
        started = time.perf_counter()
        ref = None
        try:
            ref = self._task.remote(JobPayload.of(job).model_dump(mode="json"), str(Path(out).absolute()),
                                    self.settings.threads)
            return JobResult.model_validate(await asyncio.wrap_future(ref.future()))
        except asyncio.CancelledError:  # the batch was interrupted: stop the task too (a rerun resumes the job)
            if ref is not None:
                self.ray.cancel(ref, force=True)
            raise
        except Exception as e:  # noqa: BLE001 - one job's failure must not stop the others
            return error_row(job, e, time.perf_counter() - started)


def head_endpoint(address: str) -> tuple[str, int] | None:
    """The host and port an address names (`host:port`, `ray://host:port`), or None (`auto`, `local`)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    return (host.strip("[]"), int(port)) if sep and host and port.isdigit() else None


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Environment variables set for the block (what Ray reads when it starts its processes), then restored."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _loopback_only() -> Iterator[None]:
    """A local Ray on 127.0.0.1 (its processes listen on no other address) that reports no usage statistics. Ray
    reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported (already done here), so its constant is set too."""
    constants = sys.modules.get("ray._private.ray_constants")
    saved = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    with _environ(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0"):
        if constants is not None:
            setattr(constants, "ENABLE_RAY_CLUSTER", False)  # noqa: B010
        try:
            yield
        finally:
            if constants is not None:
                setattr(constants, "ENABLE_RAY_CLUSTER", saved)  # noqa: B010


__all__ = ["LOCAL", "RAY_MISSING", "THREAD_ENV_VARS", "JobPayload", "RayRunner", "RaySettings", "execute_job",
           "head_endpoint", "import_ray", "limit_threads", "probe_node", "sees_marker", "thread_settings"]
