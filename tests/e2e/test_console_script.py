"""The installed `pixloop` console script is the CLI (pyproject's [project.scripts] points at it)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from agent.interfaces.cli import main


def test_the_pixloop_entry_point_is_the_cli_main() -> None:
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "pixloop"]
    assert script.value == "agent.interfaces.cli:main" and script.load() is main


def test_the_installed_script_runs() -> None:
    exe = Path(sys.executable).parent / "pixloop"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "COMMAND" in out.stdout
    for command in ("run", "check", "backends", "critics", "fake-server"):
        assert command in out.stdout


def test_the_listings_show_what_each_registry_holds(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["critics"]) == 0
    critics = capsys.readouterr().out
    assert "ocr           threshold 0.9   measured, weight 3.0, on by default; needs text [pixloop]" in critics
    assert "vlm           threshold 0.6   judge (outranked by measured critics)" in critics
    assert main(["planners"]) == 0
    planners = capsys.readouterr().out.splitlines()
    assert [p.split()[0] for p in planners] == ["llm", "rule"] and all(p.endswith("[pixloop]") for p in planners)
    assert main(["backends"]) == 0
    rows = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()[1:]}
    assert rows["compose"].split()[1] == "ready" and rows["compose"].rstrip().endswith("pixloop")
