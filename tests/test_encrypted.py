"""Encrypted Office files (scanner.formats.encrypted): detection, the password order and its
bounds, decryption of every scheme, and what the walker makes of the plain document.

Own fixtures are built here from [MS-OFFCRYPTO]: OOXML Agile packages with msoffcrypto-tool's
encryptor pieces (a low spinCount keeps them quick; its own container writer is not used: it
writes a broken compound file for packages under 4096 bytes); .doc and .xls under RC4 and
RC4 CryptoAPI with msoffcrypto's stream ciphers (RC4 is its own inverse); .xls under XOR
obfuscation with an encryptor that inverts msoffcrypto's DecryptData_Method1. oletools'
public encrypted samples are used when shared/peers/oletools is present.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import struct
import time
from pathlib import Path

import olefile
import pytest
from cfbwriter import write_cfb
from click.testing import CliRunner
from conftest import OLETOOLS
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from docwriter import FC_CLX_OFFSET, Stories, field, word_streams
from docx_builder import complex_field, docx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msoffcrypto.method.ecma376_agile import ECMA376Agile
from msoffcrypto.method.ecma376_standard import ECMA376Standard
from msoffcrypto.method.rc4 import DocumentRC4
from msoffcrypto.method.rc4_cryptoapi import DocumentRC4CryptoAPI
from msoffcrypto.method.xor_obfuscation import DocumentXOR

from scanner import cli
from scanner.api import scan_bytes, scan_path
from scanner.errors import ScanError
from scanner.formats.base import ByteBudget, ScanContext
from scanner.formats.encrypted import (
    DEFAULT_PASSWORDS,
    EncryptedOfficeFormat,
    PasswordOrigin,
    ProtectedKind,
    password_candidates,
    protected_kind,
)
from scanner.model import (
    EmbeddedDocument,
    FileFormat,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanLimits,
    ScanReport,
    Verdict,
)
from scanner.registry import REGISTRY
from scanner.render.json_report import to_json_line
from scanner.walker import verdict_for

SPIN = 1000
VELVET = "VelvetSweatshop"
USER_PASSWORD = "Inv-2017!secret"
DDE_CODE = 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'
CMD_LINE = "c:\\windows\\system32\\cmd.exe /k calc.exe"
DECRYPTED_DEFAULT = "decrypted with the default password 'VelvetSweatshop'"
DECRYPTED_USER = "decrypted with a user-supplied password"
DECRYPTED_MESSAGE = "decrypted with a password found in the surrounding message"
HANDLER = EncryptedOfficeFormat()


def agile(package: bytes, password: str, spin: int = SPIN) -> bytes:
    """An OOXML package under ECMA-376 Agile encryption ([MS-OFFCRYPTO] 2.3.4.10)."""
    info, key = ECMA376Agile.generate_encryption_parameters(password, spin_count=spin)
    payload = ECMA376Agile.encrypt_payload(
        io.BytesIO(package), info.encryptedKey, key, info.keyData.saltValue
    )
    encryption_info = ECMA376Agile.get_encryption_information(info, payload, key)
    return write_cfb({"EncryptionInfo": encryption_info, "EncryptedPackage": payload})


def dde_docx() -> bytes:
    return docx(complex_field(DDE_CODE))


def context(config: ScanConfig | None = None, passwords: tuple[str, ...] = ()) -> ScanContext:
    return ScanContext(
        config=config or ScanConfig(),
        location=Location(("in.bin",)),
        host=None,
        depth=0,
        deadline=time.monotonic() + 60,
        budget=ByteBudget(1 << 30),
        passwords=passwords,
    )


def decrypted(data: bytes, config: ScanConfig | None = None) -> EmbeddedDocument:
    items = list(HANDLER.scan(data, context(config)))
    assert len(items) == 1 and isinstance(items[0], EmbeddedDocument)
    return items[0]


def stream(data: bytes, name: str) -> bytes:
    ole = olefile.OleFileIO(io.BytesIO(data))
    try:
        content = ole.openstream(name).read()
        assert isinstance(content, bytes)
        return content
    finally:
        ole.close()


def hits(report: ScanReport) -> list[tuple[tuple[str, ...], str, str, Verdict]]:
    return [
        (f.location.containers, f.process.image, f.process.command_line, f.verdict)
        for f in report.findings
    ]


def kinds(report: ScanReport) -> list[ProblemKind]:
    return [p.kind for p in report.problems]


# RC4 and RC4 CryptoAPI ([MS-OFFCRYPTO] 2.3.6, 2.3.5): the stream cipher is its own inverse.
SALT = bytes(range(16))
VERIFIER = bytes(range(100, 116))


def rc4(password: str, data: bytes, block: int, key_bits: int | None) -> bytes:
    if key_bits is None:
        out = DocumentRC4.decrypt(password, SALT, io.BytesIO(data), blocksize=block)
    else:
        out = DocumentRC4CryptoAPI.decrypt(
            password, SALT, key_bits, io.BytesIO(data), blocksize=block
        )
    result = out.getvalue()
    assert isinstance(result, bytes)
    return result


def rc4_header(password: str, key_bits: int | None) -> bytes:
    """The EncryptionHeader of RC4 (2.3.6.1) or RC4 CryptoAPI (2.3.5.1) for `password`."""
    if key_bits is None:
        sealed = rc4(password, VERIFIER + hashlib.md5(VERIFIER).digest(), 64, None)
        return struct.pack("<HH", 1, 1) + SALT + sealed
    sealed = rc4(password, VERIFIER + hashlib.sha1(VERIFIER).digest(), 64, key_bits)
    csp = "Microsoft Enhanced Cryptographic Provider v1.0\0".encode("utf-16-le")
    header = struct.pack("<8I", 0x04, 0, 0x6801, 0x8004, key_bits, 1, 0, 0) + csp
    verifier = struct.pack("<I", 16) + SALT + sealed[:16] + struct.pack("<I", 20) + sealed[16:]
    return struct.pack("<HHII", 4, 2, 0x04, len(header)) + header + verifier


def rc4_doc(text: str, password: str, key_bits: int | None = None) -> tuple[bytes, bytes]:
    """(encrypted .doc, the plain .doc ddescan must give back) for the main text `text`."""
    streams = word_streams(Stories(text))
    header = rc4_header(password, key_bits)
    word = bytearray(streams["WordDocument"])
    # The header takes the table stream's first lKey bytes; the Clx moves behind it.
    struct.pack_into(
        "<I", word, FC_CLX_OFFSET, struct.unpack_from("<I", word, FC_CLX_OFFSET)[0] + len(header)
    )
    table = header + streams["1Table"]
    plain_word = bytes(word)
    flags = struct.unpack_from("<H", word, 0x0A)[0]
    struct.pack_into("<H", word, 0x0A, flags | 0x0100)
    struct.pack_into("<I", word, 0x0E, len(header))
    sealed_word = bytearray(rc4(password, bytes(word), 512, key_bits))
    sealed_word[:0x44] = word[:0x44]
    sealed_table = bytearray(rc4(password, table, 512, key_bits))
    sealed_table[: len(header)] = header
    encrypted = write_cfb({"WordDocument": bytes(sealed_word), "1Table": bytes(sealed_table)})
    return encrypted, plain_word


def record(record_type: int, body: bytes) -> bytes:
    return struct.pack("<HH", record_type, len(body)) + body


BOF_GLOBALS = struct.pack("<HHHHII", 0x0600, 0x0005, 0x2775, 0x07CD, 0x000080C9, 0x00000206)
BOF_SHEET = struct.pack("<HHHHII", 0x0600, 0x0010, 0x2775, 0x07CD, 0x000080C9, 0x00000206)
# A DDE SupBook ([MS-XLS] 2.4.271): cTab 0, then the virtual path "cmd" 0x03 "/c calc.exe".
SUPBOOK = record(0x01AE, struct.pack("<HH", 0, 15) + b"\x00cmd\x03/c calc.exe")


def workbook(filepass: bytes) -> tuple[bytes, list[tuple[int, int]], int]:
    """A BIFF8 Workbook stream: (stream, encrypted byte ranges, offset of FilePass).

    Longer than 1024 bytes so that the RC4 key changes at least once inside it.
    """
    head = record(0x0809, BOF_GLOBALS)
    filepass_at = len(head)
    records = [
        record(0x002F, filepass),
        record(0x00E1, b"\xb0\x04"),  # InterfaceHdr: never encrypted
        record(0x0042, b"\xe4\x04"),  # CodePage
        record(0x005C, b"ddescan test".ljust(112, b" ")),  # WriteAccess
    ]
    parts = [head, *records]
    sheet_name = b"\x06\x00Sheet1"
    boundsheet_at = sum(len(p) for p in parts)
    parts.append(b"")  # BoundSheet8, written once the sheet's offset is known
    parts += [SUPBOOK, record(0x0899, bytes(range(256)) * 6), record(0x000A, b"")]
    sheet_at = boundsheet_at + 4 + 6 + len(sheet_name) + sum(len(p) for p in parts[-3:])
    parts[-4] = record(0x0085, struct.pack("<IH", sheet_at, 0) + sheet_name)
    parts += [record(0x0809, BOF_SHEET), record(0x0042, b"\xe4\x04"), record(0x000A, b"")]
    data = b"".join(parts)
    encrypted: list[tuple[int, int]] = []
    offset = 0
    seen_filepass = False
    while offset < len(data):
        kind, size = struct.unpack_from("<HH", data, offset)
        body = offset + 4
        if seen_filepass and kind not in (0x0809, 0x00E1):
            encrypted.append((body + 4 if kind == 0x0085 else body, body + size))
        seen_filepass = seen_filepass or kind == 0x002F
        offset = body + size
    return data, encrypted, filepass_at


def plain_workbook(data: bytes, filepass_at: int) -> bytes:
    """What decrypting gives: FilePass turned into a zeroed record of type 0."""
    size = struct.unpack_from("<H", data, filepass_at + 2)[0]
    return (
        data[:filepass_at]
        + struct.pack("<HH", 0, size)
        + bytes(size)
        + data[filepass_at + 4 + size :]
    )


def rc4_xls(password: str, key_bits: int | None = None) -> tuple[bytes, bytes]:
    header = rc4_header(password, key_bits)
    data, ranges, filepass_at = workbook(struct.pack("<H", 1) + header)
    keystream = rc4(password, data, 1024, key_bits)
    sealed = bytearray(data)
    for start, end in ranges:
        sealed[start:end] = keystream[start:end]
    return write_cfb({"Workbook": bytes(sealed)}), plain_workbook(data, filepass_at)


def xor_verifier(password: str) -> int:
    """[MS-OFFCRYPTO] 2.3.7.1 CreatePasswordVerifier_Method1."""
    verifier = 0
    for char in reversed([len(password), *(ord(c) for c in password)]):
        verifier = (((verifier >> 14) & 1) | ((verifier << 1) & 0x7FFF)) ^ char
    return verifier ^ 0xCE4B


def xor_xls(password: str) -> tuple[bytes, bytes]:
    """An XOR-obfuscated workbook: each encrypted run is the inverse of msoffcrypto's
    DecryptData_Method1 (byte = rol(plain, 5) xor XorArray[index])."""
    filepass = struct.pack(
        "<HHH", 0, DocumentXOR.create_xor_key_method1(password), xor_verifier(password)
    )
    data, ranges, filepass_at = workbook(filepass)
    array = DocumentXOR.create_xor_array_method1(password)
    sealed = bytearray(data)
    for start, end in ranges:
        index = (end + (4 if start != end and _is_boundsheet_tail(data, start) else 0)) % 16
        for position in range(start, end):
            sealed[position] = DocumentXOR.rol(data[position], 5, 8) ^ array[index]
            index = (index + 1) % 16
    return write_cfb({"Workbook": bytes(sealed)}), plain_workbook(data, filepass_at)


def _is_boundsheet_tail(data: bytes, start: int) -> bool:
    return struct.unpack_from("<H", data, start - 8)[0] == 0x0085


class TestDetection:
    def test_each_kind_is_recognised(self) -> None:
        assert protected_kind(agile(dde_docx(), VELVET)) is ProtectedKind.OOXML
        assert protected_kind(rc4_doc("x\r", "pw")[0]) is ProtectedKind.WORD
        assert protected_kind(rc4_xls("pw")[0]) is ProtectedKind.EXCEL
        rights = write_cfb({"\x09DRMContent": b"x" * 10, "\x06DataSpaces/Version": b"v"})
        assert protected_kind(rights) is ProtectedKind.RIGHTS_MANAGED

    def test_plain_documents_are_not_claimed(self) -> None:
        plain_doc = write_cfb(word_streams(Stories("hello\r")))
        assert protected_kind(plain_doc) is None
        assert protected_kind(dde_docx()) is None
        assert protected_kind(b"") is None
        assert protected_kind(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600) is None

    def test_decrypted_output_is_never_claimed_again(self) -> None:
        # No endless loop: every plain document the handler gives back lacks the markers.
        for encrypted in (rc4_doc("x\r", VELVET)[0], rc4_xls(VELVET)[0], xor_xls(VELVET)[0]):
            plain = decrypted(encrypted).data
            assert protected_kind(plain) is None
            assert HANDLER.identify(plain, "x.bin").value == "no"

    def test_registered_before_every_other_compound_file_format(self) -> None:
        formats = [handler.format for handler in REGISTRY]
        encrypted = formats.index(FileFormat.ENCRYPTED)
        for other in (FileFormat.DOC, FileFormat.MSG, FileFormat.OLE):
            assert encrypted < formats.index(other)
        # The BIFF8 .xls reader, once registered, is a compound-file format too (.xlsb is a ZIP).
        xls = getattr(FileFormat, "XLS", None)
        if xls in formats:
            assert encrypted < formats.index(xls)


class TestOoxml:
    def test_velvetsweatshop_docx_with_ddeauto(self) -> None:
        report = scan_bytes(agile(dde_docx(), VELVET), "invoice.docx")
        assert report.format is FileFormat.ENCRYPTED
        assert hits(report) == [
            (
                ("invoice.docx", DECRYPTED_DEFAULT, "word/document.xml"),
                "cmd.exe",
                CMD_LINE,
                Verdict.MALICIOUS,
            )
        ]
        assert report.problems == () and report.verdict is Verdict.MALICIOUS

    def test_unknown_password_is_locked(self) -> None:
        report = scan_bytes(agile(dde_docx(), USER_PASSWORD), "invoice.docx")
        assert report.findings == ()
        assert report.problems == (
            Problem(
                ProblemKind.LOCKED,
                "OOXML package is encrypted (ECMA-376 Agile encryption) and none of the 7 "
                "passwords tried opens it (7 well-known defaults); content not inspected",
                Location(("invoice.docx",)),
            ),
        )
        assert report.verdict is Verdict.SUSPICIOUS

    def test_user_password_opens_and_is_never_shown(self) -> None:
        config = ScanConfig(passwords=("wrong", USER_PASSWORD))
        report = scan_bytes(agile(dde_docx(), USER_PASSWORD), "invoice.docx", config)
        assert hits(report) == [
            (
                ("invoice.docx", DECRYPTED_USER, "word/document.xml"),
                "cmd.exe",
                CMD_LINE,
                Verdict.MALICIOUS,
            )
        ]
        assert USER_PASSWORD not in to_json_line(report)

    def test_message_password_from_the_context(self) -> None:
        found = list(
            HANDLER.scan(agile(dde_docx(), USER_PASSWORD), context(passwords=(USER_PASSWORD,)))
        )
        assert [(type(i), i.location.containers) for i in found] == [
            (EmbeddedDocument, ("in.bin", DECRYPTED_MESSAGE))
        ]

    def test_message_password_through_a_mail(self) -> None:
        attachment = agile(dde_docx(), USER_PASSWORD)
        encoded = base64.encodebytes(attachment).decode("ascii")
        mail = (
            "From: a@example.invalid\r\nTo: b@example.invalid\r\nSubject: invoice\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain\r\n\r\n"
            f"The document is protected. Password: {USER_PASSWORD}\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\n"
            'Content-Disposition: attachment; filename="invoice.docx"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}--b--\r\n"
        ).encode("ascii")
        report = scan_bytes(mail, "mail.eml")
        assert [(f.location.containers[-2:], f.process.command_line) for f in report.findings] == [
            ((DECRYPTED_MESSAGE, "word/document.xml"), CMD_LINE)
        ]
        assert USER_PASSWORD not in "".join(f.location.display() for f in report.findings)

    def test_certificate_only_package_is_locked(self) -> None:
        info, key = ECMA376Agile.generate_encryption_parameters("x", spin_count=SPIN)
        payload = ECMA376Agile.encrypt_payload(
            io.BytesIO(dde_docx()), info.encryptedKey, key, info.keyData.saltValue
        )
        descriptor = ECMA376Agile.get_encryption_information(info, payload, key)
        descriptor = descriptor.replace(b"keyEncryptor/password", b"keyEncryptor/certificate")
        data = write_cfb({"EncryptionInfo": descriptor, "EncryptedPackage": payload})
        report = scan_bytes(data, "cert.docx")
        assert kinds(report) == [ProblemKind.LOCKED]
        assert "encrypted to a certificate" in report.problems[0].message

    def test_dtd_in_the_descriptor_is_refused(self) -> None:
        info, key = ECMA376Agile.generate_encryption_parameters("x", spin_count=SPIN)
        payload = ECMA376Agile.encrypt_payload(
            io.BytesIO(dde_docx()), info.encryptedKey, key, info.keyData.saltValue
        )
        descriptor = ECMA376Agile.get_encryption_information(info, payload, key)
        bomb = b'<!DOCTYPE e [<!ENTITY a "aaaaaaaaaa">]>'
        descriptor = descriptor.replace(b"?>", b"?>" + bomb, 1)
        report = scan_bytes(
            write_cfb({"EncryptionInfo": descriptor, "EncryptedPackage": payload}), "d.docx"
        )
        assert kinds(report) == [ProblemKind.MALFORMED]
        assert "DOCTYPE" in report.problems[0].message

    def test_extensible_encryption_is_unsupported(self) -> None:
        data = write_cfb(
            {
                "EncryptionInfo": struct.pack("<HHI", 4, 3, 0) + bytes(40),
                "EncryptedPackage": bytes(64),
            }
        )
        report = scan_bytes(data, "x.docx")
        assert kinds(report) == [ProblemKind.UNSUPPORTED]
        assert "Extensible" in report.problems[0].message


def standard(package: bytes, password: str) -> bytes:
    """An OOXML package under ECMA-376 Standard encryption ([MS-OFFCRYPTO] 2.3.4.5: AES-128
    in ECB mode, the key from msoffcrypto's 50,000-round SHA-1 derivation of 2.3.4.7)."""
    key = ECMA376Standard.makekey_from_password(password, 0x660E, 0x8004, 0x18, 128, 16, SALT)

    def aes(data: bytes) -> bytes:
        encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        return encryptor.update(data.ljust(-(-len(data) // 16) * 16, b"\0")) + encryptor.finalize()

    csp = "Microsoft Enhanced RSA and AES Cryptographic Provider\0".encode("utf-16-le")
    header = struct.pack("<8I", 0x24, 0, 0x660E, 0x8004, 128, 0x18, 0, 0) + csp
    verifier = struct.pack("<I", 16) + SALT + aes(VERIFIER)
    verifier += struct.pack("<I", 20) + aes(hashlib.sha1(VERIFIER).digest())
    info = struct.pack("<HHII", 4, 2, 0x24, len(header)) + header + verifier
    payload = struct.pack("<Q", len(package)) + aes(package)
    return write_cfb({"EncryptionInfo": info, "EncryptedPackage": payload})


class TestStandard:
    def test_velvetsweatshop_opens(self) -> None:
        report = scan_bytes(standard(dde_docx(), VELVET), "invoice.docx")
        assert hits(report) == [
            (
                ("invoice.docx", DECRYPTED_DEFAULT, "word/document.xml"),
                "cmd.exe",
                CMD_LINE,
                Verdict.MALICIOUS,
            )
        ]
        assert report.problems == ()

    def test_unknown_password_is_locked(self) -> None:
        config = ScanConfig(limits=ScanLimits(max_password_tries=2))
        report = scan_bytes(standard(dde_docx(), USER_PASSWORD), "invoice.docx", config)
        assert report.problems[0].message.startswith(
            "OOXML package is encrypted (ECMA-376 Standard encryption) and none of the 2 "
            "passwords tried opens it (2 well-known defaults)"
        )

    def test_standard_costs_its_fixed_rounds(self) -> None:
        # 50,000 rounds per check: a budget of 120,000 rounds allows two checks.
        config = ScanConfig(limits=ScanLimits(max_key_derivation_rounds=120_000))
        report = scan_bytes(standard(dde_docx(), USER_PASSWORD), "invoice.docx", config)
        assert "none of the 2 passwords tried" in report.problems[0].message


class TestBounds:
    def test_tries_are_capped(self) -> None:
        limits = ScanLimits(max_password_tries=3)
        config = ScanConfig(limits=limits, passwords=(USER_PASSWORD,))
        report = scan_bytes(agile(dde_docx(), USER_PASSWORD), "x.docx", config)
        assert report.findings == ()
        assert report.problems[0].message == (
            "OOXML package is encrypted (ECMA-376 Agile encryption) and none of the 3 passwords "
            "tried opens it (3 well-known defaults); 5 more not tried (limit of 3 checks per "
            "file: max_password_tries, max_key_derivation_rounds); content not inspected"
        )

    def test_key_derivation_rounds_cap_the_tries(self) -> None:
        # spinCount 1000 and a budget of 2500 rounds: two checks, then stop.
        limits = ScanLimits(max_key_derivation_rounds=2500)
        report = scan_bytes(agile(dde_docx(), USER_PASSWORD), "x.docx", ScanConfig(limits=limits))
        assert "none of the 2 passwords tried opens it" in report.problems[0].message

    def test_hostile_spin_count_costs_no_derivation(self) -> None:
        # A descriptor asking for the maximum spinCount: 10,000,000 rounds (about 16 s per
        # password here) is over the whole budget, so nothing is derived at all.
        info, key = ECMA376Agile.generate_encryption_parameters(VELVET, spin_count=SPIN)
        payload = ECMA376Agile.encrypt_payload(
            io.BytesIO(dde_docx()), info.encryptedKey, key, info.keyData.saltValue
        )
        descriptor = ECMA376Agile.get_encryption_information(info, payload, key)
        descriptor = descriptor.replace(b'spinCount="1000"', b'spinCount="10000000"')
        data = write_cfb({"EncryptionInfo": descriptor, "EncryptedPackage": payload})
        started = time.monotonic()
        report = scan_bytes(data, "slow.docx")
        assert time.monotonic() - started < 1.0
        assert report.problems[0].message == (
            "OOXML package is encrypted (ECMA-376 Agile encryption); one password check costs "
            "10000000 key-derivation rounds, more than the limit of 2500000 "
            "(max_key_derivation_rounds), so no password was tried; content not inspected"
        )
        assert report.verdict is Verdict.SUSPICIOUS

    def test_spin_count_over_the_specification_is_malformed(self) -> None:
        info, key = ECMA376Agile.generate_encryption_parameters(VELVET, spin_count=SPIN)
        payload = ECMA376Agile.encrypt_payload(
            io.BytesIO(dde_docx()), info.encryptedKey, key, info.keyData.saltValue
        )
        descriptor = ECMA376Agile.get_encryption_information(info, payload, key)
        descriptor = descriptor.replace(b'spinCount="1000"', b'spinCount="10000001"')
        report = scan_bytes(
            write_cfb({"EncryptionInfo": descriptor, "EncryptedPackage": payload}), "x.docx"
        )
        assert kinds(report) == [ProblemKind.MALFORMED]

    def test_candidate_order_and_filtering(self) -> None:
        config = ScanConfig(passwords=("user1", VELVET, "", "x" * 256, "bad\udc80", "user2"))
        ctx = context(config, passwords=("user1", "mail1"))
        found = [(c.password, c.origin) for c in password_candidates(ctx)]
        assert found == [
            *((p, PasswordOrigin.DEFAULT) for p in DEFAULT_PASSWORDS),
            ("user1", PasswordOrigin.USER),
            ("user2", PasswordOrigin.USER),
            ("mail1", PasswordOrigin.MESSAGE),
        ]
        assert DEFAULT_PASSWORDS[:2] == (VELVET, "/01Hannes Ruescher/01")


class TestWord:
    @pytest.mark.parametrize(
        "key_bits", [None, 128, 40], ids=["rc4", "cryptoapi-128", "cryptoapi-40"]
    )
    def test_rc4_doc_decrypts_to_the_plain_document(self, key_bits: int | None) -> None:
        text = "Invoice\r" + field(DDE_CODE + " ", "") + "\r"
        encrypted, plain_word = rc4_doc(text, VELVET, key_bits)
        plain = decrypted(encrypted).data
        word = stream(plain, "WordDocument")
        # The FIB says "not encrypted" again (fEncrypted clear, lKey 0); the rest is the text.
        assert struct.unpack_from("<H", word, 0x0A)[0] & 0x0100 == 0
        assert word == plain_word
        report = scan_bytes(encrypted, "invoice.doc")
        assert hits(report) == [
            (
                ("invoice.doc", DECRYPTED_DEFAULT, "WordDocument", "main text"),
                "cmd.exe",
                CMD_LINE,
                Verdict.MALICIOUS,
            )
        ]
        assert report.problems == ()

    def test_rc4_doc_with_unknown_password_is_locked(self) -> None:
        report = scan_bytes(rc4_doc("x\r", USER_PASSWORD)[0], "x.doc")
        assert report.problems[0].message == (
            "Word 97-2003 document is encrypted (RC4) and none of the 7 passwords tried opens "
            "it (7 well-known defaults); content not inspected"
        )
        config = ScanConfig(passwords=(USER_PASSWORD,))
        assert hits(
            scan_bytes(
                rc4_doc("x\r" + field(DDE_CODE + " ", "") + "\r", USER_PASSWORD)[0], "x.doc", config
            )
        )[0][:2] == (
            ("x.doc", DECRYPTED_USER, "WordDocument", "main text"),
            "cmd.exe",
        )

    def test_xor_obfuscated_doc_is_locked(self) -> None:
        streams = word_streams(Stories("x\r"), extra_flags=0x0100 | 0x8000)
        report = scan_bytes(write_cfb(streams), "x.doc")
        assert kinds(report) == [ProblemKind.LOCKED]
        assert "XOR-obfuscated" in report.problems[0].message


class TestExcel:
    @pytest.mark.parametrize("key_bits", [None, 128], ids=["rc4", "cryptoapi"])
    def test_rc4_workbook_decrypts_exactly(self, key_bits: int | None) -> None:
        encrypted, expected = rc4_xls(VELVET, key_bits)
        item = decrypted(encrypted)
        assert item.location.containers == ("in.bin", DECRYPTED_DEFAULT)
        assert stream(item.data, "Workbook") == expected

    def test_xor_workbook_decrypts_exactly(self) -> None:
        encrypted, expected = xor_xls(VELVET)
        assert stream(decrypted(encrypted).data, "Workbook") == expected

    def test_wrong_password_is_locked(self) -> None:
        report = scan_bytes(rc4_xls(USER_PASSWORD, 128)[0], "book.xls")
        assert report.problems[0].message == (
            "Excel 97-2003 workbook is encrypted (RC4 CryptoAPI) and none of the 7 passwords "
            "tried opens it (7 well-known defaults); content not inspected"
        )


class TestVerdict:
    locked = Problem(ProblemKind.LOCKED, "locked", Location(("x",)))
    malformed = Problem(ProblemKind.MALFORMED, "bad", Location(("x",)))

    def test_locked_verdict_is_configurable(self) -> None:
        assert verdict_for((), (self.locked,)) is Verdict.SUSPICIOUS
        assert verdict_for((), (self.locked,), Verdict.ERROR) is Verdict.ERROR
        assert verdict_for((), (self.locked,), Verdict.CLEAN) is Verdict.CLEAN
        # Another error still counts as one when locked means clean.
        assert verdict_for((), (self.locked, self.malformed), Verdict.CLEAN) is Verdict.ERROR
        # Suspicious ranks above errors, as a suspicious finding would.
        assert verdict_for((), (self.locked, self.malformed)) is Verdict.SUSPICIOUS

    def test_report_verdict_follows_the_config(self) -> None:
        data = agile(dde_docx(), USER_PASSWORD)
        limits = ScanLimits(max_password_tries=1)
        for verdict in (Verdict.SUSPICIOUS, Verdict.ERROR, Verdict.CLEAN):
            config = ScanConfig(limits=limits, locked_verdict=verdict)
            assert scan_bytes(data, "x.docx", config).verdict is verdict


class TestCli:
    def run(self, *args: str) -> tuple[int, list[dict[str, object]], str]:
        result = CliRunner().invoke(cli.main, ["scan", "--format", "jsonl", *args])
        return (
            result.exit_code,
            [json.loads(line) for line in result.stdout.splitlines()],
            result.stdout,
        )

    def test_password_option(self, tmp_path: Path) -> None:
        path = tmp_path / "invoice.docx"
        path.write_bytes(agile(dde_docx(), USER_PASSWORD))
        code, reports, out = self.run("--password", USER_PASSWORD, str(path))
        assert code == 1 and reports[0]["verdict"] == "malicious"
        findings = reports[0]["findings"]
        assert isinstance(findings, list)
        assert findings[0]["location"]["path"][1:] == [DECRYPTED_USER, "word/document.xml"]
        assert USER_PASSWORD not in out

    def test_password_file(self, tmp_path: Path) -> None:
        path = tmp_path / "invoice.docx"
        path.write_bytes(agile(dde_docx(), "pass word "))
        passwords = tmp_path / "passwords.txt"
        passwords.write_bytes("\ufeffnope\r\n\r\npass word \r\n".encode())
        code, reports, _ = self.run("--password-file", str(passwords), str(path))
        assert code == 1 and reports[0]["verdict"] == "malicious"
        missing = CliRunner().invoke(
            cli.main, ["scan", "--password-file", str(tmp_path / "no"), str(path)]
        )
        assert missing.exit_code == 2 and "cannot read password file" in missing.output

    def test_locked_verdict_option(self, tmp_path: Path) -> None:
        path = tmp_path / "locked.docx"
        path.write_bytes(agile(dde_docx(), USER_PASSWORD))
        code, reports, _ = self.run(str(path))
        assert (code, reports[0]["verdict"]) == (1, "suspicious")
        code, reports, _ = self.run("--locked-verdict", "error", str(path))
        assert (code, reports[0]["verdict"]) == (2, "error")
        code, reports, _ = self.run("--locked-verdict", "clean", str(path))
        assert (code, reports[0]["verdict"]) == (0, "clean")

    def test_config_file_passwords(self, tmp_path: Path) -> None:
        path = tmp_path / "invoice.docx"
        path.write_bytes(agile(dde_docx(), USER_PASSWORD))
        config = tmp_path / "ddescan.toml"
        config.write_text(
            f'[passwords]\ncandidates = ["{USER_PASSWORD}"]\nlocked_verdict = "error"\n'
        )
        code, reports, _ = self.run("--config", str(config), str(path))
        assert (code, reports[0]["verdict"]) == (1, "malicious")
        config.write_text('[passwords]\nlocked_verdict = "maybe"\n')
        bad = CliRunner().invoke(cli.main, ["scan", "--config", str(config), str(path)])
        assert bad.exit_code == 2 and "locked_verdict must be one of" in bad.output


def _descriptor_and_payload() -> tuple[bytes, bytes]:
    info, key = ECMA376Agile.generate_encryption_parameters(VELVET, spin_count=SPIN)
    payload = ECMA376Agile.encrypt_payload(
        io.BytesIO(dde_docx()), info.encryptedKey, key, info.keyData.saltValue
    )
    return ECMA376Agile.get_encryption_information(info, payload, key), payload


DESCRIPTOR, PAYLOAD = _descriptor_and_payload()
ATTRIBUTES = (
    b"spinCount",
    b"keyBits",
    b"hashAlgorithm",
    b"saltValue",
    b"blockSize",
    b"encryptedKeyValue",
    b"encryptedVerifierHashInput",
    b"saltSize",
)
FUZZ_CONFIG = ScanConfig(limits=ScanLimits(max_password_tries=2, max_key_derivation_rounds=5000))


def _scan_only_typed_errors(data: bytes) -> None:
    # Anything but a scanner error (or the walker's timeout) fails the test.
    with contextlib.suppress(ScanError):
        list(HANDLER.scan(data, context(FUZZ_CONFIG)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(DESCRIPTOR) - 1), st.binary(min_size=1, max_size=12))
def test_mutated_encryption_info_bytes_raise_only_scanner_errors(at: int, junk: bytes) -> None:
    mutated = DESCRIPTOR[:at] + junk + DESCRIPTOR[at + len(junk) :]
    _scan_only_typed_errors(write_cfb({"EncryptionInfo": mutated, "EncryptedPackage": PAYLOAD}))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(ATTRIBUTES),
    st.one_of(st.integers(min_value=-(2**40), max_value=2**40).map(str), st.text(max_size=40)),
    st.binary(max_size=40),
)
def test_mutated_encryption_info_values_raise_only_scanner_errors(
    attribute: bytes, value: str, package_head: bytes
) -> None:
    marker = b" " + attribute + b'="'
    start = DESCRIPTOR.index(marker) + len(marker)
    end = DESCRIPTOR.index(b'"', start)
    escaped = value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    mutated = DESCRIPTOR[:start] + escaped.encode("utf-8", "surrogatepass") + DESCRIPTOR[end:]
    payload = package_head + PAYLOAD[len(package_head) :]
    _scan_only_typed_errors(write_cfb({"EncryptionInfo": mutated, "EncryptedPackage": payload}))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2048))
def test_identify_never_raises(data: bytes) -> None:
    assert HANDLER.identify(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + data, "x").value in ("yes", "no")


PEERS = OLETOOLS / "encrypted"
needs_peers = pytest.mark.skipif(not PEERS.is_dir(), reason="shared/peers/oletools is not present")


def _handles(name: str) -> bool:
    kind = getattr(FileFormat, name, None)
    return kind is not None and any(handler.format is kind for handler in REGISTRY)


@needs_peers
@pytest.mark.parametrize("suffix", ["xls", "xlsb", "xlsm", "xlsx"])
def test_oletools_default_password_dde_samples(suffix: str) -> None:
    path = PEERS / f"dde-test-encrypt-standardpassword.{suffix}"
    report = scan_path(path)
    assert report.format is FileFormat.ENCRYPTED
    # The decryption itself, always: one decrypted layer named after VelvetSweatshop.
    item = decrypted(path.read_bytes())
    assert item.location.containers[-1] == DECRYPTED_DEFAULT
    assert ProblemKind.LOCKED not in kinds(report)
    plain_format = {"xls": "XLS", "xlsb": "XLSB"}.get(suffix)
    if plain_format is None or _handles(plain_format):
        found = {(f.process.image, f.process.command_line) for f in report.findings}
        assert found == {("cmd.exe", "cmd /c calc.exe")}, report
        assert report.verdict is Verdict.MALICIOUS
        assert all(f.location.containers[1] == DECRYPTED_DEFAULT for f in report.findings)


@needs_peers
@pytest.mark.parametrize("suffix", ["xls", "xlsb", "xlsm"])
def test_oletools_default_password_autostart_samples(suffix: str) -> None:
    path = PEERS / f"autostart-encrypt-standardpassword.{suffix}"
    report = scan_path(path)
    assert report.findings == ()
    assert ProblemKind.LOCKED not in kinds(report)
    assert decrypted(path.read_bytes()).location.containers[-1] == DECRYPTED_DEFAULT


@needs_peers
@pytest.mark.parametrize("suffix", ["doc", "docx", "ppt", "xls", "xlsx"])
def test_oletools_unknown_password_samples_are_locked(suffix: str) -> None:
    # One try each keeps this quick; the default list's cost is measured in the module.
    config = ScanConfig(limits=ScanLimits(max_password_tries=1))
    started = time.monotonic()
    report = scan_path(PEERS / f"encrypted.{suffix}", config)
    assert time.monotonic() - started < 2.0
    assert kinds(report) == [ProblemKind.LOCKED]
    assert report.findings == () and report.verdict is Verdict.SUSPICIOUS


HANNES = "/01Hannes Ruescher/01"


def encrypted_ppt(password: str) -> bytes:
    """A minimal encrypted presentation ([MS-PPT] 2.3.7): a CryptSession10Container holding an
    RC4 CryptoAPI header, the persist directory that points at it, the UserEditAtom naming
    it, and the Current User stream's CurrentUserAtom with the encrypted headerToken."""
    header = rc4_header(password, 128)
    container = struct.pack("<HHI", 0x000F, 0x2F14, len(header)) + header
    directory_at = len(container)
    # PersistDirectoryEntry: persistId 1, cPersist 1, the container at offset 0.
    directory = struct.pack("<HHI", 0, 0x1772, 8) + struct.pack("<II", (1 << 20) | 1, 0)
    edit_at = directory_at + len(directory)
    edit = struct.pack("<HHI", 0, 0x0FF5, 0x20) + struct.pack(
        "<IHBBIIIIHHI", 0, 0, 0, 3, 0, directory_at, 1, 2, 1, 0, 1
    )
    document = container + directory + edit
    name = b"ddescan"
    atom = struct.pack("<IIIHHBBH", 0x14, 0xF3D1C4DF, edit_at, len(name), 0x03F4, 3, 0, 0)
    atom += name + struct.pack("<I", 8)
    current_user = struct.pack("<HHI", 0, 0x0FF6, len(atom)) + atom
    return write_cfb({"Current User": current_user, "PowerPoint Document": document})


class TestPowerPoint:
    def test_default_password_opens_but_content_is_not_read(self) -> None:
        data = encrypted_ppt(HANNES)
        assert protected_kind(data) is ProtectedKind.POWERPOINT
        report = scan_bytes(data, "deck.ppt")
        assert report.problems == (
            Problem(
                ProblemKind.UNSUPPORTED,
                "PowerPoint 97-2003 presentation opens with the default password "
                "'/01Hannes Ruescher/01', but ddescan does not read PowerPoint content "
                "(not inspected)",
                Location(("deck.ppt",)),
            ),
        )
        assert report.verdict is Verdict.CLEAN

    def test_unknown_password_is_locked(self) -> None:
        report = scan_bytes(encrypted_ppt(USER_PASSWORD), "deck.ppt")
        assert report.problems[0].message == (
            "PowerPoint 97-2003 presentation is encrypted (RC4 CryptoAPI) and none of the 7 "
            "passwords tried opens it (7 well-known defaults); content not inspected"
        )

    def test_dangling_persist_directory_is_malformed(self) -> None:
        data = encrypted_ppt(HANNES)
        document = bytearray(stream(data, "PowerPoint Document"))
        # Point the session id at a persist id the directory does not hold.
        struct.pack_into("<I", document, len(document) - 4, 7)
        broken = write_cfb(
            {"Current User": stream(data, "Current User"), "PowerPoint Document": bytes(document)}
        )
        report = scan_bytes(broken, "deck.ppt")
        assert kinds(report) == [ProblemKind.MALFORMED]
        assert "CryptSession10Container" in report.problems[0].message

    def test_embedding_does_not_touch_the_root_logger(self) -> None:
        before = list(logging.getLogger().handlers)
        scan_bytes(rc4_xls(USER_PASSWORD, 128)[0], "book.xls")
        scan_bytes(encrypted_ppt(USER_PASSWORD), "deck.ppt")
        assert logging.getLogger().handlers == before


def _binary_fixtures() -> dict[str, tuple[bytes, str]]:
    """Each binary scheme's file and the stream that holds its encryption header."""
    return {
        "word-rc4": (rc4_doc("x\r", VELVET)[0], "1Table"),
        "word-cryptoapi": (rc4_doc("x\r", VELVET, 128)[0], "1Table"),
        "excel-cryptoapi": (rc4_xls(VELVET, 128)[0], "Workbook"),
        "excel-xor": (xor_xls(VELVET)[0], "Workbook"),
        "powerpoint": (encrypted_ppt(HANNES), "PowerPoint Document"),
        "powerpoint-current-user": (encrypted_ppt(HANNES), "Current User"),
    }


BINARY_FIXTURES = _binary_fixtures()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(BINARY_FIXTURES)),
    st.integers(min_value=0, max_value=400),
    st.binary(min_size=1, max_size=16),
)
def test_mutated_binary_encryption_headers_raise_only_scanner_errors(
    fixture: str, at: int, junk: bytes
) -> None:
    encrypted, name = BINARY_FIXTURES[fixture]
    ole = olefile.OleFileIO(io.BytesIO(encrypted))
    streams = {"/".join(path): ole.openstream(path).read() for path in ole.listdir()}
    ole.close()
    original = streams[name]
    streams[name] = (original[:at] + junk + original[at + len(junk) :])[: max(len(original), 1)]
    _scan_only_typed_errors(write_cfb(streams))
