"""The text side of the content policy: rules as data, matched on normalised text, each refusal naming its rule.

A policy is a TOML file of categories and rules (`default_policy.toml` ships with the package; a user file
merges with it: a rule with a known id overrides that rule's fields, `enabled = false` or
`[policy] disable = [...]` turns a default off, `[policy] replace_defaults = true` starts from nothing).
A rule is explainable by reading it:

    [[rules]]
    id = "fraud.stolen_cards"            # what a refusal names
    category = "fraud_and_stolen_goods"  # one of [categories]
    severity = "refuse"                  # refuse | warn
    patterns = ['\\bstolen (credit |debit )?cards?\\b']   # regexes on normalised text
    requires_any = ['\\b(buy|sale|cheap)\\b']  # optional: one must occur within `window` characters
    unless = ['\\bbomb proof\\b']         # optional: a benign phrase overlapping the match clears it
    unless_near = ['\\bbeware\\b']        # optional: a benign context within `window` characters clears it
    applies_to = ["prompt", "required_text", "image_text"]   # optional, default all three

Text is normalised before matching: NFKC, casefold, zero-width characters dropped, every run of
punctuation and whitespace one space ("bomb-proof" reads "bomb proof"). Each rule is tried on four
views of the text: plain; leetspeak-lite in tokens that contain a letter (0->o, 1->i or 1->l, 3->e, 4->a,
5->s, 7->t, $->s, @->a: "st0len", "$tolen", "1sd"); and with letter-spaced runs joined ("S T O L E N",
"s.t.o.l.e.n"; words spaced apart by wider gaps stay words). A literal space in a pattern matches one or
no space, so "stolencreditcards" matches too. The matched span is reported in the original text.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from agent.models.errors import ConfigError

Where = Literal["prompt", "required_text", "image_text"]
Severity = Literal["refuse", "warn"]
WHERES: tuple[Where, ...] = ("prompt", "required_text", "image_text")
SEVERITIES: tuple[Severity, ...] = ("refuse", "warn")
DEFAULT_WINDOW = 60
"""Characters either side of a match within which a `requires_any` context word must occur."""

_RULE_KEYS = {"id", "category", "severity", "patterns", "requires_any", "unless", "unless_near", "applies_to",
              "enabled", "message", "window"}
_POLICY_KEYS = {"version", "window", "disable", "replace_defaults", "description"}
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "$": "s", "@": "a"}
_LEET_L = {**_LEET, "1": "l"}
_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}


# --------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class View:
    """Normalised text and, for each of its characters, the index of the original character it came from."""

    name: str
    text: str
    origin: tuple[int, ...]

    def original_span(self, start: int, end: int, original: str) -> str:
        if not self.origin or end <= start:
            return ""
        return original[self.origin[start]: self.origin[min(end, len(self.origin)) - 1] + 1]


def _chars(text: str) -> list[tuple[str, int]]:
    """NFKC + casefold per character, zero-width characters dropped, each output char with its origin."""
    out: list[tuple[str, int]] = []
    for i, ch in enumerate(text):
        if ch in _ZERO_WIDTH or unicodedata.category(ch) == "Cf":
            continue
        for c in unicodedata.normalize("NFKC", ch).casefold():
            if unicodedata.category(c) == "Mn":  # combining marks left by NFKC on decomposed input
                continue
            out.append((c, i))
    return out


def _leet(chars: list[tuple[str, int]], table: Mapping[str, str]) -> list[tuple[str, int]]:
    """Map leet characters inside tokens that also contain a letter ("st0len" yes, "50% off" no)."""
    out = list(chars)
    i = 0
    while i < len(chars):
        if chars[i][0].isspace():
            i += 1
            continue
        j = i
        while j < len(chars) and not chars[j][0].isspace():
            j += 1
        token = chars[i:j]
        if any(c.isalpha() for c, _ in token):
            for k in range(i, j):
                c, o = chars[k]
                if c in table:
                    out[k] = (table[c], o)
        i = j
    return out


def _separators(chars: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Every run of non-alphanumeric characters becomes one space; the text is stripped."""
    out: list[tuple[str, int]] = []
    for c, o in chars:
        if c.isalnum():
            out.append((c, o))
        elif out and out[-1][0] != " ":
            out.append((" ", o))
    while out and out[-1][0] == " ":
        out.pop()
    return out


_SPACED_RUN = re.compile(r"(?<![^\W_])[^\W_](?:([ .\-_*·•|/])[^\W_])(?:\1[^\W_])+(?![^\W_])")


def _join_spaced(chars: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Join letter-spaced runs ("s t o l e n", "s.t.o.l.e.n": one separator between single characters)."""
    text = "".join(c for c, _ in chars)
    drop: set[int] = set()
    for m in _SPACED_RUN.finditer(text):
        drop.update(i for i in range(m.start(), m.end()) if not text[i].isalnum())
    return [co for i, co in enumerate(chars) if i not in drop]


def views(text: str) -> list[View]:
    """The views every rule is matched on: plain, leet (1->i), leet (1->l), letter-spaced runs joined."""
    base = _chars(text)
    seen: set[str] = set()
    out: list[View] = []
    for name, chars in (("plain", _separators(base)),
                        ("leet", _separators(_leet(base, _LEET))),
                        ("leet-l", _separators(_leet(base, _LEET_L))),
                        ("joined", _separators(_leet(_join_spaced(base), _LEET)))):
        s = "".join(c for c, _ in chars)
        if s in seen:
            continue
        seen.add(s)
        out.append(View(name, s, tuple(o for _, o in chars)))
    return out


def normalise(text: str) -> str:
    """The plain view: what a reader of a policy file should write patterns against."""
    return views(text)[0].text if text.strip() else ""


# --------------------------------------------------------------------------- rules and decisions


def _compile(pattern: str) -> re.Pattern[str]:
    """A pattern as written, with each literal space meaning one optional space (views are single-spaced)."""
    return re.compile(re.sub(r"(?<!\\) ", " ?", pattern))


@dataclass(frozen=True)
class Rule:
    """One rule of a policy: see the module docstring for the meaning of each field."""

    id: str
    category: str
    severity: Severity
    patterns: tuple[str, ...]
    requires_any: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    unless_near: tuple[str, ...] = ()
    applies_to: tuple[Where, ...] = WHERES
    enabled: bool = True
    message: str = ""
    window: int = DEFAULT_WINDOW
    _compiled: tuple[tuple[re.Pattern[str], ...], ...] = field(default=((), (), (), ()), repr=False, compare=False)

    def compiled(self) -> Rule:
        return replace(self, _compiled=tuple(tuple(_compile(p) for p in group) for group in
                                             (self.patterns, self.requires_any, self.unless, self.unless_near)))

    def find(self, view: View) -> tuple[int, int] | None:
        """The span of the first match in a view that has its context and no overlapping benign phrase."""
        patterns, context, benign, benign_near = self._compiled
        text = view.text
        for pat in patterns:
            for m in pat.finditer(text):
                s, e = m.span()
                if e == s:
                    continue
                if any(b.start() < e and b.end() > s for u in benign for b in u.finditer(text)):
                    continue
                lo, hi = max(0, s - self.window), min(len(text), e + self.window)
                if any(u.search(text, lo, hi) for u in benign_near):
                    continue
                if context:
                    near = [c for pc in context for c in pc.finditer(text, lo, hi)]
                    if not near:
                        continue
                    nearest = min(near, key=lambda c: abs(c.start() - s))
                    s, e = min(s, nearest.start()), max(e, nearest.end())
                return s, e
        return None


@dataclass(frozen=True)
class PolicyDecision:
    """What a policy check concluded about one text or image.

    `allowed` is False only when a rule of severity "refuse" matched. `verified` is False when the check
    could not be made (a moderation endpoint that did not answer, an image screen that is not installed):
    such a decision is allowed but must be reported as "policy unverified", never as passed.
    """

    allowed: bool
    where: str
    rule_id: str | None = None
    category: str | None = None
    severity: Severity | None = None
    matched: str = ""
    message: str = ""
    verified: bool = True
    warnings: tuple[str, ...] = ()
    source: str = "rules"
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def ok(cls, where: str, source: str = "rules", warnings: Iterable[str] = (),
           details: Mapping[str, Any] | None = None) -> PolicyDecision:
        return cls(allowed=True, where=where, message="allowed", warnings=tuple(warnings), source=source,
                   details=dict(details or {}))

    @classmethod
    def unverified(cls, where: str, reason: str, source: str) -> PolicyDecision:
        return cls(allowed=True, where=where, verified=False, message=f"policy unverified: {reason}", source=source)

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "verified": self.verified, "where": self.where, "rule_id": self.rule_id,
                "category": self.category, "severity": self.severity, "matched": self.matched,
                "message": self.message, "warnings": list(self.warnings), "source": self.source,
                "details": dict(self.details)}


def _verdict(rule: Rule, where: str, matched: str) -> str:
    verb = "refused" if rule.severity == "refuse" else "warning"
    extra = f" — {rule.message}" if rule.message else ""
    return f'{verb} by rule {rule.id} ({rule.category}): "{matched}"{extra}'


@dataclass(frozen=True)
class Policy:
    """Categories (name -> description) and rules; `check_text` is the whole text-side API."""

    categories: Mapping[str, str]
    rules: tuple[Rule, ...]
    source: str = "default"

    def active(self) -> list[Rule]:
        return [r for r in self.rules if r.enabled]

    def check_text(self, text: str, where: Where = "prompt") -> PolicyDecision:
        """The first refusing rule that matches (else allowed, with any warnings), naming the rule and span."""
        if where not in WHERES:
            raise ValueError(f"where must be one of {', '.join(WHERES)}, not {where!r}")
        if not text or not text.strip():
            return PolicyDecision.ok(where)
        vs = views(text)
        warnings: list[str] = []
        for rule in self.active():
            if where not in rule.applies_to:
                continue
            for view in vs:
                span = rule.find(view)
                if span is None:
                    continue
                matched = view.original_span(span[0], span[1], text).strip()
                msg = _verdict(rule, where, matched)
                if rule.severity == "refuse":
                    return PolicyDecision(allowed=False, where=where, rule_id=rule.id, category=rule.category,
                                          severity=rule.severity, matched=matched, message=msg,
                                          warnings=tuple(warnings), details={"view": view.name})
                warnings.append(msg)
                break
        return PolicyDecision.ok(where, warnings=warnings)

    def check_texts(self, texts: Iterable[str], where: Where) -> PolicyDecision:
        """The first refusal among several texts (each required text, each OCR line), else allowed."""
        warnings: list[str] = []
        for t in texts:
            d = self.check_text(t, where)
            if not d.allowed:
                return d
            warnings += d.warnings
        return PolicyDecision.ok(where, warnings=warnings)


# --------------------------------------------------------------------------- loading


def _line_of(raw: str, needle: str) -> int | None:
    for n, line in enumerate(raw.splitlines(), 1):
        if needle in line:
            return n
    return None


def _where(path: str, raw: str, rule_id: str | None) -> str:
    line = _line_of(raw, f'"{rule_id}"') or _line_of(raw, f"'{rule_id}'") if rule_id else None
    return f"{path}, line {line}" if line else path


def _strings(value: Any, key: str, err: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise err(f"{key} must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def _parse(raw: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(raw)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"policy file {path}: not valid TOML: {e}") from None


def _merge(base: dict[str, dict[str, Any]], doc: dict[str, Any], path: str, raw: str,
           categories: dict[str, str]) -> None:
    """Fold one policy document's rules into `base` (rule id -> fields), checking every key it writes."""
    unknown = set(doc) - {"policy", "categories", "rules"}
    if unknown:
        raise ConfigError(f"policy file {path}: unknown top-level key(s) {sorted(unknown)}; "
                          "expected [policy], [categories.NAME] and [[rules]]")
    cats = doc.get("categories", {})
    if not isinstance(cats, dict):
        raise ConfigError(f"policy file {path}: [categories] must be a table of NAME = {{ description = ... }}")
    for name, spec in cats.items():
        desc = spec.get("description", "") if isinstance(spec, dict) else spec
        if not isinstance(desc, str):
            raise ConfigError(f"policy file {_where(path, raw, name)}: categories.{name}.description must be a string")
        categories[name] = desc
    rules = doc.get("rules", [])
    if not isinstance(rules, list):
        raise ConfigError(f"policy file {path}: rules must be an array of tables ([[rules]])")
    for n, spec in enumerate(rules):
        if not isinstance(spec, dict):
            raise ConfigError(f"policy file {path}: rules[{n}] must be a table")
        rid = spec.get("id")
        if not isinstance(rid, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", rid):
            raise ConfigError(f"policy file {path}: rules[{n}].id must be a name like 'fraud.stolen_cards', "
                              f"got {rid!r}")
        loc = _where(path, raw, rid)
        bad = set(spec) - _RULE_KEYS
        if bad:
            raise ConfigError(f"policy file {loc}: rule {rid!r} has unknown key(s) {sorted(bad)}; "
                              f"allowed: {', '.join(sorted(_RULE_KEYS))}")
        base[rid] = {**base.get(rid, {}), **spec, "_where": loc}


def _build(rid: str, spec: dict[str, Any], categories: Mapping[str, str]) -> Rule:
    loc = spec.get("_where", "policy")

    def err(msg: str) -> ConfigError:
        return ConfigError(f"policy file {loc}: rule {rid!r}: {msg}")

    for key in ("category", "patterns"):
        if key not in spec:
            raise err(f"missing required key {key!r}")
    category = spec["category"]
    if category not in categories:
        raise err(f"category {category!r} is not declared; known: {', '.join(sorted(categories))}")
    severity = spec.get("severity", "refuse")
    if severity not in SEVERITIES:
        raise err(f"severity must be 'refuse' or 'warn', got {severity!r}")
    applies = _strings(spec.get("applies_to", list(WHERES)), "applies_to", err)
    if any(a not in WHERES for a in applies):
        raise err(f"applies_to entries must be among {', '.join(WHERES)}, got {list(applies)}")
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise err(f"enabled must be true or false, got {enabled!r}")
    window = spec.get("window", DEFAULT_WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or window < 0:
        raise err(f"window must be a non-negative integer, got {window!r}")
    message = spec.get("message", "")
    if not isinstance(message, str):
        raise err("message must be a string")
    fields: dict[str, tuple[str, ...]] = {}
    for key in ("patterns", "requires_any", "unless", "unless_near"):
        fields[key] = _strings(spec.get(key, []), key, err)
        for i, p in enumerate(fields[key]):
            try:
                _compile(p)
            except re.error as e:
                raise err(f"{key}[{i}] is not a valid regular expression ({e}): {p!r}") from None
    if not fields["patterns"]:
        raise err("patterns must not be empty")
    rule = Rule(id=rid, category=str(category), severity=severity, patterns=fields["patterns"],
                requires_any=fields["requires_any"], unless=fields["unless"], unless_near=fields["unless_near"],
                applies_to=tuple(a for a in WHERES if a in applies), enabled=enabled, message=message, window=window)
    return rule.compiled()


DEFAULT_POLICY_NAME = "default_policy.toml"


def default_policy_text() -> str:
    return resources.files("agent.loop.policy").joinpath(DEFAULT_POLICY_NAME).read_text(encoding="utf-8")


def load_policy(path: str | Path | None = None) -> Policy:
    """The default policy, merged with a user policy file if one is given.

    A user rule with a default's id overrides the fields it sets (`enabled = false` disables it); new ids
    add rules; `[policy] disable = ["id", ...]` disables rules by id and `replace_defaults = true` drops the
    defaults. A missing, invalid or inconsistent file raises ConfigError naming the file, the line of the
    rule where it can be found, and the key."""
    categories: dict[str, str] = {}
    merged: dict[str, dict[str, Any]] = {}
    docs: list[tuple[str, str, dict[str, Any]]] = []
    user: tuple[str, str, dict[str, Any]] | None = None
    if path is not None:
        p = Path(path)
        try:
            raw = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"policy file {p}: cannot be read ({e.strerror or e})") from None
        user = (str(p), raw, _parse(raw, str(p)))
        head = user[2].get("policy", {})
        if not isinstance(head, dict):
            raise ConfigError(f"policy file {p}: [policy] must be a table")
        bad = set(head) - _POLICY_KEYS
        if bad:
            raise ConfigError(f"policy file {_where(str(p), raw, None)}: [policy] has unknown key(s) {sorted(bad)}; "
                              f"allowed: {', '.join(sorted(_POLICY_KEYS))}")
    replace_defaults = bool(user and user[2].get("policy", {}).get("replace_defaults", False))
    if not replace_defaults:
        raw_default = default_policy_text()
        docs.append((f"<default>/{DEFAULT_POLICY_NAME}", raw_default, _parse(raw_default, DEFAULT_POLICY_NAME)))
    if user is not None:
        docs.append(user)
    for where, raw, doc in docs:
        _merge(merged, doc, where, raw, categories)
    disable: tuple[str, ...] = ()
    window = DEFAULT_WINDOW
    if user is not None:
        head = user[2].get("policy", {})
        disable = _strings(head.get("disable", []), "[policy] disable", lambda m: ConfigError(f"policy file {user[0]}: {m}"))
        unknown = [d for d in disable if d not in merged]
        if unknown:
            raise ConfigError(f"policy file {user[0]}: [policy] disable names unknown rule(s) {unknown}")
        window = head.get("window", DEFAULT_WINDOW)
        if not isinstance(window, int) or isinstance(window, bool) or window < 0:
            raise ConfigError(f"policy file {user[0]}: [policy] window must be a non-negative integer")
    rules: list[Rule] = []
    for rid, spec in merged.items():
        spec = {"window": window, **spec}
        rule = _build(rid, spec, categories)
        if rid in disable:
            rule = replace(rule, enabled=False)
        rules.append(rule)
    return Policy(categories=categories, rules=tuple(rules), source=str(path) if path else "default")


__all__ = ["DEFAULT_WINDOW", "Policy", "PolicyDecision", "Rule", "Severity", "View", "Where", "default_policy_text",
           "load_policy", "normalise", "views"]
