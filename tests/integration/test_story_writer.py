"""A chat model writes an illustrated document from a topic (against the fake chat server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.llm import LLMOutputError, OpenAIChatClient
from agent.loop.document.writer import SCHEMA_NAME, write_document, write_document_sync, writer_client
from agent.models import PixloopConfig
from agent.models.document import DocumentBrief, ImageCue, TextBlock
from agent.models.errors import BriefError, ConfigError
from agent.runtime.http import HttpSettings
from agent.testing.fakes import FakeService
from agent.testing.fakes.chat import create_app
from prompts import override, variables

FAST = HttpSettings(read_timeout=5, max_attempts=1)


class Fake(FakeService):
    """The fake chat server; `base_url` is its OpenAI-compatible endpoint."""

    def __init__(self, **options: Any):
        super().__init__(create_app, prefix="/v1", **options)

    def write(self, topic: str, **kwargs: Any) -> DocumentBrief:
        client = OpenAIChatClient(self.base_url, "fake", settings=FAST)

        async def go() -> DocumentBrief:
            try:
                return await write_document(topic, chat=client, **kwargs)
            finally:
                await client.aclose()

        return asyncio.run(go())


def test_a_chat_model_writes_four_pages_with_one_cue_each() -> None:
    with Fake() as fake:
        doc = fake.write("a day at the bakery", pages=4, layout="book")
    assert doc.source == "llm" and doc.layout == "book" and doc.title == "A day at the bakery"
    assert [s.id for s in doc.sections] == ["s1", "s2", "s3", "s4"]
    for s in doc.sections:
        assert isinstance(s.blocks[0], TextBlock) and "bakery" in doc.sections[0].text
        assert 2 <= s.text.count(".") <= 3
        [cue] = s.images
        assert isinstance(cue, ImageCue) and cue.id == f"{s.id}-i1" and cue.characters == ["Mia"]
        assert len(cue.required_text) == 1 and f'"{cue.required_text[0]}"' in cue.prompt
    assert doc.images[0].required_text == ["OPEN"]
    assert [(c.name, bool(c.description), c.references) for c in doc.characters] == [("Mia", True, [])]
    [body] = fake.bodies
    fmt = body["response_format"]
    assert fmt["json_schema"]["name"] == SCHEMA_NAME and fmt["json_schema"]["strict"] is True
    assert set(fmt["json_schema"]["schema"]["properties"]) == {"title", "characters", "sections"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_the_request_is_read_through_the_template_not_its_wording() -> None:
    reworded = "Topic first: $topic\n---\n$pages pages, layout $layout, cast: $characters. Go."
    assert variables("document_user") == {"topic", "pages", "layout", "characters"}
    with override("document_user", reworded), Fake() as fake:
        doc = fake.write("trains", pages=2, layout="comic")
    assert len(doc.sections) == 2 and doc.layout == "comic"


def test_a_wrong_page_count_is_a_clear_error() -> None:
    with Fake(story_pages=3) as fake:
        with pytest.raises(LLMOutputError, match=r"writing the document: .*exactly 4 sections \(one per page\), "
                                                 r"not 3"):
            fake.write("a day at the bakery", pages=4, layout="book")
        assert len(fake.bodies) == 2  # one repair retry, then the error
        assert "exactly 4 sections" in fake.bodies[1]["messages"][-1]["content"]
    with Fake(story_pages_once=5) as fake:  # the repair retry gets it right
        assert len(fake.write("a day at the bakery", pages=4, layout="book").sections) == 4
        assert len(fake.bodies) == 2


def test_character_references_are_attached() -> None:
    refs = {"Leo": ["refs/leo.png", "refs/leo-side.png"], "Mia": ["refs/mia.png"]}
    with Fake() as fake:
        doc = fake.write("learning to fly a kite", pages=3, layout="storyboard", characters=refs)
        user = fake.bodies[0]["messages"][1]["content"]
    assert "Leo, Mia" in user
    assert [(c.name, c.references) for c in doc.characters] == [("Leo", refs["Leo"]), ("Mia", refs["Mia"])]
    assert doc.images[0].characters == ["Leo", "Mia"] and doc.images[1].characters == ["Leo"]


def test_bad_requests_and_a_missing_chat_model_are_clear_errors() -> None:
    with Fake() as fake:
        with pytest.raises(BriefError, match="pages must be a whole number from 1 to 40"):
            fake.write("x", pages=0, layout="book")
        with pytest.raises(BriefError, match="needs a topic"):
            fake.write("  ", pages=2, layout="book")
        assert fake.bodies == []
        config = PixloopConfig(llm_base_url=fake.base_url, llm_model="fake",
                               options={"llm_read_timeout": 5, "llm_max_attempts": 1})
        doc = write_document_sync("a rainy day", pages=2, layout="tutorial", config=config)
    assert len(doc.images) == 2 and doc.layout == "tutorial"
    with pytest.raises(ConfigError, match="needs a chat model.*llm_base_url"):
        writer_client(PixloopConfig())
