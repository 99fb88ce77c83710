"""The registry: lazy entries that declare what their class is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scanner.formats.archive import GzipFormat, ZipFormat
from scanner.formats.csv_text import CsvFormat
from scanner.formats.ooxml import WordprocessingFormat
from scanner.formats.rtf import RtfFormat
from scanner.registry import REGISTRY, LazyFormat


def test_every_entry_declares_its_class_format() -> None:
    for entry in REGISTRY:
        assert isinstance(entry, LazyFormat)
        assert entry.handler.format is entry.format, (entry.module, entry.name)


def test_entries_keep_the_documented_order() -> None:
    classes = [type(entry.handler) for entry in REGISTRY if isinstance(entry, LazyFormat)]
    assert classes[0] is WordprocessingFormat
    assert classes.index(RtfFormat) < classes.index(ZipFormat) < classes.index(GzipFormat)
    assert classes[-1] is CsvFormat
    assert len(set(classes)) == len(classes) == 21


def test_a_word_package_does_not_load_the_other_parsers() -> None:
    code = (
        "import sys\n"
        "from scanner.api import scan_bytes\n"
        "import pathlib\n"
        "data = pathlib.Path('corpus/samples/word/ddeauto-cmd.docx').read_bytes()\n"
        "report = scan_bytes(data, 'a.docx')\n"
        "assert report.findings\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('scanner.formats.'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    ).stdout.split()
    assert "scanner.formats.ooxml" in loaded
    for parser in ("rtf", "csv_text", "biff", "worddoc", "msg", "mime", "xlsb", "encrypted"):
        assert f"scanner.formats.{parser}" not in loaded, parser
