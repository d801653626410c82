"""The loop as a reusable graph: `build_pixloop_graph()` embeds in another graph as a subgraph node."""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from agent.models import Brief, Budget, PixloopConfig
from graphs import build_pixloop_graph
from graphs.pixloop import graph as registered_graph

POSTER = 'A bold poster that says "HELLO"'


class Pages(TypedDict, total=False):
    briefs: list[Brief]
    out: str
    results: Annotated[list[dict[str, Any]], operator.add]


class Page(TypedDict):
    brief: Brief
    run_dir: str


def test_the_compiled_loop_is_a_subgraph_node_that_shares_the_brief_and_status(tmp_path: Path) -> None:
    class Doc(TypedDict, total=False):
        brief: Brief
        run_dir: str
        status: str

    parent = StateGraph(Doc)
    parent.add_node("loop", build_pixloop_graph())
    parent.add_edge(START, "loop")
    parent.add_edge("loop", END)
    out = asyncio.run(parent.compile().ainvoke(
        {"brief": Brief(prompt=POSTER), "run_dir": str(tmp_path / "one")}, context=PixloopConfig()))

    assert out["status"] == "passed"
    assert (tmp_path / "one" / "report.json").exists() and (tmp_path / "one" / "final.png").exists()


def test_one_loop_per_image_fans_out_with_send_and_each_writes_its_own_run(tmp_path: Path) -> None:
    loop = build_pixloop_graph()

    async def make_page(page: Page) -> dict[str, Any]:
        out = await loop.ainvoke({"brief": page["brief"], "run_dir": page["run_dir"]}, context=PixloopConfig())
        return {"results": [{"run_dir": page["run_dir"], "status": out["status"], "final": out["final"].id}]}

    def fan_out(state: Pages) -> list[Send]:
        return [Send("page", Page(brief=b, run_dir=f"{state['out']}/page{i}")) for i, b in enumerate(state["briefs"])]

    g = StateGraph(Pages)
    g.add_node("page", make_page)
    g.add_conditional_edges(START, fan_out, ["page"])
    g.add_edge("page", END)
    briefs = [Brief(prompt=POSTER, budget=Budget(max_iterations=2)), Brief(prompt='A poster that says "BYE"')]
    out = asyncio.run(g.compile().ainvoke({"briefs": briefs, "out": str(tmp_path)}))

    assert sorted(r["run_dir"] for r in out["results"]) == [f"{tmp_path}/page0", f"{tmp_path}/page1"]
    assert all(r["status"] == "passed" for r in out["results"])
    assert all((Path(r["run_dir"]) / "report.json").exists() for r in out["results"])


def test_the_registered_graph_is_the_factory_s_loop() -> None:
    assert registered_graph.name == "pixloop"
    assert set(registered_graph.get_graph().nodes) == set(build_pixloop_graph().get_graph().nodes)
    assert {"plan", "generate", "check", "judge", "correct", "finalize"} <= set(registered_graph.get_graph().nodes)
