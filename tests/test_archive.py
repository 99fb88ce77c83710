"""ZIP and gzip containers: members scanned by content, locations, passwords and every limit."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import struct
import time
import zipfile
import zlib
from dataclasses import replace

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from docx_builder import complex_field, document, package
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes
from scanner.formats.archive import GzipFormat, ZipFormat
from scanner.model import (
    Confidence,
    FileFormat,
    ProblemKind,
    ScanConfig,
    ScanLimits,
    ScanReport,
    Verdict,
)

HEADER_CT = "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"
CSV_DDE = b"Name,Amount\r\nInvoice,=cmd|'/c calc.exe'!A0\r\n"


def header_docx(
    command: str = 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"',
) -> bytes:
    """A docx whose only field is a DDEAUTO in word/header2.xml."""
    header = document(complex_field(command)).replace("w:document", "w:hdr")
    return package(
        {
            "word/document.xml": document("<w:r><w:t>Invoice</w:t></w:r>"),
            "word/header2.xml": header,
        },
        overrides={"/word/header2.xml": HEADER_CT},
    )


def make_zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data, method)
    return buffer.getvalue()


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC = _crc_table()


def zipcrypto(plain: bytes, password: bytes, check: int) -> bytes:
    """Traditional PKWARE encryption (APPNOTE 6.1) of `plain`, with its 12-byte header."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(byte: int) -> None:
        keys[0] = (keys[0] >> 8) ^ _CRC[(keys[0] ^ byte) & 0xFF]
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = (keys[2] >> 8) ^ _CRC[(keys[2] ^ (keys[1] >> 24)) & 0xFF]

    for byte in password:
        update(byte)
    out = bytearray()
    for byte in bytes(range(7, 18)) + bytes([check]) + plain:
        temp = (keys[2] | 2) & 0xFFFF
        out.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        update(byte)
    return bytes(out)


def raw_zip(entries: list[tuple[str, bytes, int, int, bytes, int, bytes]]) -> bytes:
    """A ZIP from (name, stored bytes, method, flags, plain data, crc, extra) entries."""
    local = io.BytesIO()
    central = io.BytesIO()
    for name, stored, method, flags, plain, crc, extra in entries:
        offset = local.tell()
        encoded = name.encode()
        fixed = struct.pack(
            "<HHHHHIIIHH",
            20,
            flags,
            method,
            0,
            0x21,
            crc,
            len(stored),
            len(plain),
            len(encoded),
            len(extra),
        )
        local.write(b"PK\x03\x04" + fixed + encoded + extra + stored)
        central.write(
            b"PK\x01\x02"
            + struct.pack("<H", 20)
            + fixed
            + struct.pack("<HHHII", 0, 0, 0, 0, offset)
            + encoded
            + extra
        )
    directory = central.getvalue()
    end = struct.pack(
        "<4sHHHHIIH",
        b"PK\x05\x06",
        0,
        0,
        len(entries),
        len(entries),
        len(directory),
        local.tell(),
        0,
    )
    return local.getvalue() + directory + end


def deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def encrypted_zip(name: str, plain: bytes, password: bytes) -> bytes:
    crc = zlib.crc32(plain)
    stored = zipcrypto(deflate_raw(plain), password, crc >> 24)
    return raw_zip([(name, stored, 8, 0x1, plain, crc, b"")])


def aes_zip(name: str, plain: bytes, password: bytes = b"", strength: int = 3) -> bytes:
    """A WinZip AE-2 member (method 99, extra 0x9901: version 2, "AE", strength, method 8),
    encrypted with `password` as the WinZip specification describes (salt, verifier, AES-CTR
    with a little-endian counter from 1, HMAC-SHA1 truncated to 10 bytes)."""
    key_length = {1: 16, 2: 24, 3: 32}[strength]
    salt = bytes(range(1, key_length // 2 + 1))
    derived = hashlib.pbkdf2_hmac("sha1", password, salt, 1000, 2 * key_length + 2)
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    compressed = deflater.compress(plain) + deflater.flush()
    encryptor = Cipher(algorithms.AES(derived[:key_length]), modes.ECB()).encryptor()
    blocks = (len(compressed) + 15) // 16
    stream = encryptor.update(b"".join(n.to_bytes(16, "little") for n in range(1, blocks + 1)))
    body = bytes(a ^ b for a, b in zip(compressed, stream, strict=False))
    mac = hmac.new(derived[key_length : 2 * key_length], body, hashlib.sha1).digest()[:10]
    stored = salt + derived[-2:] + body + mac
    extra = struct.pack("<HHH2sBH", 0x9901, 7, 2, b"AE", strength, 8)
    return raw_zip([(name, stored, 99, 0x1, plain, 0, extra)])


def config(**limits: int | float) -> ScanConfig:
    return ScanConfig(limits=replace(ScanLimits(), **limits))


def problems(report: ScanReport) -> list[tuple[ProblemKind, tuple[str, ...]]]:
    return [(p.kind, p.location.containers) for p in report.problems]


def commands(report: ScanReport) -> list[tuple[tuple[str, ...], str, str]]:
    return [
        (f.location.containers, f.process.parent, f.process.command_line) for f in report.findings
    ]


WORD_CMD = ("WINWORD.EXE", "c:\\windows\\system32\\cmd.exe /k calc.exe")
EXCEL_CMD = ("EXCEL.EXE", "cmd /c calc.exe")


def test_identify_zip_but_not_office_packages() -> None:
    assert ZipFormat().identify(make_zip([("a.txt", b"x")]), "a.zip") is Confidence.YES
    assert ZipFormat().identify(b"PK\x07\x08PK\x03\x04rest", "a.zip") is Confidence.YES
    assert ZipFormat().identify(b"not a zip", "a.zip") is Confidence.NO
    report = scan_bytes(header_docx(), "invoice.docx")
    assert report.format is FileFormat.DOCX
    assert GzipFormat().identify(gzip.compress(b"abc"), "a.gz") is Confidence.YES
    assert GzipFormat().identify(b"\x1f\x8b\x08", "a.gz") is Confidence.NO


def test_docx_in_zip_exact_location() -> None:
    data = make_zip([("docs/", b""), ("docs/invoice.docx", header_docx()), ("readme.txt", b"hi")])
    report = scan_bytes(data, "invoice.zip")
    assert report.format is FileFormat.ZIP
    assert report.verdict is Verdict.MALICIOUS
    assert commands(report) == [
        (("invoice.zip", "docs/invoice.docx", "word/header2.xml"), *WORD_CMD)
    ]
    assert report.problems == ()


def test_csv_in_gzip_named_by_header_or_outer_name() -> None:
    named = io.BytesIO()
    with gzip.GzipFile("orders.csv", "wb", fileobj=named, mtime=0) as handle:
        handle.write(CSV_DDE)
    report = scan_bytes(named.getvalue(), "export.gz")
    assert report.format is FileFormat.GZIP
    assert commands(report) == [(("export.gz", "orders.csv"), *EXCEL_CMD)]
    anonymous = gzip.compress(CSV_DDE, mtime=0)
    assert commands(scan_bytes(anonymous, "sheet.csv.gz")) == [
        (("sheet.csv.gz", "sheet.csv"), *EXCEL_CMD)
    ]
    assert commands(scan_bytes(anonymous, "blob")) == [(("blob", "gzip content"), *EXCEL_CMD)]


def test_concatenated_gzip_members_are_one_content() -> None:
    data = gzip.compress(b"Name,Amount\r\n", mtime=0) + gzip.compress(CSV_DDE[13:], mtime=0)
    report = scan_bytes(data, "x.csv.gz")
    assert commands(report) == [(("x.csv.gz", "x.csv"), *EXCEL_CMD)]
    assert report.problems == ()


def test_truncated_gzip_scans_what_was_read_and_says_so() -> None:
    data = gzip.compress(CSV_DDE + b"x" * 100_000, mtime=0, compresslevel=0)[:2000]
    report = scan_bytes(data, "x.csv.gz")
    assert commands(report) == [(("x.csv.gz", "x.csv"), *EXCEL_CMD)]
    assert problems(report) == [(ProblemKind.MALFORMED, ("x.csv.gz",))]
    assert "truncated" in report.problems[0].message


def test_gzip_bomb_hits_the_ratio_limit() -> None:
    data = gzip.compress(b"\x00" * (8 * 1024 * 1024), mtime=0)
    report = scan_bytes(data, "bomb.gz")
    assert problems(report) == [(ProblemKind.LIMIT, ("bomb.gz",))]
    assert "200:1" in report.problems[0].message


def test_zip_nested_fifty_deep_stops_at_max_depth() -> None:
    data = make_zip([("invoice.docx", header_docx())])
    for level in range(50):
        data = make_zip([(f"level{level}.zip", data)])
    started = time.monotonic()
    report = scan_bytes(data, "deep.zip")
    assert time.monotonic() - started < 2.0
    depth = ScanLimits().max_depth
    assert problems(report) == [
        (ProblemKind.LIMIT, ("deep.zip", *(f"level{n}.zip" for n in range(49, 49 - depth - 1, -1))))
    ]
    assert "nesting depth limit of 8" in report.problems[0].message
    assert report.findings == ()
    assert report.verdict is Verdict.ERROR


def test_three_nested_zips_within_depth_report_the_full_path() -> None:
    data = make_zip([("c.zip", make_zip([("b.zip", make_zip([("d.docx", header_docx())]))]))])
    report = scan_bytes(data, "a.zip")
    assert commands(report) == [
        (("a.zip", "c.zip", "b.zip", "d.docx", "word/header2.xml"), *WORD_CMD)
    ]


def test_member_limit_scans_the_first_members_and_reports_the_rest() -> None:
    members = [("evil.csv", CSV_DDE)] + [(f"f{n}.txt", b"") for n in range(100)]
    report = scan_bytes(make_zip(members), "many.zip", config(max_members=50))
    assert commands(report) == [(("many.zip", "evil.csv"), *EXCEL_CMD)]
    assert problems(report) == [(ProblemKind.LIMIT, ("many.zip",))]
    assert report.problems[0].message == (
        "archive has 101 members; the 51 past the member limit of 50 were not inspected"
    )


def test_oversized_central_directory_is_refused_before_parsing() -> None:
    members = [(f"{'n' * 200}{n}.txt", b"") for n in range(30)]
    report = scan_bytes(make_zip(members), "wide.zip", config(max_members=10))
    assert problems(report) == [(ProblemKind.LIMIT, ("wide.zip",))]
    assert "central directory" in report.problems[0].message


def test_ten_thousand_members_within_limits() -> None:
    members = [(f"m/{n:05}.txt", b"hello") for n in range(9_999)] + [("z/evil.csv", CSV_DDE)]
    data = make_zip(members)
    started = time.monotonic()
    report = scan_bytes(data, "10k.zip")
    elapsed = time.monotonic() - started
    assert commands(report) == [(("10k.zip", "z/evil.csv"), *EXCEL_CMD)]
    assert report.problems == ()
    assert report.scanned_parts == 1 + 10_000 + 10_000
    assert elapsed < 8.0


def test_ratio_bomb_member_costs_only_that_member() -> None:
    members = [("bomb.bin", b"\x00" * (4 * 1024 * 1024)), ("invoice.docx", header_docx())]
    report = scan_bytes(make_zip(members), "mixed.zip")
    assert commands(report) == [(("mixed.zip", "invoice.docx", "word/header2.xml"), *WORD_CMD)]
    assert problems(report) == [(ProblemKind.LIMIT, ("mixed.zip", "bomb.bin"))]
    assert "compression bomb" in report.problems[0].message
    assert report.verdict is Verdict.MALICIOUS


def test_part_size_limit() -> None:
    members = [("big.txt", bytes(range(256)) * 4096), ("evil.csv", CSV_DDE)]
    report = scan_bytes(
        make_zip(members, zipfile.ZIP_STORED), "big.zip", config(max_part_bytes=100_000)
    )
    assert commands(report) == [(("big.zip", "evil.csv"), *EXCEL_CMD)]
    assert problems(report) == [(ProblemKind.LIMIT, ("big.zip", "big.txt"))]
    assert "part size limit of 100000" in report.problems[0].message


def test_total_bytes_budget_is_shared_by_every_member() -> None:
    members = [(f"{n}.txt", b"a" * 40_000) for n in range(5)] + [("z.csv", CSV_DDE)]
    report = scan_bytes(make_zip(members), "budget.zip", config(max_total_bytes=100_000))
    assert [p for p in problems(report)] == [
        (ProblemKind.LIMIT, ("budget.zip", name)) for name in ("2.txt", "3.txt", "4.txt", "z.csv")
    ]
    assert "total decompressed size limit of 100000" in report.problems[0].message
    assert report.findings == ()


def test_timeout_is_reported() -> None:
    members = [(f"{n}.csv", CSV_DDE) for n in range(2000)]
    report = scan_bytes(make_zip(members), "slow.zip", config(timeout_seconds=0.000_001))
    assert [p.kind for p in report.problems] == [ProblemKind.TIMEOUT]


def test_zipcrypto_member_opened_with_a_configured_password() -> None:
    data = encrypted_zip("invoice.docx", header_docx(), b"infected")
    unlocked = scan_bytes(data, "locked.zip", ScanConfig(passwords=("wrong", "infected")))
    assert commands(unlocked) == [(("locked.zip", "invoice.docx", "word/header2.xml"), *WORD_CMD)]
    assert unlocked.problems == ()


def test_zipcrypto_member_without_password_is_locked() -> None:
    data = encrypted_zip("invoice.docx", header_docx(), b"infected")
    report = scan_bytes(data, "locked.zip")
    assert problems(report) == [(ProblemKind.LOCKED, ("locked.zip", "invoice.docx"))]
    assert report.problems[0].message == "member is encrypted and no password was given or found"
    # A locked member is suspicious by default (ScanConfig.locked_verdict).
    assert report.verdict is Verdict.SUSPICIOUS
    wrong = scan_bytes(data, "locked.zip", ScanConfig(passwords=("nope", "alsonope")))
    assert problems(wrong) == [(ProblemKind.LOCKED, ("locked.zip", "invoice.docx"))]
    assert "none of the 2 candidate passwords" in wrong.problems[0].message


def test_non_ascii_password_tried_in_utf8_and_legacy_code_pages() -> None:
    data = encrypted_zip("a.csv", CSV_DDE, "pässwort".encode("cp437"))
    report = scan_bytes(data, "de.zip", ScanConfig(passwords=("pässwort",)))
    assert commands(report) == [(("de.zip", "a.csv"), *EXCEL_CMD)]


def test_aes_member_opened_with_a_candidate_password() -> None:
    for strength in (1, 2, 3):
        data = aes_zip("orders.csv", CSV_DDE, b"infected", strength)
        report = scan_bytes(data, "aes.zip", ScanConfig(passwords=("nope", "infected")))
        assert commands(report) == [(("aes.zip", "orders.csv"), *EXCEL_CMD)]
        assert report.problems == ()


def test_aes_member_without_the_password_is_locked() -> None:
    data = aes_zip("invoice.csv", CSV_DDE, b"infected")
    report = scan_bytes(data, "aes.zip", ScanConfig(passwords=("a",)))
    assert problems(report) == [(ProblemKind.LOCKED, ("aes.zip", "invoice.csv"))]
    assert "AES-encrypted and none of the 1 candidate passwords" in report.problems[0].message
    bare = scan_bytes(data, "aes.zip")
    assert "AES-encrypted and no password" in bare.problems[0].message


def test_aes_member_with_a_tampered_mac_is_not_opened() -> None:
    data = bytearray(aes_zip("invoice.csv", CSV_DDE, b"infected"))
    mac_end = data.index(b"PK\x01\x02")
    data[mac_end - 1] ^= 0xFF
    report = scan_bytes(bytes(data), "aes.zip", ScanConfig(passwords=("infected",)))
    assert [p.kind for p in report.problems] == [ProblemKind.LOCKED]


def test_unknown_compression_method_is_unsupported_for_that_member() -> None:
    plain = b"abc"
    data = raw_zip(
        [
            ("odd.bin", b"\x00" * 8, 9, 0, plain, zlib.crc32(plain), b""),
            ("evil.csv", CSV_DDE, 0, 0, CSV_DDE, zlib.crc32(CSV_DDE), b""),
        ]
    )
    report = scan_bytes(data, "odd.zip")
    assert commands(report) == [(("odd.zip", "evil.csv"), *EXCEL_CMD)]
    assert problems(report) == [(ProblemKind.UNSUPPORTED, ("odd.zip", "odd.bin"))]


def test_corrupt_member_data_is_malformed_for_that_member() -> None:
    plain = b"abcdefgh" * 10
    data = raw_zip(
        [
            ("bad.bin", b"\xff" * 20, 8, 0, plain, zlib.crc32(plain), b""),
            ("evil.csv", CSV_DDE, 0, 0, CSV_DDE, zlib.crc32(CSV_DDE), b""),
        ]
    )
    report = scan_bytes(data, "bad.zip")
    assert commands(report) == [(("bad.zip", "evil.csv"), *EXCEL_CMD)]
    assert problems(report) == [(ProblemKind.MALFORMED, ("bad.zip", "bad.bin"))]


def test_truncated_zip_is_malformed() -> None:
    data = make_zip([("invoice.docx", header_docx())])
    report = scan_bytes(data[: len(data) // 2], "cut.zip")
    assert problems(report) == [(ProblemKind.MALFORMED, ("cut.zip",))]


_SEED_ZIP = make_zip([("a.csv", CSV_DDE), ("b.txt", b"hello world" * 20)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_archives_give_only_typed_problems(data: st.DataObject) -> None:
    blob = bytearray(data.draw(st.sampled_from([_SEED_ZIP, gzip.compress(_SEED_ZIP, mtime=0)])))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(4, len(blob)))
    report = scan_bytes(bytes(blob[:cut]), "fuzz.zip")
    assert ProblemKind.INTERNAL not in {p.kind for p in report.problems}, report.problems


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_after_a_signature(tail: bytes) -> None:
    for head in (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b\x08"):
        report = scan_bytes(head + tail, "fuzz")
        assert ProblemKind.INTERNAL not in {p.kind for p in report.problems}, report.problems


def test_stored_docx_member_is_still_scanned() -> None:
    data = make_zip([("invoice.docx", header_docx())], zipfile.ZIP_STORED)
    report = scan_bytes(data, "stored.zip")
    assert commands(report) == [(("stored.zip", "invoice.docx", "word/header2.xml"), *WORD_CMD)]
