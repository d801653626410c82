"""A user's Markdown script as a DocumentBrief: its text kept verbatim, each image cue one image to make.

Syntax (see README, "Illustrated documents"):

    ---                                   optional front matter, `key: value` lines:
    title: Mia's bakery                     title, layout (book|comic|storyboard|tutorial), style,
    layout: book                            aspect (e.g. 3:2), characters (comma-separated names)
    characters: Mia, Leo
    ---
    # Mia's bakery                        optional title (the first line of the body)

    ## The morning                        a section starts at each `##` heading; with none, at each
                                          `---` rule; with neither, each paragraph with a cue ends one
    Mia opens the shop.
    ![Mia waves outside the bakery; the sign says "OPEN"](image)

An image cue is a Markdown image whose alt text says what the image shows; its target may be anything
(`image`, empty, a path), except an image file that exists (relative to the script) or a URL: that is a
picture the user already has, kept as text. From a cue: `required_text` = its double-quoted strings
(straight or curly), `characters` = the known names it mentions as whole words (case-insensitive),
`caption` = the cue as written. Everything else is kept verbatim as text blocks, in reading order; fenced
code and inline code are never cues or section breaks.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import unquote

from pydantic import ValidationError

from agent.llm.json_output import describe_errors
from agent.models import ASPECT_RATIOS
from agent.models.document import LAYOUTS, Block, Character, DocumentBrief, ImageCue, Layout, Section, TextBlock
from agent.models.errors import BriefError
from agent.runtime.images import sniff_mime

MAX_SCRIPT_BYTES = 1024 * 1024
"""A script larger than this (1 MiB) is refused: it is not a script."""
FRONT_MATTER_KEYS = ("title", "layout", "style", "aspect", "characters")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".svg", ".avif"}

_CUE = re.compile(r"!\[((?:\\.|[^\]\\])*)\]\(([^)\n]*)\)")
_QUOTED = (re.compile(r'"([^"\n]+)"'), re.compile(r"“([^”\n]+)”"), re.compile(r"„([^“”\n]+)[“”]"),
           re.compile(r"«\s*([^»\n]+?)\s*»"))
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_TITLE = re.compile(r"^ {0,3}#[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_HEADING = re.compile(r"^ {0,3}##[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$|^ {0,3}##[ \t]*$")
_RULE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_KEY = re.compile(r"^([A-Za-z][\w-]*)[ \t]*:[ \t]*(.*)$")
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
_WORDS = re.compile(r"\b[A-Z][a-z][\w'-]*")
_NOT_NAMES = {
    "A", "An", "The", "He", "She", "It", "They", "We", "You", "I", "His", "Her", "Their", "Its", "Our", "This", "That",
    "These", "Those", "Then", "Now", "Here", "There", "In", "On", "At", "By", "With", "And", "But", "Or", "Of", "To",
    "From", "Inside", "Outside", "Close", "Wide", "View", "Scene", "Panel", "Page", "Step", "Shot",
}


@dataclass
class _Cue:
    start: int
    end: int
    alt: str
    target: str
    line: int


def parse_script(markdown: str, *, characters: Mapping[str, Sequence[str]] = {},  # noqa: B006 - read only
                 layout: Layout | str | None = None, base: Path | None = None,
                 local_files: bool = True) -> DocumentBrief:
    """The DocumentBrief of a Markdown script (source "script").

    `characters` maps names to reference images (paths as given, e.g. from `--character Mia=mia.png`); names
    declared in the front matter (`characters: Mia, Leo`) are characters too. `layout` (one of LAYOUTS; a str
    is checked) overrides the front matter's. `base` is the folder an image target is looked up in (the
    script's folder; default: the working directory). With `local_files` False (a server's remote client wrote
    the script) no link is looked up on disk: only URLs are pictures, so a script cannot probe the server's
    files. Raises BriefError naming the problem and, where it helps, the line.
    """
    if not isinstance(markdown, str):
        raise BriefError(f"a script must be text, not {type(markdown).__name__}")
    text = markdown.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SCRIPT_BYTES:
        raise BriefError(f"the script is larger than {MAX_SCRIPT_BYTES // 1024} KiB; a script is Markdown text")
    _check_readable(text)
    if not text.strip():
        raise BriefError("the script is empty: write its text with image cues like ![what the image shows](image)")
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)

    meta, meta_lines, body = _front_matter(lines)
    fenced = _fenced_lines(lines, body)
    title = ""
    first = next((i for i in range(body, len(lines)) if lines[i].strip()), len(lines))
    if first < len(lines) and first not in fenced and (m := _TITLE.match(lines[first])):
        title, body = m.group(1).strip(), first + 1
    if "title" in meta:
        title = meta["title"]

    cues = _find_cues(text, lines, offsets, fenced, body,
                      None if not local_files else base if base is not None else Path.cwd())
    if not cues:
        raise BriefError("the script has no image cue: mark each image with ![what it shows](image), e.g. "
                         '![Mia waves outside the bakery; the sign says "OPEN"](image)')
    ranges = _sections(lines, fenced, body, cues)

    declared = _declared_characters(characters, meta.get("characters", ""), meta_lines.get("characters"))
    names = [name for name, _ in declared]
    sections: list[Section] = []
    images: list[ImageCue] = []
    placed: set[int] = set()
    for n, (heading, start, end) in enumerate(ranges, 1):
        a = min(offsets[start], len(text))
        b = max(a, min(offsets[end] - 1, len(text)))
        blocks: list[Block] = []
        pos = a
        for cue in (c for c in cues if a <= c.start < b):
            _add_text(blocks, text[pos:cue.start], midline=pos > 0 and text[pos - 1] != "\n")
            words = re.sub(r"\s+", " ", re.sub(r"\\(.)", r"\1", cue.alt)).strip()
            image = ImageCue(id=f"s{n}-i{len(images_in(blocks)) + 1}", prompt=words, caption=words,
                             required_text=quoted_strings(words), characters=mentioned(words, names))
            blocks.append(image)
            images.append(image)
            placed.add(cue.start)
            pos = cue.end
        _add_text(blocks, text[pos:b], midline=pos > 0 and text[pos - 1] != "\n")
        sections.append(Section(id=f"s{n}", title=heading, blocks=blocks))
    lost = [c.line for c in cues if c.start not in placed]
    if lost:
        raise BriefError(f"line {lost[0]}: an image cue in a heading or a section break; put it on a line of "
                         "its own")

    _check_characters_used(declared, images, cues, meta_lines.get("characters"))
    refs = {name_key(k): list(v) for k, v in characters.items()}
    try:
        people = [Character(name=name, references=refs.get(name_key(name), [])) for name, _ in declared]
    except ValidationError as e:
        raise BriefError("character name: " + "; ".join(describe_errors(e))) from None
    chosen = layout or meta.get("layout") or "book"
    if chosen not in LAYOUTS:
        raise BriefError(f"layout {chosen!r}: choose one of {', '.join(LAYOUTS)}")
    try:
        return DocumentBrief(title=title, sections=sections, characters=people, layout=cast(Layout, chosen),
                             style=meta.get("style", ""), aspect_ratio=meta.get("aspect"), source="script")
    except ValidationError as e:
        raise BriefError("the script: " + "; ".join(describe_errors(e))) from None


def read_script(path: Path) -> str:
    """A script file's text: UTF-8, at most 1 MiB, not an image; BriefError says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise BriefError(f"script {path}: no such file")
    if not path.is_file():
        raise BriefError(f"script {path}: not a file")
    size = path.stat().st_size
    if size > MAX_SCRIPT_BYTES:
        raise BriefError(f"script {path}: {size / 1024 / 1024:.1f} MiB is larger than the "
                         f"{MAX_SCRIPT_BYTES // 1024} KiB a script may be")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BriefError(f"script {path}: cannot be read ({e.strerror or e})") from None
    if sniff_mime(data[:16]) is not None:
        raise BriefError(f"script {path}: this is an image, not a Markdown script")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise BriefError(f"script {path}: not UTF-8 text (byte {data[e.start]:#04x} at line {line})") from None
    return text


def load_script(path: Path, *, characters: Mapping[str, Sequence[str]] = {},  # noqa: B006 - read only
                layout: Layout | str | None = None, base: Path | None = None) -> DocumentBrief:
    """`parse_script` of a UTF-8 file (at most 1 MiB); image targets are looked up next to it."""
    path = Path(path)
    text = read_script(path)
    try:
        return parse_script(text, characters=characters, layout=layout, base=path.parent if base is None else base)
    except BriefError as e:
        raise BriefError(f"script {path}: {e}") from None


# ----------------------------------------------------------------------------------------------- cue words


def quoted_strings(text: str) -> list[str]:
    """The double-quoted strings (straight or curly) in a cue, in order, without duplicates."""
    found = sorted((m.start(), m.group(1).strip()) for q in _QUOTED for m in q.finditer(text))
    out: list[str] = []
    for _, s in found:
        if s and s not in out:
            out.append(s)
    return out


def mentioned(text: str, names: Iterable[str]) -> list[str]:
    """The names (as given) that `text` mentions as whole words, case-insensitive, in the order given."""
    out = []
    for name in names:
        words = r"\s+".join(re.escape(w) for w in name.split())
        if words and re.search(rf"(?<![\w]){words}(?![\w])", text, re.IGNORECASE):
            out.append(name)
    return out


def name_key(name: str) -> str:
    """A character name as compared: case and runs of spaces do not matter."""
    return " ".join(str(name).split()).lower()


def images_in(blocks: Sequence[Block]) -> list[ImageCue]:
    return [b for b in blocks if isinstance(b, ImageCue)]


# ----------------------------------------------------------------------------------------------- reading


def _check_readable(text: str) -> None:
    bad = [i for i, ch in enumerate(text[:65536]) if ch == "\x00" or (ord(ch) < 32 and ch not in "\n\t\f\v")]
    if "\x00" in text or len(bad) > max(8, len(text[:65536]) // 100):
        line = text.count("\n", 0, bad[0] if bad else text.index("\x00")) + 1
        raise BriefError(f"the script is not readable text (control characters from line {line}): "
                         "give a Markdown file")


def _front_matter(lines: list[str]) -> tuple[dict[str, str], dict[str, int], int]:
    """Front matter values, the line number each came from, and the index of the first body line."""
    if not lines or lines[0].strip() != "---":
        return {}, {}, 0
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
    if end is None:
        return {}, {}, 0
    inner = [(i, lines[i]) for i in range(1, end) if lines[i].strip() and not lines[i].lstrip().startswith("#")]
    if not inner or not all(_KEY.match(line.strip()) for _, line in inner):
        return {}, {}, 0  # not front matter: a rule that opens the first section
    meta: dict[str, str] = {}
    where: dict[str, int] = {}
    for i, line in inner:
        m = _KEY.match(line.strip())
        assert m is not None
        key, value = m.group(1).lower(), _unquote(m.group(2).strip())
        if key not in FRONT_MATTER_KEYS:
            close = difflib.get_close_matches(key, FRONT_MATTER_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BriefError(f"front matter line {i + 1}: unknown key {key!r}{hint}; "
                             f"known: {', '.join(FRONT_MATTER_KEYS)}")
        if key in meta:
            raise BriefError(f"front matter line {i + 1}: {key!r} is given twice (first at line {where[key]})")
        if key == "layout":
            value = value.lower()
            if value not in LAYOUTS:
                raise BriefError(f"front matter line {i + 1}: layout {value!r}: choose one of {', '.join(LAYOUTS)}")
        if key == "aspect":
            value = re.sub(r"\s*[x×/]\s*|\s*:\s*", ":", value)
            if value not in ASPECT_RATIOS:
                raise BriefError(f"front matter line {i + 1}: aspect {value!r}: choose one of "
                                 f"{', '.join(ASPECT_RATIOS)}")
        meta[key], where[key] = value, i + 1
    return meta, where, end + 1


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _fenced_lines(lines: list[str], body: int) -> set[int]:
    """Indices of lines inside (or opening/closing) fenced code blocks."""
    out: set[int] = set()
    fence: str | None = None
    for i in range(body, len(lines)):
        m = _FENCE.match(lines[i])
        if fence is None:
            if m:
                fence = m.group(1)
                out.add(i)
        else:
            out.add(i)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not lines[i].strip()[
                    len(m.group(1)):].strip():
                fence = None
    return out


def _find_cues(text: str, lines: list[str], offsets: list[int], fenced: set[int], body: int,
               base: Path | None) -> list[_Cue]:
    start = offsets[body] if body < len(offsets) else len(text)
    code = [m.span() for m in _CODE_SPAN.finditer(text, start)]
    cues = []
    for m in _CUE.finditer(text, start):
        line = text.count("\n", 0, m.start())
        if line in fenced or any(a <= m.start() < b for a, b in code) or "\n\n" in m.group(1):
            continue
        if _is_existing_image(m.group(2), base):
            continue
        if not m.group(1).strip():
            raise BriefError(f"line {line + 1}: the image cue {m.group(0)!r} has no description; write what the "
                             "image shows between the brackets")
        cues.append(_Cue(m.start(), m.end(), m.group(1), m.group(2), line + 1))
    return cues


def _is_existing_image(target: str, base: Path | None) -> bool:
    """A target that is a picture the user already has: a URL, or an image file next to the script (None: files
    are not looked at)."""
    t = target.strip()
    if t.startswith("<") and ">" in t:
        t = t[1:t.index(">")]
    else:
        t = re.split(r"\s+[\"'(]", t, maxsplit=1)[0].strip()
    if not t:
        return False
    if re.match(r"^(https?|data|file):", t, re.IGNORECASE):
        return True
    if base is None:
        return False
    try:
        path = Path(unquote(t)).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            return False
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return True
        with path.open("rb") as f:
            return sniff_mime(f.read(16)) is not None
    except (OSError, ValueError):
        return False


def _sections(lines: list[str], fenced: set[int], body: int, cues: list[_Cue]) -> list[tuple[str, int, int]]:
    """(title, first line, end line) of each section, by `##` headings, else `---` rules, else cue paragraphs."""
    n = len(lines)
    live = [i for i in range(body, n) if i not in fenced]
    headings = [i for i in live if _HEADING.match(lines[i])]
    out: list[tuple[str, int, int]] = []
    if headings:
        if any(lines[i].strip() and not _RULE.match(lines[i]) for i in range(body, headings[0])):
            out.append(("", body, headings[0]))
        for k, h in enumerate(headings):
            m = _HEADING.match(lines[h])
            title = (m.group(1) or "").strip() if m else ""
            end = headings[k + 1] if k + 1 < len(headings) else n
            start = h + 1
            while start < end and (not lines[start].strip() or (start not in fenced and _RULE.match(lines[start]))):
                start += 1
            stop = end
            while stop > start and (not lines[stop - 1].strip() or (stop - 1 not in fenced
                                                                     and _RULE.match(lines[stop - 1]))):
                stop -= 1
            out.append((title, start, stop))
        return out
    rules = [i for i in live if _RULE.match(lines[i])]
    if rules:
        bounds = [body - 1, *rules, n]
        for a, b in zip(bounds, bounds[1:]):
            if any(lines[i].strip() for i in range(a + 1, b)):
                out.append(("", a + 1, b))
        return out
    cue_lines = {c.line - 1 for c in cues}
    start, i = body, body
    while i < n:
        if not lines[i].strip() and i not in fenced:
            i += 1
            continue
        j = i
        while j < n and (lines[j].strip() or j in fenced):
            j += 1
        # a cue whose alt text spans lines starts on one of them
        if any(i <= c < j for c in cue_lines):
            out.append(("", start, j))
            start = j
        i = j
    if any(lines[k].strip() for k in range(start, n)):
        title, first, _ = out[-1]
        out[-1] = (title, first, n)
    return out


def _add_text(blocks: list[Block], piece: str, *, midline: bool) -> None:
    """Append a run of text (blank lines around it dropped, its inside untouched; `midline`: it follows a cue
    on the same line, so the spaces after the cue go too)."""
    lines = piece.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return
    if midline and piece.startswith(lines[0]):
        lines[0] = lines[0].lstrip(" \t")
    lines[-1] = lines[-1].rstrip()
    blocks.append(TextBlock(text="\n".join(lines)))


# ----------------------------------------------------------------------------------------------- characters


def _declared_characters(given: Mapping[str, Sequence[str]], listed: str,
                         line: int | None) -> list[tuple[str, str]]:
    """(name, where it was declared) for every character, given ones first, each once (case-insensitive)."""
    out: list[tuple[str, str]] = []
    for name in given:
        if not str(name).strip():
            raise BriefError("a --character needs a name, e.g. --character Mia=mia.png")
        out.append((" ".join(str(name).split()), "--character"))
    for name in listed.strip().strip("[]").split(","):
        name = " ".join(_unquote(name.strip()).split())
        if name:
            out.append((name, f"the front matter (line {line})"))
    seen: set[str] = set()
    unique = []
    for name, where in out:
        if name.lower() not in seen:
            seen.add(name.lower())
            unique.append((name, where))
    return unique


def _check_characters_used(declared: list[tuple[str, str]], images: list[ImageCue], cues: list[_Cue],
                           line: int | None) -> None:
    """A declared character no cue mentions is most likely misspelt: say which names the cues do use."""
    used = {n.lower() for cue in images for n in cue.characters}
    unused = [(name, where) for name, where in declared if name.lower() not in used]
    if not unused:
        return
    candidates: dict[str, list[int]] = {}
    for cue, image in zip(cues, images):
        bare = image.prompt
        for q in _QUOTED:
            bare = q.sub(" ", bare)
        for word in _WORDS.findall(bare):
            word = re.sub(r"'s$|’s$", "", word)
            if word not in _NOT_NAMES:
                candidates.setdefault(word, [])
                if cue.line not in candidates[word]:
                    candidates[word].append(cue.line)
    problems = []
    for name, where in unused:
        close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6) or difflib.get_close_matches(
            name.capitalize(), list(candidates), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"character {name!r} from {where} is not named in any image cue{hint}")
    if candidates:
        named = ", ".join(f"{w} (line{'s' if len(ls) > 1 else ''} {', '.join(map(str, ls[:4]))})"
                          for w, ls in candidates.items())
        tail = f"; the script's cues mention: {named}"
    else:
        tail = "; the script's cues name no one (a name is a capitalised word in a cue)"
    raise BriefError("; ".join(problems) + tail)


__all__ = ["MAX_SCRIPT_BYTES", "load_script", "mentioned", "name_key", "parse_script", "quoted_strings", "read_script"]
