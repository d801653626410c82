"""`pixloop story` as a user runs it: a Markdown script and a character photo in, events on the terminal (or as
JSON lines), story.md / story.html / report.json out, exit codes that say how it went."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from processes import kill

REPO = Path(__file__).resolve().parents[2]
PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]

SCRIPT = """\
# Mia's bakery

## The morning
Mia gets up before the sun.

![Mia waves outside the bakery; the sign says "OPEN"](image)

## The oven
The bread is almost ready.

![Mia holds a loaf; a label says "BREAD"](image)

## The customers
People come in from the cold.

![Mia smiles at the counter; the board says "CAKE"](image)

## The evening
Time to go home.

![Mia locks the door; the sign says "CLOSED"](image)
"""


def pixloop(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([*PIXLOOP, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "story.md"
    path.write_text(SCRIPT)
    return path


def test_stream_json_prints_every_event_as_it_happens_with_the_first_image_before_done(tmp_path, script, faces_dir):
    out = pixloop("story", str(script), "--character", f"Mia={faces_dir / 'obama_1.jpg'}", "--stream-json",
                  "--out", "doc", cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:4] == ["text"] * 4, "every section's text reaches the reader before any image"
    assert kinds[-1] == "done" and kinds.count("image_ready") == 4
    assert kinds.index("image_ready") < kinds.index("done")
    times = [e["t"] for e in events]
    assert all(a < b for a, b in zip(times, times[1:], strict=False)), times
    first_ready = next(e for e in events if e["event"] == "image_ready")
    assert first_ready["status"] == "passed" and first_ready["verdicts"]["face"] is True
    assert (tmp_path / "doc" / first_ready["path"]).is_file()
    done = events[-1]
    assert done["status"] == "passed" and done["path"] == "story.html"


def test_normal_mode_prints_events_and_where_the_story_is(tmp_path, script, faces_dir):
    out = pixloop("story", str(script), "--character", f"Mia={faces_dir / 'obama_1.jpg'}", "--layout", "comic",
                  "--out", "doc", cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    assert "text s1: Mia gets up before the sun." in out.stderr
    assert "image s1-i1 passed" in out.stderr and "consistency round 1: consistent" in out.stderr
    assert f"story: {Path('doc') / 'story.html'}" in out.stdout
    html = (tmp_path / "doc" / "story.html").read_text()
    assert "comic" in html and html.count("<img") >= 4
    report = json.loads((tmp_path / "doc" / "report.json").read_text())
    assert report["layout"] == "comic" and report["status"] == "passed"


@pytest.mark.parametrize("args,message", [
    (["missing.md"], "missing.md"),
    (["{script}", "--character", "Zed={face}"], "Zed"),
    (["{script}", "--character", "Mia=nowhere.png"], "nowhere.png"),
    (["A story about a bakery"], "--llm-base-url"),
])
def test_bad_input_is_refused_with_exit_2_and_a_message_naming_it(tmp_path, script, faces_dir, args, message):
    args = [a.format(script=script, face=faces_dir / "obama_1.jpg") for a in args]
    out = pixloop("story", *args, "--out", "doc", cwd=tmp_path)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert message in out.stderr and "Traceback" not in out.stderr


def test_help_explains_the_script_format_and_the_outputs(tmp_path):
    out = pixloop("story", "--help", cwd=tmp_path)
    assert out.returncode == 0
    for words in ("![", "--character", "--stream-json", "story.html", "comic", "--interleaved"):
        assert words in out.stdout


def test_a_killed_document_resumes_and_makes_no_finished_image_twice(tmp_path):
    (tmp_path / "signs.md").write_text("".join(f'## {w}\n![A sign that says "{w}"](image)\n\n'
                                               for w in ("ONE", "TWO", "THREE", "FOUR")))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([*PIXLOOP, "story", "signs.md", "--backend", "simulated", "--backend-option",
                              "profile=clean", "--backend-option", "latency=1.5", "--concurrency", "2",
                              "--out", "doc", "--thread-id", "signs", "--stream-json"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        assert first.stdout is not None
        seen = []
        for line in first.stdout:  # the events as they happen: kill once the first image is ready
            seen.append(json.loads(line))
            if seen[-1]["event"] == "image_ready":
                break
    finally:
        kill(first)
    done_before = {e["image"] for e in seen if e["event"] == "image_ready"}
    assert done_before and "done" not in {e["event"] for e in seen}

    resumed = pixloop("story", "--resume", "signs", "--out", "doc", "--stream-json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(line) for line in resumed.stdout.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["status"] == "passed"
    started_again = {e["image"] for e in events if e["event"] == "image_started"}
    assert not started_again & done_before, "a finished image's loop does not start again"
    for image in ("s1-i1", "s2-i1", "s3-i1", "s4-i1"):
        log = (tmp_path / "doc" / "runs" / image / "r1" / "events.jsonl").read_text()
        assert log.count('"event": "generate"') == 1, f"{image} was generated once"
    assert (tmp_path / "doc" / "story.html").is_file()


def test_a_second_document_into_the_same_folder_is_refused_unless_asked_for_a_new_one(tmp_path):
    (tmp_path / "sign.md").write_text('## One\n![A sign that says "ONE"](image)\n')
    first = pixloop("story", "sign.md", "--out", "doc", "-q", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = pixloop("story", "sign.md", "--out", "doc", "-q", cwd=tmp_path)
    assert again.returncode == 2 and "--if-exists" in again.stderr, again.stderr
    new = pixloop("story", "sign.md", "--out", "doc", "--thread-id", "second", "--if-exists", "new", cwd=tmp_path)
    assert new.returncode == 0, new.stderr
    assert f"story: {Path('doc') / 'second' / 'story.html'}" in new.stdout
    assert (tmp_path / "doc" / "second" / "report.json").is_file() and (tmp_path / "doc" / "report.json").is_file()


def test_overwriting_a_document_folder_makes_every_image_again_from_the_new_script(tmp_path):
    (tmp_path / "a.md").write_text('## One\n![A sign that says "ONE"](image)\n')
    (tmp_path / "b.md").write_text('## One\n![A sign that says "TWO"](image)\n')
    assert pixloop("story", "a.md", "--out", "doc", "-q", cwd=tmp_path).returncode == 0
    out = pixloop("story", "b.md", "--out", "doc", "--if-exists", "overwrite", "--stream-json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["image"] for e in events if e["event"] == "image_started"] == ["s1-i1"], "nothing reused from a.md"
    assert "TWO" in (tmp_path / "doc" / "story.md").read_text() and "ONE" not in (tmp_path / "doc" / "story.md").read_text()
    report = json.loads((tmp_path / "doc" / "report.json").read_text())
    assert (tmp_path / "doc" / report["images"][0]["image"]).is_file()
