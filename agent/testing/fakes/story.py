"""The fake chat server's writer: a deterministic illustrated story for `pixloop_document` requests.

It reads the topic, the number of pages, the layout and the required characters through pixloop's own
template (`prompts.parse("document_user", ...)`), never by its wording, and answers a story of that many
sections about the topic: one character (the first one asked for, else "Mia") with a fixed description,
each section 2-3 sentences and one image cue that names the character and contains one quoted word (a sign
that says "OPEN", ...), which is also its required text.

Options (create_app(**options)): story_pages: answer this many sections whatever was asked (a model that
miscounts); story_pages_once: the same, but only on the first try (a repair retry gets it right).
"""

from __future__ import annotations

from typing import Any

from prompts import parse as parse_prompt

STORY_SCHEMA = "pixloop_document"
DEFAULT_CHARACTER = "Mia"
_PLACES = [("waves outside the bakery", "the sign above the door says", "OPEN"),
           ("reads a map at the station", "the board behind her says", "TRAINS"),
           ("plants seeds in the garden", "a wooden label says", "TOMATO"),
           ("carries a parcel to the post office", "the blue sign says", "POST"),
           ("sits at a desk in the library", "the banner says", "READ"),
           ("buys apples at the market", "a chalkboard says", "FRESH"),
           ("walks home under the street lamps", "the door mat says", "HOME")]
_BEATS = ["{name} woke up early, thinking about {topic}.", "There was so much to learn about {topic}.",
          "{name} asked a friend for help.", "Together they found the answer.", "Everyone smiled.",
          "The day ended well."]


def _asked(messages: list[dict[str, Any]]) -> dict[str, str]:
    """The variables of the first user turn that parses as a writer request (else {})."""
    for m in messages:
        if m["role"] == "user":
            asked = parse_prompt("document_user", m["text"])
            if asked is not None:
                return asked
    return {}


def story_answer(messages: list[dict[str, Any]], options: dict[str, Any]) -> dict[str, Any]:
    """A document draft for the writer schema: `pages` sections about the topic, one character."""
    asked = _asked(messages)
    topic = " ".join((asked.get("topic") or "a day out").split())[:120]
    try:
        pages = max(1, min(40, int(asked.get("pages", "3").strip())))
    except ValueError:
        pages = 3
    is_repair = any(m["role"] == "assistant" for m in messages)
    if options.get("story_pages") is not None:
        pages = int(options["story_pages"])
    elif options.get("story_pages_once") is not None and not is_repair:
        pages = int(options["story_pages_once"])
    given = [n.strip() for n in (asked.get("characters") or "").split(",")]
    names = [n for n in given if n and not n.startswith("(")] or [DEFAULT_CHARACTER]
    name = names[0]
    extra = f"; {' and '.join(names[1:])} stand nearby" if len(names) > 1 else ""
    sections = []
    for i in range(pages):
        action, where, word = _PLACES[i % len(_PLACES)]
        first = _BEATS[i % len(_BEATS)].format(name=name, topic=topic)
        text = f"{first} {name} {action.split(' ', 1)[0]} {action.split(' ', 1)[1]}."
        if i % 2 == 0:
            text += f' A sign said "{word}".'
        sections.append({
            "title": f"Page {i + 1}",
            "text": text,
            "images": [{"prompt": f'{name} {action}; {where} "{word}"' + (extra if i == 0 else ""),
                        "characters": names if i == 0 else [name], "required_text": [word]}],
        })
    characters = [{"name": n, "description": "a girl of eight with curly black hair, a red scarf and a yellow coat"
                   if n == name else "a friendly companion in a green jumper"} for n in names]
    return {"title": topic[:1].upper() + topic[1:], "characters": characters, "sections": sections}


__all__ = ["DEFAULT_CHARACTER", "STORY_SCHEMA", "story_answer"]
