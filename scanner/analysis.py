"""Turn what a parser found (a DDE call with its evidence) into a Finding.

This is the one place where severity, verdict and the plain-words explanation are decided,
so every format is judged by the same rules.
"""

from __future__ import annotations

import re

from scanner import kql
from scanner.mapping import EXECUTABLE_EXTENSIONS, predict_process
from scanner.model import (
    DdeCall,
    Evidence,
    Finding,
    HostApplication,
    KqlAssessment,
    Location,
    ProcessPrediction,
    ScanConfig,
    Severity,
    Technique,
    Verdict,
)

# Programs that DDE campaigns start besides the runtime rule's own list: living-off-the-land
# binaries that run code or fetch files. Starting any of them from a document is hostile.
LOLBINS: frozenset[str] = frozenset(
    name.casefold()
    for name in (
        *kql.SUSPICIOUS_CHILDREN,
        "hh.exe",
        "msbuild.exe",
        "installutil.exe",
        "regasm.exe",
        "regsvcs.exe",
        "cmstp.exe",
        "odbcconf.exe",
        "bash.exe",
        "wsl.exe",
        "conhost.exe",
        "explorer.exe",
        "ftp.exe",
        "finger.exe",
        "msdt.exe",
        "msxsl.exe",
        "control.exe",
        "esentutl.exe",
        "expand.exe",
        "extrac32.exe",
        "presentationhost.exe",
        "scriptrunner.exe",
        "syncappvpublishingserver.exe",
        "xwizard.exe",
        "verclsid.exe",
        "infdefaultinstall.exe",
        "mavinject.exe",
        "bginfo.exe",
        "dnscmd.exe",
        "ieexec.exe",
        "appsyncpublishingserver.exe",
        "certoc.exe",
        "cscript.exe",
        "tftp.exe",
        "powershell_ise.exe",
    )
)

# Programs that test payloads and proofs of concept start: harmless in themselves, but
# proof that the document runs programs.
DEMO_PROGRAMS: frozenset[str] = frozenset({"calc.exe", "notepad.exe", "mspaint.exe", "write.exe"})

# Office applications that are legitimate DDE servers for linked data (a Word field that
# pulls a range from a workbook). Starting one of them with a plain file topic is odd but
# not by itself a command.
OFFICE_DATA_SERVERS: frozenset[str] = frozenset(
    {"excel.exe", "winword.exe", "msaccess.exe", "powerpnt.exe", "msexcel.exe", "msword.exe"}
)

# Download cradles and encodings that the runtime rule's SuspiciousArgs list misses.
_EXTRA_CRADLE = re.compile(
    r"(?i)(?:\bftp://|\\\\[\w.-]+\\|\bnew-object\b|\binvoke-webrequest\b|\biwr\b|"
    r"\bscrobj\.dll\b|/i:|\burlcache\b|-urlcache|\bjavascript:|\bvbscript:)"
)
_SWITCH = re.compile(r"(?:^|\s)[/-][A-Za-z?]")


def _service_name(application: str) -> str:
    name = re.split(r"[\\/]", application.strip().strip("\"'"))[-1]
    return name[:-4] if name.casefold().endswith(".exe") else name


def is_allowed(call: DdeCall, config: ScanConfig) -> bool:
    allowed = {service.casefold() for service in config.allowed_dde_services}
    return _service_name(call.application).casefold() in allowed


def _command_like(call: DdeCall, process: ProcessPrediction) -> bool:
    """Does this conversation start a program with a command, not reach a data service?"""
    image = process.image.casefold()
    if image in LOLBINS or image in DEMO_PROGRAMS:
        return True
    application = call.application.strip()
    if process.path_traversal:
        return True
    if re.search(r"[\\/]", application) or application.casefold().endswith(EXECUTABLE_EXTENSIONS):
        return image not in OFFICE_DATA_SERVERS
    return bool(_SWITCH.search(call.topic) or " " in application)


def _rate(
    call: DdeCall, process: ProcessPrediction, assessment: KqlAssessment
) -> tuple[Severity, Verdict]:
    image = process.image.casefold()
    command_like = _command_like(call, process)
    cradle = assessment.suspicious_args or bool(_EXTRA_CRADLE.search(process.command_line))
    if cradle and (command_like or image in LOLBINS):
        return Severity.CRITICAL, Verdict.MALICIOUS
    if image in LOLBINS:
        return Severity.HIGH, Verdict.MALICIOUS
    if command_like:
        return Severity.MEDIUM, Verdict.MALICIOUS
    if image in OFFICE_DATA_SERVERS:
        return Severity.LOW, Verdict.SUSPICIOUS
    return Severity.MEDIUM, Verdict.SUSPICIOUS


_TECHNIQUE_WORDS = {
    Technique.DDE_FIELD: "a DDE field",
    Technique.DDE_FORMULA: "a DDE formula",
    Technique.DDE_LINK: "a DDE link",
    Technique.EQUATION_EDITOR: "an Equation Editor object",
}

_HOST_WORDS = {
    HostApplication.WORD: "Word",
    HostApplication.EXCEL: "Excel",
    HostApplication.OUTLOOK: "Outlook",
    HostApplication.EQUATION_EDITOR: "the Equation Editor",
}


def _trigger(call: DdeCall, technique: Technique, host: HostApplication) -> str:
    if technique is Technique.DDE_FIELD:
        if call.automatic:
            return (
                f"as soon as {_HOST_WORDS[host]} opens the document "
                "and the user accepts its prompts"
            )
        return "when the user updates the fields (or accepts the update prompt on open)"
    if technique is Technique.DDE_LINK:
        return "when the user enables or updates the workbook's external links"
    return f"when {_HOST_WORDS[host]} opens the file and the user enables its content"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _explain(
    call: DdeCall,
    technique: Technique,
    host: HostApplication,
    process: ProcessPrediction,
    assessment: KqlAssessment,
    allowed: bool,
) -> str:
    parts = [
        f"{_capitalised(_TECHNIQUE_WORDS[technique])} asks {_HOST_WORDS[host]} "
        f"({process.parent}) to talk to the DDE application '{call.application}'"
        + (f" about topic '{call.topic}'" if call.topic else "")
        + "."
    ]
    if allowed:
        parts.append(
            f"'{_service_name(call.application)}' is configured as an allowed DDE data service."
        )
    else:
        parts.append(
            f"No such server runs, so {_TECHNIQUE_WORDS[technique]} would start "
            f"{process.image or 'a program'} {_trigger(call, technique, host)}, "
            f"with the command line: {process.command_line}."
        )
    if assessment.would_alert:
        flags = [
            name
            for name, value in (
                ("IsOfficeSpawn", assessment.is_office_spawn),
                ("IsDDE_EquationEditor", assessment.is_dde_equation_editor),
                ("SuspiciousArgs", assessment.suspicious_args),
            )
            if value
        ]
        parts.append(f"The runtime KQL rule would alert, with {', '.join(flags)}.")
    else:
        parts.append(_capitalised(assessment.gap) + ".")
        if assessment.suspicious_args:
            parts.append(
                "Its command line would still have set SuspiciousArgs ("
                + ", ".join(assessment.matched_arg_terms)
                + ")."
            )
    return " ".join(parts)


def dde_finding(
    call: DdeCall,
    technique: Technique,
    evidence: Evidence,
    location: Location,
    host: HostApplication,
    config: ScanConfig,
) -> Finding:
    process = predict_process(call, host)
    assessment = kql.assess(process)
    allowed = is_allowed(call, config)
    if allowed:
        severity, verdict = Severity.INFO, Verdict.CLEAN
    else:
        severity, verdict = _rate(call, process, assessment)
    keyword = (
        call.keyword
        or {
            Technique.DDE_FIELD: "DDE",
            Technique.DDE_FORMULA: "remote reference",
            Technique.DDE_LINK: "ddeLink",
            Technique.EQUATION_EDITOR: "equation",
        }[technique]
    )
    title = f"{keyword}: {process.parent} -> {process.image or call.application}"
    return Finding(
        technique=technique,
        severity=severity,
        verdict=verdict,
        location=location,
        evidence=evidence,
        process=process,
        kql=assessment,
        title=title,
        explanation=_explain(call, technique, host, process, assessment, allowed),
        dde=call,
        allowed=allowed,
    )
