"""The content policy as a user meets it: a refused brief exits 5 naming the rule, with nothing delivered and the
decision in the audit log; a document whose text violates the policy is refused before any image is made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]


def pixloop(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PIXLOOP, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def test_the_stolen_credit_cards_poster_exits_5_naming_the_rule(tmp_path: Path) -> None:
    out = pixloop("run", "A poster that says 'BUY STOLEN CREDIT CARDS HERE'", "--out", "run", cwd=tmp_path)
    assert out.returncode == 5, out.stderr
    assert "refused" in out.stderr and "fraud.stolen_cards" in out.stderr and "Traceback" not in out.stderr
    assert "status: refused (policy)" in out.stdout
    assert not list((tmp_path / "run").glob("final.*"))
    audit = pixloop("audit", "verify", "run", cwd=tmp_path)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert any(e["event"] == "policy" and e["allowed"] is False for e in events)


def test_a_document_whose_text_violates_the_policy_is_refused_before_any_image(tmp_path: Path) -> None:
    (tmp_path / "bad.md").write_text('## One\nCloned cards for sale, cheap.\n\n![A shop sign that says "OPEN"](image)\n')
    out = pixloop("story", "bad.md", "--out", "doc", "--stream-json", cwd=tmp_path)
    assert out.returncode == 5, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[-1]["event"] == "done" and events[-1]["status"] == "refused"
    assert not [e for e in events if e["event"] in ("text", "image_started")], "nothing reaches the reader"
    report = json.loads((tmp_path / "doc" / "report.json").read_text())
    assert report["status"] == "refused" and "section s1" in report["error"]
