"""Plugins: a third-party distribution adds a critic or a backend through an entry point, with no edit to pixloop.

The critic plugin is the one README.md shows, taken from the README verbatim; both plugins are built and
installed with pip into a temporary folder (no network: the venv's own setuptools builds them), which the
`pixloop` subprocesses see on PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

REPO = Path(__file__).resolve().parents[2]
PIXLOOP = [sys.executable, "-m", "agent.interfaces.cli"]

BACKEND_PYPROJECT = """\
[project]
name = "pixloop-stripes"
version = "0.2.0"

[project.entry-points."pixloop.backends"]
stripes = "pixloop_stripes:Stripes"
"""

BACKEND_MODULE = '''\
"""A pixloop backend plugin: vertical stripes in one colour, at the planned size."""
from PIL import Image, ImageDraw

from agent.backends import BackendOptions, Capabilities, GenerationResult, parse_options


class StripesOptions(BackendOptions):
    colour: str = "#3366aa"


class Stripes:
    name = "stripes"

    def __init__(self, options: StripesOptions):
        self.options = options
        self.capabilities = Capabilities(cost_per_image=0.0, deterministic=True)

    @classmethod
    def from_config(cls, config):
        return cls(parse_options(StripesOptions, getattr(config, "options", None), "stripes"))

    async def generate(self, request, store):
        image = Image.new("RGB", (request.plan.width, request.plan.height), "white")
        draw = ImageDraw.Draw(image)
        for x in range(0, image.width, 64):
            draw.rectangle((x, 0, x + 31, image.height), fill=self.options.colour)
        return GenerationResult(image=image, cost=0.0, meta={"plugin": "stripes"})
'''


def readme_block(name: str) -> str:
    """The fenced block that follows `<!-- plugin: NAME -->` in README.md."""
    text = (REPO / "README.md").read_text()
    m = re.search(rf"<!-- plugin: {re.escape(name)} -->\s*```[a-z]*\n(.*?)```", text, re.DOTALL)
    assert m, f"README.md has no plugin block {name!r}"
    return m.group(1)


def install(tmp: Path, name: str, files: dict[str, str]) -> None:
    src = tmp / "src" / name
    src.mkdir(parents=True)
    for filename, content in files.items():
        (src / filename).write_text(content)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(tmp / "site"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("plugins")
    install(tmp, "sharpness", {"pyproject.toml": readme_block("pyproject.toml"),
                               "pixloop_sharpness.py": readme_block("pixloop_sharpness.py")})
    install(tmp, "stripes", {"pyproject.toml": BACKEND_PYPROJECT, "pixloop_stripes.py": BACKEND_MODULE})
    return tmp / "site"


def pixloop(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    return subprocess.run([*PIXLOOP, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_an_installed_critic_plugin_is_listed_with_its_distribution(site: Path, tmp_path: Path) -> None:
    out = pixloop(site, "critics", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("sharpness"))
    assert "threshold 0.5" in line and "only with --critic sharpness" in line and "pixloop-sharpness 0.1.0" in line
    assert "ocr" in out.stdout, "the built-in critics are still listed"


def test_check_runs_a_plugin_critic_named_with_critics(site: Path, tmp_path: Path) -> None:
    sharp = Image.fromarray(((np.indices((256, 256)).sum(axis=0) // 8) % 2 * 255).astype(np.uint8)).convert("RGB")
    sharp.save(tmp_path / "sharp.png")
    sharp.filter(ImageFilter.GaussianBlur(6)).save(tmp_path / "blurry.png")

    good = pixloop(site, "check", "sharp.png", "--critics", "sharpness", "--json", cwd=tmp_path)
    bad = pixloop(site, "check", "blurry.png", "--critics", "sharpness", "--json", cwd=tmp_path)

    assert good.returncode == 0, good.stderr
    (row,) = json.loads(good.stdout)["critics"]
    assert row["name"] == "sharpness" and row["passed"] and row["evidence"]["laplacian_variance"] > 100
    assert bad.returncode == 3 and not json.loads(bad.stdout)["critics"][0]["passed"]


def test_a_run_with_critic_adds_the_plugin_verdict_to_the_report(site: Path, tmp_path: Path) -> None:
    out = pixloop(site, "run", 'A poster that says "HELLO"', "--critic", "sharpness", "--max-iterations", "1",
                  "--out", "run", "--json", "-q", cwd=tmp_path)
    assert out.returncode in (0, 3), out.stderr
    report = json.loads(out.stdout)
    assert report["thresholds"]["sharpness"] == {"threshold": 0.5, "source": "default"}
    (verdict,) = [v for v in report["candidates"][0]["verdicts"] if v["critic"] == "sharpness"]
    assert verdict["evidence"]["laplacian_variance"] > 0 and {"ocr", "spec"} <= set(report["thresholds"])


def test_without_critic_the_plugin_does_not_run(site: Path, tmp_path: Path) -> None:
    out = pixloop(site, "run", 'A poster that says "HELLO"', "--max-iterations", "1", "--out", "run", "--json",
                  "-q", cwd=tmp_path)
    assert out.returncode in (0, 3), out.stderr
    assert "sharpness" not in json.loads(out.stdout)["thresholds"]


def test_an_installed_backend_plugin_is_listed_and_generates(site: Path, tmp_path: Path) -> None:
    listed = pixloop(site, "backends", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = next(ln for ln in listed.stdout.splitlines() if ln.startswith("stripes"))
    assert "ready" in row and "pixloop-stripes 0.2.0" in row

    out = pixloop(site, "run", "stripes, square", "--backend", "stripes", "--backend-option", "colour=#aa3366",
                  "--max-iterations", "1", "--out", "run", "--json", "-q", cwd=tmp_path)
    assert out.returncode in (0, 3), out.stderr
    report = json.loads(out.stdout)
    assert report["backend"] == "stripes" and report["candidates"][0]["meta"] == {"plugin": "stripes"}
    made = Image.open(tmp_path / "run" / report["candidates"][0]["path"]).convert("RGB")  # as the plugin drew it
    assert made.getpixel((10, 10)) == (0xaa, 0x33, 0x66) and made.getpixel((40, 10)) == (255, 255, 255)
    final = Image.open(tmp_path / "run" / report["final"]["path"]).convert("RGB")  # delivered: plus the watermark
    assert all(abs(a - b) <= 6 for a, b in zip(final.getpixel((10, 10)), (0xaa, 0x33, 0x66), strict=True))


def test_a_backend_plugin_option_error_is_bad_input(site: Path, tmp_path: Path) -> None:
    out = pixloop(site, "run", "stripes", "--backend", "stripes", "--backend-option", "color=#aa3366",
                  "--out", "run", cwd=tmp_path)
    assert out.returncode == 2 and "known options: colour" in out.stderr
