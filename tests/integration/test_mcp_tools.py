"""The MCP tools in-process: the official SDK's client talks to `build_server` through its in-memory transport, so
every call goes through the real tool schemas, argument validation, progress and result conversion, without a
subprocess. Runs use the offline compose backend. The subprocess and HTTP paths are in tests/e2e/test_mcp_server.py.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_types import CallToolResult, ImageContent, TextContent
from PIL import Image

from agent.interfaces.cli import build_parser
from agent.interfaces.cli.mcp import server_settings
from agent.interfaces.mcp import TOOL_NAMES, ServerSettings, build_server
from agent.interfaces.mcp.progress import ProgressRelay
from agent.models import PixloopConfig
from agent.runtime.confine import Confinement

SCRIPT = """# The shop

## Morning
Mia opens the shop.
![A sign that says "OPEN"](image)

## Night
![A board that says "CLOSED"](image)
"""

Progress = list[tuple[float, float | None, str | None]]


def data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def summary_of(result: CallToolResult) -> dict[str, Any]:
    text = result.content[-1]
    assert isinstance(text, TextContent), result.content
    return json.loads(text.text)


def images_of(result: CallToolResult) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b.data))) for b in result.content if isinstance(b, ImageContent)]


@pytest.fixture
def settings(tmp_path: Path) -> ServerSettings:
    args = build_parser().parse_args(["mcp", "--out-root", str(tmp_path / "out"), "--max-iterations", "2"])
    return server_settings(args)


def call(settings: ServerSettings, tool: str, arguments: dict[str, Any]) -> tuple[CallToolResult, Progress]:
    """One tool call through the SDK's client, with the progress notifications it received."""
    progress: Progress = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def go() -> CallToolResult:
        async with Client(build_server(settings), read_timeout_seconds=120) as client:
            return await client.call_tool(tool, arguments, progress_callback=on_progress)

    return asyncio.run(go()), progress


def test_every_tool_declares_its_inputs_with_types_and_descriptions(settings: ServerSettings) -> None:
    async def go() -> Any:
        async with Client(build_server(settings)) as client:
            return (await client.list_tools()).tools

    tools = {t.name: t for t in asyncio.run(go())}
    assert set(tools) == set(TOOL_NAMES)
    required = {name: set(t.input_schema.get("required", [])) for name, t in tools.items()}
    assert required == {"generate": {"prompt"}, "edit": {"source", "instruction"}, "check": {"image"},
                        "story": set(), "report": {"run"}}
    for tool in tools.values():
        assert tool.description and all(p.get("description") for p in tool.input_schema["properties"].values())
    aspect = tools["generate"].input_schema["properties"]["aspect"]
    assert "16:9" in json.dumps(aspect)
    assert tools["check"].annotations.read_only_hint and not tools["generate"].annotations.read_only_hint


def test_edit_of_a_data_url_source_keeps_the_source_in_the_run_folder_and_reports_progress(
        settings: ServerSettings) -> None:
    source = Image.new("RGB", (512, 384), (40, 90, 160))
    result, progress = call(settings, "edit", {"source": data_url(source), "instruction": 'a sign that says "SALE"',
                                               "region": [100, 100, 300, 150]})
    summary = summary_of(result)
    assert not result.is_error, summary
    assert summary["kind"] == "image" and summary["status"] in ("passed", "below_threshold")
    run_dir = Path(summary["files"]["run_dir"])
    staged = run_dir / "inputs" / "source.png"
    assert Image.open(staged).size == (512, 384)
    assert json.loads((run_dir / "report.json").read_text())["brief"]["source"] == str(staged)
    [preview] = images_of(result)
    assert preview.size == (512, 384)
    assert progress[0][2] and progress[0][2].startswith("iteration 1: planning (edit (region)")
    values = [p for p, _, _ in progress]
    assert values == sorted(set(values)), "progress grows with every notification"
    assert progress[-1][0] == progress[-1][1], "the last notification says the run is done"


def test_story_from_a_markdown_script_returns_each_image_and_counts_finished_images(
        settings: ServerSettings) -> None:
    result, progress = call(settings, "story", {"script": SCRIPT, "max_iterations": 1})
    summary = summary_of(result)
    assert not result.is_error, summary
    assert summary["kind"] == "document" and summary["status"] == "passed"
    assert [i["id"] for i in summary["images"]] == ["s1-i1", "s2-i1"]
    assert all(Path(i["path"]).is_file() for i in summary["images"])
    assert Path(summary["files"]["story_html"]).is_file()
    assert len(images_of(result)) == 2
    messages = [m for _, _, m in progress]
    assert sum(1 for m in messages if m and " passed after " in m) == 2
    assert messages[-1] and messages[-1].startswith("done: passed")
    assert progress[-1][0] == progress[-1][1] == 3.0, "two images and the consistency check"


def test_report_reads_a_document_back_from_its_folder(settings: ServerSettings) -> None:
    made = summary_of(call(settings, "story", {"script": SCRIPT, "max_iterations": 1})[0])
    result, _ = call(settings, "report", {"run": made["files"]["run_dir"]})
    assert not result.is_error
    assert summary_of(result) == made
    assert len(images_of(result)) == 2


def test_a_script_image_link_never_reaches_a_file_next_to_the_server(settings: ServerSettings, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Locally a cue whose target is an existing picture is kept as that picture; a client's script has no folder,
    so the same link is a cue to draw, whatever files the server's working directory holds."""
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (64, 64), "red").save(tmp_path / "photo.png")
    result, _ = call(settings, "story", {"script": '# T\n\n![A card that says "HI"](photo.png)\n', "max_iterations": 1})
    assert not result.is_error, summary_of(result)
    assert [i["id"] for i in summary_of(result)["images"]] == ["s1-i1"]


@pytest.mark.parametrize(("tool", "arguments", "says"), [
    ("generate", {"prompt": "x", "references": ["data:image/png;base64,AAAA"]}, "does not hold an image"),
    ("generate", {"prompt": "x", "references": ["data:image/png;base64,%%%"]}, "not valid base64"),
    ("generate", {"prompt": "x", "thresholds": {"ocr": 3}}, "less than or equal to 1"),
    ("generate", {"prompt": "x", "backend": "nope"}, "unknown backend 'nope'"),
    ("edit", {"source": "data:image/png;base64,AAAA", "instruction": "x"}, "source: the data URL"),
    ("check", {"image": "/etc/passwd"}, "only as data"),
    ("check", {"image": data_url(Image.new("RGB", (32, 32))), "size": "big"}, "expected WIDTHxHEIGHT"),
    ("story", {}, "give either script"),
    ("story", {"script": SCRIPT, "pages": 3}, "pages applies to a topic"),
    ("story", {"script": "no cues here"}, "no image cue"),
    ("report", {"run": "../.."}, "without '..'"),
    ("report", {"run": "/etc"}, "outside the server's output root"),
    ("report", {"run": "run-missing"}, "no finished run"),
])
def test_bad_input_comes_back_as_a_tool_error_that_names_the_problem(settings: ServerSettings, tool: str,
                                                                      arguments: dict[str, Any], says: str) -> None:
    result, _ = call(settings, tool, arguments)
    assert result.is_error
    text = result.content[0]
    assert isinstance(text, TextContent) and says in text.text, text


def test_a_refused_call_leaves_no_run_folder_behind(settings: ServerSettings) -> None:
    """The reference was written into the new run's folder before the backend was refused: both are gone again."""
    reference = data_url(Image.new("RGB", (64, 64), "red"))
    result, _ = call(settings, "generate", {"prompt": "x", "references": [reference], "backend": "nope"})
    assert result.is_error
    assert list(settings.confinement.output_root.iterdir()) == []


def test_a_client_choosing_another_backend_does_not_get_the_servers_endpoint(tmp_path: Path) -> None:
    config = PixloopConfig(backend="openai", base_url="http://127.0.0.1:9/v1", model="m", options={"quality": "low"},
                           planner="rule")
    settings = ServerSettings(confinement=Confinement(output_root=tmp_path), config=config)
    assert settings.config_for(None) is settings.config_for("openai") is settings.config
    other = settings.config_for("compose")
    assert (other.backend, other.base_url, other.model, other.options) == ("compose", None, None, {})
    assert other.out_root == settings.config.out_root == str(tmp_path), "runs the library places go under the root"


def test_a_calls_thresholds_merge_over_the_servers_one_by_one(tmp_path: Path) -> None:
    settings = ServerSettings(confinement=Confinement(output_root=tmp_path), config=PixloopConfig(),
                              defaults={"thresholds": {"ocr": 0.95, "spec": 0.9}, "seed": 3, "sketch": None})
    assert settings.brief_options(thresholds={"ocr": 0.8}, seed=None) == {"thresholds": {"ocr": 0.8, "spec": 0.9},
                                                                          "seed": 3}


def test_the_progress_relay_sends_in_order_and_always_forward() -> None:
    sent: list[tuple[float, float | None, str | None]] = []

    async def send(value: float, total: float | None, message: str | None) -> None:
        sent.append((value, total, message))

    async def go() -> None:
        async with ProgressRelay(send) as relay:
            for value, message in ((0.0, "a"), (0.5, "b"), (0.5, "c"), (0.2, "d"), (2.0, "e")):
                relay.push(value, 2.0, message)

    asyncio.run(go())
    assert [m for _, _, m in sent] == ["a", "b", "c", "d", "e"]
    values = [v for v, _, _ in sent]
    assert values == sorted(set(values)) and values[-1] == 2.0
