"""The YARA layer (scanner.yara_stage, scanner.streams, yara/*.yar, `ddescan rules`).

Real yara-python throughout: the shipped rules are compiled and matched, user rule folders
are written to tmp_path. Every sample is a harmless corpus file or an inline string.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yara
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from scanner import cli
from scanner.api import scan_bytes, scan_path
from scanner.config import ConfigError, load_config
from scanner.model import (
    FieldNode,
    FieldStory,
    FileFormat,
    Finding,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanLimits,
    Severity,
    Technique,
    Verdict,
)
from scanner.render import json_report
from scanner.rulecheck import check_rules, run_rule_tests
from scanner.streams import (
    DecodedStream,
    StreamCollector,
    StreamLabel,
    field_streams,
    instruction_text,
)
from scanner.yara_stage import (
    EXTERNALS,
    RuleError,
    describe_rules,
    load_rules,
    run_stage,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "corpus" / "samples"
SHIPPED = {
    "Cradle_PowerShell_Download",
    "LOLBin_Proxy_Execution",
    "CSV_DDE_Formula_Cell",
    "SYLK_DDE_Formula",
    "DDE_Field_Instruction",
    "DDE_Field_Quote_Char_Codes",
    "EquationEditor_Object",
    "EquationEditor_MTEF_Font_Overflow",
    "EquationEditor_MTEF_Matrix_Overflow",
    "Excel_DDE_Remote_Reference",
    "Excel_DDE_Link",
    "Excel_DDE_Path_Traversal",
}
NO_YARA = ScanConfig(yara_enabled=False)
FAR = float("inf")

ADVISORY_RULE = """
rule Advisory_Text
{
    meta:
        technique = "dde-field"
        attack_id = "T1559.002"
        severity = "critical"
        description = "Test rule: the advisory sentence of a corpus look-alike"
        reference = "https://example.invalid/advisory"
        sample_positive = "clean/dde-text-and-hyperlink.rtf"
        sample_negative = "rtf/ddeauto-cmd.rtf"
    strings:
        $text = "This advisory explains"
    condition:
        $text and stream_label == "raw-file"
}
"""


def shipped_names(report: Any) -> list[tuple[str, tuple[str, ...]]]:
    return [(finding.technique.value, finding.rules) for finding in report.findings]


def match_names(data: bytes, label: StreamLabel) -> set[str]:
    compiled = load_rules(()).compiled
    matches = compiled.match(data=data, externals={**EXTERNALS, "stream_label": label.value})
    return {str(match.rule) for match in matches}


def write_rule(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the shipped rules ---------------------------------------------------------------------


def test_sylk_rule_reads_expression_fields_not_escaped_text() -> None:
    head = b"ID;PWXL;N;E\r\nC;Y1;X1;K1\r\n"
    raw = StreamLabel.RAW_FILE
    assert "SYLK_DDE_Formula" in match_names(head + b"C;Y2;X1;K0;ECMD|' /C calc'!A0\r\nE", raw)
    assert "SYLK_DDE_Formula" in match_names(head + b"C;ECMD|' /C calc'!A0\r\nE", raw)
    assert "SYLK_DDE_Formula" not in match_names(head + b'C;Y2;X1;K"a;;E.g. x|y"\r\nE', raw)
    assert "SYLK_DDE_Formula" not in match_names(b"C;Y2;X1;K0;ECMD|' /C calc'!A0", raw)


def test_shipped_rules_compile_cleanly_with_complete_metadata() -> None:
    ruleset = load_rules(())
    assert ruleset.warnings == ()
    infos = describe_rules(ruleset)
    assert {info.name for info in infos} == SHIPPED
    assert {Path(info.path).name for info in infos} == {
        "dde_fields.yar",
        "excel_remote_refs.yar",
        "csv_sylk_formulas.yar",
        "equation_editor.yar",
        "cradles_lolbins.yar",
    }
    report = check_rules(ruleset)
    assert report.failures == ()
    assert [(c.info.name, c.failures, c.notes) for c in report.rules if c.failures or c.notes] == []
    assert report.ok
    font = next(info for info in infos if info.name == "EquationEditor_MTEF_Font_Overflow")
    assert font.techniques == (Technique.EQUATION_EDITOR,)
    assert font.severity is Severity.CRITICAL
    assert font.attack_ids == ("T1559.002", "T1203")
    assert font.sample_positive == "equation/cve-2017-11882-font.xlsx"


def test_every_shipped_rule_fires_on_its_sample_and_on_no_clean_look_alike() -> None:
    results = run_rule_tests()
    assert {result.info.name for result in results} == SHIPPED
    assert [(r.info.name, r.failures) for r in results if r.failures] == []
    manifest = json.loads((ROOT / "corpus" / "manifest.json").read_text(encoding="utf-8"))
    clean = {e["path"] for e in manifest["samples"] if e["expect"]["verdict"] == "clean"}
    assert len(clean) >= 10
    for result in results:
        assert result.info.sample_positive in result.fired_on
        assert result.info.sample_negative not in result.fired_on
        assert not clean & set(result.fired_on), result.info.name


def test_rules_see_the_field_that_the_stored_bytes_hide() -> None:
    # One character per run: neither the ZIP nor the decompressed XML holds "DDEAUTO" in
    # one piece, so a rule on stored bytes is blind; the rebuilt instruction is not.
    sample = SAMPLES / "word" / "ddeauto-one-char-per-run.docx"
    data = sample.read_bytes()
    with zipfile.ZipFile(sample) as package:
        document = package.read("word/document.xml")
    assert b"DDEAUTO" not in document
    assert match_names(data, StreamLabel.RAW_FILE) == set()
    assert match_names(document, StreamLabel.XML_PART) == set()
    report = scan_path(sample)
    assert shipped_names(report) == [("dde-field", ("DDE_Field_Instruction",))]


def test_rules_see_rtf_escapes_undone() -> None:
    sample = SAMPLES / "rtf" / "ddeauto-hex-escapes.rtf"
    assert match_names(sample.read_bytes(), StreamLabel.RAW_FILE) == set()
    report = scan_path(sample)
    assert shipped_names(report) == [("dde-field", ("DDE_Field_Instruction",))]


def test_rules_see_hex_decoded_rtf_objects() -> None:
    # The object data is hex with junk between the digits: the stored file only shows the
    # \objclass; the decoded object shows the Equation Native header and the FONT record.
    sample = SAMPLES / "equation" / "hex-junk-control-words.rtf"
    assert match_names(sample.read_bytes(), StreamLabel.RAW_FILE) == {"EquationEditor_Object"}
    report = scan_path(sample)
    assert shipped_names(report) == [
        ("equation-editor", ("EquationEditor_MTEF_Font_Overflow", "EquationEditor_Object"))
    ]


def test_stream_labels_gate_the_rules() -> None:
    instruction = b'DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"'
    assert match_names(instruction, StreamLabel.FIELD_INSTRUCTION) == {"DDE_Field_Instruction"}
    # The same words as body text of a part or a file are prose, not a field.
    assert match_names(instruction, StreamLabel.XML_PART) == set()
    assert match_names(instruction, StreamLabel.RAW_FILE) == set()
    formula = b"cmd|'/c calc.exe'!A0"
    assert match_names(formula, StreamLabel.FORMULA) == {"Excel_DDE_Remote_Reference"}
    assert match_names(formula, StreamLabel.FIELD_INSTRUCTION) == set()


# --- merging -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        # The raw RTF, the rebuilt field code and the finding's evidence all match: one finding.
        ("rtf/ddeauto-cmd.rtf", [("dde-field", ("DDE_Field_Instruction",))]),
        (
            "rtf/ddeauto-quote-nested.rtf",
            [("dde-field", ("DDE_Field_Instruction", "DDE_Field_Quote_Char_Codes"))],
        ),
        (
            "xml/formula-spreadsheet2003.xml",
            [
                ("dde-formula", ("Excel_DDE_Remote_Reference",)),
                ("dde-link", ("Excel_DDE_Link",)),
            ],
        ),
        (
            "csv/rundll32-url.csv",
            [
                (
                    "dde-formula",
                    (
                        "CSV_DDE_Formula_Cell",
                        "Excel_DDE_Remote_Reference",
                        "LOLBin_Proxy_Execution",
                    ),
                )
            ],
        ),
        (
            "equation/cve-2017-11882-font.docx",
            [("equation-editor", ("EquationEditor_MTEF_Font_Overflow", "EquationEditor_Object"))],
        ),
        ("word/ddeauto-in-header.docx", [("dde-field", ("DDE_Field_Instruction",))]),
        ("clean/ordinary-fields.docx", []),
    ],
)
def test_rule_hits_merge_onto_parser_findings(
    sample: str, expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    with_rules = scan_path(SAMPLES / sample)
    without = scan_path(SAMPLES / sample, NO_YARA)
    assert shipped_names(with_rules) == expected
    # The same findings, in the same order, as the parsers alone: only `rules` is added.
    assert [dataclasses.replace(f, rules=()) for f in with_rules.findings] == list(without.findings)
    assert with_rules.verdict is without.verdict
    assert with_rules.problems == without.problems


def test_whole_corpus_keeps_its_finding_counts() -> None:
    manifest = json.loads((ROOT / "corpus" / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["samples"]:
        with_rules = scan_path(SAMPLES / entry["path"])
        without = scan_path(SAMPLES / entry["path"], NO_YARA)
        assert len(with_rules.findings) == len(without.findings), entry["path"]
        assert with_rules.verdict is without.verdict, entry["path"]
        assert with_rules.notes == (), entry["path"]


def rtf_stream(text: bytes) -> DecodedStream:
    return DecodedStream(StreamLabel.EMBEDDED_FILE, text, Location(("mail.eml", "invoice.rtf")))


FIELD_RTF = b"{\\rtf1{\\field{\\*\\fldinst DDEAUTO c:\\\\windows\\\\cmd.exe}}}"


def test_a_hit_no_parser_covers_becomes_an_honest_finding() -> None:
    result = run_stage(
        load_rules(()),
        [rtf_stream(FIELD_RTF)],
        [],
        FAR,
        ScanConfig(),
        Location(("mail.eml",)),
    )
    assert result.problems == ()
    assert result.notes == ()
    [finding] = result.findings
    offset = FIELD_RTF.index(b"\\fldinst")
    assert finding.rules == ("DDE_Field_Instruction",)
    assert finding.technique is Technique.DDE_FIELD
    assert finding.severity is Severity.HIGH
    assert finding.verdict is Verdict.SUSPICIOUS
    assert finding.location == Location(
        ("mail.eml", "invoice.rtf"), f"embedded-file stream, byte {offset}"
    )
    assert finding.evidence.raw == "\\fldinst DDEAUTO "
    assert finding.process.parent == "WINWORD.EXE"
    assert finding.process.image == ""
    assert finding.process.command_line == ""
    assert finding.process.steps == (
        "no parser recognised this evidence, so the program it would start is unknown",
    )
    assert finding.kql.would_alert is False
    assert "cannot be evaluated" in finding.kql.gap
    assert finding.dde is None
    assert finding.attack_ids == ("T1559.002",)
    assert finding.title == "YARA DDE_Field_Instruction: WINWORD.EXE -> (unknown program)"
    assert "cannot be predicted" in finding.explanation


def test_a_hit_in_an_unreadable_input_is_a_note_not_a_finding() -> None:
    problem = Problem(
        ProblemKind.MALFORMED,
        "unbalanced groups",
        Location(("mail.eml", "invoice.rtf")),
    )
    result = run_stage(
        load_rules(()),
        [rtf_stream(FIELD_RTF)],
        [],
        FAR,
        ScanConfig(),
        Location(("mail.eml",)),
        problems=(problem,),
    )
    assert result.findings == ()
    assert result.notes == (
        "YARA rule DDE_Field_Instruction matched the embedded-file stream of mail.eml > "
        "invoice.rtf at byte 16: \\fldinst DDEAUTO . It is not rated as a finding because "
        "that input could not be read (malformed: unbalanced groups).",
    )


def test_a_damaged_word_file_keeps_its_error_and_says_what_the_rule_saw() -> None:
    body = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(200)
        + b'\x13 DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"\x14\x15'
        + bytes(100)
    )
    report = scan_bytes(body, "broken.doc")
    assert report.verdict is Verdict.ERROR
    assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED]
    assert report.findings == ()
    assert report.notes == (
        "YARA rule DDE_Field_Instruction matched the raw-file stream of broken.doc at byte "
        "208: \\x13 DDEAUTO . It is not rated as a finding because that input could not be "
        f"read (malformed: {report.problems[0].message}).",
    )


def test_a_hit_inside_another_hit_of_the_same_rule_counts_once() -> None:
    outer = DecodedStream(StreamLabel.EMBEDDED_FILE, FIELD_RTF, Location(("m.eml", "a.rtf")))
    inner = DecodedStream(
        StreamLabel.EMBEDDED_FILE, FIELD_RTF, Location(("m.eml", "a.rtf", "b.rtf"))
    )
    result = run_stage(load_rules(()), [outer, inner], [], FAR, ScanConfig(), Location(("m.eml",)))
    assert [f.location.containers for f in result.findings] == [("m.eml", "a.rtf", "b.rtf")]


def test_time_limit_stops_the_stage_and_keeps_the_findings() -> None:
    report = scan_path(SAMPLES / "rtf" / "ddeauto-cmd.rtf", NO_YARA)
    result = run_stage(
        load_rules(()),
        [rtf_stream(FIELD_RTF)],
        report.findings,
        time.monotonic() - 1,
        ScanConfig(),
        Location(("ddeauto-cmd.rtf",)),
    )
    assert result.findings == report.findings
    assert [(p.kind, p.message) for p in result.problems] == [
        (ProblemKind.TIMEOUT, "time limit of 60 s per file reached in the YARA stage")
    ]


# --- streams -------------------------------------------------------------------------------


def test_instruction_text_renders_nested_fields_in_braces() -> None:
    inner = FieldNode(("QUOTE 99 109 100",))
    node = FieldNode((" DDEAUTO ", inner, ' "/c calc.exe"'))
    assert instruction_text(node) == ' DDEAUTO { QUOTE 99 109 100 } "/c calc.exe"'
    story = FieldStory(Location(("a.rtf",)), (node, FieldNode(("  ",))))
    assert list(field_streams([story])) == [
        DecodedStream(
            StreamLabel.FIELD_INSTRUCTION,
            b' DDEAUTO { QUOTE 99 109 100 } "/c calc.exe"',
            Location(("a.rtf",)),
        )
    ]


def test_field_streams_give_a_repeated_code_once_per_story() -> None:
    body = Location(("a.docx", "word/document.xml"))
    footer = Location(("a.docx", "word/footer1.xml"))
    page = FieldNode((" PAGE ",))
    split_page = FieldNode(
        (
            " PA",
            "GE ",
        )
    )
    dde = FieldNode((" DDEAUTO ", FieldNode(("QUOTE 99",)), " x"))
    stories = [
        FieldStory(body, (page, split_page, dde, FieldNode((" PAGE ",)), dde)),
        FieldStory(footer, (page,)),
    ]
    assert [(s.data, s.location) for s in field_streams(stories)] == [
        (b" PAGE ", body),
        (b" DDEAUTO { QUOTE 99 } x", body),
        (b" PAGE ", footer),
    ]


def test_stream_collector_bounds_count_and_bytes_but_keeps_the_raw_file() -> None:
    collector = StreamCollector(ScanLimits(max_streams=2, max_stream_bytes=10))
    here = Location(("x",))
    assert collector.add(DecodedStream(StreamLabel.RAW_FILE, b"r" * 50, here)) is True
    assert collector.add(DecodedStream(StreamLabel.XML_PART, b"a", here)) is False
    collector = StreamCollector(ScanLimits(max_streams=2, max_stream_bytes=100))
    assert collector.add(DecodedStream(StreamLabel.RAW_FILE, b"r", here)) is True
    assert collector.add(DecodedStream(StreamLabel.XML_PART, b"a", here)) is True
    assert collector.add(DecodedStream(StreamLabel.XML_PART, b"bb", here)) is False
    assert [s.data for s in collector.streams] == [b"r", b"a"]
    assert collector.limit_message() == (
        "YARA stage: 1 decoded stream(s) of 2 bytes not scanned by rules (limits: 2 streams, "
        "100 bytes per input)"
    )


def test_stream_collector_keeps_one_copy_of_a_repeated_stream() -> None:
    collector = StreamCollector(ScanLimits(max_streams=3, max_stream_bytes=100))
    story = Location(("a.docx", "word/document.xml"))
    footer = Location(("a.docx", "word/footer1.xml"))
    page = DecodedStream(StreamLabel.FIELD_INSTRUCTION, b" PAGE ", story)
    assert collector.add(page) is True
    assert collector.add(DecodedStream(StreamLabel.FIELD_INSTRUCTION, b" PAGE ", story)) is True
    assert collector.add(DecodedStream(StreamLabel.FIELD_INSTRUCTION, b" PAGE ", footer)) is True
    assert collector.add(DecodedStream(StreamLabel.FORMULA, b" PAGE ", story)) is True
    assert [(s.label, s.location) for s in collector.streams] == [
        (StreamLabel.FIELD_INSTRUCTION, story),
        (StreamLabel.FIELD_INSTRUCTION, footer),
        (StreamLabel.FORMULA, story),
    ]
    assert collector.repeats == 1
    assert collector.total_bytes == 18
    assert collector.limit_message() == ""


def test_stream_limit_is_reported_and_evidence_is_still_matched() -> None:
    config = ScanConfig(limits=ScanLimits(max_streams=1))
    report = scan_path(SAMPLES / "word" / "ddeauto-cmd.docx", config)
    assert shipped_names(report) == [("dde-field", ("DDE_Field_Instruction",))]
    assert [p.kind for p in report.problems] == [ProblemKind.LIMIT]
    assert report.problems[0].message.startswith("YARA stage: ")
    assert report.verdict is Verdict.MALICIOUS


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=512),
    label=st.sampled_from(list(StreamLabel)),
)
def test_stage_never_raises_on_arbitrary_streams(data: bytes, label: StreamLabel) -> None:
    stream = DecodedStream(label, data, Location(("f",)))
    result = run_stage(load_rules(()), [stream], [], FAR, ScanConfig(), Location(("f",)))
    for finding in result.findings:
        assert finding.rules and finding.verdict in (Verdict.SUSPICIOUS, Verdict.MALICIOUS)
        assert finding.process.image == ""
    assert result.problems == ()


# --- user rules, configuration and the command line ----------------------------------------


def test_rules_are_compiled_once_per_process(tmp_path: Path) -> None:
    write_rule(tmp_path / "a", "advisory.yar", ADVISORY_RULE)
    assert load_rules(()) is load_rules(())
    # Keyed by the resolved folder: two spellings of one folder share one compilation.
    assert load_rules([str(tmp_path / "a" / ".." / "a")]) is load_rules([str(tmp_path / "a")])
    assert load_rules([str(tmp_path / "a")]) is not load_rules(())


def test_user_rule_folder_end_to_end_through_the_cli(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    write_rule(rules / "local", "advisory.yar", ADVISORY_RULE)
    sample = tmp_path / "advisory.rtf"
    shutil.copyfile(SAMPLES / "clean" / "dde-text-and-hyperlink.rtf", sample)
    runner = CliRunner()
    result = runner.invoke(
        cli.main, ["scan", "--rules", str(rules), "--format", "jsonl", str(sample)]
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.output.splitlines()[0])
    offset = sample.read_bytes().index(b"This advisory explains")
    [finding] = report["findings"]
    assert finding["rules"] == ["Advisory_Text"]
    assert finding["technique"] == "dde-field"
    assert finding["verdict"] == "malicious"
    assert finding["severity"] == "critical"
    assert finding["location"]["path"] == [str(sample)]
    assert finding["location"]["detail"] == f"raw-file stream, byte {offset}"
    assert finding["evidence"]["raw"] == "This advisory explains"
    assert finding["process"] == {
        "parent": "WINWORD.EXE",
        "image": "",
        "command_line": "",
        "image_path": "",
        "path_traversal": False,
        "steps": ["no parser recognised this evidence, so the program it would start is unknown"],
    }
    assert report["verdict"] == "malicious"
    schema = json_report.load_schema()
    Draft202012Validator(
        {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/report"}
    ).validate(report)

    # Without the folder, the same file is clean; with --no-yara, the rule cannot fire.
    plain = runner.invoke(cli.main, ["scan", "--format", "jsonl", str(sample)])
    assert plain.exit_code == 0, plain.output
    off = runner.invoke(
        cli.main, ["scan", "--no-yara", "--rules", str(rules), "--format", "jsonl", str(sample)]
    )
    assert off.exit_code == 0, off.output

    listed = runner.invoke(cli.main, ["rules", "list", "--rules", str(rules)])
    assert listed.exit_code == 0, listed.output
    line = next(row for row in listed.output.splitlines() if row.startswith("Advisory_Text"))
    assert line.split() == [
        "Advisory_Text",
        str(rules / "local" / "advisory.yar"),
        "dde-field",
        "critical",
    ]
    assert sum(1 for row in listed.output.splitlines()[1:] if row.strip()) == len(SHIPPED) + 1
    checked = runner.invoke(cli.main, ["rules", "check", "--rules", str(rules)])
    assert checked.exit_code == 0, checked.output
    assert checked.output.splitlines()[-1] == "13 rules checked, 0 with a failure."


def test_a_signature_collection_without_metadata_still_works(tmp_path: Path) -> None:
    rules = tmp_path / "collection"
    write_rule(
        rules,
        "sig.yara",
        'rule Collection_Sig { strings: $a = "advisory" nocase '
        'condition: $a and extension == ".rtf" and filename == "look.rtf" }\n',
    )
    sample = tmp_path / "look.rtf"
    shutil.copyfile(SAMPLES / "clean" / "dde-text-and-hyperlink.rtf", sample)
    report = scan_path(sample, ScanConfig(rule_dirs=(str(rules),)))
    [finding] = report.findings
    assert finding.rules == ("Collection_Sig",)
    assert finding.technique is Technique.DDE_FIELD  # an RTF: a Word document
    assert finding.severity is Severity.MEDIUM
    assert finding.verdict is Verdict.SUSPICIOUS
    checked = CliRunner().invoke(cli.main, ["rules", "check", "--rules", str(rules)])
    assert checked.exit_code == 0, checked.output
    assert "NOTE Collection_Sig" in checked.output


def test_config_file_adds_rule_folders_relative_to_itself(tmp_path: Path) -> None:
    write_rule(tmp_path / "conf" / "extra", "advisory.yar", ADVISORY_RULE)
    config_file = tmp_path / "conf" / "ddescan.toml"
    config_file.write_text('[yara]\nrule_dirs = ["extra"]\n', encoding="utf-8")
    config = load_config(config_file)
    assert config.rule_dirs == (str(tmp_path / "conf" / "extra"),)
    assert config.yara_enabled is True
    report = scan_path(SAMPLES / "clean" / "dde-text-and-hyperlink.rtf", config)
    assert [f.rules for f in report.findings] == [("Advisory_Text",)]
    off = tmp_path / "off.toml"
    off.write_text("[yara]\nenabled = false\n", encoding="utf-8")
    assert load_config(off).yara_enabled is False
    bad = tmp_path / "bad.toml"
    bad.write_text('[yara]\nrule_dirs = "extra"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"yara\.rule_dirs must be a list"):
        load_config(bad)


BROKEN_RULE = """rule Fine { condition: true }

rule Broken {
    strings: $a = "DDEAUTO"
    condition: $a and pe.is_dll()
}
"""


def test_a_broken_rule_names_its_file_and_line(tmp_path: Path) -> None:
    broken = write_rule(tmp_path / "rules", "broken.yar", BROKEN_RULE)
    with pytest.raises(RuleError) as raised:
        scan_bytes(b"Name\n", "a.csv", ScanConfig(rule_dirs=(str(tmp_path / "rules"),)))
    assert raised.value.path == str(broken)
    assert raised.value.line == 5
    assert raised.value.reason == 'undefined identifier "pe"'
    runner = CliRunner()
    for args in (
        ["scan", "--rules", str(tmp_path / "rules"), str(SAMPLES / "csv" / "formula-cmd.csv")],
        ["rules", "check", "--rules", str(tmp_path / "rules")],
        ["rules", "list", "--rules", str(tmp_path / "rules")],
    ):
        result = runner.invoke(cli.main, args)
        assert result.exit_code == 2, (args, result.output)
        assert f"YARA rule error in {broken}, line 5: undefined identifier" in result.output
        assert "Traceback" not in result.output
        assert not isinstance(result.exception, RuleError)


def test_a_missing_rule_folder_is_a_configuration_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["scan", "--rules", str(tmp_path / "nowhere"), str(SAMPLES / "csv" / "formula-cmd.csv")],
    )
    assert result.exit_code == 2
    assert "not a folder of YARA rules" in result.output


def test_rules_test_command_passes_on_the_corpus() -> None:
    result = CliRunner().invoke(cli.main, ["rules", "test"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == f"{len(SHIPPED)} shipped rules tested, 0 failed."
    assert sum(1 for line in lines if line.startswith("ok   ")) == len(SHIPPED)


def test_rules_test_command_names_the_rule_that_fires_on_a_clean_sample(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLES, corpus / "samples")
    manifest = json.loads((ROOT / "corpus" / "manifest.json").read_text(encoding="utf-8"))
    # Pretend a DDE sample is a clean look-alike: the rule that fires on it must fail.
    for entry in manifest["samples"]:
        if entry["path"] == "word/ddeauto-cmd.docx":
            entry["expect"]["verdict"] = "clean"
    (corpus / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["rules", "test", "--corpus", str(corpus)])
    assert result.exit_code == 1
    failures = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert failures == [
        "FAIL DDE_Field_Instruction (yara/dde_fields.yar): fires on the clean look-alike "
        "word/ddeauto-cmd.docx"
    ]
    assert result.output.splitlines()[-1] == f"{len(SHIPPED)} shipped rules tested, 1 failed."


def test_rule_only_report_matches_the_schema_and_text_renderer(tmp_path: Path) -> None:
    write_rule(tmp_path / "r", "advisory.yar", ADVISORY_RULE)
    config = ScanConfig(rule_dirs=(str(tmp_path / "r"),))
    report = scan_path(SAMPLES / "clean" / "dde-text-and-hyperlink.rtf", config)
    from scanner.render.text import render_report

    text = render_report(report)
    assert "    YARA rules: Advisory_Text\n" in text
    assert "(unknown program)" in text


def test_yara_python_is_the_real_module() -> None:
    # yara/ (rule files) must not shadow the yara-python extension module.
    assert hasattr(yara, "compile")
    assert Path(str(yara.__file__)).suffix in {".so", ".pyd"}


def test_findings_keep_their_type() -> None:
    report = scan_path(SAMPLES / "csv" / "formula-cmd.csv")
    assert all(isinstance(f, Finding) for f in report.findings)
    assert report.format is FileFormat.CSV
