"""report.html in a real headless browser: a real offline run (OCR fails once, a correction, then passes) writes
the page; Chromium loads it without errors, its DOM holds the status and every candidate, and its screenshot
shows the images. Skips only when no Chromium is installed (.ci/run installs the Debian `chromium` package)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
PROMPT = 'An elegant minimal poster, subtle tone-on-tone, busy texture, that says "GRAND OPENING"'
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CHROMIUM), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                           "--disable-extensions", f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "agent.interfaces.cli", "run", PROMPT, "--out", str(out), "-q",
                           "-n", "3"], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_run_writes_a_report_page_chromium_renders(run_dir: Path, tmp_path: Path) -> None:
    report = json.loads((run_dir / "report.json").read_text())
    page = run_dir / "report.html"
    assert page.is_file()
    assert report["actions"], "the run should have corrected the illegible first render"
    ids = [c["id"] for c in report["candidates"]]
    assert len(ids) >= 2

    dom = _chromium("--dump-dom", "--virtual-time-budget=3000", page.as_uri(), profile=tmp_path / "p1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'id="status">{report["status"]}<' in dom.stdout
    for cid in ids:
        assert f'id="cand-{cid}"' in dom.stdout
    assert dom.stdout.count("<img") == len(ids) + 1  # final + one per candidate (no heat maps on a clean run)
    assert "restyle_text" in dom.stdout
    for err in ("Failed to load", "ERR_", "Not allowed to load"):
        assert err not in dom.stderr, dom.stderr[-2000:]

    shot = tmp_path / "shot.png"
    proc = _chromium(f"--screenshot={shot}", "--window-size=1280,2000", "--hide-scrollbars",
                     "--virtual-time-budget=3000", page.as_uri(), profile=tmp_path / "p2")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    for err in ("Failed to load", "ERR_"):
        assert err not in proc.stderr, proc.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB"))
    assert img.shape[:2] == (2000, 1280)
    # the final image sits top left (below the title): a textured poster, not a blank or broken-image box
    final_region = img[120:700, 40:600]
    assert final_region.std() > 20, final_region.std()
    assert len(np.unique(final_region.reshape(-1, 3), axis=0)) > 2000
    # the candidate strip further down shows images too
    strip = img[1250:1750, 20:1260]
    assert strip.std() > 20 and len(np.unique(strip.reshape(-1, 3), axis=0)) > 2000


def test_a_batch_writes_a_contact_sheet_chromium_renders_linking_every_jobs_report(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(j) for j in (
        {"id": "open", "prompt": 'A bold poster that says "OPEN"', "max_iterations": 2},
        {"id": "sale", "prompt": 'A sale banner that says "SALE"', "aspect": "16:9", "max_iterations": 2},
        {"id": "bad", "prompt": 'A poster that says "HI"', "references": ["missing.png"]})) + "\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "agent.interfaces.cli", "batch", str(jobs), "--out", "out", "-q"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]  # the bad line, and the rest still ran
    index = tmp_path / "out" / "index.html"
    text = index.read_text()
    for job in ("open", "sale", "bad"):
        assert f'id="job-{job}"' in text
    assert 'href="open/report.html"' in text and 'href="sale/report.html"' in text
    assert "missing.png" in text, "the bad line says why"

    dom = _chromium("--dump-dom", "--virtual-time-budget=3000", index.as_uri(), profile=tmp_path / "p1")
    assert dom.returncode == 0 and dom.stdout.count("<img") == 2, dom.stderr[-2000:]
    shot = tmp_path / "index.png"
    proc = _chromium(f"--screenshot={shot}", "--window-size=1000,700", "--virtual-time-budget=3000", index.as_uri(),
                     profile=tmp_path / "p2")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    for err in ("Failed to load", "ERR_"):
        assert err not in proc.stderr, proc.stderr[-2000:]
    cards = np.asarray(Image.open(shot).convert("RGB"))[60:400, :]
    assert cards.std() > 20 and len(np.unique(cards.reshape(-1, 3), axis=0)) > 500, "the thumbnails show"
