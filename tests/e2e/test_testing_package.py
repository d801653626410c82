"""The `agent.testing` package: no web dependencies in the core, a layout that keeps its modules small and its
names public, and test doubles that read pixloop's requests as data (or through pixloop's own templates), so
rewording a prompt template can never break them."""

from __future__ import annotations

import ast
import importlib
import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

import prompts
from agent import generate
from agent.models import PixloopConfig

ROOT = Path(__file__).resolve().parents[2]
TESTING = ROOT / "agent" / "testing"
WEB_MODULES = ("starlette", "uvicorn", "multipart", "python_multipart")

REWORDED_CORRECTION = "Fix number $iteration. Issues seen last time:\n$feedback\n\nOriginal request follows.\n$prompt"
"""The correction template reworded completely (same variables, other words, other order)."""


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


# --------------------------------------------------------------------------- web dependencies are an extra


@pytest.mark.slow
def test_the_core_and_the_cli_help_import_no_web_server() -> None:
    proc = python(f"""
        import contextlib, io, sys
        import agent, agent.interfaces.cli, agent.interfaces.api, graphs.pixloop
        import agent.testing.simulated, agent.testing.faults, agent.testing.fakes
        from agent.backends import get_backend
        from agent.models import PixloopConfig
        from agent.interfaces.cli import main

        get_backend("simulated", PixloopConfig(backend="simulated"))
        for argv in (["--help"], ["fake-server", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
                main(argv)
            assert "usage" in out.getvalue(), argv
        loaded = [m for m in {WEB_MODULES!r} if m in sys.modules]
        assert not loaded, loaded
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.slow
def test_fake_server_without_the_fakes_extra_names_it_and_exits_2() -> None:
    proc = python("""
        import runpy, sys

        class Block:  # the fakes extra is not installed
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "starlette":
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Block())
        import agent.testing.simulated, agent.testing.fakes  # both import without the extra
        from agent.testing.fakes import fake_render
        assert fake_render('A poster "HI"', 64, 64).startswith(b"\\x89PNG")
        sys.argv = ["pixloop", "fake-server", "gemini"]
        runpy.run_module("agent.interfaces.cli", run_name="__main__")
    """)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "pip install 'pixloop[fakes]'" in proc.stderr and "starlette" in proc.stderr
    assert "Traceback" not in proc.stderr and "listening" not in proc.stdout


def test_fakes_report_missing_web_dependencies(monkeypatch) -> None:
    from agent.testing import fakes

    assert fakes.missing_web_dependencies() == []
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # an import of it now raises ImportError
    assert fakes.missing_web_dependencies() == ["uvicorn"]
    with pytest.raises(ImportError, match=re.escape(fakes.INSTALL_HINT)):
        fakes.create_fake_app("gemini")
    with pytest.raises(ValueError, match="unknown fake server"):
        fakes.create_fake_app("nope")


# --------------------------------------------------------------------------- layout


def modules() -> list[Path]:
    return sorted(TESTING.rglob("*.py"))


def test_every_testing_module_is_short_and_documented() -> None:
    for path in modules():
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) < 500, path
        assert ast.get_docstring(ast.parse(text)), f"{path} has no docstring"


def test_the_simulated_package_keeps_its_names_and_registry_path() -> None:
    import agent.testing.simulated as simulated
    from agent.backends import get_backend
    from agent.backends.base import BackendOptions

    for name in ("FAILURES", "PROFILES", "SimulatedBackend", "SimulatedOptions", "addressed_failures",
                 "attempt_number", "misspell", "parse_options"):
        assert name in simulated.__all__ and hasattr(simulated, name), name
    module, _, attr = "agent.testing.simulated:SimulatedBackend".partition(":")  # the registry's built-in path
    assert getattr(importlib.import_module(module), attr) is simulated.SimulatedBackend
    assert isinstance(get_backend("simulated", PixloopConfig(backend="simulated")), simulated.SimulatedBackend)
    assert issubclass(simulated.SimulatedOptions, BackendOptions)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import in a file, relative imports resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.append((base, [a.name for a in node.names]))
    return out


def test_no_private_names_cross_modules_and_testing_stays_below_the_interfaces() -> None:
    for path in modules():
        for module, names in imports(path):
            assert not module.startswith(("agent.interfaces", "graphs")), (path, module)
            private = [n for n in names if n.startswith("_") and n != "__future__"]
            assert not private or module == "__future__", (path, module, private)
    for path in sorted((ROOT / "tests").glob("test_*.py")) + sorted((ROOT / "bench").glob("*.py")):
        for module, names in imports(path):
            if module.startswith("agent.testing"):
                assert not [n for n in names if n.startswith("_")], (path, module, names)


def test_no_test_double_matches_the_wording_of_a_prompt_template() -> None:
    """String literals in agent/testing (docstrings aside) contain no literal part of any template."""
    literals: list[tuple[Path, str]] = []
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and ast.get_docstring(n, clean=False) is not None}
        literals += [(path, n.value) for n in ast.walk(tree)
                     if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]
    for template in sorted((ROOT / "prompts").glob("*.txt")):
        for fragment in re.split(r"\$\{?\w+\}?|\n", template.read_text(encoding="utf-8")):
            fragment = fragment.strip()
            if len(fragment) >= 6:
                hits = [str(p) for p, s in literals if fragment in s]
                assert not hits, (template.name, fragment, hits)


# --------------------------------------------------------------------------- prompts.override


def test_override_swaps_a_template_for_a_block_and_checks_its_variables() -> None:
    original = prompts.render("correction", prompt="P", iteration=2, feedback="- f")
    with prompts.override("correction", REWORDED_CORRECTION):
        text = prompts.render("correction", prompt="P", iteration=2, feedback="- f")
        assert text.startswith("Fix number 2.") and "Correction for" not in text
        assert prompts.parse("correction", text) == {"iteration": "2", "feedback": "- f", "prompt": "P"}
    assert prompts.render("correction", prompt="P", iteration=2, feedback="- f") == original
    assert prompts.parse("correction", original) == {"prompt": "P", "iteration": "2", "feedback": "- f"}
    with pytest.raises(ValueError, match="variables"), prompts.override("correction", "only $prompt"):
        pass


# --------------------------------------------------------------------------- rewording cannot break the doubles


def correction_run(tmp_path: Path, monkeypatch) -> tuple[object, list[str]]:
    """A simulated run whose first render is misspelt and noisy and whose correction always works."""
    from agent.testing.simulated import SimulatedBackend

    sent: list[str] = []
    simulate = SimulatedBackend.simulate

    def spy(self, request, store):
        sent.append(request.prompt)
        return simulate(self, request, store)

    monkeypatch.setattr(SimulatedBackend, "simulate", spy)
    config = PixloopConfig(backend="simulated", options={
        "profile": "clean", "edit_artifacts": 0.0, "misspell": 1.0, "noise": 1.0, "feedback_response": 1.0})
    result = generate('A poster that says "GRAND OPENING"', size="1K", aspect="1:1", max_iterations=3,
                      out=tmp_path / "run", config=config)
    return result, sent


@pytest.mark.slow
def test_a_reworded_correction_template_changes_nothing_in_a_simulated_loop(tmp_path, monkeypatch) -> None:
    before, sent_before = correction_run(tmp_path / "original", monkeypatch)
    with prompts.override("correction", REWORDED_CORRECTION):
        after, sent_after = correction_run(tmp_path / "reworded", monkeypatch)

    assert "Correction for attempt 2" in sent_before[1]
    assert sent_after[1].startswith("Fix number 2.") and "Correction for" not in sent_after[1]
    for result in (before, after):
        assert result.status == "passed"
        assert [a["strategy"] for a in result.report["actions"]] == ["reprompt"]
        first, second = (c["meta"]["simulated"] for c in result.report["candidates"])
        assert sorted(first["injected"]) == ["misspell", "noise"] and first["attempt"] == 1
        assert second["attempt"] == 2 and second["injected"] == []
        assert sorted(second["addressed"]) == sorted(second["fixed"]) == ["misspell", "noise"]
    same = ("id", "strategy", "seed", "sha256", "width", "height")
    assert ([{k: c[k] for k in same} for c in before.report["candidates"]]
            == [{k: c[k] for k in same} for c in after.report["candidates"]])


def test_a_fake_follows_a_legibility_correction_written_with_a_reworded_template() -> None:
    from agent.testing.fakes import fake_render

    brief = 'A calm poster that says "OPEN LATE"'
    feedback = "- make the letters bold and larger, with high contrast, on a plate"
    plain = fake_render(brief, 256, 256, seed=3)
    correction = prompts.render("correction", prompt=brief, iteration=2, feedback=feedback)
    corrected = fake_render(correction, 256, 256, seed=3)
    with prompts.override("correction", REWORDED_CORRECTION):
        reworded_prompt = prompts.render("correction", prompt=brief, iteration=2, feedback=feedback)
        reworded = fake_render(reworded_prompt, 256, 256, seed=3)
        ignored = fake_render(reworded_prompt.replace("Fix number", "Remark"), 256, 256, seed=3)

    def pixels(data: bytes) -> bytes:
        return Image.open(io.BytesIO(data)).convert("RGB").tobytes()

    assert pixels(corrected) != pixels(plain), "the correction changes the render"
    assert pixels(reworded) == pixels(corrected), "read through the template, the wording does not matter"
    assert pixels(ignored) != pixels(corrected), "text that is not a correction is not read as one"


def test_the_chat_fake_reads_rewrite_and_planner_requests_through_their_templates() -> None:
    from starlette.testclient import TestClient

    from agent.testing.fakes import create_fake_app
    from agent.testing.fakes.chat import plan_answer

    def ask(text: str) -> str:
        with TestClient(create_fake_app("chat")) as client:
            reply = client.post("/v1/chat/completions",
                                json={"model": "m", "messages": [{"role": "user", "content": text}]})
        assert reply.status_code == 200, reply.text
        return reply.json()["choices"][0]["message"]["content"]

    values = {"prompt": 'A poster "HELLO"', "problems": "- ocr scored 0.20", "spelling": "",
              "required_text": '"HELLO"'}
    reworded = "Improve this: $prompt\nIssues: $problems\n$spelling\nKeep verbatim: $required_text"
    assert ask(prompts.render("rewrite_prompt", **values)).startswith("A bold, high-contrast poster")
    with prompts.override("rewrite_prompt", reworded):
        answer = ask(prompts.render("rewrite_prompt", **values))
    assert answer.startswith("A bold, high-contrast poster") and '"HELLO"' in answer

    planner = {"prompt": 'A wide 16:9 banner "SALE"', "required_text": '"SALE"', "canvas": "your choice",
               "references": "none"}
    with prompts.override("planner_user", "Required: $required_text ($canvas, $references images)\n\n$prompt"):
        plan = plan_answer(prompts.render("planner_user", **planner), 0, {})
    assert plan["aspect_ratio"] == "16:9" and [t["content"] for t in plan["text"]] == ["SALE"]
