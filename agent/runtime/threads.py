"""A job's share of the machine's cores: how many threads one run's engines may use.

When several jobs share a node (`pixloop batch --ray`: N jobs side by side, each reserving its CPUs), every
engine that sizes its thread pool by the core count oversubscribes it: onnxruntime (OCR, ArcFace, the policy's
image screen) starts one intra-op thread per physical core and reads no environment variable for it. The runner
sets PIXLOOP_JOB_THREADS (with OMP_NUM_THREADS and friends, and OpenCV's own count); each engine asks
`job_threads()` when it builds its session. Unset: the engines' own defaults (a single process owns the machine).
"""

from __future__ import annotations

import os

JOB_THREADS_ENV = "PIXLOOP_JOB_THREADS"


def job_threads() -> int | None:
    """The job's thread cap, or None when no runner set one (a malformed value counts as unset)."""
    raw = os.environ.get(JOB_THREADS_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


__all__ = ["JOB_THREADS_ENV", "job_threads"]
