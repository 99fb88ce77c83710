"""Kusto semantics of the runtime rule, evaluated statically (scanner.kql)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner import kql
from scanner.model import ProcessPrediction


@pytest.mark.parametrize(
    ("haystack", "needle", "expected"),
    [
        ("North America", "america", True),
        ("powershell -enc SQBFAFgA", "-enc", True),
        ("powershell -EncodedCommand SQBFAFgA", "-enc", False),
        ("powershell -EncodedCommand SQBFAFgA", "-EncodedCommand", True),
        ("powershell -encodedcommand x", "-EncodedCommand", True),
        ("curl https://example.invalid/a", "http", False),
        ("curl https://example.invalid/a", "https", True),
        ("curl http://example.invalid/a", "http", True),
        ("[Convert]::FromBase64String('aGk=')", "frombase64", False),
        ("[Convert]::FromBase64String('aGk=')", "base64", False),
        ("certutil -decode x.b64 --base64", "base64", True),
        ("iex(New-Object Net.WebClient).DownloadString('x')", "iex(", True),
        ("IEX (New-Object Net.WebClient)", "iex(", False),
        ("(New-Object Net.WebClient).DownloadString('x')", "WebClient", True),
        ("(New-Object Net.WebClient).DownloadString('x')", "DownloadString", True),
        ("Invoke-Expression $x", "invoke-expression", True),
        ("powershell -ExecutionPolicy Bypass", "-bypass", False),
        ("powershell -ep -bypass", "-bypass", True),
        ("powershell -w hidden", "-hidden", False),
        ("CMD.EXE", "cmd.exe", True),
        ("my-cmd.exe", "cmd.exe", True),
        ("xcmd.exe", "cmd.exe", False),
        ("dotnet.exe", "net.exe", False),
        ("net.exe", "net.exe", True),
        ("net1.exe", "net.exe", False),
        ("a_cmd.exe", "cmd.exe", True),
        ("", "cmd.exe", False),
    ],
)
def test_has_is_a_whole_term_match(haystack: str, needle: str, expected: bool) -> None:
    assert kql.has(haystack, needle) is expected


def test_equals_ci() -> None:
    assert kql.equals_ci("eqnedt32.exe", "EQNEDT32.EXE")
    assert not kql.equals_ci("eqnedt32.exe.bak", "EQNEDT32.EXE")


def test_assess_office_spawn_with_suspicious_args() -> None:
    result = kql.assess(
        ProcessPrediction(
            "WINWORD.EXE", "powershell.exe", "powershell -enc AAAA http://example.invalid/x"
        )
    )
    assert result.is_office_spawn and result.would_alert and result.suspicious_args
    assert not result.is_dde_equation_editor
    assert result.matched_child_terms == ("powershell.exe",)
    assert result.matched_arg_terms == ("http", "-enc")
    assert result.gap == ""


def test_assess_reports_the_coverage_gap_for_unlisted_children() -> None:
    result = kql.assess(ProcessPrediction("WINWORD.EXE", "calc.exe", "calc.exe"))
    assert not result.would_alert and not result.is_office_spawn
    assert "calc.exe is not in its list" in result.gap


def test_assess_equation_editor_always_alerts() -> None:
    result = kql.assess(ProcessPrediction("EQNEDT32.EXE", "calc.exe", "calc.exe"))
    assert result.would_alert and result.is_dde_equation_editor and not result.is_office_spawn


@given(st.text(), st.sampled_from(kql.SUSPICIOUS_ARG_TERMS))
def test_has_implies_substring(text: str, needle: str) -> None:
    if kql.has(text, needle):
        assert needle.casefold() in text.casefold()


@given(st.text(alphabet=" ;,()'\"/"), st.sampled_from(kql.SUSPICIOUS_CHILDREN))
def test_term_surrounded_by_separators_always_matches(separators: str, needle: str) -> None:
    assert kql.has(separators + needle.upper() + separators, needle)
