"""The remote-reference grammar of scanner.formulas."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.formulas import (
    MAX_FORMULA_CHARS,
    ExternalLinkReference,
    canonical_reference,
    external_link_references,
    findings_for_formula,
    may_refer_to_dde,
    normalise_width,
    remote_references,
)
from scanner.model import (
    Formula,
    HostApplication,
    Location,
    ScanConfig,
    Technique,
    Verdict,
)

CMD = ("cmd", "/c calc", "A0", "cmd|'/c calc'!A0", "cmd|'/c calc'!A0")

# formula, application, topic, item, raw, canonical
POSITIVE = [
    ("=cmd|'/c calc.exe'!A0", "cmd", "/c calc.exe", "A0", "cmd|'/c calc.exe'!A0", None),
    ("cmd|'/c calc'!A0", *CMD),
    ("+cmd|'/c calc'!A0", *CMD),
    ("-cmd|'/c calc'!A0", *CMD),
    ("@cmd|'/c calc'!A0", *CMD),
    ("=+-@cmd|'/c calc'!A0", *CMD),
    ("-2+3+cmd|'/c calc'!A0", *CMD),
    ("= -2 + 3 + cmd|'/c calc'!A0", *CMD),
    ("@SUM(1+1)*cmd|' /C calc'!A0", "cmd", " /C calc", "A0", "cmd|' /C calc'!A0", None),
    ("=A1&cmd|'/c calc'!A0", *CMD),
    ('=HYPERLINK("https://example.invalid","x")&cmd|\'/c calc\'!A0', *CMD),
    ("=SUM(cmd|'/c calc'!A0)", *CMD),
    ("=SUM(1,cmd|'/c calc'!A0;2)", *CMD),
    (
        "='C:\\Windows\\System32\\cmd.exe'|'/c calc'!A0",
        "C:\\Windows\\System32\\cmd.exe",
        "/c calc",
        "A0",
        "'C:\\Windows\\System32\\cmd.exe'|'/c calc'!A0",
        None,
    ),
    (
        "=MSEXCEL|'\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe'!''",
        "MSEXCEL",
        "\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe",
        "",
        "MSEXCEL|'\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe'!''",
        None,
    ),
    ("=cmd|'/c calc'!_xlbgnm.A1", "cmd", "/c calc", "_xlbgnm.A1", "cmd|'/c calc'!_xlbgnm.A1", None),
    ("=cmd|'/c calc'!'A0'", "cmd", "/c calc", "A0", "cmd|'/c calc'!'A0'", "cmd|'/c calc'!A0"),
    ("=cmd | '/c calc' ! A0", "cmd", "/c calc", "A0", "cmd | '/c calc' ! A0", "cmd|'/c calc'!A0"),
    ("=cmd|'/c calc'", "cmd", "/c calc", "", "cmd|'/c calc'", None),
    ("=cmd|calc!A0", "cmd", "calc", "A0", "cmd|calc!A0", "cmd|'calc'!A0"),
    ("=cmd|'echo it''s'!A0", "cmd", "echo it's", "A0", "cmd|'echo it''s'!A0", None),
    (
        "='my app'|'x'!A0",
        "my app",
        "x",
        "A0",
        "'my app'|'x'!A0",
        None,
    ),
    ("=cmd|'/c calc'!A0\n", *CMD),
]


@pytest.mark.parametrize(("formula", "app", "topic", "item", "raw", "canonical"), POSITIVE)
def test_remote_reference_forms(
    formula: str, app: str, topic: str, item: str, raw: str, canonical: str | None
) -> None:
    (reference,) = remote_references(formula)
    assert reference.application == app
    assert reference.topic == topic
    assert reference.item == item
    assert reference.raw == raw
    assert reference.canonical == (canonical or raw)
    assert reference.keyword == "remote reference"
    assert raw in formula


def test_steps_say_what_was_undone() -> None:
    (spaced,) = remote_references("=cmd | '/c calc' ! A0")
    assert "white space around '|' or '!' ignored" in spaced.steps
    assert spaced.steps[-1] == "remote reference cmd | '/c calc' ! A0 read as cmd|'/c calc'!A0"
    (quoted,) = remote_references("='C:\\cmd.exe'|'it''s'!A0")
    assert quoted.steps[:2] == (
        "quoted application name read as 'C:\\\\cmd.exe'",
        "doubled apostrophes in the topic read as one",
    )
    (bare,) = remote_references("=cmd|'/c calc'!A0")
    assert bare.steps == ()
    (no_item,) = remote_references("=cmd|'/c calc'")
    assert no_item.steps == ("no item after the topic",)


def test_several_references_in_one_formula() -> None:
    found = remote_references("=cmd|'/c calc'!A0+notepad|'x.txt'!B1&'C:\\p.exe'|'-a'!''")
    assert [(r.application, r.topic, r.item) for r in found] == [
        ("cmd", "/c calc", "A0"),
        ("notepad", "x.txt", "B1"),
        ("C:\\p.exe", "-a", ""),
    ]


@pytest.mark.parametrize(
    "formula",
    [
        "=\"cmd|'/c calc'!A0\"",
        "=CONCAT(\"cmd|'/c calc'!A0\")",
        '="a""|""b"',
        "=SUM(A1:A3)",
        '=HYPERLINK("https://example.invalid")',
        '=HYPERLINK("https://example.invalid/a|b")',
        "-5",
        "+44 20 7946 0000",
        "@mentions",
        "=a|b",
        "-5|3|x",
        "-5|x!y",
        "=1|'x'!A0",
        "=cmd|'/c calc",
        "=cmd|",
        "|'x'!A0",
        "=''|'x'!A0",
        "=Sheet1!A1|'x'!A0",
        "-5|abc|'note'",
        "-0|0|note 0|x!y|+3|@a|abc|def!g",
        "-abc|def!g|h",
        "-abc|'x'|y",
        "",
        "=DDE()",
        '=DDE("";"x";"y")',
        "=ADDE(1)",
        '=DDE("cmd";"/c calc"',
        '=INITIATE("cmd"',
    ],
)
def test_no_reference(formula: str) -> None:
    assert remote_references(formula) == ()


@pytest.mark.parametrize(
    ("formula", "app", "topic", "item", "canonical"),
    [
        ('=DDE("cmd";"/c calc";"A1")', "cmd", "/c calc", "A1", "cmd|'/c calc'!A1"),
        ('=DDE("cmd","/c calc","A1")', "cmd", "/c calc", "A1", "cmd|'/c calc'!A1"),
        ('=dde( "cmd" ; "/c " & "calc" ; "" )', "cmd", "/c calc", "", "cmd|'/c calc'!''"),
        ('=DDE("cm"&"d";"/c calc")', "cmd", "/c calc", "", "cmd|'/c calc'"),
        ('=_xlfn.DDE("c"&CHAR(109)&"d";"/c calc";"A1")', "cmd", "/c calc", "A1", None),
        ('of:=DDE("soffice";"x.ods";"A1")', "soffice", "x.ods", "A1", "soffice|'x.ods'!A1"),
        ("=DDE(A1;B1;C1)", "A1", "B1", "C1", "A1|'B1'!C1"),
    ],
)
def test_dde_function(formula: str, app: str, topic: str, item: str, canonical: str | None) -> None:
    (reference,) = remote_references(formula)
    assert (reference.application, reference.topic, reference.item) == (app, topic, item)
    assert reference.keyword == "DDE()"
    assert reference.canonical == (canonical or "cmd|'/c calc'!A1")
    assert reference.raw in formula and reference.raw.casefold().removeprefix("_xlfn.").startswith(
        "dde"
    )


def test_dde_function_steps() -> None:
    (concatenated,) = remote_references('=DDE("cm"&"d";"/c calc";"A1")')
    assert concatenated.steps == (
        "argument 1 concatenated to 'cmd'",
        'DDE function DDE("cm"&"d";"/c calc";"A1") read as cmd|\'/c calc\'!A1',
    )
    (computed,) = remote_references('=DDE(A1;"x";"y")')
    assert computed.steps[0] == "argument 1 is computed; shown as written: A1"


def test_initiate() -> None:
    (reference,) = remote_references('=INITIATE("cmd","/c calc")')
    assert (reference.application, reference.topic, reference.item) == ("cmd", "/c calc", "")
    assert reference.keyword == "INITIATE()"
    assert reference.canonical == "cmd|'/c calc'"
    assert reference.raw == 'INITIATE("cmd","/c calc")'


def test_remote_reference_inside_dde_arguments_is_found_too() -> None:
    found = remote_references('=DDE("a";"b";cmd|\'/c calc\'!A0)')
    assert [(r.keyword, r.application) for r in found] == [
        ("DDE()", "a"),
        ("remote reference", "cmd"),
    ]


def test_external_link_references() -> None:
    assert external_link_references("[1]!_xlbgnm.A1") == (
        ExternalLinkReference(index=1, sheet="", item="_xlbgnm.A1", raw="[1]!_xlbgnm.A1"),
    )
    assert external_link_references("=SUM('[2]My Sheet'!A1,[3]S!'x y')") == (
        ExternalLinkReference(2, "My Sheet", "A1", "'[2]My Sheet'!A1"),
        ExternalLinkReference(3, "S", "x y", "[3]S!'x y'"),
    )
    assert external_link_references('="[1]!A1"') == ()
    assert external_link_references("[0]!A1") == ()
    assert external_link_references("Table1[Column]") == ()
    assert external_link_references("[1]!") == (ExternalLinkReference(1, "", "", "[1]!"),)


def test_canonical_reference_quotes_as_excel_does() -> None:
    assert canonical_reference("cmd", "/c calc", "A0") == "cmd|'/c calc'!A0"
    assert canonical_reference("a b", "it's", "x y") == "'a b'|'it''s'!'x y'"
    assert canonical_reference("cmd", "t") == "cmd|'t'"
    assert canonical_reference("cmd", "t", "") == "cmd|'t'!''"


def test_normalise_width() -> None:
    assert normalise_width("=cmd|'x'!A0") == ("=cmd|'x'!A0", ())
    folded, steps = normalise_width("＝ｃｍｄ｜＇／ｃ　ｃａｌｃ＇！Ａ０")
    assert folded == "=cmd|'/c calc'!A0"
    assert steps == ("full-width and compatibility characters folded (Unicode NFKC)",)
    assert normalise_width("é") == ("é", ())


def test_may_refer_to_dde() -> None:
    assert may_refer_to_dde("cmd|'x'!A0")
    assert may_refer_to_dde("[1]!A1")
    assert may_refer_to_dde('DDE("a";"b")')
    assert may_refer_to_dde('initiate ("a","b")')
    assert not may_refer_to_dde("SUM(A1:A3)*2")
    assert not may_refer_to_dde("-5|3|x")


def test_overlong_formula_is_read_up_to_the_limit() -> None:
    reference_text = "cmd|'/c calc'!A0"
    padding = "1+" * (MAX_FORMULA_CHARS // 2)
    (inside,) = remote_references("=" + reference_text + "+" + padding)
    assert inside.application == "cmd"
    assert inside.steps == (
        f"formula of {len(padding) + 18} characters: only the first {MAX_FORMULA_CHARS} read",
    )
    (short,) = remote_references("=" + padding[:1000] + reference_text)
    assert short.steps == ()
    assert remote_references("=" + padding + reference_text) == ()


def test_findings_for_formula() -> None:
    location = Location(("book.xlsx", "xl/worksheets/sheet1.xml"), "Sheet1!A1")
    formula = Formula("=SUM(1)+cmd|'/c calc.exe'!A0", location, ("from a test",))
    (finding,) = findings_for_formula(formula, HostApplication.EXCEL, ScanConfig())
    assert finding.technique is Technique.DDE_FORMULA
    assert finding.location == location
    assert finding.evidence.raw == "=SUM(1)+cmd|'/c calc.exe'!A0"
    assert finding.evidence.deobfuscated == "cmd|'/c calc.exe'!A0"
    assert finding.evidence.steps == ("from a test",)
    assert finding.dde is not None
    assert finding.dde.keyword == "remote reference"
    assert finding.dde.automatic
    assert (finding.dde.application, finding.dde.topic, finding.dde.item) == (
        "cmd",
        "/c calc.exe",
        "A0",
    )
    assert finding.process.parent == "EXCEL.EXE"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd /c calc.exe"
    assert finding.verdict is Verdict.MALICIOUS


def test_findings_for_formula_keeps_the_stored_text_as_raw() -> None:
    formula = Formula("=cmd|'/c calc'!A0", Location(("x.csv",), "row 1, column 1"))
    (finding,) = findings_for_formula(
        formula, HostApplication.EXCEL, ScanConfig(), raw="＝cmd｜'/c calc'!A0"
    )
    assert finding.evidence.raw == "＝cmd｜'/c calc'!A0"
    assert finding.evidence.deobfuscated == "cmd|'/c calc'!A0"


def test_traversal_through_msexcel() -> None:
    formula = Formula(
        "=MSEXCEL|'\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe'!''",
        Location(("x.csv",), "row 1, column 1"),
    )
    (finding,) = findings_for_formula(formula, HostApplication.EXCEL, ScanConfig())
    assert finding.process.image == "cmd.exe"
    assert finding.process.path_traversal
    assert finding.process.command_line == (
        "MSEXCEL\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe"
    )


def test_allowed_service_is_not_malicious() -> None:
    formula = Formula("=BLP|'IBM US Equity'!LAST_PRICE", Location(("x.xlsx",), "A1"))
    config = ScanConfig(allowed_dde_services=frozenset({"BLP"}))
    (finding,) = findings_for_formula(formula, HostApplication.EXCEL, config)
    assert finding.allowed
    assert finding.verdict is Verdict.CLEAN


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    for reference in remote_references(text):
        assert reference.application.strip()
    external_link_references(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_never_raises_on_formula_like_text(tail: str) -> None:
    for prefix in ("=", "=cmd|", "=DDE(", "='", '="', "=[1]!"):
        remote_references(prefix + tail)
        external_link_references(prefix + tail)


_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,15}", fullmatch=True)
_TOPIC = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=40)
_ITEM = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(_NAME, _TOPIC, _ITEM, st.sampled_from(["=", "+", "-", "@", "=1+", "=A1&", "=SUM("]))
def test_generated_reference_round_trips(app: str, topic: str, item: str, lead: str) -> None:
    reference_text = f"{app}|'{topic.replace(chr(39), chr(39) * 2)}'!{item}"
    found = remote_references(lead + reference_text + (")" if lead.endswith("(") else ""))
    assert len(found) == 1
    (reference,) = found
    assert (reference.application, reference.topic, reference.item) == (app, topic, item)
    assert reference.raw == reference_text
    assert reference.canonical == canonical_reference(app, topic, item)
