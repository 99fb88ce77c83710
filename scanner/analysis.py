"""Turn what a parser found (a DDE call with its evidence) into a Finding.

This is the one place where severity, verdict and the plain-words explanation are decided,
so every format is judged by the same rules.
"""

from __future__ import annotations

import re

from scanner import kql
from scanner.mapping import EXECUTABLE_EXTENSIONS, predict_process
from scanner.model import (
    ATTACK_SUBTECHNIQUE_ID,
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
    HostApplication.LIBREOFFICE: "LibreOffice",
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
        if host is HostApplication.EXCEL:
            return "when the user enables or updates the workbook's external links"
        return "when the user accepts updating the document's links"
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


# Equation Editor 3.0: EQNEDT32.EXE was removed from Office by the January 2018 security
# updates after the stack overflows CVE-2017-11882, CVE-2018-0802 and CVE-2018-0798 were
# exploited in the wild; T1203 is ATT&CK's "Exploitation for Client Execution".
ATTACK_EXPLOITATION_ID = "T1203"
_EQUATION_EDITOR_STORY = (
    "Equation Editor 3.0, a component built in 2000 that Microsoft removed from Office in "
    "January 2018 because documents exploited it (CVE-2017-11882, CVE-2018-0802, "
    "CVE-2018-0798)"
)


def _equation_process(command: str) -> ProcessPrediction:
    parent = HostApplication.EQUATION_EDITOR
    if command:
        return predict_process(DdeCall(application=command, topic=""), parent)
    return ProcessPrediction(
        parent=parent.value,
        image="",
        command_line="",
        steps=("no command line is visible in the equation data",),
    )


def equation_finding(
    identity: str,
    shapes: tuple[str, ...],
    cves: tuple[str, ...],
    command: str,
    indicators: tuple[str, ...],
    anomalies: tuple[str, ...],
    trigger: str,
    evidence: Evidence,
    location: Location,
) -> Finding:
    """Rate and explain one Equation Editor object.

    `identity` names the object in plain words ("an Equation Editor 3.0 object (...)");
    `shapes` describe the exploit-shaped records found, `cves` the CVEs they match;
    `command` is the command line the exploit hands to WinExec ("" when none is visible);
    `indicators` URLs and file names written in the equation data; `anomalies` what is
    malformed or contradictory; `trigger` completes "Windows starts EQNEDT32.EXE ...".

    An exploit shape is malicious and critical; a command or URL in the equation data
    without a known shape is malicious and high; an object whose data is damaged or
    contradicts its container is suspicious and medium; a well-formed equation is
    suspicious and low, with no exploit claimed.
    """
    process = _equation_process(command)
    assessment = kql.assess(process)
    if cves:
        severity, verdict = Severity.CRITICAL, Verdict.MALICIOUS
    elif command or indicators:
        severity, verdict = Severity.HIGH, Verdict.MALICIOUS
    elif anomalies:
        severity, verdict = Severity.MEDIUM, Verdict.SUSPICIOUS
    else:
        severity, verdict = Severity.LOW, Verdict.SUSPICIOUS
    parts = [
        f"The document embeds {identity}. Windows starts {process.parent} to load it "
        f"{trigger}: {_EQUATION_EDITOR_STORY}."
    ]
    if cves:
        parts.append(
            f"Its equation data has the shape of {', '.join(cves)}: " + "; ".join(shapes) + "."
        )
        if command:
            parts.append(
                "The overflowing data carries a command line for WinExec, so "
                f"{process.parent} would start {process.image or 'a program'}: "
                f"{process.command_line}."
            )
        else:
            parts.append(
                "No command line is visible in the equation data (exploits of this kind "
                "usually carry machine code instead), so the process it starts cannot be "
                "predicted."
            )
    elif command:
        parts.append(
            f"Its equation data holds the command line {process.command_line}, which no "
            "equation needs."
        )
    elif indicators:
        parts.append(
            "Its equation data names " + ", ".join(indicators) + ", which no equation needs."
        )
    elif anomalies:
        parts.append(
            "No exploit shape was seen, but the object cannot be cleared: "
            + "; ".join(anomalies)
            + "."
        )
    else:
        parts.append(
            "Its equation data is a well-formed equation with no exploit shape, so no "
            "exploit is claimed. Still, no supported Office version writes or opens such "
            "objects any more, so one in a document today is unusual: it is the carrier "
            "that Equation Editor exploits need."
        )
    if indicators and (cves or command):
        parts.append("The equation data also names " + ", ".join(indicators) + ".")
    if anomalies and (cves or command or indicators):
        parts.append("Also: " + "; ".join(anomalies) + ".")
    if assessment.would_alert:
        flags = ["IsDDE_EquationEditor"]
        if assessment.suspicious_args:
            flags.append("SuspiciousArgs")
        parts.append(
            f"The runtime KQL rule would alert on any process {process.parent} starts, "
            f"with {', '.join(flags)}."
        )
    label = cves[0] if cves else "Equation Editor object"
    title = f"{label}: {process.parent} -> {process.image or '(no command visible)'}"
    return Finding(
        technique=Technique.EQUATION_EDITOR,
        severity=severity,
        verdict=verdict,
        location=location,
        evidence=evidence,
        process=process,
        kql=assessment,
        title=title,
        explanation=" ".join(parts),
        attack_ids=(ATTACK_SUBTECHNIQUE_ID, ATTACK_EXPLOITATION_ID)
        if cves
        else (ATTACK_SUBTECHNIQUE_ID,),
        cves=cves,
    )


# The application that acts on each technique: the parent of whatever a rule-only finding
# would start when nothing better is known.
_RULE_HOSTS = {
    Technique.DDE_FIELD: HostApplication.WORD,
    Technique.DDE_FORMULA: HostApplication.EXCEL,
    Technique.DDE_LINK: HostApplication.EXCEL,
    Technique.EQUATION_EDITOR: HostApplication.EQUATION_EDITOR,
}


def rule_finding(
    rule: str,
    technique: Technique,
    severity: Severity,
    description: str,
    attack_ids: tuple[str, ...],
    evidence: Evidence,
    location: Location,
) -> Finding:
    """A finding that only a YARA rule saw: the rule matched decoded content in which no
    parser finding of its technique sits.

    No parser read the evidence, so nothing can be predicted about the process: the parent
    is the application that acts on the technique (Word for fields, Excel for formulas and
    links, EQNEDT32.EXE for equations), the image and command line are left empty and the
    explanation says they are unknown. The verdict follows the rule's severity, the one
    judgement its author made: critical (an exploit shape or a command, in the author's
    words) is malicious, info is reported without changing the verdict (clean), anything
    else is suspicious.
    """
    parent = _RULE_HOSTS[technique]
    process = ProcessPrediction(
        parent=parent.value,
        image="",
        command_line="",
        steps=("no parser recognised this evidence, so the program it would start is unknown",),
    )
    assessed = kql.assess(process)
    assessment = KqlAssessment(
        is_office_spawn=False,
        is_dde_equation_editor=assessed.is_dde_equation_editor,
        suspicious_args=False,
        would_alert=assessed.would_alert,
        gap=""
        if assessed.would_alert
        else "the runtime rule cannot be evaluated: the program this would start is unknown",
    )
    if severity is Severity.CRITICAL:
        verdict = Verdict.MALICIOUS
    elif severity is Severity.INFO:
        verdict = Verdict.CLEAN
    else:
        verdict = Verdict.SUSPICIOUS
    explanation = (
        f"The YARA rule {rule} matched: {description.rstrip('.')}. No parser finding covers "
        f"this evidence, so the program it would start cannot be predicted; "
        f"{_HOST_WORDS[parent]} ({parent.value}) would be its parent. The verdict follows "
        f"the rule's severity ({severity.label})."
    )
    if assessed.would_alert:
        explanation += (
            f" The runtime KQL rule would alert on any process {parent.value} starts, "
            "with IsDDE_EquationEditor."
        )
    return Finding(
        technique=technique,
        severity=severity,
        verdict=verdict,
        location=location,
        evidence=evidence,
        process=process,
        kql=assessment,
        title=f"YARA {rule}: {parent.value} -> (unknown program)",
        explanation=explanation,
        attack_ids=attack_ids or (ATTACK_SUBTECHNIQUE_ID,),
        rules=(rule,),
    )
