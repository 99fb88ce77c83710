"""The chunked CSV/SYLK reader (scanner.formats.csv_text.scan_chunked) against the reference
reader that decodes and splits the whole file at once (scan_whole): same findings, in the
same order, on every corpus sample and on generated files cut into chunks of every size."""

from __future__ import annotations

import contextlib
import hashlib
import io
import lzma
import sys
import time
import tracemalloc
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scanner import formulas
from scanner.formats import csv_text
from scanner.formats.base import ByteBudget, ScanContext
from scanner.formats.csv_text import CsvFormat, scan_chunked, scan_whole
from scanner.model import Confidence, Finding, Location, ScanConfig

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PAYLOAD = "=cmd|'/c calc.exe'!A0"
CANONICAL = "cmd|'/c calc.exe'!A0"


def context() -> ScanContext:
    return ScanContext(
        config=ScanConfig(),
        location=Location(("book.csv",)),
        host=None,
        depth=0,
        deadline=time.monotonic() + 60,
        budget=ByteBudget(1 << 40),
    )


def whole(data: bytes) -> list[Finding]:
    return [item for item in scan_whole(data, context()) if isinstance(item, Finding)]


def chunked(data: bytes, chunk: int = csv_text._CHUNK_BYTES) -> list[Finding]:
    return [item for item in scan_chunked(data, context(), chunk) if isinstance(item, Finding)]


# The chunked reader finds records hit by hit (sparse) or, where hits or records walked one
# at a time are many, line by line (dense); each way must give the reference's findings.
MODES = {
    "adaptive": {},
    "sparse": {"_WALK_LIMIT": 1 << 60, "_DENSE_HITS": 1 << 60},
    "dense": {"_WALK_LIMIT": -1},
}


def chunked_in(mode: str, data: bytes, chunk: int) -> list[Finding]:
    with contextlib.ExitStack() as stack:
        for name, value in MODES[mode].items():
            stack.enter_context(mock.patch.object(csv_text, name, value))
        return chunked(data, chunk)


def assert_same(data: bytes, chunks: tuple[int, ...] = (1, 2, 3, 5, 8, 13, 64, 1 << 19)) -> None:
    expected = whole(data)
    for chunk in chunks:
        assert chunked(data, chunk) == expected, chunk


def details(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.location.detail, f.evidence.deobfuscated) for f in findings]


def members(data: bytes, seen: set[bytes], depth: int = 0) -> Iterator[bytes]:
    """The distinct small files inside the corpus's archives, nested ones included."""
    if depth > 70 or not data.startswith(b"PK"):
        return
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return
    for info in archive.infolist()[:4]:
        if info.file_size > 2 << 20:
            continue
        try:
            inner = archive.read(info)
        except (
            zipfile.BadZipFile,
            ValueError,
            NotImplementedError,
            OSError,
            EOFError,
            zlib.error,
            lzma.LZMAError,
            RuntimeError,
        ):
            continue
        digest = hashlib.sha256(inner).digest()
        if digest in seen:
            continue
        seen.add(digest)
        yield inner
        yield from members(inner, seen, depth + 1)


def corpus_inputs() -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for path in sorted(CORPUS.glob("samples/**/*")) + sorted(CORPUS.glob("adversarial/**/*")):
        if not path.is_file() or path.suffix in (".py", ".md", ".json"):
            continue
        data = path.read_bytes()
        found.append((str(path.relative_to(CORPUS)), data))
        if path.suffix != ".zip":
            continue
        for index, inner in enumerate(members(data, set())):
            found.append((f"{path.relative_to(CORPUS)}#{index}", inner))
        if path.suffix == ".gz":
            try:
                head = zlib.decompressobj(wbits=31).decompress(data, 1 << 20)
            except zlib.error:
                continue
            found.append((f"{path.relative_to(CORPUS)}#gunzip", head))
    return found


CORPUS_INPUTS = corpus_inputs()


def test_corpus_is_there() -> None:
    names = {name for name, _ in CORPUS_INPUTS}
    assert "samples/csv/formula-cmd.csv" in names
    assert "samples/csv/sylk.slk" in names
    assert "samples/csv/utf16le-bom.txt" in names
    # The CSV kernel of the 42.zip-shaped bomb (1 MiB of "0,").
    assert any(data == b"0," * (512 * 1024) for _, data in CORPUS_INPUTS)


@pytest.mark.parametrize(("name", "data"), CORPUS_INPUTS, ids=[n for n, _ in CORPUS_INPUTS])
def test_corpus_sample(name: str, data: bytes) -> None:
    if CsvFormat().identify(data, name) is Confidence.NO:
        # Not text: the walker never gives it to this reader; still read the same way.
        chunks: tuple[int, ...] = (509, 1 << 19)
    elif len(data) <= 4096:
        chunks = (1, 7, 1 << 19)
    elif len(data) <= 256 * 1024:
        chunks = (61, 4093, 1 << 19)
    else:
        chunks = (4093, 1 << 19)
    assert_same(data, chunks)


def test_corpus_findings_are_found() -> None:
    # The differential test above must not compare empty lists only.
    files = [name for name, data in CORPUS_INPUTS if name.startswith("samples/csv/") and data]
    assert len(files) >= 20
    found = [name for name in files if chunked(dict(CORPUS_INPUTS)[name])]
    assert len(found) >= 18


def test_payload_across_every_chunk_boundary() -> None:
    text = (
        'id,note,value\r\n1,"two\r\nlines, ""quoted""",x\r\n'
        f'2,\'text,{PAYLOAD}\r\n3,"{PAYLOAD}"\n4,a|b,c\r5,end'
    )
    expected = [("row 4, column 3", CANONICAL), ("row 5, column 2", CANONICAL)]
    for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
        data = text.encode(encoding)
        assert details(whole(data)) == expected
        for chunk in range(1, len(data) + 2):
            assert details(chunked(data, chunk)) == expected, (encoding, chunk)


def test_utf16_surrogate_pairs_and_bom_split_by_chunks() -> None:
    text = f"\U0001d41d\U0001d41e,x\n{PAYLOAD},\U0001d41d\n"
    for data in (
        b"\xff\xfe" + text.encode("utf-16-le"),
        b"\xfe\xff" + text.encode("utf-16-be"),
        b"\xef\xbb\xbf" + text.encode("utf-8"),
    ):
        assert details(whole(data)) == [("row 2, column 1", CANONICAL)]
        for chunk in range(1, 12):
            assert chunked(data, chunk) == whole(data), chunk


def test_windows_1252_is_decided_on_the_whole_file() -> None:
    # Valid UTF-8 for the first megabyte, one cp1252 byte at the end: the whole file is
    # read as Windows-1252, as _decode does, although the first chunks decode as UTF-8.
    data = "caf\u00e9 ".encode() * 300_000 + f"\n{PAYLOAD}\n\xe9".encode("cp1252")
    (finding,) = chunked(data)
    assert finding.evidence.steps[0] == "decoded as Windows-1252"
    assert finding.location.detail == "row 2, column 1"
    assert chunked(data) == whole(data)


def test_sep_line_split_across_chunks() -> None:
    data = f"sep=;\r\nx,y;{PAYLOAD}\r\n".encode()
    for chunk in range(1, len(data) + 1):
        (finding,) = chunked(data, chunk)
        assert finding.location.detail == "row 2, column 2"
        assert finding.evidence.steps[1] == "first line sep=;: fields split on semicolon"
    assert chunked(b"sep=|\n" + PAYLOAD.encode(), 3) == []
    assert chunked(b"sep=;", 2) == []


def test_quoted_field_spanning_many_chunks() -> None:
    body = "".join(f"line {n}, with a comma\n" for n in range(3000))
    data = f'a,"{PAYLOAD}\n{body}",b\nlast,{PAYLOAD}\n'.encode()
    findings = chunked(data, 4096)
    assert [f.location.detail for f in findings] == ["row 1, column 2", "row 3003, column 2"]
    # The whole quoted field, line breaks and all, is the cell (70,912 characters).
    assert findings[0].evidence.raw == f"{PAYLOAD}\n{body}"
    assert findings == whole(data)


@pytest.mark.parametrize("lines", [9_999, 10_000, 10_001, 25_000])
def test_stray_quote_cut_at_the_line_bound(lines: int) -> None:
    data = b'size\n5" screen\n' + b"x\n" * lines + PAYLOAD.encode() + b"\n"
    (finding,) = chunked(data, 1000)
    assert finding.location.detail == f"row {lines + 3}, column 1"
    assert chunked(data, 1000) == whole(data)


def test_stray_quote_cut_at_the_size_bound() -> None:
    # Line 1 opens a quoted field that _records cuts after 1,048 lines (1 MiB): line 1102
    # is a record of its own, not text inside that field.
    line = b"y" * 1000 + b"\n"
    data = b'a"b\n' + line * 1100 + b"z," + PAYLOAD.encode() + b'\n"\n' + PAYLOAD.encode()
    expected = whole(data)
    assert details(expected) == [("row 1102, column 2", CANONICAL)]
    for chunk in (997, 4096, 1 << 16, 1 << 19):
        assert chunked(data, chunk) == expected


def test_even_quotes_after_a_cut_record_do_not_settle_a_record_start() -> None:
    # Line 1's stray quote opens a record that _records cuts after 10,000 lines; line
    # 10,003 then opens a quoted field that holds line 10,004. Two quotes before line
    # 10,004 (an even count) do not make it a record start: the cut broke the pairing.
    data = b'a"b\n' + b"x\n" * 10_001 + b'"open\n' + PAYLOAD.encode() + b'\nend"\n'
    assert whole(data) == []
    assert chunked(data) == []
    # Without the quotes of lines 10,003 and 10,005, line 10,004 is a record of its own.
    data = data.replace(b'"open', b"open").replace(b'end"', b"end")
    assert details(chunked(data)) == [("row 10004, column 1", CANONICAL)]


@pytest.mark.parametrize("length", [8, 9, 10, 11, 12])
def test_record_cut_exactly_at_the_size_bound(length: int) -> None:
    # A record stops taking lines once it holds _MAX_RECORD_CHARS characters or more.
    first = b'"' + b"a" * (length - 1)
    data = first + b"\n" + PAYLOAD.encode() + b'\nb\nc"\n'
    with mock.patch.object(csv_text, "_MAX_RECORD_CHARS", 10):
        expected = whole(data)
        assert details(expected) == ([("row 2, column 1", CANONICAL)] if length >= 10 else [])
        for chunk in (1, 4, 64):
            assert chunked(data, chunk) == expected


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("length", [9, 10])
def test_record_reaching_the_size_bound_before_its_closing_line(mode: str, length: int) -> None:
    # _records adds the closing line only while the record holds fewer than
    # _MAX_RECORD_CHARS characters: at 10, line 2 is a record of its own.
    data = b'"' + b"a" * (length - 1) + b"\n" + PAYLOAD.encode() + b'"\n'
    with mock.patch.object(csv_text, "_MAX_RECORD_CHARS", 10):
        expected = whole(data)
        assert [f.location.detail for f in expected] == (
            ["row 2, column 1"] if length == 10 else []
        )
        for chunk in (1, 5, 64):
            assert chunked_in(mode, data, chunk) == expected


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("inner", [1, 2])
def test_record_reaching_the_line_bound_before_its_closing_line(mode: str, inner: int) -> None:
    # With at most 3 lines to a record, the closing quote on line 4 comes too late: line
    # 4 is a record of its own.
    data = b'"a\n' + b"b\n" * inner + PAYLOAD.encode() + b'"\nx\n'
    with mock.patch.object(csv_text, "_MAX_JOINED_LINES", 3):
        expected = whole(data)
        assert [f.location.detail for f in expected] == ([] if inner == 1 else ["row 4, column 1"])
        for chunk in (1, 5, 64):
            assert chunked_in(mode, data, chunk) == expected


@pytest.mark.parametrize("mode", list(MODES))
def test_record_open_at_the_end_of_blocks(mode: str) -> None:
    # Quoted fields over 2 to 41 lines in a row, so that blocks of every size end inside
    # one; then a formula, and one in a quoted field never closed.
    fields = b"".join(b'%d,"' % n + b"x\n" * (n % 40 + 1) + b'y",z\r\n' for n in range(300))
    data = fields + b"a," + PAYLOAD.encode() + b'\r\nb,"' + PAYLOAD.encode() + b"\nc\nd"
    expected = whole(data)
    assert details(expected) == [
        ("row 6251, column 2", CANONICAL),
        ("row 6252, column 2", CANONICAL),
    ]
    # The field left open at the end of the file holds the lines after it.
    assert expected[1].evidence.raw == f"{PAYLOAD}\nc\nd"
    for chunk in (97, 1000, 4096):
        assert chunked_in(mode, data, chunk) == expected


def test_sylk_initiate_and_nfkc_parenthesis() -> None:
    data = (
        b'ID;P\r\nC;Y2;X3;EINITIATE("cmd","/c calc")\r\n'
        + 'C;X4;E⑴+ＤＤＥ("cmd";;"/c calc";;"A1")\r\n'.encode()
    )
    findings = chunked(data, 3)
    assert [(f.location.detail, f.dde.keyword if f.dde else "") for f in findings] == [
        ("R2C3", "INITIATE()"),
        ("R2C4", "DDE()"),
    ]
    assert findings == whole(data)


def test_quoted_rows_are_not_walked_quote_by_quote() -> None:
    # Ordinary rows with quoted fields (an even number of quotes per line): the count of
    # quotes settles every record start, the record walk (_OPENER) never runs.
    row = b'1,"a, b",+44 20,"c ""d"" e"\r\n'
    data = row * 50_000 + b'x,"' + PAYLOAD.encode() + b'"\r\n' + row
    with mock.patch.object(csv_text._Block, "opener", side_effect=AssertionError):
        (finding,) = chunked(data)
    assert finding.location.detail == "row 50001, column 2"


def test_quote_count_spans_end_at_line_starts() -> None:
    # The quote count is taken in spans of _MAX_JOINED_LINES - 1 characters; here the
    # first span would end between the "\r" and the "\n" of line 3,332, and the next
    # span opens a quoted field of 3,002 lines (an odd count of quotes): the record walk
    # starts where the first span ended.
    span = csv_text._MAX_JOINED_LINES - 1
    head = b'"abc"\r\n' + b"x\r\n" * 3400
    assert head[span - 1 : span + 1] == b"\r\n"
    field = b'"open\r\n' + PAYLOAD.encode() + b"\r\n" + b"x\r\n" * 3000 + b'end"\r\n'
    data = head + field + b"y," + PAYLOAD.encode() + b"\r\n"
    expected = whole(data)
    assert details(expected) == [("row 6405, column 2", CANONICAL)]
    assert chunked(data) == expected


def test_long_line_without_line_breaks() -> None:
    data = b"0," * (1 << 17) + PAYLOAD.encode() + b",0"
    (finding,) = chunked(data, 1 << 12)
    assert finding.location.detail == f"row 1, column {(1 << 17) + 1}"
    assert chunked(data, 1 << 12) == whole(data)


def test_only_records_holding_a_hit_are_read() -> None:
    row = b'2024-01-02,ledger104 Ltd,79.19,+44 20 7946 0001,"review468 sales521, net68"\r\n'
    data = row * 20_000 + b"2024-12-31,x," + PAYLOAD.encode() + b",,\r\n"
    read: list[tuple[int, str]] = []
    original = csv_text._relevant_record_findings

    def spy(first: int, record: str, *args: object) -> Iterator[object]:
        read.append((first, record))
        return original(first, record, *args)  # type: ignore[arg-type]

    with mock.patch.object(csv_text, "_relevant_record_findings", spy):
        (finding,) = chunked(data)
    assert read == [(20_000, f"2024-12-31,x,{PAYLOAD},,")]
    assert finding.location.detail == "row 20001, column 3"


def test_many_hits_are_read_line_by_line() -> None:
    # A bar on every line: after a few hits one at a time, the rest of the block is split
    # into lines at once (each hit found on its own would cost more).
    data = b"".join(b"%d|-%d|note|x!y\n" % (n, n) for n in range(5000)) + PAYLOAD.encode() + b"\n"
    original = csv_text._Block.record_at
    calls: list[int] = []

    def spy(self: csv_text._Block, position: int, hit: int) -> object:
        calls.append(hit)
        return original(self, position, hit)

    with mock.patch.object(csv_text._Block, "record_at", spy):
        (finding,) = chunked(data)
    assert len(calls) == csv_text._DENSE_HITS
    assert finding.location.detail == "row 5001, column 1"


def test_only_sylk_records_that_can_refer_to_dde_are_read() -> None:
    rows = "".join(f"C;Y{r};X1;K{r}\r\nC;X2;K0;EA{r}+B{r}\r\n" for r in range(1, 5001))
    data = f"ID;PWXL;N;E\r\n{rows}C;X3;ECMD|'/c calc'!A0\r\nE\r\n".encode()
    read: list[str] = []
    original = csv_text._SylkCursor.read

    def spy(self: csv_text._SylkCursor, record: str) -> tuple[str, str] | None:
        read.append(record)
        return original(self, record)

    with mock.patch.object(csv_text._SylkCursor, "read", spy):
        findings = chunked(data, 4096)
    assert read == ["C;X3;ECMD|'/c calc'!A0"]
    assert details(findings) == [("R5000C3", "CMD|'/c calc'!A0")]
    assert findings == whole(data)


def test_sylk_cursor_found_by_searching_back() -> None:
    data = (
        b"ID;P\r\n"
        b"C;Y7;X2;K1\r\n"
        b"F;X9;;Y5;P1\r\n"  # ";;Y5" is text inside the X field's value: not a move
        b"C;Y8\r\n"
        b"NN;Nx;EA1\r\n"
        b'C;X4;K"a;;X3"\r\n'
        b"P;X6\r\n"  # not a C or F record: moves nothing
        b"C;X1;ECMD|'/c calc'!A0\r\n"
        b"C;ENOTEPAD|'x'!A0\r\n"
    )
    assert details(chunked(data, 5)) == [
        ("R8C1", "CMD|'/c calc'!A0"),
        ("R8C1", "NOTEPAD|'x'!A0"),
    ]
    assert chunked(data, 5) == whole(data)


def test_sylk_cursor_with_many_records_that_do_not_move_it() -> None:
    # More records with a ";X" or ";Y" that moves nothing than the search back tries:
    # the records are then all read in order.
    filler = b"P;X1;Y2\r\nC;K;;X7;;Y8\r\nF;Xa;Yb\r\n" * 100
    data = (
        b"ID;P\r\nC;Y3;X5;K1\r\n"
        + filler
        + b"C;ECMD|'/c calc'!A0\r\nC;Y4\r\n"
        + filler
        + b"C;ENOTEPAD|'x'!A0\r\n"
    )
    findings = chunked(data, 4096)
    assert details(findings) == [("R3C5", "CMD|'/c calc'!A0"), ("R4C5", "NOTEPAD|'x'!A0")]
    assert findings == whole(data)


def test_memory_stays_flat() -> None:
    row = b'2024-01-02,ledger104 Ltd,79.19,+44 20 7946 0001,"review468 sales521 net68"\r\n'
    data = row * (24 * 1024 * 1024 // len(row)) + b"x," + PAYLOAD.encode() + b"\r\n"
    tracemalloc.start()
    try:
        findings = chunked(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    rows = data.count(b"\n")
    assert [f.location.detail for f in findings] == [f"row {rows}, column 2"]
    assert peak < 8 * 1024 * 1024, peak


def test_utf16_memory_stays_flat() -> None:
    text = "Datum;Betrag;Notiz\r\n" + "2024-01-02;79,19;Straße Köln\r\n" * 200_000
    data = b"\xff\xfe" + (text + f"x;{PAYLOAD}\r\n").encode("utf-16-le")
    tracemalloc.start()
    try:
        findings = chunked(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [f.location.detail for f in findings] == ["row 200002, column 2"]
    assert peak < 8 * 1024 * 1024, peak


def test_format_handler_uses_the_chunked_reader() -> None:
    data = f"a\n{PAYLOAD}\n".encode()
    with mock.patch.object(csv_text, "_scan_delimited", side_effect=AssertionError):
        (finding,) = CsvFormat().scan(data, context())
    assert isinstance(finding, Finding)
    assert finding.location.detail == "row 2, column 1"


def test_sylk_relevant_characters_are_every_nfkc_bar_or_parenthesis() -> None:
    missing = []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        decomposition = unicodedata.decomposition(char)
        if not decomposition and char not in "(|":
            continue
        if decomposition and not decomposition.startswith("<"):
            # No canonical composite starts with "(" or "|": NFKC composition cannot
            # swallow one that decomposition produced.
            assert decomposition.split()[0] not in ("0028", "007C"), hex(code)
        folded = unicodedata.normalize("NFKD", char) + unicodedata.normalize("NFKC", char)
        if ("(" in folded or "|" in folded) and not csv_text._SYLK_RELEVANT.match(char):
            missing.append(hex(code))
    assert missing == []


def test_lower_case_keeps_positions_but_for_one_character() -> None:
    longer = [hex(c) for c in range(sys.maxunicode + 1) if len(chr(c).lower()) != 1]
    assert longer == [hex(ord(csv_text._LONGER_IN_LOWER_CASE))]


FORMULA_ALPHABET = list("=+-@'\"!&,;: \tcmdCMDeEiInNtTaA0123456789/\\.[]{}<>%^*)")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(FORMULA_ALPHABET), max_size=60))
@example("=DDE )")
@example("=cmd!'x'")
def test_sylk_expressions_need_a_bar_or_a_parenthesis(text: str) -> None:
    # What the SYLK reader's skipping rests on (scanner.formulas): without "|" or "(" a
    # formula holds no remote reference and no DDE()/INITIATE() call.
    assert formulas.remote_references(text) == ()
    # With a bar or a call added, the same text is read (the oracle is not blind).
    assert (
        len(formulas.remote_references(text + " + cmd|'/c calc'!A0")) >= 1
        or "'" in text
        or '"' in text
    )
    assert formulas.remote_references('=DDE("cmd";"/c calc";"A1")')[0].keyword == "DDE()"


HIT_ALPHABET = list("dDeEiInNtTaA|｜ＤｄＥｅＩｉＮｎＴｔＡａ\u0130ß,\n\r x\"'=")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(HIT_ALPHABET), max_size=80))
@example("\u0130|")
@example("\u0130x,Ｄde")
@example("iNiTiAtE")
def test_every_relevant_match_is_a_hit(text: str) -> None:
    starts = [m.start() for m in csv_text._RELEVANT.finditer(text)]
    assert starts == [m.start() for m in csv_text._RELEVANT_SCAN.finditer(text)]
    finders = csv_text._hit_finders(text, len(text))
    for start in starts:
        assert csv_text._first(finders, start) == start


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"a\x00b\x00", b"\x00a\x00b"]),
    st.binary(max_size=60),
    st.integers(min_value=1, max_value=9),
)
def test_decoding_in_chunks_gives_the_same_text(prefix: bytes, body: bytes, chunk: int) -> None:
    data = prefix + body
    ctx = context()
    encoding = csv_text._encoding(data, chunk, ctx)
    pieces = list(csv_text._pieces(data, encoding, chunk))
    reference = csv_text._decode(data)
    assert encoding.step == reference.step
    assert "".join(piece for piece, _ in pieces) == reference.text
    assert [final for _, final in pieces] == [False] * (len(pieces) - 1) + [True]


CELLS = [
    PAYLOAD,
    "+cmd|' /C calc'!A0",
    "-2+cmd|'/c calc'!A0",
    "@SUM(1)*cmd|'x'!A0",
    '=DDE("cmd";"/c calc";"A1")',
    '=INITIATE("cmd","/c calc")',
    "＝ｃｍｄ｜＇／ｃ　ｃａｌｃ＇！Ａ０",
    '=ＤＤＥ("cmd";"/c calc";"A1")',
    '=ｉｎｉｔｉａｔｅ("cmd","x")',
    "=cmd|'/c echo 1,2;3\tx'!A0",
    "'=cmd|'x'!A0",
    "hidden",
    "added",
    "a|b",
    "5|x!y",
    "+44 20 7946",
    "-5",
    "Straße",
    "\u0130stanbul",
    "caf\u00e9",
    "𝐝𝐝𝐞",
    "\u3000=cmd|'y'!A0",
    "\uff02=cmd|'z'!A0",
    "",
    "x",
]
PIECES = st.one_of(
    st.sampled_from(CELLS),
    st.sampled_from(['"', '""', ",", ";", "\t", "|", "｜", "\r\n", "\n", "\r", " ", "'"]),
)
DELIMITED = st.lists(PIECES, max_size=40).map("".join)
SEP = st.sampled_from(
    [
        "",
        "sep=;\n",
        "sep=,\r\n",
        "SEP=|\r",
        "sep=\t\n",
        "sep=!  \n",
        "sep=;",
        "\u017fep=;\n",
        "sep=\n",
    ]
)


def encoded(text: str, encoding: str) -> bytes:
    if encoding == "utf-8-bom":
        return b"\xef\xbb\xbf" + text.encode()
    if encoding == "utf-16-le-bom":
        return b"\xff\xfe" + text.encode("utf-16-le")
    if encoding == "utf-16-be-bom":
        return b"\xfe\xff" + text.encode("utf-16-be")
    if encoding == "cp1252":
        return text.encode("cp1252", errors="replace") + b"\x81\xe9"
    return text.encode(encoding)


ENCODINGS = st.sampled_from(
    ["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be", "utf-16-le-bom", "utf-16-be-bom", "cp1252"]
)


@pytest.mark.parametrize("mode", list(MODES))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SEP, DELIMITED, ENCODINGS, st.integers(min_value=1, max_value=40))
def test_generated_delimited_text(
    mode: str, sep: str, body: str, encoding: str, chunk: int
) -> None:
    data = encoded(sep + body, encoding)
    assert chunked_in(mode, data, chunk) == whole(data)


@pytest.mark.parametrize("mode", list(MODES))
@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DELIMITED, st.sampled_from(["utf-8", "utf-16-le-bom"]), st.integers(1, 40))
def test_generated_delimited_text_with_small_record_bounds(
    mode: str, body: str, encoding: str, chunk: int
) -> None:
    # Bounds small enough that generated files reach them: records cut short, in every
    # position relative to the chunks.
    data = encoded(body, encoding)
    for lines, chars in ((2, 1 << 20), (3, 30), (10_000, 12), (1, 5)):
        with (
            mock.patch.object(csv_text, "_MAX_JOINED_LINES", lines),
            mock.patch.object(csv_text, "_MAX_RECORD_CHARS", chars),
        ):
            assert chunked_in(mode, data, chunk) == whole(data), (lines, chars)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 40))
def test_arbitrary_bytes(data: bytes, chunk: int) -> None:
    assert chunked(data, chunk) == whole(data)


SYLK_EXPRESSIONS = [
    "CMD|'/c calc'!A0",
    "A1+1",
    "SUM(A1:A3)",
    'DDE("cmd";;"/c calc";;"A1")',
    'ＤＤＥ("cmd";;"x";;"y")',
    "ＣＭＤ｜＇／ｃ　ｃａｌｃ＇！Ａ０",
    "NOTEPAD|'a;;b'!A0",
    "⑴+cmd|'x'!A0",
    "X1",
    "a;;Y3",
    'INITIATE("cmd","/c calc")',
    'initiate("cmd","x")',
]
SYLK_RECORDS = st.one_of(
    st.builds(
        "C;Y{};X{};K1;E{}".format,
        st.integers(0, 99),
        st.integers(0, 99),
        st.sampled_from(SYLK_EXPRESSIONS),
    ),
    st.builds("C;X{};E{}".format, st.integers(0, 99), st.sampled_from(SYLK_EXPRESSIONS)),
    st.builds("C;Y{};K{}".format, st.integers(0, 99), st.integers(0, 9)),
    st.builds("F;X{};Y{}".format, st.sampled_from(["1", "22", "1²", "x", ""]), st.integers(0, 9)),
    st.builds(
        "NN;N{};E{}".format, st.sampled_from(["auto", "a;;b"]), st.sampled_from(SYLK_EXPRESSIONS)
    ),
    st.sampled_from(["P;PGeneral", "C;Y1;;X5;EA1", "E", "", "C", "CX;Y3", "ID;P"]),
)
SYLK = st.lists(st.tuples(SYLK_RECORDS, st.sampled_from(["\r\n", "\n", "\r"])), max_size=25).map(
    lambda rows: "ID;PWXL;N;E\r\n" + "".join(r + b for r, b in rows)
)


@pytest.mark.parametrize("mode", list(MODES))
@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SYLK, ENCODINGS, st.integers(min_value=1, max_value=40))
def test_generated_sylk(mode: str, text: str, encoding: str, chunk: int) -> None:
    data = encoded(text, encoding)
    assert chunked_in(mode, data, chunk) == whole(data)
