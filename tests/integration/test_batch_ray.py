"""`run_batch` with the Ray runner on a real local Ray (started once for the module, 2 CPUs, on the loopback
address): the same jobs give the same rows, iterations and image bytes as in one process, a bad line is reported
and the rest run, a rerun keeps every finished job, the total budget stops new jobs, and each job's worker caps
its thread pools at the job's CPU share."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from agent.interfaces.batch import BatchJob, BatchResult, read_jobs, run_batch
from agent.interfaces.batch_ray import THREAD_ENV_VARS, RayRunner, RaySettings, limit_threads

pytestmark = pytest.mark.slow

JOBS = [{"id": "open", "prompt": 'A poster that says "OPEN"'},
        {"id": "sale", "prompt": 'A banner that says "SALE"', "aspect": "16:9"},
        "{not json",
        {"id": "hours", "prompt": 'A poster that says "OPEN 9 TO 5"', "aspect": "4:5"},
        # every candidate misspelt until the third: three iterations, the loop's corrections included
        {"id": "fixed", "prompt": 'A sign that says "TWO"', "max_iterations": 3, "backend": "simulated",
         "backend_option": {"profile": "clean", "misspell": "1", "feedback_response": "0"}}]


def write_jobs(path: Path, jobs: list) -> Path:
    path.write_text("".join((j if isinstance(j, str) else json.dumps(j)) + "\n" for j in jobs))
    return path


class Counting:
    """The Ray runner, noting which jobs it was given (so a test sees they ran as Ray tasks, or did not run)."""

    def __init__(self, ray: RayRunner):
        self.ray, self.ids = ray, []

    async def __call__(self, job: BatchJob, out: Path):
        self.ids.append(job.id)
        return await self.ray(job, out)


def images(out: Path) -> dict[str, str]:
    """sha256 of every final image and candidate of a batch, by path relative to its folder."""
    files = [p for p in out.rglob("*.png") if p.name.startswith("final") or p.parent.name == "candidates"]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(files)}


def comparable(result: BatchResult) -> list[dict]:
    return [r.model_dump(exclude={"seconds"}) for r in result.rows]


@pytest.fixture(scope="module")
def ray_runner(tmp_path_factory):
    with RayRunner(RaySettings(num_cpus=2), tmp_path_factory.mktemp("ray")) as runner:
        yield runner


@pytest.fixture(scope="module")
def both(tmp_path_factory, ray_runner):
    """The same JOBS file run in this process and on Ray."""
    base = tmp_path_factory.mktemp("batches")
    jobs_file = write_jobs(base / "jobs.jsonl", JOBS)
    here = asyncio.run(run_batch(read_jobs(jobs_file), base / "here", jobs_file=jobs_file, concurrency=2))
    counting = Counting(ray_runner)
    on_ray = asyncio.run(run_batch(read_jobs(jobs_file), base / "ray", jobs_file=jobs_file, concurrency=2,
                                   runner=counting))
    return base, jobs_file, here, on_ray, counting.ids


def test_a_ray_batch_gives_what_one_process_gives(both):
    base, _, here, on_ray, ran = both
    assert sorted(ran) == ["fixed", "hours", "open", "sale"], "every valid job ran as a Ray task, the bad line none"
    assert on_ray.exit_code == here.exit_code == 2, "the bad line's exit code"
    assert comparable(on_ray) == comparable(here), "the same rows: status, stop reason, exit code, final, cost"
    rows = {r.id: r for r in on_ray.rows}
    assert rows["job-0003"].status == "bad_input" and "line 3: not valid JSON" in (rows["job-0003"].error or "")
    assert all(rows[j].status == "passed" for j in ("open", "sale", "hours", "fixed"))
    for job in ("open", "sale", "hours", "fixed"):
        one, ray = (json.loads((base / where / job / "report.json").read_text()) for where in ("here", "ray"))
        assert one["iterations"] == ray["iterations"], job
    assert json.loads((base / "ray" / "fixed" / "report.json").read_text())["iterations"] == 3
    made_here, made_on_ray = images(base / "here"), images(base / "ray")
    assert len(made_here) >= 8 and made_on_ray == made_here, "the same final images and candidates, byte for byte"
    summary = [json.loads((base / where / "summary.json").read_text()) for where in ("here", "ray")]
    assert summary[0]["counts"] == summary[1]["counts"] == {"passed": 4, "bad_input": 1}
    assert (base / "ray" / "index.html").is_file()


def test_a_rerun_on_ray_keeps_every_finished_job(both, ray_runner):
    base, jobs_file, _, on_ray, _ = both
    logs = {job: (base / "ray" / job / "events.jsonl").read_bytes() for job in ("open", "sale", "hours", "fixed")}
    counting = Counting(ray_runner)

    again = asyncio.run(run_batch(read_jobs(jobs_file), base / "ray", jobs_file=jobs_file, runner=counting))

    assert counting.ids == [], "nothing is sent to Ray again"
    assert again.rows == on_ray.rows and again.exit_code == on_ray.exit_code
    assert all((base / "ray" / job / "events.jsonl").read_bytes() == log for job, log in logs.items())


def test_the_total_budget_stops_new_ray_jobs(tmp_path, ray_runner):
    jobs_file = write_jobs(tmp_path / "jobs.jsonl",
                           [{"prompt": f'A poster that says "{w}"'} for w in ("ONE", "TWO", "THREE", "FOUR")])

    result = asyncio.run(run_batch(read_jobs(jobs_file), tmp_path / "out", jobs_file=jobs_file, concurrency=1,
                                   max_total_cost=2, runner=ray_runner))

    assert [r.status for r in result.rows] == ["passed", "passed", "skipped_budget", "skipped_budget"]
    assert result.cost == 2.0 and result.exit_code == 3
    assert not (tmp_path / "out" / "job-0003").exists(), "a skipped job is not sent"


def test_each_jobs_worker_caps_its_threads_at_the_jobs_cpus(tmp_path, ray_runner):
    assert ray_runner.owned and ray_runner.slots == 2, "2 CPUs, 1 per job"
    [probe] = ray_runner.probes
    assert probe["sees_out"] is True
    assert probe["threads"] == {"env": dict.fromkeys(THREAD_ENV_VARS, "1"), "opencv": 1, "onnxruntime": 1}

    with RayRunner(RaySettings(cpus_per_job=2), tmp_path) as two:  # joins the module's Ray: leaves it running
        assert not two.owned and two.slots == 1
        assert two.probes[0]["threads"] == {"env": dict.fromkeys(THREAD_ENV_VARS, "2"), "opencv": 2,
                                            "onnxruntime": 2}
    assert ray_runner.ray.is_initialized()
    assert not list(tmp_path.glob(".pixloop-ray-check-*")), "the probe's marker file is removed"


def test_the_critics_onnxruntime_sessions_get_the_jobs_share(monkeypatch, request):
    """What `limit_threads` does in a worker, here (and undone after): onnxruntime reads no OMP_NUM_THREADS, so the
    OCR engine asks for the job's share when it builds its sessions."""
    import cv2

    from critics.ocr import engines

    monkeypatch.setattr(engines, "_rapidocr", None)  # a fresh engine, as a new worker builds it
    for name in THREAD_ENV_VARS:
        monkeypatch.setenv(name, "0")
    threads = cv2.getNumThreads()
    request.addfinalizer(lambda: cv2.setNumThreads(threads))

    assert limit_threads(1)["onnxruntime"] == 1

    engine = engines.rapidocr_engine()
    for model in (engine._load_det_model(), engine._load_rec_model()):
        assert model.session.session.get_session_options().intra_op_num_threads == 1
    assert cv2.getNumThreads() == 1
