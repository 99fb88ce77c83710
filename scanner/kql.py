"""The runtime detection (shared/reference/t1559.002-runtime-detection.kql), evaluated statically.

Kusto semantics, from the Kusto Query Language documentation, "String operators"
(learn.microsoft.com/kusto/query/datatypes-string-operators):

* "By default, each string value is broken into maximal sequences of alphanumeric
  characters, and each of those sequences is made into a term."
* `has`: "Right-hand-side (RHS) is a whole term in left-hand-side (LHS)", case-insensitive.
  A needle that itself holds punctuation ("-enc", "cmd.exe", "iex(") matches where it
  occurs with term boundaries at its alphanumeric ends: the character before a needle
  that starts with a letter or digit must not be alphanumeric, likewise after one that
  ends with a letter or digit. So "-enc" does not match "-EncodedCommand", "http" does not
  match "https://", "base64" does not match "FromBase64String", but "cmd.exe" does match
  "my-cmd.exe".
* `has_any`: true when `has` is true for any element of the list.
* `=~`: case-insensitive equality.
"""

from __future__ import annotations

import re

from scanner.model import HostApplication, KqlAssessment, ProcessPrediction

OFFICE_PROCESSES: tuple[str, ...] = (
    "winword.exe",
    "excel.exe",
    "outlook.exe",
    "onenote.exe",
    "powerpnt.exe",
    "msaccess.exe",
    "mspub.exe",
)

SUSPICIOUS_CHILDREN: tuple[str, ...] = (
    "cmd.exe",
    "powershell.exe",
    "pwsh.exe",
    "wscript.exe",
    "cscript.exe",
    "mshta.exe",
    "rundll32.exe",
    "regsvr32.exe",
    "certutil.exe",
    "bitsadmin.exe",
    "msiexec.exe",
    "wmic.exe",
    "schtasks.exe",
    "net.exe",
    "net1.exe",
    "curl.exe",
    "wget.exe",
    "forfiles.exe",
    "pcalua.exe",
)

SUSPICIOUS_ARG_TERMS: tuple[str, ...] = (
    "http",
    "https",
    "-enc",
    "-EncodedCommand",
    "DownloadString",
    "WebClient",
    "iex(",
    "invoke-expression",
    "base64",
    "-bypass",
    "-hidden",
    "frombase64",
    "Start-BitsTransfer",
)

EQUATION_EDITOR_IMAGE = "EQNEDT32.EXE"


def _term_pattern(needle: str) -> re.Pattern[str]:
    # A boundary is asserted only on an alphanumeric end of the needle: "[^\W_]" is a letter
    # or digit, so "(?<![^\W_])" reads "not preceded by a term character".
    before = r"(?<![^\W_])" if needle[:1].isalnum() else ""
    after = r"(?![^\W_])" if needle[-1:].isalnum() else ""
    return re.compile(before + re.escape(needle) + after, re.IGNORECASE)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(needle: str) -> re.Pattern[str]:
    pattern = _PATTERNS.get(needle)
    if pattern is None:
        pattern = _PATTERNS[needle] = _term_pattern(needle)
    return pattern


def has(haystack: str, needle: str) -> bool:
    """Kusto `haystack has needle` (case-insensitive whole-term match)."""
    if not needle:
        return False
    return _pattern(needle).search(haystack) is not None


def has_any_terms(haystack: str, needles: tuple[str, ...]) -> tuple[str, ...]:
    """The needles for which Kusto `has` is true; `has_any` is true when this is non-empty."""
    return tuple(needle for needle in needles if has(haystack, needle))


def has_any(haystack: str, needles: tuple[str, ...]) -> bool:
    return bool(has_any_terms(haystack, needles))


def equals_ci(left: str, right: str) -> bool:
    """Kusto `=~`."""
    return left.casefold() == right.casefold()


def assess(process: ProcessPrediction) -> KqlAssessment:
    """Evaluate the three flags and the rule's where clause for one predicted event."""
    parent = process.parent
    child_terms = has_any_terms(process.image, SUSPICIOUS_CHILDREN)
    office_parent = has_any(parent, OFFICE_PROCESSES)
    is_office_spawn = office_parent and bool(child_terms)
    is_eqnedt = equals_ci(parent, EQUATION_EDITOR_IMAGE)
    arg_terms = has_any_terms(process.command_line, SUSPICIOUS_ARG_TERMS)
    would_alert = is_office_spawn or is_eqnedt
    gap = ""
    if not would_alert:
        if not office_parent:
            gap = (
                f"the runtime rule would stay silent: the parent {parent} is neither an "
                f"Office process in its list nor {EQUATION_EDITOR_IMAGE}"
            )
        else:
            gap = (
                f"the runtime rule would stay silent: {process.image or 'the child'} is not "
                "in its list of suspicious children"
            )
    return KqlAssessment(
        is_office_spawn=is_office_spawn,
        is_dde_equation_editor=is_eqnedt,
        suspicious_args=bool(arg_terms),
        would_alert=would_alert,
        matched_child_terms=child_terms,
        matched_arg_terms=arg_terms,
        gap=gap,
    )


def host_is_office(host: HostApplication) -> bool:
    return has_any(host.value, OFFICE_PROCESSES)
