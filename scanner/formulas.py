"""Remote references and DDE functions in spreadsheet formulas.

Excel reads `application|topic!item` in a formula as a remote reference: a DDE conversation
with `application` about `topic`, asking for `item` ([MS-XLS] 2.5.198.103 PtgNameX and
[MS-XLSX] 2.2.2 Formulas, external references through a DDE link; ECMA-376 Part 1, 18.14.4
ddeLink). When no DDE server answers to `application`, Excel offers to start it with the
topic as its arguments, which is how `=cmd|'/c calc.exe'!A0` runs cmd.exe. LibreOffice
offers the same through its `DDE(application; topic; item)` function, and Excel 4 macro
sheets through `INITIATE(application, topic)`.

The formula is tokenised, not searched with a pattern, so that text inside string literals
(`"..."`, with `""` for a quote) is never read as a reference, and quoted names (`'...'`,
with `''` for an apostrophe) keep the characters Excel keeps.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from scanner.analysis import dde_finding
from scanner.model import (
    DdeCall,
    Evidence,
    Finding,
    Formula,
    HostApplication,
    ScanConfig,
    Technique,
)

# Excel refuses a formula longer than 8,192 characters and a cell longer than 32,767; text
# past twice the larger limit cannot be a formula Excel evaluates, so it is not tokenised.
MAX_FORMULA_CHARS = 65_536

# Bounds on reading DDE()/INITIATE() calls, so that a crafted formula (thousands of
# unclosed "DDE(" in a row) costs linear time: real calls are short and few.
_MAX_CONCAT_OPERANDS = 256
_MAX_CALL_TOKENS = 4096
_MAX_CALLS = 256


class _Kind(enum.Enum):
    STRING = "string"
    QUOTED = "quoted"
    SPACE = "space"
    PIPE = "pipe"
    BANG = "bang"
    AMP = "amp"
    LPAREN = "lparen"
    RPAREN = "rparen"
    SEP = "sep"
    OP = "op"
    WORD = "word"


class _Token(NamedTuple):
    """One lexical token (a tuple: formulas are tokenised by the million in big files)."""

    kind: _Kind
    text: str
    start: int
    end: int
    closed: bool = True

    @property
    def value(self) -> str:
        """The text a literal or quoted name stands for, its escapes undone."""
        if self.kind is _Kind.STRING:
            inner = self.text[1:-1] if self.closed else self.text[1:]
            return inner.replace('""', '"')
        if self.kind is _Kind.QUOTED:
            inner = self.text[1:-1] if self.closed else self.text[1:]
            return inner.replace("''", "'")
        return self.text


# Unrolled loops ("[^"]*(?:""[^"]*)*") keep the literal patterns linear on unterminated input.
_TOKEN = re.compile(
    r"""
    (?P<string>"[^"]*(?:""[^"]*)*"?)
    |(?P<quoted>'[^']*(?:''[^']*)*'?)
    |(?P<space>\s+)
    |(?P<pipe>\|)
    |(?P<bang>!)
    |(?P<amp>&)
    |(?P<lparen>\()
    |(?P<rparen>\))
    |(?P<sep>[,;])
    |(?P<op>[-+*/^=<>%@{}])
    |(?P<word>[^\s"'|!&(),;\-+*/^=<>%@{}]+)
    """,
    re.VERBOSE,
)

_KINDS = {
    "string": _Kind.STRING,
    "quoted": _Kind.QUOTED,
    "space": _Kind.SPACE,
    "pipe": _Kind.PIPE,
    "bang": _Kind.BANG,
    "amp": _Kind.AMP,
    "lparen": _Kind.LPAREN,
    "rparen": _Kind.RPAREN,
    "sep": _Kind.SEP,
    "op": _Kind.OP,
    "word": _Kind.WORD,
}


# Kinds by group number: cheaper per token than looking up the group name.
_KIND_BY_INDEX = (
    _Kind.WORD,
    *(_KINDS[name] for name in sorted(_TOKEN.groupindex, key=_TOKEN.groupindex.__getitem__)),
)


def _tokenise(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    append = tokens.append
    for match in _TOKEN.finditer(text):
        kind = _KIND_BY_INDEX[match.lastindex or 0]
        token = match.group()
        start, end = match.span()
        if kind is _Kind.STRING:
            # An opening quote, pairs of doubled quotes, and a closing quote if there is one.
            append(_Token(kind, token, start, end, token.count('"') % 2 == 0))
        elif kind is _Kind.QUOTED:
            append(_Token(kind, token, start, end, token.count("'") % 2 == 0))
        else:
            append(_Token(kind, token, start, end))
    return tokens


@dataclass(frozen=True)
class RemoteReference:
    """One DDE conversation a formula asks for.

    `raw` is the exact substring of the formula; `canonical` is the reference as Excel acts
    on it, written `application|'topic'!item`; `keyword` says which syntax asked for it
    ("remote reference", "DDE()" or "INITIATE()").
    """

    application: str
    topic: str
    item: str
    raw: str
    canonical: str
    steps: tuple[str, ...] = ()
    keyword: str = "remote reference"


@dataclass(frozen=True)
class ExternalLinkReference:
    """A reference through the workbook's external-link table: `[1]!item`, `'[1]Sheet'!A1`.

    `index` is the 1-based position in the workbook's externalReferences ([MS-XLSX] 2.2.2,
    ECMA-376 Part 1, 18.2.9); the link part it leads to decides what it means.
    """

    index: int
    sheet: str
    item: str
    raw: str


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.$:]+")
_PLAIN_APPLICATION = re.compile(r"[A-Za-z0-9_.]+")
# An unquoted application must read as a name: "5|x!y" in pipe-separated data is a number.
_APPLICATION_WORD = re.compile(r"[^\d\s]\S*")
_LINK_INDEX = re.compile(r"\[(\d{1,9})\](.*)", re.DOTALL)
_FUNCTION_PREFIXES = ("_xlfn.", "_xll.", "of:", "com.microsoft.", "org.openoffice.")
_CHAR_CODE = re.compile(r"\d{1,7}(?:\.0*)?")
# What a formula must contain for remote_references to find anything: an application (a
# quoted name, or a whole word that does not start with a digit) and a bar, followed by a
# quoted topic or by a word and "!"; or a DDE/INITIATE call. Spelled out rather than
# re.IGNORECASE, and tight, because it runs on every formula of a workbook and every line
# of bar-separated text. Every word is tried only from its start, so the search is linear.
_NOT_WORD = r"""\s"'|!&(),;\-+*/^=<>%@{}"""
_HINT = re.compile(
    rf"(?:'|(?<![^{_NOT_WORD}])(?<![|!])[^\d{_NOT_WORD}][^{_NOT_WORD}]*)"
    rf"\s*\|\s*(?:'|[^{_NOT_WORD}]+\s*!)"
    r"|[Dd][Dd][Ee]\s*\(|[Ii][Nn][Ii][Tt][Ii][Aa][Tt][Ee]\s*\("
)


def _may_match_hint(text: str) -> bool:
    """False when _HINT cannot match: it needs a bar, or "(" after DDE/INITIATE in any case.

    Plain substring tests, several times cheaper than the search itself, for the great
    majority of formulas (SUM(...), IF(...)) that hold neither.
    """
    if "|" in text:
        return True
    if "(" not in text:
        return False
    # lower() keeps neighbouring ASCII letters neighbours, so every "[Dd][Dd][Ee]" that
    # _HINT can match is a "dde" here (a non-ASCII letter can only add false hits).
    folded = text.lower()
    return "dde" in folded or "initiate" in folded


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def canonical_reference(application: str, topic: str, item: str | None = None) -> str:
    """`application|'topic'!item`, quoted the way Excel writes it; no `!item` when None."""
    app = application if _PLAIN_APPLICATION.fullmatch(application) else _quote(application)
    text = f"{app}|{_quote(topic)}"
    if item is not None:
        text += "!" + (item if _PLAIN_NAME.fullmatch(item) else _quote(item))
    return text


def normalise_width(text: str) -> tuple[str, tuple[str, ...]]:
    """Fold full-width and compatibility forms (＝ ｜ ＇ ！) to the characters Excel reads.

    Returns the text and the step to record when it changed (Unicode NFKC).
    """
    if text.isascii():
        return text, ()
    folded = unicodedata.normalize("NFKC", text)
    if folded == text:
        return text, ()
    return folded, ("full-width and compatibility characters folded (Unicode NFKC)",)


def may_hold_remote_reference(text: str) -> bool:
    """False when remote_references(text) is certain to find nothing (a cheap test)."""
    return _may_match_hint(text) and _HINT.search(text) is not None


def may_refer_to_dde(text: str) -> bool:
    """False when the text cannot hold a remote reference, DDE call or `[n]!` link reference.

    A cheap test for callers that see millions of formulas.
    """
    return "[" in text or (_may_match_hint(text) and _HINT.search(text) is not None)


def _next(tokens: list[_Token], index: int) -> int:
    """Index of the next token that is not white space (len(tokens) when none)."""
    while index < len(tokens) and tokens[index].kind is _Kind.SPACE:
        index += 1
    return index


def _previous(tokens: list[_Token], index: int) -> int:
    """Index of the previous token that is not white space (-1 when none)."""
    index -= 1
    while index >= 0 and tokens[index].kind is _Kind.SPACE:
        index -= 1
    return index


def _reference_at(
    text: str, tokens: list[_Token], index: int
) -> tuple[RemoteReference, int] | None:
    """A remote reference whose application is tokens[index]; with the index after it."""
    app = tokens[index]
    if app.kind is _Kind.QUOTED:
        if not app.closed or not app.value.strip():
            return None
    elif app.kind is not _Kind.WORD or not _APPLICATION_WORD.fullmatch(app.text):
        return None
    before = _previous(tokens, index)
    if before >= 0 and tokens[before].kind in (_Kind.BANG, _Kind.PIPE):
        # "Sheet!name|..." or "a|name|...": the word is part of another reference (or of
        # bar-separated data read as one field), not an operand of its own.
        return None
    pipe = _next(tokens, index + 1)
    if pipe >= len(tokens) or tokens[pipe].kind is not _Kind.PIPE:
        return None
    topic_index = _next(tokens, pipe + 1)
    if topic_index >= len(tokens):
        return None
    topic = tokens[topic_index]
    if topic.kind not in (_Kind.WORD, _Kind.QUOTED) or not topic.closed:
        return None
    spaced = pipe != index + 1 or topic_index != pipe + 1
    end = topic_index + 1
    item = ""
    has_item = False
    bang = _next(tokens, end)
    if bang < len(tokens) and tokens[bang].kind is _Kind.BANG:
        item_index = _next(tokens, bang + 1)
        spaced = spaced or bang != end
        end = bang + 1
        if item_index < len(tokens):
            candidate = tokens[item_index]
            if candidate.kind in (_Kind.WORD, _Kind.QUOTED, _Kind.STRING) and candidate.closed:
                spaced = spaced or item_index != bang + 1
                item = candidate.value
                has_item = True
                end = item_index + 1
    after = _next(tokens, end)
    if after < len(tokens) and tokens[after].kind in (_Kind.BANG, _Kind.PIPE):
        # "a|'b'|c" and "a|b!c!d" are not operands Excel can read: data, not a reference.
        return None
    if topic.kind is _Kind.WORD and not has_item:
        # An unquoted word either side of a bar with nothing after it is data ("a|b"), not
        # the application|topic!item form.
        return None
    steps: list[str] = []
    if app.kind is _Kind.QUOTED:
        steps.append(f"quoted application name read as {app.value!r}")
    if topic.kind is _Kind.QUOTED and "''" in topic.text:
        steps.append("doubled apostrophes in the topic read as one")
    if spaced:
        steps.append("white space around '|' or '!' ignored")
    if not has_item:
        steps.append("no item after the topic")
    raw = text[app.start : tokens[end - 1].end]
    canonical = canonical_reference(app.value, topic.value, item if has_item else None)
    if canonical != raw:
        steps.append(f"remote reference {raw} read as {canonical}")
    return (
        RemoteReference(
            application=app.value,
            topic=topic.value,
            item=item,
            raw=raw,
            canonical=canonical,
            steps=tuple(steps),
        ),
        end,
    )


def _function_name(token: _Token) -> str:
    name = token.text.casefold()
    for prefix in _FUNCTION_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def _arguments(tokens: list[_Token], open_index: int) -> tuple[list[list[_Token]], int] | None:
    """The argument token lists of a call whose '(' is at open_index, and the index after ')';
    None when the call is never closed (a formula Excel would refuse, or a CSV field cut at a
    separator that the call's own arguments use)."""
    args: list[list[_Token]] = [[]]
    depth = 1
    index = open_index + 1
    stop = min(len(tokens), open_index + _MAX_CALL_TOKENS)
    while index < stop:
        token = tokens[index]
        if token.kind is _Kind.LPAREN:
            depth += 1
        elif token.kind is _Kind.RPAREN:
            depth -= 1
            if depth == 0:
                return args, index + 1
        elif token.kind is _Kind.SEP and depth == 1:
            args.append([])
            index += 1
            continue
        args[-1].append(token)
        index += 1
    return None


def _constant(tokens: list[_Token]) -> str | None:
    """The value of `"a" & "b" & CHAR(99)`, or None when any operand is not a constant."""
    significant = [token for token in tokens if token.kind is not _Kind.SPACE]
    if not significant:
        return ""
    pieces: list[str] = []
    index = 0
    operands = 0
    while index < len(significant):
        operands += 1
        if operands > _MAX_CONCAT_OPERANDS:
            return None
        token = significant[index]
        if token.kind is _Kind.STRING and token.closed:
            pieces.append(token.value)
            index += 1
        elif (
            token.kind is _Kind.WORD
            and _function_name(token) == "char"
            and index + 3 < len(significant)
            and significant[index + 1].kind is _Kind.LPAREN
            and significant[index + 2].kind is _Kind.WORD
            and _CHAR_CODE.fullmatch(significant[index + 2].text)
            and significant[index + 3].kind is _Kind.RPAREN
        ):
            code = int(float(significant[index + 2].text))
            if not 1 <= code <= 255:
                return None
            pieces.append(bytes([code]).decode("cp1252", errors="replace"))
            index += 4
        else:
            return None
        if index < len(significant):
            if significant[index].kind is not _Kind.AMP:
                return None
            index += 1
            if index == len(significant):
                return None
    return "".join(pieces)


def _source(text: str, tokens: list[_Token]) -> str:
    significant = [token for token in tokens if token.kind is not _Kind.SPACE]
    if not significant:
        return ""
    return text[significant[0].start : significant[-1].end]


def _function_at(text: str, tokens: list[_Token], index: int) -> tuple[RemoteReference, int] | None:
    """A DDE(...) or INITIATE(...) call whose name is tokens[index]."""
    token = tokens[index]
    if token.kind is not _Kind.WORD:
        return None
    name = _function_name(token)
    if name not in ("dde", "initiate"):
        return None
    open_index = _next(tokens, index + 1)
    if open_index >= len(tokens) or tokens[open_index].kind is not _Kind.LPAREN:
        return None
    parsed = _arguments(tokens, open_index)
    if parsed is None:
        return None
    args, end = parsed
    keyword = "DDE()" if name == "dde" else "INITIATE()"
    wanted = 3 if name == "dde" else 2
    values: list[str] = []
    steps: list[str] = []
    for position, arg in enumerate(args[:wanted]):
        value = _constant(arg)
        if value is None:
            value = _source(text, arg)
            steps.append(f"argument {position + 1} is computed; shown as written: {value}")
        elif any(t.kind is _Kind.AMP or t.kind is _Kind.WORD for t in arg):
            steps.append(f"argument {position + 1} concatenated to {value!r}")
        values.append(value)
    while len(values) < wanted:
        values.append("")
    application, topic = values[0], values[1]
    item = values[2] if name == "dde" else ""
    if not application.strip():
        return None
    raw = text[token.start : tokens[end - 1].end]
    canonical = canonical_reference(application, topic, item if len(args) >= 3 else None)
    steps.append(f"{keyword[:-2]} function {raw} read as {canonical}")
    return (
        RemoteReference(
            application=application,
            topic=topic,
            item=item,
            raw=raw,
            canonical=canonical,
            steps=tuple(steps),
            keyword=keyword,
        ),
        # Continue inside the arguments: a remote reference may sit in one of them.
        open_index + 1,
    )


def _bounded(formula: str) -> tuple[str, tuple[str, ...]]:
    if len(formula) <= MAX_FORMULA_CHARS:
        return formula, ()
    return formula[:MAX_FORMULA_CHARS], (
        f"formula of {len(formula)} characters: only the first {MAX_FORMULA_CHARS} read",
    )


def remote_references(formula: str) -> tuple[RemoteReference, ...]:
    """Every DDE conversation the formula asks for, in the order they appear."""
    if not _may_match_hint(formula) or not _HINT.search(formula):
        return ()
    text, limit_steps = _bounded(formula)
    tokens = _tokenise(text)
    found: list[RemoteReference] = []
    count = len(tokens)
    calls = 0
    index = 0
    while index < count:
        token = tokens[index]
        hit: tuple[RemoteReference, int] | None = None
        if token.kind is _Kind.WORD or token.kind is _Kind.QUOTED:
            # Only a name followed by a bar, or a call named like DDE/INITIATE, can start a
            # reference: the full checks run for those tokens alone.
            following = index + 1
            if following < count and tokens[following].kind is _Kind.SPACE:
                following += 1
            if following < count and tokens[following].kind is _Kind.PIPE:
                hit = _reference_at(text, tokens, index)
            if hit is None and calls < _MAX_CALLS and token.text[-3:].lower() in ("dde", "ate"):
                calls += 1
                hit = _function_at(text, tokens, index)
        if hit is None:
            index += 1
            continue
        reference, index = hit
        if limit_steps:
            reference = RemoteReference(
                application=reference.application,
                topic=reference.topic,
                item=reference.item,
                raw=reference.raw,
                canonical=reference.canonical,
                steps=limit_steps + reference.steps,
                keyword=reference.keyword,
            )
        found.append(reference)
    return tuple(found)


def external_link_references(formula: str) -> tuple[ExternalLinkReference, ...]:
    """Every `[n]...!item` reference to the workbook's external-link table."""
    if "[" not in formula:
        return ()
    text, _ = _bounded(formula)
    tokens = _tokenise(text)
    found: list[ExternalLinkReference] = []
    for index, token in enumerate(tokens):
        if token.kind not in (_Kind.WORD, _Kind.QUOTED) or not token.closed:
            continue
        match = _LINK_INDEX.fullmatch(token.value)
        if match is None or int(match.group(1)) == 0:
            continue
        bang = _next(tokens, index + 1)
        if bang >= len(tokens) or tokens[bang].kind is not _Kind.BANG:
            continue
        end = tokens[bang].end
        item = ""
        item_index = _next(tokens, bang + 1)
        if item_index < len(tokens):
            candidate = tokens[item_index]
            if candidate.kind in (_Kind.WORD, _Kind.QUOTED, _Kind.STRING) and candidate.closed:
                item = candidate.value
                end = candidate.end
        found.append(
            ExternalLinkReference(
                index=int(match.group(1)),
                sheet=match.group(2),
                item=item,
                raw=text[token.start : end],
            )
        )
    return tuple(found)


def findings_for_formula(
    formula: Formula,
    host: HostApplication,
    config: ScanConfig,
    *,
    raw: str | None = None,
) -> list[Finding]:
    """One DDE_FORMULA finding per remote reference or DDE function in the formula.

    `raw` is the text as stored when `formula.text` had to be normalised to be read (a CSV
    field with full-width characters); it defaults to `formula.text`.
    """
    findings: list[Finding] = []
    for reference in remote_references(formula.text):
        call = DdeCall(
            application=reference.application,
            topic=reference.topic,
            item=reference.item,
            keyword=reference.keyword,
            automatic=True,
        )
        evidence = Evidence(
            raw=formula.text if raw is None else raw,
            deobfuscated=reference.canonical,
            steps=formula.steps + reference.steps,
        )
        findings.append(
            dde_finding(call, Technique.DDE_FORMULA, evidence, formula.location, host, config)
        )
    return findings
