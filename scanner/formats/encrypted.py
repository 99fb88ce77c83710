"""Encrypted Office documents ([MS-OFFCRYPTO]): recognised, opened with a well-known default,
user-supplied or message-quoted password, and handed back to the walker as the plain document.

What is recognised (identify() says YES to these only; the plain documents this module
produces carry none of these markers, so they are never claimed again):

- OOXML packages under ECMA-376 Standard or Agile encryption ([MS-OFFCRYPTO] 2.3.4.5,
  2.3.4.10): a compound file with `EncryptionInfo` and `EncryptedPackage` streams; the plain
  text is the ZIP package (.docx, .xlsx, .xlsb, .pptx, ...).
- Word 97-2003 ([MS-DOC] 2.2.6): FibBase.fEncrypted. RC4 (2.2.6.2) and RC4 CryptoAPI
  (2.2.6.3) are opened; XOR obfuscation (2.2.6.1) is reported locked.
- Excel 97-2003 ([MS-XLS] 2.4.117 FilePass in the globals substream): XOR obfuscation, RC4
  and RC4 CryptoAPI.
- PowerPoint 97-2003 ([MS-PPT] 2.3.2 CurrentUserAtom.headerToken 0xF3D1C4DF; the key sits
  in a CryptSession10Container): passwords are checked, but ddescan reads no PowerPoint
  content, so an opened presentation is reported as not inspected.
- Rights-managed (IRM) documents: the content is the `\\x09DRMContent` stream, locked to a
  rights-management server; reported locked.

Passwords are tried in this order: the well-known defaults (DEFAULT_PASSWORDS), those the
user gave (ScanConfig.passwords), those found around the document (ScanContext.passwords,
e.g. quoted in the mail that carried it). The checks are bounded twice: by
ScanLimits.max_password_tries and by ScanLimits.max_key_derivation_rounds, because a file
chooses its own key-derivation cost (Agile: spinCount hash rounds per password, up to
10,000,000 per [MS-OFFCRYPTO] 2.3.4.10).

Measured on the reference machine (2 cores, Python 3.11, msoffcrypto-tool 6.1): one Agile
password check with the 100,000 SHA-512 rounds Office 2013+ writes costs 0.16 s (with
SHA-1, as Office 2010 writes: 0.11 s); Standard encryption's fixed 50,000 SHA-1 rounds
0.06 s; an RC4, RC4 CryptoAPI or XOR check under 0.3 ms. Opening the file once the password
is found costs no further derivation. A locked Agile file therefore costs about 1.1 s with
the 7 defaults alone and at most about 4 s with the default limits (24 tries, 2,500,000
rounds); a file whose spinCount makes even one check exceed the round budget is reported
locked at once, without any derivation.

msoffcrypto-tool does the cryptography: key derivation, the AES and RC4 transforms, XOR
method 1. Around it, this module reads the binary formats' encryption headers itself and
checks RC4 verifiers with msoffcrypto's cipher (its verifypw() functions log through the root
logger, which installs a stderr handler in whatever program embeds ddescan), and since
msoffcrypto's Doc97File/Xls97File.decrypt write a temporary file, it runs the stream ciphers
on the streams in memory and writes the plain bytes into a copy of the compound file itself
([MS-CFB] sector chains, bounded). Every exception msoffcrypto, olefile or the cryptography
backend raise becomes a scanner error here.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import io
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from xml.parsers.expat import ExpatError

import olefile

from scanner.errors import EncryptedInput, LimitExceeded, MalformedInput, UnsupportedInput
from scanner.formats.base import ScanContext, ScanItem
from scanner.formats.cfb import has_stream, is_cfb, open_cfb, read_stream
from scanner.formats.package import parse_xml
from scanner.model import Confidence, EmbeddedDocument, FileFormat, ScanLimits

# [MS-OFFCRYPTO] "Binary Document Write Protection Method 2": an Excel workbook that is only
# write-protected is still encrypted, with this password, and Excel opens it without asking.
EXCEL_DEFAULT_PASSWORD = "VelvetSweatshop"
# [MS-OFFCRYPTO] "Binary Document Write Protection Method 3": PowerPoint's counterpart.
POWERPOINT_DEFAULT_PASSWORD = "/01Hannes Ruescher/01"
# The two product defaults first, then the short passwords malicious campaigns put on
# encrypted attachments (oletools' msodde tries the same list).
DEFAULT_PASSWORDS: tuple[str, ...] = (
    EXCEL_DEFAULT_PASSWORD,
    POWERPOINT_DEFAULT_PASSWORD,
    "123",
    "1234",
    "12345",
    "123456",
    "4321",
)
# [MS-OFFCRYPTO] 2.3.4.7 / 2.3.4.11: a password is at most 255 characters; longer candidates
# can never match and are skipped.
MAX_PASSWORD_CHARS = 255

ENCRYPTION_INFO = "EncryptionInfo"
ENCRYPTED_PACKAGE = "EncryptedPackage"
DRM_CONTENT = "\x09DRMContent"
MAX_ENCRYPTION_INFO_BYTES = 1024 * 1024
# [MS-OFFCRYPTO] 2.3.4.10 keyEncryptor URIs of the Agile EncryptionInfo descriptor.
_PASSWORD_KEY_NS = "http://schemas.microsoft.com/office/2006/keyEncryptor/password"
_CERTIFICATE_KEY_NS = "http://schemas.microsoft.com/office/2006/keyEncryptor/certificate"
# [MS-OFFCRYPTO] 2.3.4.7: Standard encryption always derives its key with 50,000 SHA-1 rounds.
STANDARD_SPIN_COUNT = 50_000
# [MS-OFFCRYPTO] 2.3.4.15: the Agile package is encrypted in 4096-byte segments.
AGILE_SEGMENT_BYTES = 4096
ZIP_SIGNATURE = b"PK\x03\x04"
MAX_AGILE_SPIN_COUNT = 10_000_000

WORD_STREAM = "WordDocument"
# [MS-DOC] 2.5.2 FibBase.
_FIB_FLAGS = 0x0A
_FIB_LKEY = 0x0E
F_ENCRYPTED = 0x0100
F_WHICH_TBL_STM = 0x0200
F_OBFUSCATED = 0x8000
# FibBase.nFib of Word 97 and later; Word 6.0/95 files have smaller values.
NFIB_WORD97 = 0x00C1
# [MS-DOC] 2.2.6.2/2.2.6.3: the first 68 bytes of WordDocument are stored in the clear, and
# the three encrypted streams use RC4 re-keyed every 512 bytes from the start of the stream.
WORD_CLEAR_BYTES = 0x44
WORD_RC4_BLOCK = 512

WORKBOOK_STREAM = "Workbook"
# [MS-XLS] record types.
RT_BOF = 0x0809
RT_EOF = 0x000A
RT_FILEPASS = 0x002F
RT_BOUNDSHEET8 = 0x0085
# [MS-XLS] 2.2.10: records never encrypted (besides everything up to FilePass): BOF (of every
# substream), UsrExcl, FileLock, InterfaceHdr, RRDInfo, RRDHead; of BoundSheet8 only
# lbPlyPos stays clear.
_CLEAR_RECORDS = frozenset({RT_BOF, 0x0194, 0x0195, 0x00E1, 0x0196, 0x0138})
# [MS-XLS] 2.2.10: the Workbook stream's RC4 key changes every 1024 bytes.
WORKBOOK_RC4_BLOCK = 1024
# FilePass follows BOF (and an optional WriteProtect) at the start of the globals substream.
_MAX_RECORDS_BEFORE_FILEPASS = 256
# msoffcrypto's XOR method 1 runs byte by byte in Python (about 1.4 s per MiB here).
MAX_XOR_WORKBOOK_BYTES = 2 * 1024 * 1024

POWERPOINT_STREAM = "PowerPoint Document"
CURRENT_USER_STREAM = "Current User"
# [MS-PPT] 2.3.2 CurrentUserAtom.headerToken of an encrypted presentation.
PPT_ENCRYPTED_TOKEN = 0xF3D1C4DF
# [MS-PPT] record types, and bounds on the walk to the CryptSession10Container.
RT_CURRENT_USER_ATOM = 0x0FF6
RT_USER_EDIT_ATOM = 0x0FF5
RT_PERSIST_DIRECTORY_ATOM = 0x1772
RT_CRYPT_SESSION10 = 0x2F14
MAX_PPT_EDITS = 256
MAX_PPT_PERSIST_ENTRIES = 1_000_000

_CHECK_EVERY = 4096

# What msoffcrypto, olefile and the cryptography backend raise on hostile input: their own
# errors (FileFormatError, ParseError, DecryptionError and InvalidKeyError), the expat error
# of msoffcrypto's minidom, and the builtin ones from struct unpacking, indexing, base64,
# assertions and arithmetic on crafted sizes. msoffcrypto's are added by _library_error_types.
_BUILTIN_ERRORS: tuple[type[BaseException], ...] = (
    ExpatError,
    OSError,
    ValueError,
    struct.error,
    LookupError,
    TypeError,
    AttributeError,
    AssertionError,
    ArithmeticError,
    EOFError,
    NotImplementedError,
    RecursionError,
)


class ProtectedKind(enum.Enum):
    """The kinds of protected Office file this module recognises."""

    OOXML = "encrypted OOXML package"
    WORD = "encrypted Word 97-2003 document"
    EXCEL = "encrypted Excel 97-2003 workbook"
    POWERPOINT = "encrypted PowerPoint 97-2003 presentation"
    RIGHTS_MANAGED = "rights-managed (IRM) document"


class PasswordOrigin(enum.Enum):
    DEFAULT = "default"
    USER = "user"
    MESSAGE = "message"


@dataclass(frozen=True)
class Candidate:
    """A password to try, and where it came from (which decides how it may be shown)."""

    password: str
    origin: PasswordOrigin

    def label(self) -> str:
        """How the password is named in locations and messages: only the well-known
        defaults by value; the user's own and the message's are never printed."""
        if self.origin is PasswordOrigin.DEFAULT:
            return f"the default password {self.password!r}"
        if self.origin is PasswordOrigin.USER:
            return "a user-supplied password"
        return "a password found in the surrounding message"


def password_candidates(ctx: ScanContext) -> tuple[Candidate, ...]:
    """Defaults, then the user's, then the message's; each password once, in that order.

    Empty, over-long and unencodable candidates (a lone surrogate cannot be UTF-16 encoded,
    which every Office key derivation needs) are skipped.
    """
    seen: set[str] = set()
    found: list[Candidate] = []
    sources = (
        (PasswordOrigin.DEFAULT, DEFAULT_PASSWORDS),
        (PasswordOrigin.USER, ctx.config.passwords),
        (PasswordOrigin.MESSAGE, ctx.passwords),
    )
    for origin, passwords in sources:
        for password in passwords:
            if not password or len(password) > MAX_PASSWORD_CHARS or password in seen:
                continue
            try:
                password.encode("utf-16-le")
            except UnicodeEncodeError:
                continue
            seen.add(password)
            found.append(Candidate(password, origin))
    return tuple(found)


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _library_error_types() -> tuple[type[BaseException], ...]:
    """What the libraries raise on hostile input (see _BUILTIN_ERRORS).

    msoffcrypto and the cryptography backend take tens of milliseconds to import, so they
    are imported where an encrypted file is opened, not when the scanner starts.
    """
    from msoffcrypto import exceptions as crypto_errors

    return (
        crypto_errors.FileFormatError,
        crypto_errors.ParseError,
        crypto_errors.DecryptionError,
        crypto_errors.EncryptionError,
        *_BUILTIN_ERRORS,
    )


@contextlib.contextmanager
def _library_errors(what: str) -> Iterator[None]:
    """Turn whatever the cryptography libraries raise into scanner errors."""
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        yield
    except UnsupportedAlgorithm as error:
        raise UnsupportedInput(
            f"{what}: the cryptography backend on this machine lacks the cipher ({error})"
        ) from error
    except _library_error_types() as error:
        raise MalformedInput(f"{what}: {_describe(error)}") from error


def _u16(data: bytes | bytearray, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _records(stream: bytes, check: Callable[[], None]) -> Iterator[tuple[int, int, int, int]]:
    """BIFF records as (offset, type, declared size, end of the body within the stream)."""
    offset = 0
    count = 0
    while offset + 4 <= len(stream):
        record_type, size = struct.unpack_from("<HH", stream, offset)
        yield offset, record_type, size, min(offset + 4 + size, len(stream))
        offset += 4 + size
        count += 1
        if count % _CHECK_EVERY == 0:
            check()


def _no_check() -> None:
    pass


def _filepass(workbook: bytes) -> tuple[int, int] | None:
    """(offset, body end) of the FilePass record of a BIFF8 globals substream, if any."""
    records = _records(workbook, _no_check)
    first = next(records, None)
    if first is None or first[1] != RT_BOF:
        return None
    for index, (offset, record_type, _size, end) in enumerate(records):
        if record_type == RT_FILEPASS:
            return offset, end
        if record_type == RT_EOF or index >= _MAX_RECORDS_BEFORE_FILEPASS:
            return None
    return None


def _kind(ole: olefile.OleFileIO, limit: int) -> ProtectedKind | None:
    if has_stream(ole, ENCRYPTION_INFO) and has_stream(ole, ENCRYPTED_PACKAGE):
        return ProtectedKind.OOXML
    if has_stream(ole, DRM_CONTENT):
        return ProtectedKind.RIGHTS_MANAGED
    if has_stream(ole, WORD_STREAM):
        word = read_stream(ole, WORD_STREAM, limit)
        if len(word) >= _FIB_FLAGS + 2 and _u16(word, _FIB_FLAGS) & F_ENCRYPTED:
            return ProtectedKind.WORD
        return None
    if has_stream(ole, WORKBOOK_STREAM):
        if _filepass(read_stream(ole, WORKBOOK_STREAM, limit)) is not None:
            return ProtectedKind.EXCEL
        return None
    if has_stream(ole, CURRENT_USER_STREAM) and has_stream(ole, POWERPOINT_STREAM):
        current = read_stream(ole, CURRENT_USER_STREAM, limit)
        # RecordHeader (8 bytes), size (4), then headerToken ([MS-PPT] 2.3.2).
        if len(current) >= 16 and _u32(current, 12) == PPT_ENCRYPTED_TOKEN:
            return ProtectedKind.POWERPOINT
    return None


def protected_kind(data: bytes) -> ProtectedKind | None:
    """What kind of protected Office file `data` is, or None (cheap: no password is tried)."""
    if not is_cfb(data):
        return None
    try:
        ole = open_cfb(data)
    except MalformedInput:
        return None
    try:
        return _kind(ole, ScanLimits().max_part_bytes)
    except (MalformedInput, LimitExceeded):
        return None
    finally:
        ole.close()


class _Opener(Protocol):
    """One encrypted file: checks candidate passwords, then produces the plain document."""

    what: str
    scheme: str
    # Key-derivation hash rounds one password check costs.
    rounds: int

    def check(self, password: str) -> bool: ...

    def open(self, candidate: Candidate, ctx: ScanContext) -> bytes: ...


def _loaded(call: Callable[[], Any], what: str) -> Any:
    with _library_errors(what):
        return call()


def _verified(call: Callable[[], object], what: str) -> bool:
    """Run a msoffcrypto password check: False when the password is wrong."""
    from msoffcrypto import exceptions as crypto_errors

    with _library_errors(what):
        try:
            result = call()
        except crypto_errors.InvalidKeyError:
            return False
    return result is None or result is True


class _OoxmlOpener:
    """ECMA-376 Standard or Agile encryption of an OOXML package."""

    what = "OOXML package"

    def __init__(self, data: bytes, ole: olefile.OleFileIO, ctx: ScanContext) -> None:
        limit = ctx.config.limits.max_part_bytes
        info = read_stream(ole, ENCRYPTION_INFO, min(limit, MAX_ENCRYPTION_INFO_BYTES))
        # Read (and its declared size checked) before msoffcrypto's olefile reads it.
        self.package = read_stream(ole, ENCRYPTED_PACKAGE, limit)
        if len(info) < 8:
            raise MalformedInput(f"EncryptionInfo stream of {len(info)} bytes is truncated")
        major, minor = struct.unpack_from("<HH", info, 0)
        # [MS-OFFCRYPTO] 2.3.4.5 (Standard 3.2/4.2), 2.3.4.6 (Extensible x.3), 2.3.4.10 (4.4).
        if (major, minor) == (4, 4):
            self.agile = True
            self.scheme = "ECMA-376 Agile encryption"
            _check_agile_descriptor(info[8:])
        elif minor == 2 and major in (2, 3, 4):
            self.agile = False
            self.scheme = "ECMA-376 Standard encryption"
        elif minor == 3 and major in (3, 4):
            raise UnsupportedInput(
                "OOXML package uses ECMA-376 Extensible encryption (a third-party "
                "cryptographic provider), which ddescan cannot decrypt (not inspected)"
            )
        else:
            raise MalformedInput(f"EncryptionInfo version {major}.{minor} is not a known one")
        from msoffcrypto.format.ooxml import OOXMLFile

        self.file = _loaded(lambda: OOXMLFile(io.BytesIO(data)), "EncryptionInfo")
        self.key: bytes | None = None
        self.rounds = STANDARD_SPIN_COUNT
        if self.agile:
            self.info = self.file.info
            spin = self.info.get("spinValue") if isinstance(self.info, dict) else None
            if not isinstance(spin, int) or not 0 <= spin <= MAX_AGILE_SPIN_COUNT:
                raise MalformedInput(f"EncryptionInfo spinCount {spin!r} is out of range")
            self.rounds = spin

    def check(self, password: str) -> bool:
        if not self.agile:
            return _verified(
                lambda: self.file.load_key(password=password, verify_password=True),
                "EncryptionInfo",
            )
        # The Agile password verifier ([MS-OFFCRYPTO] 2.3.4.13) costs a derivation of its own,
        # and msoffcrypto's check of it fails whenever the hash is shorter than its AES-padded
        # form (SHA-1, as Office 2010 writes). One derivation gives the package key instead;
        # the right key turns the first 4096-byte segment into the ZIP signature every
        # package starts with (a wrong one into noise: a 1 in 2**32 false match, which the
        # walker then reads as a damaged package).
        from msoffcrypto.method.ecma376_agile import ECMA376Agile

        info = self.info
        with _library_errors("EncryptionInfo"):
            key = ECMA376Agile.makekey_from_password(
                password,
                info["passwordSalt"],
                info["passwordHashAlgorithm"],
                info["encryptedKeyValue"],
                info["spinValue"],
                info["passwordKeyBits"],
            )
            head = ECMA376Agile.decrypt(
                key,
                info["keyDataSalt"],
                info["keyDataHashAlgorithm"],
                io.BytesIO(self.package[: 8 + AGILE_SEGMENT_BYTES]),
            )
        if isinstance(key, bytes) and isinstance(head, bytes) and head.startswith(ZIP_SIGNATURE):
            self.key = key
            return True
        return False

    def open(self, candidate: Candidate, ctx: ScanContext) -> bytes:
        from msoffcrypto import exceptions as crypto_errors
        from msoffcrypto.method.ecma376_agile import ECMA376Agile

        ctx.check_time()
        with _library_errors("EncryptedPackage"):
            if self.key is not None:
                info = self.info
                plain = ECMA376Agile.decrypt(
                    self.key,
                    info["keyDataSalt"],
                    info["keyDataHashAlgorithm"],
                    io.BytesIO(self.package),
                )
            else:
                out = io.BytesIO()
                try:
                    self.file.decrypt(out)
                except crypto_errors.InvalidKeyError as error:
                    raise MalformedInput(
                        "EncryptedPackage does not decrypt to a ZIP package although the "
                        "password verifier matched"
                    ) from error
                plain = out.getvalue()
        if not isinstance(plain, bytes):
            raise MalformedInput("EncryptedPackage did not decrypt to bytes")
        return plain


def _check_agile_descriptor(descriptor: bytes) -> None:
    """Parse the Agile XML descriptor safely (no DTD) before msoffcrypto's minidom sees it,
    and tell a certificate-only file (no password can open it) from a damaged one."""
    root = parse_xml(descriptor, "EncryptionInfo")
    if root.find(f".//{{{_PASSWORD_KEY_NS}}}encryptedKey") is not None:
        return
    if root.find(f".//{{{_CERTIFICATE_KEY_NS}}}encryptedKey") is not None:
        raise EncryptedInput(
            "OOXML package is encrypted to a certificate (ECMA-376 Agile encryption with no "
            "password key encryptor): no password can open it; content not inspected"
        )
    raise MalformedInput("EncryptionInfo has no password key encryptor")


def _rc4(
    password: str, salt: bytes, key_bits: int | None, data: bytes, block: int, what: str
) -> bytes:
    """msoffcrypto's RC4 (key_bits None) or RC4 CryptoAPI stream transform of one stream."""
    from msoffcrypto.method.rc4 import DocumentRC4
    from msoffcrypto.method.rc4_cryptoapi import DocumentRC4CryptoAPI

    with _library_errors(what):
        if key_bits is None:
            out = DocumentRC4.decrypt(password, salt, io.BytesIO(data), blocksize=block)
        else:
            out = DocumentRC4CryptoAPI.decrypt(
                password, salt, key_bits, io.BytesIO(data), blocksize=block
            )
        plain = out.getvalue()
    if not isinstance(plain, bytes) or len(plain) != len(data):
        raise MalformedInput(f"{what}: decryption changed the stream size")
    return plain


@dataclass(frozen=True)
class _Rc4Header:
    """An RC4 ([MS-OFFCRYPTO] 2.3.6.1) or RC4 CryptoAPI (2.3.5.1) encryption header."""

    scheme: str
    salt: bytes
    verifier: bytes
    verifier_hash: bytes
    # None for plain RC4 (its key is always 128 bits over a 40-bit secret).
    key_bits: int | None

    def matches(self, password: str) -> bool:
        """The password verification of [MS-OFFCRYPTO] 2.3.6.4 / 2.3.5.6: decrypted with the
        block-0 key, the verifier's MD5 (RC4) or SHA-1 (CryptoAPI) is the verifier hash.

        Done here with msoffcrypto's stream cipher rather than its verifypw(), which logs
        through the root logger and so installs a stderr handler on it (logging.basicConfig)
        in whatever program embeds ddescan."""
        sealed = self.verifier + self.verifier_hash
        plain = _rc4(password, self.salt, self.key_bits, sealed, 64, "password verifier")
        if self.key_bits is None:
            expected = hashlib.md5(plain[:16], usedforsecurity=False).digest()
        else:
            expected = hashlib.sha1(plain[:16], usedforsecurity=False).digest()
        return plain[16 : 16 + len(expected)] == expected


def _rc4_header(data: bytes, what: str) -> _Rc4Header:
    if len(data) < 4:
        raise MalformedInput(f"{what}: encryption header is truncated")
    major, minor = _u16(data, 0), _u16(data, 2)
    if (major, minor) == (1, 1):
        if len(data) < 52:
            raise MalformedInput(f"{what}: RC4 encryption header is truncated")
        return _Rc4Header("RC4", data[4:20], data[20:36], data[36:52], None)
    if minor != 2 or major not in (2, 3, 4):
        raise EncryptedInput(
            f"{what} uses an encryption method ddescan does not know (EncryptionVersionInfo "
            f"{major}.{minor}); content not inspected"
        )
    # [MS-OFFCRYPTO] 2.3.5.1: version, Flags, HeaderSize, EncryptionHeader (2.3.2, KeySize
    # at byte 16), then EncryptionVerifier (2.3.3): SaltSize, Salt, EncryptedVerifier,
    # VerifierHashSize, EncryptedVerifierHash (20 bytes for RC4).
    if len(data) < 12:
        raise MalformedInput(f"{what}: RC4 CryptoAPI encryption header is truncated")
    verifier_at = 12 + _u32(data, 8)
    if verifier_at < 12 + 32 or verifier_at + 60 > len(data):
        raise MalformedInput(f"{what}: RC4 CryptoAPI encryption header sizes do not fit")
    key_bits = _u32(data, 12 + 16) or 40
    if not 40 <= key_bits <= 128 or key_bits % 8:
        raise MalformedInput(f"{what}: RC4 CryptoAPI key size of {key_bits} bits is invalid")
    if _u32(data, verifier_at) != 16:
        raise MalformedInput(f"{what}: RC4 CryptoAPI salt size is not 16")
    at = verifier_at + 4
    return _Rc4Header(
        "RC4 CryptoAPI",
        data[at : at + 16],
        data[at + 16 : at + 32],
        data[at + 36 : at + 56],
        key_bits,
    )


class _WordOpener:
    """RC4 or RC4 CryptoAPI encryption of a Word 97-2003 document ([MS-DOC] 2.2.6)."""

    what = "Word 97-2003 document"
    rounds = 1

    def __init__(self, data: bytes, ole: olefile.OleFileIO, ctx: ScanContext) -> None:
        self.data = data
        self.ole = ole
        limit = ctx.config.limits.max_part_bytes
        word = read_stream(ole, WORD_STREAM, limit)
        if len(word) < WORD_CLEAR_BYTES:
            raise MalformedInput(f"WordDocument stream of {len(word)} bytes has no whole FIB")
        flags = _u16(word, _FIB_FLAGS)
        if _u16(word, 2) < NFIB_WORD97:
            raise EncryptedInput(
                "Word 6.0/95 document is encrypted with a method ddescan cannot decrypt; "
                "content not inspected"
            )
        if flags & F_OBFUSCATED:
            raise EncryptedInput(
                "Word document is XOR-obfuscated ([MS-DOC] 2.2.6.1), a method ddescan cannot "
                "decrypt; content not inspected"
            )
        self.table_name = "1Table" if flags & F_WHICH_TBL_STM else "0Table"
        if not has_stream(ole, self.table_name):
            raise MalformedInput(f"encrypted Word document has no {self.table_name} stream")
        table = read_stream(ole, self.table_name, limit)
        # [MS-DOC] 2.2.6.2/2.2.6.3: the header fills the first FibBase.lKey bytes of the table.
        self.header_size = min(_u32(word, _FIB_LKEY), len(table))
        self.header = _rc4_header(table, "Word document")
        self.scheme = self.header.scheme
        self.streams: dict[str, bytes] = {WORD_STREAM: word, self.table_name: table}
        if has_stream(ole, "Data"):
            self.streams["Data"] = read_stream(ole, "Data", limit)

    def check(self, password: str) -> bool:
        return self.header.matches(password)

    def open(self, candidate: Candidate, ctx: ScanContext) -> bytes:
        header = self.header
        plain: dict[str, bytes] = {}
        for name, stream in self.streams.items():
            ctx.check_time()
            decrypted = bytearray(
                _rc4(candidate.password, header.salt, header.key_bits, stream, WORD_RC4_BLOCK, name)
            )
            if name == WORD_STREAM:
                # The FIB start was never encrypted; the document is plain now, so say so.
                fib = bytearray(stream[:WORD_CLEAR_BYTES])
                flags = _u16(fib, _FIB_FLAGS) & ~(F_ENCRYPTED | F_OBFUSCATED)
                struct.pack_into("<H", fib, _FIB_FLAGS, flags)
                struct.pack_into("<I", fib, _FIB_LKEY, 0)
                decrypted[:WORD_CLEAR_BYTES] = fib
            elif name == self.table_name:
                decrypted[: self.header_size] = stream[: self.header_size]
            plain[name] = bytes(decrypted)
        return _rewritten(self.data, self.ole, plain)


class _ExcelOpener:
    """XOR obfuscation, RC4 or RC4 CryptoAPI encryption of a BIFF8 workbook ([MS-XLS] 2.2.10)."""

    what = "Excel 97-2003 workbook"
    rounds = 1

    def __init__(self, data: bytes, ole: olefile.OleFileIO, ctx: ScanContext) -> None:
        self.data = data
        self.ole = ole
        self.workbook = read_stream(ole, WORKBOOK_STREAM, ctx.config.limits.max_part_bytes)
        found = _filepass(self.workbook)
        if found is None:
            raise MalformedInput("Workbook stream has no FilePass record after BOF")
        offset, end = found
        body = self.workbook[offset + 4 : end]
        if len(body) < 2:
            raise MalformedInput("FilePass record is truncated")
        self.header: _Rc4Header | None = None
        self.xor_verifier = 0
        # [MS-XLS] 2.4.117: wEncryptionType 0 is XOR obfuscation (2.4.340 XorObfuscation: key,
        # verificationBytes), 1 is RC4 or RC4 CryptoAPI with its encryption header.
        encryption_type = _u16(body, 0)
        if encryption_type == 0:
            if len(body) < 6:
                raise MalformedInput("FilePass XOR obfuscation record is truncated")
            self.scheme = "XOR obfuscation"
            self.xor_verifier = _u16(body, 4)
            if len(self.workbook) > MAX_XOR_WORKBOOK_BYTES:
                raise LimitExceeded(
                    f"XOR-obfuscated Workbook stream of {len(self.workbook)} bytes is over the "
                    f"{MAX_XOR_WORKBOOK_BYTES} bytes ddescan de-obfuscates (byte by byte)"
                )
        elif encryption_type == 1:
            self.header = _rc4_header(body[2:], "Excel workbook")
            self.scheme = self.header.scheme
        else:
            raise EncryptedInput(
                f"Excel workbook uses an encryption method ddescan does not know (FilePass "
                f"wEncryptionType {encryption_type}); content not inspected"
            )

    def check(self, password: str) -> bool:
        if self.header is not None:
            return self.header.matches(password)
        from msoffcrypto.method.xor_obfuscation import DocumentXOR

        with _library_errors("FilePass record"):
            return bool(DocumentXOR.verifypw(password, self.xor_verifier))

    def open(self, candidate: Candidate, ctx: ScanContext) -> bytes:
        workbook = self.workbook
        header = self.header
        if header is None:
            from msoffcrypto.method.xor_obfuscation import DocumentXOR

            marks = _xor_marks(workbook, ctx.check_time)
            ctx.check_time()
            with _library_errors(WORKBOOK_STREAM):
                decrypted = DocumentXOR.decrypt(
                    candidate.password, io.BytesIO(workbook), marks, [], 10
                ).getvalue()
            if not isinstance(decrypted, bytes) or len(decrypted) != len(workbook):
                raise MalformedInput("Workbook: de-obfuscation changed the stream size")
        else:
            decrypted = _rc4(
                candidate.password,
                header.salt,
                header.key_bits,
                workbook,
                WORKBOOK_RC4_BLOCK,
                WORKBOOK_STREAM,
            )
        plain = bytearray(decrypted)
        _restore_clear_records(workbook, plain, ctx.check_time)
        return _rewritten(self.data, self.ole, {WORKBOOK_STREAM: bytes(plain)})


def _xor_marks(workbook: bytes, check: Callable[[], None]) -> list[int]:
    """The byte map msoffcrypto's XOR method 1 works from: the stored byte where it is in the
    clear, -1 where it is obfuscated, -2 for the obfuscated part of a BoundSheet8 record."""
    marks = list(workbook)
    encrypted = False
    for offset, record_type, _size, end in _records(workbook, check):
        body = offset + 4
        if not encrypted:
            encrypted = record_type == RT_FILEPASS
        elif record_type == RT_BOUNDSHEET8:
            marks[body + 4 : end] = [-2] * max(0, end - body - 4)
        elif record_type not in _CLEAR_RECORDS:
            marks[body:end] = [-1] * (end - body)
    return marks


def _restore_clear_records(original: bytes, plain: bytearray, check: Callable[[], None]) -> None:
    """Put back what the stream cipher never covered ([MS-XLS] 2.2.10): every record header,
    every record up to and including FilePass, the records never encrypted, and the lbPlyPos
    of BoundSheet8. FilePass itself becomes a record of type 0 with a zeroed body (its size
    kept, so every stream offset, such as lbPlyPos, still holds): the workbook is plain now,
    and no reader, this module included, takes it for an encrypted one again."""
    encrypted = False
    tail = 0
    for offset, record_type, size, end in _records(original, check):
        body = offset + 4
        tail = offset + 4 + size
        if not encrypted:
            if record_type == RT_FILEPASS:
                encrypted = True
                plain[offset:body] = struct.pack("<HH", 0, size)
                plain[body:end] = bytes(end - body)
            else:
                plain[offset:end] = original[offset:end]
            continue
        plain[offset:body] = original[offset:body]
        if record_type in _CLEAR_RECORDS:
            plain[body:end] = original[body:end]
        elif record_type == RT_BOUNDSHEET8:
            clear = min(body + 4, end)
            plain[body:clear] = original[body:clear]
    if tail < len(original):
        # Fewer than 4 bytes after the last record: not a record, left as stored.
        plain[tail:] = original[tail:]


def _ppt_record(data: bytes, offset: int, record_type: int, what: str) -> bytes:
    """The body of the `what` record expected at `offset` ([MS-PPT] 2.3.1 RecordHeader)."""
    if offset + 8 > len(data):
        raise MalformedInput(f"{what} at offset {offset} lies past the end of its stream")
    found, length = struct.unpack_from("<HI", data, offset + 2)
    if found != record_type:
        raise MalformedInput(
            f"expected {what} (record type {record_type:#06x}) at offset {offset}, found "
            f"record type {found:#06x}"
        )
    if offset + 8 + length > len(data):
        raise MalformedInput(f"{what} at offset {offset} is truncated")
    return data[offset + 8 : offset + 8 + length]


def _powerpoint_header(current_user: bytes, document: bytes) -> bytes:
    """The encryption header in the CryptSession10Container ([MS-PPT] 2.3.7) of the newest
    edit: CurrentUserAtom (2.3.2) -> UserEditAtom (2.3.3) -> its persist directory (2.3.4,
    following older edits while the id is not found; the newest entry of an id wins)."""
    atom = _ppt_record(current_user, 0, RT_CURRENT_USER_ATOM, "CurrentUserAtom")
    if len(atom) < 12:
        raise MalformedInput("CurrentUserAtom is truncated")
    edit_at = _u32(atom, 8)
    edit = _ppt_record(document, edit_at, RT_USER_EDIT_ATOM, "UserEditAtom")
    if len(edit) < 32:
        raise MalformedInput("UserEditAtom of an encrypted presentation has no session id")
    session = _u32(edit, 28)
    offsets: dict[int, int] = {}
    visited = {edit_at}
    entries = 0
    for _ in range(MAX_PPT_EDITS):
        directory = _ppt_record(
            document, _u32(edit, 12), RT_PERSIST_DIRECTORY_ATOM, "PersistDirectoryAtom"
        )
        position = 0
        while position + 4 <= len(directory):
            # PersistDirectoryEntry: persistId (20 bits), cPersist (12 bits), the offsets.
            head = _u32(directory, position)
            position += 4
            for index in range(head >> 20):
                if position + 4 > len(directory):
                    break
                offsets.setdefault((head & 0xFFFFF) + index, _u32(directory, position))
                position += 4
            entries += 1 + (head >> 20)
            if entries > MAX_PPT_PERSIST_ENTRIES:
                raise LimitExceeded(
                    f"persist directories hold more than {MAX_PPT_PERSIST_ENTRIES} entries"
                )
        last = _u32(edit, 8)
        if session in offsets or last == 0 or last in visited:
            break
        visited.add(last)
        edit = _ppt_record(document, last, RT_USER_EDIT_ATOM, "UserEditAtom")
    if session not in offsets:
        raise MalformedInput("no persist directory entry for the CryptSession10Container")
    return _ppt_record(document, offsets[session], RT_CRYPT_SESSION10, "CryptSession10Container")


class _PowerPointOpener:
    """RC4 CryptoAPI encryption of a PowerPoint 97-2003 presentation ([MS-PPT] 2.3.7)."""

    what = "PowerPoint 97-2003 presentation"
    rounds = 1

    def __init__(self, data: bytes, ole: olefile.OleFileIO, ctx: ScanContext) -> None:
        limit = ctx.config.limits.max_part_bytes
        current_user = read_stream(ole, CURRENT_USER_STREAM, limit)
        document = read_stream(ole, POWERPOINT_STREAM, limit)
        self.header = _rc4_header(_powerpoint_header(current_user, document), "Presentation")
        self.scheme = self.header.scheme

    def check(self, password: str) -> bool:
        return self.header.matches(password)

    def open(self, candidate: Candidate, ctx: ScanContext) -> bytes:
        raise UnsupportedInput(
            f"PowerPoint 97-2003 presentation opens with {candidate.label()}, but ddescan "
            "does not read PowerPoint content (not inspected)"
        )


def _opener(kind: ProtectedKind, data: bytes, ole: olefile.OleFileIO, ctx: ScanContext) -> _Opener:
    if kind is ProtectedKind.OOXML:
        return _OoxmlOpener(data, ole, ctx)
    if kind is ProtectedKind.WORD:
        return _WordOpener(data, ole, ctx)
    if kind is ProtectedKind.EXCEL:
        return _ExcelOpener(data, ole, ctx)
    if kind is ProtectedKind.POWERPOINT:
        return _PowerPointOpener(data, ole, ctx)
    raise EncryptedInput(
        "document is protected by rights management (IRM): only the rights-management "
        "server can open it; content not inspected"
    )


def _counted(candidates: Sequence[Candidate]) -> str:
    names = (
        (PasswordOrigin.DEFAULT, "well-known default", "well-known defaults"),
        (PasswordOrigin.USER, "user-supplied", "user-supplied"),
        (PasswordOrigin.MESSAGE, "from the surrounding message", "from the surrounding message"),
    )
    parts = []
    for origin, one, many in names:
        count = sum(1 for c in candidates if c.origin is origin)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    return ", ".join(parts)


def _find_password(opener: _Opener, ctx: ScanContext) -> Candidate:
    """The first candidate that opens the file, within the tries and round budgets."""
    limits = ctx.config.limits
    candidates = password_candidates(ctx)
    per_try = max(opener.rounds, 1)
    affordable = max(0, min(limits.max_password_tries, limits.max_key_derivation_rounds // per_try))
    tried = candidates[:affordable]
    for candidate in tried:
        ctx.check_time()
        if opener.check(candidate.password):
            return candidate
    message = f"{opener.what} is encrypted ({opener.scheme})"
    if not candidates:
        message += " and no password was given or found"
    elif not tried:
        message += (
            f"; one password check costs {per_try} key-derivation rounds, more than the "
            f"limit of {limits.max_key_derivation_rounds} (max_key_derivation_rounds), so "
            "no password was tried"
        )
    else:
        message += f" and none of the {len(tried)} passwords tried opens it ({_counted(tried)})"
        untried = len(candidates) - len(tried)
        if untried:
            message += (
                f"; {untried} more not tried (limit of {affordable} checks per file: "
                "max_password_tries, max_key_derivation_rounds)"
            )
    raise EncryptedInput(message + "; content not inspected")


def _chain(table: Sequence[int], start: int, count: int) -> list[int]:
    """`count` sector numbers of a chain, refusing one that leaves its allocation table."""
    chain: list[int] = []
    sector = start
    for _ in range(count):
        if not 0 <= sector < len(table):
            raise MalformedInput("compound file sector chain leaves its allocation table")
        chain.append(sector)
        sector = int(table[sector])
    return chain


def _put(out: bytearray, at: int, chunk: bytes) -> None:
    if at < 0 or at + len(chunk) > len(out):
        raise MalformedInput("compound file sector lies past the end of the file")
    out[at : at + len(chunk)] = chunk


def _root_stream(ole: olefile.OleFileIO, name: str) -> Any:
    # The first match, case-insensitively: the entry olefile's openstream() read.
    for kid in ole.root.kids:
        if str(kid.name).lower() == name.lower():
            if kid.entry_type != olefile.STGTY_STREAM:
                break
            return kid
    raise MalformedInput(f"compound file has no stream {name!r}")


def _rewritten(data: bytes, ole: olefile.OleFileIO, streams: Mapping[str, bytes]) -> bytes:
    """A copy of the compound file whose named root streams hold new bytes of the same size.

    Written through the sector chains ([MS-CFB] 2.3 FAT, 2.4 mini FAT and mini stream),
    each followed exactly as far as the stream's size needs: olefile's own write_stream
    follows a mini-stream chain until ENDOFCHAIN, which a crafted cycle never reaches.
    """
    out = bytearray(data)
    try:
        sector_size = int(ole.sectorsize)
        mini_size = int(ole.minisectorsize)
        cutoff = int(ole.minisectorcutoff)
        root_chain: list[int] | None = None
        for name, content in streams.items():
            entry = _root_stream(ole, name)
            size = int(entry.size)
            if size != len(content):
                raise MalformedInput(f"stream {name!r} changed size while decrypting")
            if size == 0:
                continue
            if size < cutoff:
                if not ole.minifat:
                    ole.loadminifat()
                if root_chain is None:
                    root = ole.root
                    root_chain = _chain(
                        ole.fat, int(root.isectStart), -(-int(root.size) // sector_size)
                    )
                per_sector = sector_size // mini_size
                chain = _chain(ole.minifat, int(entry.isectStart), -(-size // mini_size))
                for index, mini in enumerate(chain):
                    if mini // per_sector >= len(root_chain):
                        raise MalformedInput("mini stream sector lies past the mini stream")
                    at = (root_chain[mini // per_sector] + 1) * sector_size
                    at += (mini % per_sector) * mini_size
                    _put(out, at, content[index * mini_size : (index + 1) * mini_size])
            else:
                chain = _chain(ole.fat, int(entry.isectStart), -(-size // sector_size))
                for index, sector in enumerate(chain):
                    chunk = content[index * sector_size : (index + 1) * sector_size]
                    _put(out, (sector + 1) * sector_size, chunk)
    except _library_error_types() as error:
        raise MalformedInput(f"cannot rewrite the compound file: {_describe(error)}") from error
    return bytes(out)


class EncryptedOfficeFormat:
    """Encrypted Word, Excel, PowerPoint and OOXML files (any name: Office opens by content).

    It sits before every other compound-file format in the registry: those read only plain
    documents, and this one hands them the plain document it decrypted.
    """

    format = FileFormat.ENCRYPTED

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if protected_kind(data) is not None else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        ole = open_cfb(data)
        try:
            kind = _kind(ole, ctx.config.limits.max_part_bytes)
            if kind is None:
                raise UnsupportedInput("compound file is not an encrypted Office document")
            opener = _opener(kind, data, ole, ctx)
            candidate = _find_password(opener, ctx)
            plain = opener.open(candidate, ctx)
        finally:
            ole.close()
        ctx.budget.spend(len(plain), "decrypted document")
        location = ctx.location.child(f"decrypted with {candidate.label()}")
        yield EmbeddedDocument(plain, location, ctx.host)
