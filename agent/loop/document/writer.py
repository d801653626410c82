"""A chat model writes an illustrated document from a topic: its sections' text, image cues and characters.

The model (prompts/document_system.txt + document_user.txt) answers with a `DocumentDraft` (schema
`pixloop_document`, strict structured output, validated with pydantic, one repair retry); the draft must
have exactly the pages asked for, at least one image per section, and name in its images only its own
characters, or the repair retry says so. The draft becomes a DocumentBrief (source "llm"): a section's text
is one text block before its images, the quoted strings of a cue's prompt are added to its required text,
and the characters the user gave (with their reference images) are attached by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agent.llm import ChatClient, ChatMessage, client_from_config, run_sync
from agent.llm.json_output import complete_json, describe_errors
from agent.loop.document.script import mentioned, name_key, quoted_strings
from agent.models import PixloopConfig
from agent.models.document import (
    LAYOUTS,
    NAME,
    Block,
    Character,
    DocumentBrief,
    ImageCue,
    Layout,
    Section,
    TextBlock,
)
from agent.models.errors import BriefError, ConfigError, InputError, LLMError, LLMOutputError
from prompts import render

SCHEMA_NAME = "pixloop_document"
"""Structured-output schema name; the chat fake recognises writer requests by it."""
MAX_PAGES = 40
MAX_IMAGES_PER_SECTION = 4
GUIDES: dict[str, str] = {
    "book": "Each section is a page of a picture book: 2 to 4 sentences of story and one illustration.",
    "comic": "Each section is a comic page: its text the caption and dialogue, one image per panel (1 to 3).",
    "storyboard": "Each section is a shot: a line of action or dialogue, and one frame.",
    "tutorial": "Each section is a step: a title naming the step, an instruction of 1 to 3 sentences, and one "
                "image showing it.",
}


class _Draft(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DraftImage(_Draft):
    prompt: str = Field(min_length=1, description="what the image shows, standing alone")
    characters: list[str] = Field(description="names of the characters it shows, as in characters")
    required_text: list[str] = Field(description="text that must be legible in it, verbatim")


class DraftSection(_Draft):
    title: str
    text: str = Field(description="the section's text as the reader sees it")
    images: list[DraftImage]


class DraftCharacter(_Draft):
    name: str
    description: str = Field(description="what the character looks like, the same in every image")


class DocumentDraft(_Draft):
    """What the model answers (schema `pixloop_document`)."""

    title: str
    characters: list[DraftCharacter]
    sections: list[DraftSection]

    def problems(self, pages: int, required: Sequence[str] = ()) -> list[str]:
        """Why this draft is not the document asked for ([] when it is)."""
        out = []
        if len(self.sections) != pages:
            out.append(f"sections: the document must have exactly {pages} sections (one per page), "
                       f"not {len(self.sections)}")
        names = [" ".join(c.name.split()) for c in self.characters]
        bad = [n for n in names if not NAME.match(n)]
        if bad:
            out.append(f"characters: names must be letters, digits, spaces, . ' - (at most 40): {', '.join(bad)}")
        lower = [name_key(n) for n in names]
        if len(set(lower)) != len(lower):
            out.append("characters: each character may be listed once")
        missing = [n for n in required if name_key(n) not in lower]
        if missing:
            out.append(f"characters: must include {', '.join(missing)}")
        for i, section in enumerate(self.sections):
            if not section.images:
                out.append(f"sections.{i}.images: each section needs at least one image")
            if len(section.images) > MAX_IMAGES_PER_SECTION:
                out.append(f"sections.{i}.images: at most {MAX_IMAGES_PER_SECTION} images per section")
            for j, image in enumerate(section.images):
                unknown = [n for n in image.characters if name_key(n) not in lower]
                if unknown:
                    out.append(f"sections.{i}.images.{j}.characters: {', '.join(unknown)} not in characters")
        return out


def draft_model(pages: int, required: Sequence[str] = ()) -> type[DocumentDraft]:
    """DocumentDraft that also checks the page count and the names (so the repair retry can fix them)."""

    class Draft(DocumentDraft):
        @model_validator(mode="after")
        def _asked_for(self) -> Draft:
            problems = self.problems(pages, required)
            if problems:
                raise ValueError("; ".join(problems))
            return self

    Draft.__name__ = Draft.__qualname__ = "DocumentDraft"
    return Draft


def writer_messages(topic: str, *, pages: int, layout: Layout, characters: Sequence[str] = ()) -> list[ChatMessage]:
    """The system and user turns asking for a document."""
    system = render("document_system", guide=GUIDES[layout])
    user = render("document_user", layout=layout, pages=pages, topic=topic.strip(),
                  characters=", ".join(characters) or "(none given: invent the characters the topic needs)")
    return [ChatMessage("system", system), ChatMessage("user", user)]


def draft_to_brief(draft: DocumentDraft, *, layout: Layout,
                   characters: Mapping[str, Sequence[str]] = {}) -> DocumentBrief:  # noqa: B006 - read only
    """The DocumentBrief of a validated draft: text first, then the images; references attached by name."""
    refs = {name_key(k): list(v) for k, v in characters.items()}
    names = [" ".join(c.name.split()) for c in draft.characters]
    canonical = {name_key(n): n for n in names}
    sections = []
    for i, s in enumerate(draft.sections, 1):
        blocks: list[Block] = []
        if s.text.strip():
            blocks.append(TextBlock(text=s.text.strip()))
        for j, image in enumerate(s.images, 1):
            prompt = " ".join(image.prompt.split())
            named = [canonical[name_key(n)] for n in image.characters if name_key(n) in canonical]
            who = list(dict.fromkeys([*named, *mentioned(prompt, names)]))
            text = list(dict.fromkeys([t.strip() for t in image.required_text if t.strip()] + quoted_strings(prompt)))
            blocks.append(ImageCue(id=f"s{i}-i{j}", prompt=prompt, caption=prompt, characters=who, required_text=text))
        sections.append(Section(id=f"s{i}", title=s.title.strip(), blocks=blocks))
    people = [Character(name=n, description=c.description.strip(), references=refs.get(name_key(n), []))
              for n, c in zip(names, draft.characters)]
    return DocumentBrief(title=draft.title.strip(), sections=sections, characters=people, layout=layout,
                         source="llm")


async def write_document(topic: str, *, pages: int, layout: Layout, chat: ChatClient,
                         characters: Mapping[str, Sequence[str]] = {},  # noqa: B006 - read only
                         temperature: float | None = 0.7, max_tokens: int | None = None) -> DocumentBrief:
    """A chat model writes a document of `pages` sections about `topic`; `characters` (name -> reference images)
    must appear by those names. Raises BriefError for a bad request, LLMError when the model cannot write it
    (LLMOutputError: no valid draft after one repair retry, e.g. the wrong number of pages)."""
    if not topic or not topic.strip():
        raise BriefError("writing a document needs a topic")
    if isinstance(pages, bool) or not isinstance(pages, int) or not 1 <= pages <= MAX_PAGES:
        raise BriefError(f"pages must be a whole number from 1 to {MAX_PAGES}, not {pages!r}")
    if layout not in LAYOUTS:
        raise BriefError(f"layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    names = [" ".join(str(n).split()) for n in characters]
    bad = [n for n in names if not NAME.match(n)]
    if bad:
        raise BriefError(f"character name {bad[0]!r}: use letters, digits, spaces, . ' - (at most 40)")
    messages = writer_messages(topic, pages=pages, layout=layout, characters=names)
    tokens = max_tokens or min(16000, 800 + 450 * pages)
    try:
        draft, _ = await complete_json(chat, messages, draft_model(pages, names), schema_name=SCHEMA_NAME,
                                       json_schema=DocumentDraft.model_json_schema(), temperature=temperature,
                                       max_tokens=tokens)
    except LLMOutputError as e:
        raise LLMOutputError(f"writing the document: {e}", errors=e.errors, text=e.text) from e
    try:
        return draft_to_brief(draft, layout=layout, characters=characters)
    except ValidationError as e:
        raise LLMOutputError(f"writing the document: {chat.model}'s draft is not a valid document: "
                             + "; ".join(describe_errors(e)[:6]), errors=describe_errors(e)) from None


def writer_client(config: PixloopConfig) -> ChatClient:
    """The chat client that writes documents: the config's llm_base_url / llm_model (and llm_* options)."""
    try:
        return client_from_config(config)
    except (LLMError, InputError) as e:
        raise ConfigError(f"writing a document from a topic needs a chat model ({e}); "
                          "or give a Markdown script instead") from None


def write_document_sync(topic: str, *, pages: int, layout: Layout, config: PixloopConfig | None = None,
                        chat: ChatClient | None = None,
                        characters: Mapping[str, Sequence[str]] = {},  # noqa: B006 - read only
                        **kwargs: Any) -> DocumentBrief:
    """`write_document` from sync code (graph nodes, the CLI), with the config's chat client unless one is given;
    the connections it opened are closed afterwards."""
    if chat is not None:
        client = chat
    elif config is not None:
        client = writer_client(config)
    else:
        raise ConfigError("write_document_sync needs a config (llm_base_url, llm_model) or a chat client")

    async def go() -> DocumentBrief:
        try:
            return await write_document(topic, pages=pages, layout=layout, chat=client, characters=characters,
                                        **kwargs)
        finally:
            await client.aclose()

    return run_sync(go)


__all__ = [
    "DocumentDraft", "DraftCharacter", "DraftImage", "DraftSection", "GUIDES", "MAX_PAGES", "SCHEMA_NAME",
    "draft_model", "draft_to_brief", "write_document", "write_document_sync", "writer_client", "writer_messages",
]
