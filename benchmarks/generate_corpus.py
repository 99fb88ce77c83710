"""Write the fixed, generated large-file benchmark corpus to benchmarks/corpus/ (not committed).

Run: python benchmarks/generate_corpus.py [--quick] [--out DIR]

Per format, one file at each of 1, 10 and 100 MB (--quick: 1 and 10 MB), each ending with one
harmless DDE payload (calc.exe) after a body of ordinary content, so that a scanner must read
the whole file to find it:

- docx: word/document.xml with many paragraphs and ordinary fields (PAGE, DATE, REF), then a
  DDEAUTO field. The nominal size is that of the inflated part (what a scanner has to parse);
  the file on disk is several times smaller.
- xlsx: xl/worksheets/sheet1.xml with many formula cells, then a cell whose formula is a DDE
  call (cmd|'/c calc.exe'!A0). Nominal size as for docx.
- rtf: paragraphs of text and pictures ({\\pict ... hex}), then a DDEAUTO field.
- csv: many ordinary rows, then a row with a DDE cell.
- doc: Word 97 binary written by corpus/docwriter.py (text with ordinary fields, then a DDEAUTO
  field). Its compound-file writer has no DIFAT sectors, so it stops at about 7 MB: only the
  1 MB .doc is generated; the larger sizes are recorded as not reachable.

The small typical documents are corpus/samples, used in place (by reference, not copied).
Everything is deterministic: a fixed linear congruential sequence varies the text, pictures
come from a seeded random generator, and ZIP entries carry a fixed timestamp; a manifest
(manifest.json) records each file's size and SHA-256. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "corpus"
SAMPLES = ROOT / "corpus" / "samples"
MB = 1024 * 1024
SIZES_MB = (1, 10, 100)
QUICK_SIZES_MB = (1, 10)
VERSION = 1

WORDS = (
    "net", "sales", "region", "quarter", "total", "margin", "cost", "forecast",
    "budget", "review", "account", "balance", "invoice", "supplier", "ledger", "audit",
)  # fmt: skip

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
S_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_DOCUMENT = R_NS + "/officeDocument"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def sentences(seed: int = 12345) -> Iterator[str]:
    """An endless, deterministic stream of varied eight-word sentences."""
    state = seed
    while True:
        state = (state * 1103515245 + 12345) % 2**31
        yield " ".join(f"{WORDS[(state >> s) % 16]}{(state >> s) % 997}" for s in range(0, 24, 3))


def zip_package(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            package.writestr(info, data)
    return out.getvalue()


def content_types(overrides: dict[str, str]) -> bytes:
    items = "".join(
        f'<Override PartName="{part}" ContentType="{kind}"/>' for part, kind in overrides.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType='
        '"application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>' + items + "</Types>"
    ).encode()


def relationships(targets: list[tuple[str, str]]) -> bytes:
    items = "".join(
        f'<Relationship Id="rId{i}" Type="{kind}" Target="{target}"/>'
        for i, (kind, target) in enumerate(targets, 1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<Relationships xmlns="{PKG_REL_NS}">' + items + "</Relationships>"
    ).encode()


def word_field(instruction: str, result: str) -> str:
    """A complex field (ECMA-376 Part 1, 17.16.18): begin, instruction, separate, result, end."""
    return (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        f'<w:r><w:instrText xml:space="preserve">{instruction}</w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        f"<w:r><w:t>{result}</w:t></w:r>"
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def large_docx(size: int) -> bytes:
    ordinary = (
        (" PAGE ", "1"),
        (' DATE \\@ "yyyy-MM-dd" ', "2024-01-31"),
        (" REF Total \\h ", "total"),
    )
    body: list[str] = []
    length = 0
    text = sentences()
    index = 0
    while length < size:
        paragraph = f"<w:p><w:r><w:t>{next(text)}.</w:t></w:r>"
        if index % 4 == 0:
            instruction, result = ordinary[(index // 4) % len(ordinary)]
            paragraph += word_field(instruction, result)
        paragraph += "</w:p>"
        body.append(paragraph)
        length += len(paragraph)
        index += 1
    dde = word_field(' DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe" ', "benchmark")
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W_NS}"><w:body>'
        + "".join(body)
        + f"<w:p>{dde}</w:p></w:body></w:document>"
    ).encode()
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    return zip_package(
        [
            ("[Content_Types].xml", content_types({"/word/document.xml": main})),
            ("_rels/.rels", relationships([(OFFICE_DOCUMENT, "word/document.xml")])),
            ("word/document.xml", document),
        ]
    )


def column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def large_xlsx(size: int) -> bytes:
    columns = 8
    rows: list[str] = []
    length = 0
    row = 0
    while length < size:
        row += 1
        cells = [f'<c r="A{row}"><v>{row}</v></c>']
        for c in range(1, columns):
            ref = f"{column(c)}{row}"
            if c % 2:
                formula = f"SUM(A{row}:{column(c - 1)}{row})*{c}"
            else:
                formula = f"IF(A{row}&gt;100,ROUND(A{row}/{c},2),A{row})"
            cells.append(f'<c r="{ref}"><f>{formula}</f><v>{row * c}</v></c>')
        line = f'<row r="{row}">' + "".join(cells) + "</row>"
        rows.append(line)
        length += len(line)
    row += 1
    rows.append(
        f'<row r="{row}"><c r="A{row}" t="e"><f>cmd|\'/c calc.exe\'!A0</f><v>#REF!</v></c></row>'
    )
    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<worksheet xmlns="{S_NS}"><sheetData>' + "".join(rows) + "</sheetData></worksheet>"
    ).encode()
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<workbook xmlns="{S_NS}" xmlns:r="{R_NS}"><sheets>'
        '<sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ).encode()
    sml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    return zip_package(
        [
            (
                "[Content_Types].xml",
                content_types(
                    {
                        "/xl/workbook.xml": sml + ".sheet.main+xml",
                        "/xl/worksheets/sheet1.xml": sml + ".worksheet+xml",
                    }
                ),
            ),
            ("_rels/.rels", relationships([(OFFICE_DOCUMENT, "xl/workbook.xml")])),
            ("xl/workbook.xml", workbook),
            (
                "xl/_rels/workbook.xml.rels",
                relationships([(R_NS + "/worksheet", "worksheets/sheet1.xml")]),
            ),
            ("xl/worksheets/sheet1.xml", sheet),
        ]
    )


def large_rtf(size: int) -> bytes:
    pictures = random.Random(8)
    parts: list[str] = [
        "{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0\\fswiss Arial;}}"
        "{\\info{\\title Benchmark}}\\viewkind4\\uc1\\pard\\f0\\fs20 "
    ]
    length = len(parts[0])
    text = sentences()
    index = 0
    while length < size:
        if index % 8 == 7:
            # RTF 1.9.1 "Pictures": \pict with the picture data as hexadecimal, wrapped.
            data = pictures.randbytes(4096).hex()
            lines = "\n".join(data[i : i + 128] for i in range(0, len(data), 128))
            head = "{\\pict\\pngblip\\picw640\\pich480\\picwgoal9600\\pichgoal7200\n"
            chunk = head + lines + "}\\par\n"
        else:
            chunk = f"{{\\b {next(text)}}} {next(text)}. \\i {next(text)}\\i0 .\\par\n"
        parts.append(chunk)
        length += len(chunk)
        index += 1
    parts.append(
        '{\\field{\\*\\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"}'
        "{\\fldrslt benchmark}}\\par\n}"
    )
    return "".join(parts).encode("ascii")


def large_csv(size: int) -> bytes:
    text = sentences()
    lines = ["Date,Customer,Amount,Phone,Note\r\n"]
    length = len(lines[0])
    row = 0
    while length < size:
        row += 1
        words = next(text).split()
        line = (
            f"2024-{1 + row % 12:02d}-{1 + row % 28:02d},{words[0]} {words[1]} Ltd,"
            f"{(row * 7919) % 100000 / 100:.2f},+44 20 7946 {row % 10000:04d},"
            f'"{" ".join(words[2:])}"\r\n'
        )
        lines.append(line)
        length += len(line)
    lines.append("2024-12-31,x,=cmd|' /C calc.exe'!A0,,\r\n")
    return "".join(lines).encode("ascii")


def large_doc(size: int) -> bytes:
    sys.path.insert(0, str(ROOT / "corpus"))
    from docwriter import Stories, doc_file, field

    text = sentences()
    paragraphs: list[str] = []
    length = 0
    index = 0
    while length < size:
        paragraph = next(text) + ". "
        if index % 4 == 0:
            paragraph += field(" PAGE ", "1")
        paragraph += "\r"
        paragraphs.append(paragraph)
        length += len(paragraph)
        index += 1
    dde = field(' DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe" ', "benchmark")
    return doc_file(Stories(main="".join(paragraphs) + dde + "\r"))


BUILDERS: dict[str, Callable[[int], bytes]] = {
    "docx": large_docx,
    "xlsx": large_xlsx,
    "rtf": large_rtf,
    "csv": large_csv,
    "doc": large_doc,
}


def generate(out: Path = DEFAULT_OUT, sizes: tuple[int, ...] = SIZES_MB) -> dict[str, object]:
    """Write the files missing from `out` and its manifest; return the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    old: dict[str, dict[str, object]] = {}
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text())
        if previous.get("version") == VERSION:
            old = {entry["file"]: entry for entry in previous["files"]}
    files: list[dict[str, object]] = []
    unreachable: list[dict[str, object]] = []
    for size_mb in sizes:
        for fmt, build in BUILDERS.items():
            name = f"large-{size_mb}mb.{fmt}"
            path = out / name
            known = old.get(name)
            if known is not None and path.exists() and path.stat().st_size == known["bytes"]:
                files.append(known)
                continue
            try:
                data = build(size_mb * MB)
            except ValueError as error:  # docwriter's compound-file writer has a size cap
                unreachable.append({"file": name, "format": fmt, "reason": str(error)})
                path.unlink(missing_ok=True)
                continue
            path.write_bytes(data)
            files.append(
                {
                    "file": name,
                    "format": fmt,
                    "nominal_mb": size_mb,
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "expected": "dde",
                }
            )
            print(f"wrote {path.relative_to(ROOT)} ({len(data) / MB:.1f} MiB)", file=sys.stderr)
    for entry in old.values():  # keep entries of sizes not asked for this time (--quick)
        if entry["file"] not in {f["file"] for f in files} and (out / str(entry["file"])).exists():
            files.append(entry)
    manifest: dict[str, object] = {
        "version": VERSION,
        "small_documents": str(SAMPLES.relative_to(ROOT)),
        "files": sorted(files, key=lambda f: (str(f["format"]), int(str(f["nominal_mb"])))),
        "not_reachable": unreachable,
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the 1 and 10 MB files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    manifest = generate(args.out, QUICK_SIZES_MB if args.quick else SIZES_MB)
    for entry in manifest["not_reachable"]:  # type: ignore[attr-defined]
        print(f"not generated: {entry['file']}: {entry['reason']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
