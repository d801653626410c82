"""The batch library (`agent.interfaces.batch`): CSV jobs with references and an edit, a line's fields over the
batch's options, the total cost budget, and a story job, all in one process on the offline compose backend."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from PIL import Image, ImageDraw

from agent.interfaces.batch import BatchDefaults, read_jobs, run_batch


def run(jobs_file: Path, out: Path, defaults: BatchDefaults | None = None, **kwargs):
    jobs = read_jobs(jobs_file, defaults)
    return asyncio.run(run_batch(jobs, out, jobs_file=jobs_file, **kwargs))


def saved_run(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def test_a_csv_batch_with_references_and_an_edit(tmp_path, product_png):
    photo = Image.new("RGB", (512, 384), (240, 240, 235))
    ImageDraw.Draw(photo).ellipse((180, 110, 330, 270), fill=(30, 90, 200))
    photo.save(tmp_path / "photo.png")
    (tmp_path / "jobs.csv").write_text(
        "id,kind,prompt,references,text,source,region,aspect,max_iterations\n"
        'shot,run,A product shot on a table,product.png,SALE;NEW,,,4:5,2\n'
        'recolour,edit,make this corner red,,,photo.png,"0,0,128,128",,2\n')

    result = run(tmp_path / "jobs.csv", tmp_path / "out")

    rows = {r.id: r for r in result.rows}
    assert rows["shot"].kind == "run" and rows["shot"].line == 2
    assert rows["recolour"].kind == "edit" and rows["recolour"].line == 3
    brief = saved_run(tmp_path / "out" / "shot")["brief"]
    assert [Path(r).name for r in brief["references"]] == ["product.png"], "paths relative to the JOBS file"
    assert brief["required_text"] == ["SALE", "NEW"] and brief["aspect_ratio"] == "4:5"
    edit = saved_run(tmp_path / "out" / "recolour")["brief"]
    assert Path(edit["source"]).name == "photo.png" and list(edit["region"]) == [0, 0, 128, 128]
    for row in rows.values():
        assert row.status in ("passed", "below_threshold"), row
        assert row.final and (tmp_path / "out" / row.final).is_file()
    assert result.exit_code in (0, 3)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["id"] for r in summary["results"]] == ["shot", "recolour"]


def test_a_csv_with_a_missing_reference_is_a_bad_line(tmp_path):
    (tmp_path / "jobs.csv").write_text("prompt,references\nA poster,nowhere.png\n")
    [job] = read_jobs(tmp_path / "jobs.csv")
    assert job.line == 2 and job.error and "nowhere.png" in job.error


def test_job_fields_override_the_batch_options(tmp_path):
    lines = [{"id": "plain", "prompt": 'A poster that says "ONE"'},
             {"id": "own", "prompt": 'A poster that says "TWO"', "max_iterations": 3, "max_cost": 7,
              "thresholds": {"ocr": 0.8}, "backend": "compose", "strict": False, "seed": 5},
             {"id": "tuned", "prompt": 'A poster that says "THREE"', "backend_option": {"latency": "0"}}]
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    defaults = BatchDefaults(backend="simulated", backend_option={"profile": "clean"}, max_iterations=1, max_cost=50,
                             thresholds={"ocr": 0.95, "spec": 0.9}, strict=True)

    jobs = read_jobs(tmp_path / "jobs.jsonl", defaults)
    assert [j.error for j in jobs] == [None, None, None]
    plain, own, tuned = jobs
    assert plain.config.backend == "simulated" and plain.config.strict is True
    assert plain.config.options == {"profile": "clean"}
    assert plain.brief.budget.max_iterations == 1 and plain.brief.budget.max_cost == 50
    assert plain.brief.thresholds == {"ocr": 0.95, "spec": 0.9} and plain.brief.seed == 0
    assert own.config.backend == "compose" and own.config.strict is False
    assert own.config.options == {}, "the batch's simulated options are not compose's"
    assert own.brief.budget.max_iterations == 3 and own.brief.budget.max_cost == 7
    assert own.brief.thresholds == {"ocr": 0.8, "spec": 0.9} and own.brief.seed == 5
    assert tuned.config.options == {"profile": "clean", "latency": "0"}, "options merge, the line's win"

    result = asyncio.run(run_batch(jobs, tmp_path / "out"))
    assert {r.id: r.status for r in result.rows} == {"plain": "passed", "own": "passed", "tuned": "passed"}
    assert saved_run(tmp_path / "out" / "own")["config"]["backend"] == "compose"
    assert saved_run(tmp_path / "out" / "plain")["config"]["backend"] == "simulated"
    assert saved_run(tmp_path / "out" / "own")["brief"]["budget"]["max_iterations"] == 3


def test_critics_patience_planner_and_delivery_options_reach_every_job(tmp_path):
    lines = [{"id": "a", "prompt": 'A poster that says "ONE"', "critics": ["artifacts"], "patience": 5},
             {"id": "b", "prompt": 'A poster that says "TWO"'},
             {"kind": "story", "prompt": "a topic", "critics": "spec"}]
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    defaults = BatchDefaults(critics=["spec"], patience=1, watermark=False, planner="rule")

    a, b, story = read_jobs(tmp_path / "jobs.jsonl", defaults)

    assert a.brief.critics == ["spec", "artifacts"] and a.brief.budget.patience == 5
    assert b.brief.critics == ["spec"] and b.brief.budget.patience == 1
    assert a.config.watermark is False and b.config.planner == "rule"
    assert story.error and "critics" in story.error, "a story's checks come from its cues"


def test_an_unknown_critic_on_a_line_is_a_bad_line_naming_the_known_ones(tmp_path):
    (tmp_path / "jobs.csv").write_text('prompt,critics\nA poster,spec;nosuch\n')
    [job] = read_jobs(tmp_path / "jobs.csv")
    assert job.error and "nosuch" in job.error and "ocr" in job.error


def test_max_total_cost_stops_starting_new_jobs(tmp_path):
    (tmp_path / "jobs.jsonl").write_text("".join(
        json.dumps({"prompt": f'A poster that says "{w}"'}) + "\n" for w in ("ONE", "TWO", "THREE", "FOUR")))

    result = run(tmp_path / "jobs.jsonl", tmp_path / "out", concurrency=1, max_total_cost=2)

    assert [r.status for r in result.rows] == ["passed", "passed", "skipped_budget", "skipped_budget"]
    assert result.cost == 2.0, "compose costs 1 per image; each job passed with its first"
    assert not (tmp_path / "out" / "job-0003").exists(), "a skipped job is not started"
    assert "--max-total-cost" in (result.rows[2].error or "")
    assert result.exit_code == 3
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"] == {"passed": 2, "skipped_budget": 2} and summary["cost"] == 2.0


def test_a_story_job_in_a_batch(tmp_path):
    (tmp_path / "signs.md").write_text('# Signs\n\n## One\n![A sign that says "ONE"](image)\n')
    (tmp_path / "jobs.jsonl").write_text(
        json.dumps({"id": "signs", "kind": "story", "script": "signs.md", "layout": "comic"}) + "\n"
        + json.dumps({"kind": "story", "script": "signs.md", "references": ["x.png"]}) + "\n")

    result = run(tmp_path / "jobs.jsonl", tmp_path / "out")

    story, bad = result.rows
    assert story.kind == "story" and story.status == "passed" and story.exit_code == 0, story
    assert story.final == "signs/story.html" and (tmp_path / "out" / "signs" / "story.html").is_file()
    assert story.cost > 0
    report = json.loads((tmp_path / "out" / "signs" / "report.json").read_text())
    assert report["kind"] == "document" and report["layout"] == "comic"
    assert bad.status == "bad_input" and "references" in (bad.error or "")
    assert result.exit_code == 2


def test_a_batch_on_postgres_resumes_a_half_made_job_from_its_checkpoints_there(tmp_path, postgres_url):
    from agent import PixloopConfig, astream_run

    prompt = 'A poster that says "HALF"'
    config = PixloopConfig(backend="simulated", checkpointer=postgres_url,
                           options={"profile": "clean", "misspell": 1.0, "feedback_response": 1.0})

    async def stop_after_the_first_candidate() -> None:  # leaves run.json and Postgres checkpoints, no report
        async for event in astream_run(prompt, config, out=tmp_path / "out" / "half", thread_id="half",
                                       max_iterations=3):
            if event.event == "candidate":
                return

    asyncio.run(stop_after_the_first_candidate())
    assert not (tmp_path / "out" / "half" / "report.json").exists()
    (tmp_path / "jobs.jsonl").write_text(json.dumps({"id": "half", "prompt": prompt, "backend": "simulated",
                                                     "backend_option": {"profile": "clean", "misspell": "1.0",
                                                                        "feedback_response": "1.0"}}) + "\n")

    result = run(tmp_path / "jobs.jsonl", tmp_path / "out", BatchDefaults(checkpointer=postgres_url))

    [row] = result.rows
    assert row.resumed and row.status == "passed", row
    generated = [e for e in (tmp_path / "out" / "half" / "events.jsonl").read_text().splitlines()
                 if '"event": "generate"' in e]
    assert len(generated) == 2, "c1 (before the stop) and c2 (the correction), c1 not made again"
    assert not (tmp_path / "out" / "half" / "checkpoints.sqlite").exists()
    assert postgres_url.split("@")[0].split(":")[-1] not in (tmp_path / "out" / "half" / "run.json").read_text()
