"""`pixloop batch --ray`'s settings, without starting Ray: the flags become each job's resource request and its
worker's thread caps, a job travels to a worker as JSON and comes back the same job, `--checkpointer` reaches every
job's config, and without Ray installed `--ray` says how to get it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agent.interfaces.batch import read_jobs
from agent.interfaces.batch_ray import THREAD_ENV_VARS, JobPayload, RaySettings, sees_marker
from agent.interfaces.cli import build_parser, main
from agent.interfaces.cli.batch import batch_defaults, ray_settings
from agent.models.errors import ConfigError


def batch_args(*flags: str):
    return build_parser().parse_args(["batch", "jobs.jsonl", "--out", "out", *flags])


def test_the_flags_are_each_jobs_resource_request_and_thread_caps():
    settings = ray_settings(batch_args("--ray", "--ray-cpus-per-job", "2", "--ray-resource", "pixloop=0.5",
                                       "--ray-resource", "ocr_node"))
    assert settings is not None and settings.address == "local"
    assert settings.task_options() == {
        "num_cpus": 2.0, "max_retries": 1, "resources": {"pixloop": 0.5, "ocr_node": 1.0},
        "runtime_env": {"env_vars": dict.fromkeys(THREAD_ENV_VARS, "2")}}
    assert {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"} <= set(THREAD_ENV_VARS)


def test_the_defaults_are_one_cpu_and_one_thread_per_job():
    settings = ray_settings(batch_args("--ray", "ray://head:10001"))
    assert settings is not None and settings.address == "ray://head:10001"
    assert settings.task_options() == {"num_cpus": 1.0, "max_retries": 1,
                                       "runtime_env": {"env_vars": dict.fromkeys(THREAD_ENV_VARS, "1")}}
    assert ray_settings(batch_args()) is None, "no --ray: the jobs run in this process"


@pytest.mark.parametrize(("cpus", "threads"), [(0.5, 1), (1, 1), (2.5, 2), (8, 8)])
def test_a_fraction_of_a_cpu_still_gets_one_thread(cpus, threads):
    settings = RaySettings(cpus_per_job=cpus)
    assert settings.threads == threads and settings.env_vars()["OMP_NUM_THREADS"] == str(threads)
    assert settings.task_options()["num_cpus"] == cpus


def test_how_many_jobs_a_node_takes():
    settings = RaySettings(cpus_per_job=2, resources={"pixloop": 1})
    assert settings.fits({"CPU": 8.0, "pixloop": 3.0, "memory": 1e9}) == 3, "the scarcer resource decides"
    assert settings.fits({"CPU": 8.0}) == 0, "a node without the custom resource takes none"
    assert RaySettings(cpus_per_job=0.5).fits({"CPU": 2.0}) == 4


def test_bad_resource_requests_are_refused():
    with pytest.raises(ConfigError, match="--ray-cpus-per-job"):
        RaySettings(cpus_per_job=0)
    with pytest.raises(ConfigError, match="--ray-resource"):
        RaySettings(resources={"pixloop": 0})
    with pytest.raises(SystemExit):
        batch_args("--ray", "--ray-resource", "pixloop=lots")


def test_checkpointer_reaches_every_jobs_config(tmp_path, monkeypatch):
    (tmp_path / "jobs.jsonl").write_text(json.dumps({"prompt": 'A poster that says "ONE"'}) + "\n")
    monkeypatch.delenv("PIXLOOP_CHECKPOINTER", raising=False)
    assert batch_defaults(batch_args()).checkpointer is None, "default: each run folder's SQLite file"
    url = "postgresql://pixloop@db.internal/pixloop"
    [job] = read_jobs(tmp_path / "jobs.jsonl", batch_defaults(batch_args("--checkpointer", url)))
    assert job.config is not None and job.config.checkpointer == url
    monkeypatch.setenv("PIXLOOP_CHECKPOINTER", url)
    assert batch_defaults(batch_args()).checkpointer == url, "the environment's when no flag is given"
    assert batch_defaults(batch_args("--checkpointer", "postgresql://other/db")).checkpointer == "postgresql://other/db"


def test_a_job_travels_to_a_worker_as_json_and_comes_back_the_same(tmp_path, product_png):
    (tmp_path / "tale.md").write_text('# Tale\n\n## One\n![A sign that says "ONE"](image)\n')
    lines = [{"id": "shot", "prompt": "A product shot", "references": ["product.png"], "text": ["SALE"],
              "aspect": "4:5", "max_iterations": 2, "thresholds": {"ocr": 0.8}, "backend": "simulated",
              "backend_option": {"latency": "0"}},
             {"id": "fix", "kind": "edit", "source": "product.png", "prompt": "make it blue", "region": "0,0,64,64"},
             {"id": "tale", "script": "tale.md", "layout": "comic", "max_iterations": 2},
             {"id": "topic", "kind": "story", "prompt": "tale.md is a topic here, not a file", "pages": 2}]
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    jobs = read_jobs(tmp_path / "jobs.jsonl")
    assert [j.error for j in jobs] == [None, None, None, None], [j.error for j in jobs]

    for job in jobs:
        wire = json.loads(json.dumps(JobPayload.of(job).model_dump(mode="json")))
        back = JobPayload.model_validate(wire).job()
        assert (back.id, back.kind, back.line) == (job.id, job.kind, job.line)
        assert back.config == job.config and back.brief == job.brief and back.story == job.story
        assert back.story_source == job.story_source and type(back.story_source) is type(job.story_source)
    assert Path(jobs[0].brief.references[0]).is_absolute(), "paths travel absolute: a worker has its own cwd"


def test_the_probe_says_whether_a_node_sees_the_batch_folder(tmp_path):
    (tmp_path / "marker").write_text("token")
    assert sees_marker(tmp_path / "marker", "token") is True
    assert sees_marker(tmp_path / "elsewhere" / "marker", "token") is False, "another machine's folder"
    assert sees_marker(tmp_path / "marker", "another batch's token") is False


def test_without_ray_the_flag_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "jobs.jsonl").write_text(json.dumps({"prompt": 'A poster that says "ONE"'}) + "\n")
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where it is not installed
    # `--ray JOBS`: the optional ADDRESS took the JOBS file; it is read as `JOBS --ray`
    code = main(["batch", "--ray", str(tmp_path / "jobs.jsonl"), "--out", str(tmp_path / "out"), "-q"])
    assert code == 2
    assert "pip install 'pixloop[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "job-0001").exists(), "no job started"


def test_ray_flags_without_ray_are_refused(tmp_path, capsys):
    (tmp_path / "jobs.jsonl").write_text(json.dumps({"prompt": 'A poster that says "ONE"'}) + "\n")
    code = main(["batch", str(tmp_path / "jobs.jsonl"), "--out", str(tmp_path / "out"), "--ray-cpus-per-job", "2"])
    assert code == 2 and "--ray" in capsys.readouterr().err


def test_help_explains_ray_and_the_shared_folder(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["batch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("--ray [ADDRESS]", "--ray-cpus-per-job", "--ray-resource", "--checkpointer", "ray://HOST:10001",
                  "shared storage mounted at the same path on every node", "oversubscribe", "pixloop[ray]",
                  "PIXLOOP_CHECKPOINTER"):
        assert words in text, words
