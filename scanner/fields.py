"""Word field codes: evaluation of the obfuscation fields and the DDE / DDEAUTO grammar.

Shared by every format that stores Word fields (WordprocessingML, RTF, later .doc): a parser
hands over FieldStory objects, this module rebuilds each instruction the way Word's field
engine would, and reports every DDE or DDEAUTO field at any nesting depth.

Field-code syntax follows ECMA-376 Part 1, 17.16 (Fields and Hyperlinks): an instruction is
a field type keyword followed by arguments and switches; arguments with spaces are quoted
with '"'; a literal backslash is written "\\\\" and a literal quote "\\\"" (17.16.1); nested
fields are evaluated first and their results are spliced into the outer instruction
(17.16.2). QUOTE (17.16.5.46), SET (17.16.5.56) and REF (17.16.5.50) are what DDE droppers
use to hide the keyword, the program and its arguments, so they are evaluated here rather
than trusting the cached result text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from scanner.analysis import dde_finding
from scanner.model import (
    DdeCall,
    Evidence,
    FieldNode,
    FieldStory,
    Finding,
    HostApplication,
    Location,
    ScanConfig,
    Technique,
)

MAX_FIELD_DEPTH = 64
MAX_INSTRUCTION_CHARS = 1 << 20

DDE_KEYWORDS = frozenset({"DDE", "DDEAUTO"})
# Switches that take an argument (17.16.4): the next token belongs to the switch.
_SWITCHES_WITH_ARGUMENT = frozenset({"\\*", "\\@", "\\#"})
_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201d": "\u201d", "\u201e": "\u201d"}
_SPACE = re.compile(r"[\s\u00a0]+")
_KEYWORD = re.compile(r"[\s\u00a0]*([A-Za-z]+)")
_NUMBER = re.compile(r"^[+-]?\d{1,7}$")


@dataclass(frozen=True)
class Token:
    """One argument or switch of a field instruction, after field-code unescaping."""

    text: str
    quoted: bool
    switch: bool


def tokenize(instruction: str) -> tuple[Token, ...]:
    """Split an instruction into arguments and switches (ECMA-376 Part 1, 17.16.1)."""
    tokens: list[Token] = []
    index = 0
    length = len(instruction)
    while index < length:
        char = instruction[index]
        if char.isspace() or char == "\u00a0":
            index += 1
            continue
        if char in _QUOTES:
            closing = _QUOTES[char]
            index += 1
            chars: list[str] = []
            while index < length:
                char = instruction[index]
                if char == "\\" and index + 1 < length and instruction[index + 1] in '\\"':
                    chars.append(instruction[index + 1])
                    index += 2
                    continue
                if char == closing or char == '"':
                    index += 1
                    break
                chars.append(char)
                index += 1
            tokens.append(Token("".join(chars), quoted=True, switch=False))
            continue
        is_switch = char == "\\" and index + 1 < length and instruction[index + 1] not in '\\"'
        chars = []
        while index < length:
            char = instruction[index]
            if char.isspace() or char == "\u00a0" or (char in _QUOTES and chars and not is_switch):
                break
            if not is_switch and char == "\\" and index + 1 < length:
                following = instruction[index + 1]
                if following in '\\"':
                    chars.append(following)
                    index += 2
                    continue
            chars.append(char)
            index += 1
            if is_switch and len(chars) == 2:
                break
        tokens.append(Token("".join(chars), quoted=False, switch=is_switch))
    return tuple(tokens)


@dataclass(frozen=True)
class Evaluated:
    """A field instruction as written (nested fields in braces) and as Word evaluates it."""

    raw: str
    text: str
    steps: tuple[str, ...]


def keyword_of(instruction: str) -> str:
    match = _KEYWORD.match(instruction)
    return match.group(1).upper() if match else ""


def _arguments(tokens: Sequence[Token]) -> tuple[list[str], list[str]]:
    arguments: list[str] = []
    switches: list[str] = []
    iterator = iter(tokens)
    for token in iterator:
        if token.switch:
            switch = token.text
            if switch in _SWITCHES_WITH_ARGUMENT:
                following = next(iterator, None)
                if following is not None:
                    switch += " " + following.text
            switches.append(switch)
        else:
            arguments.append(token.text)
    return arguments, switches


class _Evaluator:
    """Evaluates fields with one shared bookmark table, as Word does for a whole document."""

    def __init__(self) -> None:
        self.bookmarks: dict[str, str] = {}

    def evaluate(self, node: FieldNode, depth: int = 0) -> Evaluated:
        raw_parts: list[str] = []
        text_parts: list[str] = []
        steps: list[str] = []
        size = 0
        for piece in node.instruction:
            if isinstance(piece, str):
                raw_parts.append(piece)
                text_parts.append(piece)
                size += len(piece)
            else:
                if depth >= MAX_FIELD_DEPTH:
                    steps.append(f"fields nested deeper than {MAX_FIELD_DEPTH} levels left out")
                    continue
                inner = self.evaluate(piece, depth + 1)
                value, how = self.result_of(piece, inner)
                raw_parts.append("{ " + inner.raw.strip() + " }")
                text_parts.append(value)
                steps.extend(inner.steps)
                if how:
                    steps.append(how)
                size += len(value) + len(inner.raw)
            if size > MAX_INSTRUCTION_CHARS:
                steps.append(f"instruction cut at {MAX_INSTRUCTION_CHARS} characters")
                break
        return Evaluated("".join(raw_parts), "".join(text_parts), tuple(steps))

    def result_of(self, node: FieldNode, evaluated: Evaluated) -> tuple[str, str]:
        """The text a nested field contributes to its parent's instruction, and how."""
        keyword = keyword_of(evaluated.text)
        body = evaluated.text.lstrip()[len(keyword) :] if keyword else evaluated.text
        arguments, _ = _arguments(tokenize(body))
        shown = _short(evaluated.text.strip())
        if keyword == "QUOTE":
            if arguments and all(_NUMBER.match(a) for a in arguments):
                codes = [int(a) for a in arguments]
                value = "".join(chr(c) for c in codes if 0 < c <= 0x10FFFF)
                return value, f"{{ {shown} }} -> character codes give {value!r}"
            value = " ".join(arguments)
            return value, f"{{ {shown} }} -> {value!r}"
        if keyword == "SET":
            if arguments:
                self.bookmarks[arguments[0].casefold()] = " ".join(arguments[1:])
            return "", ""
        if keyword == "REF" and arguments:
            name = arguments[0].casefold()
            if name in self.bookmarks:
                value = self.bookmarks[name]
                return value, f"{{ {shown} }} -> bookmark {arguments[0]} = {value!r}"
        if keyword == "IF":
            chosen = _evaluate_if(arguments)
            if chosen is not None:
                return chosen, f"{{ {shown} }} -> {chosen!r}"
        if keyword and keyword.casefold() in self.bookmarks and not arguments:
            value = self.bookmarks[keyword.casefold()]
            return value, f"{{ {shown} }} -> bookmark {keyword} = {value!r}"
        return node.result, (
            f"{{ {shown} }} -> cached result {node.result!r}" if node.result else ""
        )


def _evaluate_if(arguments: list[str]) -> str | None:
    """IF expression1 operator expression2 TrueText FalseText (17.16.5.31), simple forms only."""
    if len(arguments) < 4:
        return None
    left, operator, right, when_true = arguments[:4]
    when_false = arguments[4] if len(arguments) > 4 else ""
    try:
        left_value: float | str = float(left)
        right_value: float | str = float(right)
    except ValueError:
        left_value, right_value = left.casefold(), right.casefold()
    outcomes = {
        "=": left_value == right_value,
        "<>": left_value != right_value,
    }
    if isinstance(left_value, float) and isinstance(right_value, float):
        outcomes.update(
            {
                "<": left_value < right_value,
                ">": left_value > right_value,
                "<=": left_value <= right_value,
                ">=": left_value >= right_value,
            }
        )
    if operator not in outcomes:
        return None
    return when_true if outcomes[operator] else when_false


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dde_call_from(instruction: str, node: FieldNode) -> DdeCall | None:
    """Parse DDE / DDEAUTO (17.16.5.11, 17.16.5.12): AppName TopicName [ItemName] switches."""
    keyword = keyword_of(instruction)
    if keyword not in DDE_KEYWORDS:
        return None
    body = instruction.lstrip()[len(keyword) :]
    arguments, switches = _arguments(tokenize(body))
    application = arguments[0] if arguments else ""
    topic = arguments[1] if len(arguments) > 1 else ""
    item = arguments[2] if len(arguments) > 2 else ""
    # \a on DDE makes the link automatic (updated on open), like DDEAUTO; a dirty field is
    # updated on open too.
    automatic = keyword == "DDEAUTO" or any(s.lower() == "\\a" for s in switches) or node.dirty
    return DdeCall(
        application=application,
        topic=topic,
        item=item,
        keyword=keyword,
        automatic=automatic,
        switches=tuple(switches),
    )


def _field_location(story: FieldStory, node: FieldNode, ordinal: int) -> Location:
    return story.location.at(node.detail or f"field {ordinal}")


def _walk_plain(fields: Sequence[FieldNode]) -> Iterator[tuple[FieldNode, str | None]]:
    """Every field in document order, nested ones included, without recursion; with each
    field's instruction text when it holds no nested field and _Evaluator.evaluate would
    return that text as is (None otherwise)."""
    stack: list[tuple[FieldNode, int]] = [(f, 0) for f in reversed(fields)]
    while stack:
        node, depth = stack.pop()
        pieces = node.instruction
        texts: list[str] = []
        for piece in pieces:
            if not isinstance(piece, str):
                break
            texts.append(piece)
        else:
            text = "".join(texts)
            yield node, (text if len(text) <= MAX_INSTRUCTION_CHARS else None)
            continue
        yield node, None
        if depth < MAX_FIELD_DEPTH:
            nested = [p for p in pieces if isinstance(p, FieldNode)]
            stack.extend((child, depth + 1) for child in reversed(nested))


def findings_for_stories(
    stories: Sequence[FieldStory], host: HostApplication, config: ScanConfig
) -> list[Finding]:
    """Every DDE / DDEAUTO field of a document, evaluated with the document's bookmarks."""
    return _findings(stories, host, config, exhaustive=False)


def _findings(
    stories: Sequence[FieldStory],
    host: HostApplication,
    config: ScanConfig,
    exhaustive: bool,
) -> list[Finding]:
    """`exhaustive` evaluates every field; otherwise a field with no nested field is passed
    over when its keyword shows it can neither set a bookmark nor be DDE: its evaluation
    reads no bookmark and changes nothing, so the result is the same (tests compare both)."""
    evaluator = _Evaluator()
    # Word updates fields top to bottom with one bookmark table per document; evaluating every
    # field once first fills that table from the SET fields wherever they are.
    candidates: list[list[tuple[int, FieldNode]]] = []
    for story in stories:
        kept: list[tuple[int, FieldNode]] = []
        for ordinal, (node, plain) in enumerate(_walk_plain(story.fields), start=1):
            if plain is None or exhaustive:
                evaluator.result_of(node, evaluator.evaluate(node))
                kept.append((ordinal, node))
                continue
            keyword = keyword_of(plain)
            if keyword == "SET":
                evaluator.result_of(node, evaluator.evaluate(node))
            elif keyword in DDE_KEYWORDS:
                kept.append((ordinal, node))
        candidates.append(kept)
    findings: list[Finding] = []
    for story, kept in zip(stories, candidates, strict=True):
        for ordinal, node in kept:
            evaluated = evaluator.evaluate(node)
            instruction = _SPACE.sub(" ", evaluated.text).strip()
            call = dde_call_from(instruction, node)
            if call is None:
                continue
            steps = list(evaluated.steps)
            if "\\\\" in evaluated.text or '\\"' in evaluated.text:
                steps.append("field-code escapes undone (\\\\ -> \\)")
            if call.keyword not in instruction[: len(call.keyword) + 1]:
                steps.append(f"keyword read case-insensitively as {call.keyword}")
            deobfuscated = _canonical(call)
            evidence = Evidence(
                raw=evaluated.raw.strip(), deobfuscated=deobfuscated, steps=tuple(steps)
            )
            findings.append(
                dde_finding(
                    call,
                    Technique.DDE_FIELD,
                    evidence,
                    _field_location(story, node, ordinal),
                    host,
                    config,
                )
            )
    return findings


def _canonical(call: DdeCall) -> str:
    parts = [call.keyword, _quote(call.application)]
    if call.topic or call.item:
        parts.append(_quote(call.topic))
    if call.item:
        parts.append(_quote(call.item))
    parts.extend(call.switches)
    return " ".join(p for p in parts if p)


def _quote(value: str) -> str:
    return f'"{value}"' if (not value or re.search(r'[\s"]', value)) else value
