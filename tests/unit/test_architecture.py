"""The shape the README's architecture section promises, checked on the source itself.

The import direction is the import-linter contract in pyproject.toml (`lint-imports`, part of the test
command); these tests check what it cannot: no module reaches into another module's private names, and
no source module grows past ~500 lines without a written reason at its top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "critics", "graphs", "prompts")
MAX_LINES = 500
LONG_REASON = "Long module:"
"""A module may exceed MAX_LINES when its docstring says why, starting with this phrase."""


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_there_are_sources_to_check() -> None:
    assert len(sources()) > 50


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            bad += [f"from {node.module} import {a.name}" for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")]
        if isinstance(node, ast.Import):
            bad += [f"import {a.name}" for a in node.names
                    if a.name.split(".")[0] in PACKAGES and any(p.startswith("_") and not p.startswith("__")
                                                                 for p in a.name.split("."))]
    assert not bad, f"{path.relative_to(REPO)} imports private names: {bad}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_source_module_is_over_500_lines_without_a_reason_at_its_top(path: Path) -> None:
    text = path.read_text()
    lines = text.count("\n") + 1
    if lines <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse(text)) or ""
    assert LONG_REASON in doc, (f"{path.relative_to(REPO)} has {lines} lines: split it, or say why not in its "
                                f"docstring ('{LONG_REASON} ...')")


def test_the_models_layer_does_not_import_langgraph() -> None:
    for path in (REPO / "agent" / "models").rglob("*.py"):
        tree = ast.parse(path.read_text())
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not any(m.split(".")[0] in ("langgraph", "langchain_core") for m in mods), path


def test_every_package_has_a_docstring_that_says_what_it_holds() -> None:
    missing = [str(p.relative_to(REPO)) for p in sources() if p.name == "__init__.py" and p.stat().st_size
               and not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, missing
