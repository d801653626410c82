"""`pixloop batch --ray` as a user runs it: the CLI starts a local Ray of its own, runs every job as a Ray task,
and leaves the same summary, exit code and final images as the same batch in one process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.interfaces.batch import read_jobs, run_batch

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def test_a_local_ray_batch_gives_the_single_process_results(tmp_path):
    jobs = [{"id": "open", "prompt": 'A poster that says "OPEN"'}, "[1, 2",
            {"id": "sale", "prompt": 'A banner that says "SALE"', "aspect": "16:9"},
            {"id": "hours", "prompt": 'A poster that says "9 TO 5"', "max_iterations": 2}]
    (tmp_path / "jobs.jsonl").write_text("".join((j if isinstance(j, str) else json.dumps(j)) + "\n" for j in jobs))

    out = subprocess.run([sys.executable, "-m", "agent.interfaces.cli", "batch", "jobs.jsonl", "--out", "ray",
                          "--ray"], capture_output=True, text=True, cwd=tmp_path, timeout=300, env=ENV)
    here = asyncio.run(run_batch(read_jobs(tmp_path / "jobs.jsonl"), tmp_path / "here",
                                 jobs_file=tmp_path / "jobs.jsonl"))

    assert out.returncode == here.exit_code == 2, out.stderr
    assert "ray: 1 node(s)" in out.stderr and "job slot(s)" in out.stderr
    assert "line 2: not valid JSON" in out.stderr, "the bad line is said"
    assert " open passed" in out.stderr and " sale passed" in out.stderr, "a line per job as its task finishes"
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["exit_code"] == 2 and summary["counts"] == {"passed": 3, "bad_input": 1}
    rows = [{k: v for k, v in r.items() if k != "seconds"} for r in summary["results"]]
    assert rows == [r.model_dump(mode="json", exclude={"seconds"}) for r in here.rows]
    for row in here.rows:
        if row.final:
            ray_final, own_final = tmp_path / "ray" / row.final, tmp_path / "here" / row.final
            assert hashlib.sha256(ray_final.read_bytes()).digest() == hashlib.sha256(own_final.read_bytes()).digest()
    assert not list((tmp_path / "ray").glob(".pixloop-ray-check-*"))
