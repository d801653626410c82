"""`astream_run`: one run as typed events, in the order the loop makes them, the FinishedEvent last."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent import BriefError, PixloopConfig, astream_run
from agent.models.run_events import FinishedEvent

SIMULATED = PixloopConfig(backend="simulated", options={"profile": "clean", "misspell": 1.0,
                                                        "feedback_response": 1.0, "edit_artifacts": 0.0})


async def collect(*args, **kwargs) -> list:
    return [event async for event in astream_run(*args, **kwargs)]


def test_a_run_streams_plan_candidates_verdicts_corrections_and_finishes_last(tmp_path: Path) -> None:
    events = asyncio.run(collect('A poster that says "GRAND OPENING"', SIMULATED, out=tmp_path / "run",
                                 size="1K", max_iterations=3))

    kinds = [e.event for e in events]
    assert kinds[0] == "planned" and kinds[-1] == "finished" and kinds.count("finished") == 1, kinds
    assert kinds.index("candidate") < kinds.index("verdict") < kinds.index("judged") < kinds.index("correcting")
    first_ocr = next(e for e in events if e.event == "verdict" and e.critic == "ocr")
    assert first_ocr.candidate_id == "c1" and not first_ocr.passed  # the simulated backend misspelt it
    correcting = next(e for e in events if e.event == "correcting")
    assert "ocr" in correcting.addresses and correcting.iteration == 2
    done = events[-1]
    assert isinstance(done, FinishedEvent) and done.status == "passed" and done.iterations == 2
    assert done.final_image is not None and done.final_image.is_file()
    candidates = [e for e in events if e.event == "candidate"]
    assert [c.id for c in candidates] == ["c1", "c2"]
    assert all((done.run_dir / c.path).is_file() for c in candidates)
    times = [e.t for e in events]
    assert times == sorted(times) and times[0] >= 0


def test_the_events_are_json_and_read_back_as_the_same_types(tmp_path: Path) -> None:
    from pydantic import TypeAdapter

    from agent import RunEvent

    events = asyncio.run(collect('A poster that says "OPEN"', PixloopConfig(), out=tmp_path / "run",
                                 max_iterations=1))
    adapter = TypeAdapter(RunEvent)
    assert [adapter.validate_json(adapter.dump_json(e)) for e in events] == events


def test_bad_input_raises_before_any_event(tmp_path: Path) -> None:
    with pytest.raises(BriefError, match="max_iterations"):
        asyncio.run(collect("A poster", out=tmp_path / "run", max_iterations=0))


def test_breaking_out_early_cancels_the_run_and_leaves_it_resumable(tmp_path: Path) -> None:
    async def first_candidate() -> str:
        slow = PixloopConfig(backend="simulated", options={"profile": "clean", "misspell": 1.0, "latency": 0.2})
        async for event in astream_run('A poster that says "OPEN"', slow, out=tmp_path / "run", thread_id="t1",
                                       max_iterations=4):
            if event.event == "candidate":
                return event.id
        raise AssertionError("no candidate streamed")

    assert asyncio.run(first_candidate()) == "c1"
    assert (tmp_path / "run" / "checkpoints.sqlite").is_file()
    from agent import resume

    result = resume("t1", tmp_path / "run")
    assert result.status in {"passed", "below_threshold"} and result.iterations >= 1
