"""The prompt rewriter: a chat model writes a better generation prompt from the failing verdicts."""

from __future__ import annotations

import re

from pydantic import ValidationError

from agent.llm.base import ChatClient, ChatMessage
from agent.models import Plan, Verdict
from agent.models.errors import LLMOutputError
from agent.models.evidence import TextEvidence, read_evidence


def spell_out(word: str) -> str:
    """'HELLO' -> 'H-E-L-L-O' (how image models are best told a spelling)."""
    return "-".join(ch for ch in word if not ch.isspace())


def _ocr_spelling(verdicts: list[Verdict]) -> list[str]:
    """Letter-by-letter spellings for the words OCR read wrong (from verdicts with text evidence)."""
    lines: list[str] = []
    for v in verdicts:
        try:
            evidence = read_evidence(v, TextEvidence)
        except ValidationError:
            continue  # not text evidence
        for el in evidence.elements:
            for read, expected in el.wrong_words:
                line = (f'- OCR read "{read}" where the image must say "{expected}": spell it {spell_out(expected)}'
                        if read else f'- the word "{expected}" is missing: spell it {spell_out(expected)}')
                if line not in lines:
                    lines.append(line)
    return lines


def _clean_rewrite(text: str) -> str:
    from agent.llm.json_output import strip_reasoning

    s = strip_reasoning(text).strip()
    fence = re.fullmatch(r"```[a-zA-Z]*\s*\n?(.*?)\n?```", s, flags=re.DOTALL)
    if fence:
        s = fence.group(1).strip()
    s = re.sub(r"^(?:new |improved |rewritten )?prompt\s*:\s*", "", s, flags=re.IGNORECASE).strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'" and s.count(s[0]) == 2:
        s = s[1:-1].strip()
    return s


async def rewrite_prompt(client: ChatClient, prompt: str, verdicts: list[Verdict], plan: Plan, *,
                         temperature: float | None = 0.3, max_tokens: int = 1024) -> str:
    """A better generation prompt written by the model from the failing verdicts' feedback.

    Exact required text is given in quotes and misspelt words (the OCR verdict's
    `elements[].wrong_words` pairs [read, expected]) letter by letter. The reply is plain text;
    any required string the model dropped is appended verbatim, so the rewrite never loses text.
    """
    from prompts import render

    failing = sorted((v for v in verdicts if not v.passed), key=lambda v: v.score)
    problems = [f"- {v.critic} scored {v.score:.2f} (needs {v.threshold:.2f}): {v.feedback or 'no details'}"
                for v in failing] or ["- none reported; make the image crisper and closer to the brief"]
    spelling = _ocr_spelling(failing)
    required = [e.content for e in plan.text]
    user = render("rewrite_prompt", prompt=prompt, problems="\n".join(problems),
                  spelling=("Spelling to enforce:\n" + "\n".join(spelling)) if spelling else "",
                  required_text=", ".join(f'"{t}"' for t in required) or "(no text in this image)")
    result = await client.complete([ChatMessage("user", user)], temperature=temperature, max_tokens=max_tokens)
    rewritten = _clean_rewrite(result.text)
    if not rewritten:
        raise LLMOutputError("the prompt rewrite came back empty", text=result.text)
    missing = [t for t in required if t not in rewritten]
    if missing:
        rewritten += "\nThe image must contain exactly this text: " + "; ".join(f'"{t}"' for t in missing) + "."
    return rewritten


__all__ = ["rewrite_prompt", "spell_out"]
