"""Excel 97-2003 workbooks (.xls, .xlt, .xla; BIFF8, [MS-XLS]): DDE links and the formulas
that use them.

An .xls is a compound file whose `Workbook` stream is a sequence of records (2.1.4: a
2-byte type, a 2-byte size of at most 8224 bytes, the body; a record too long for one is
continued by CONTINUE records). The stream holds substreams, each from a BOF to
its EOF: first the workbook globals, then one per sheet, found through BoundSheet8.lbPlyPos.

Excel saves `=cmd|'/c calc.exe'!A0` in three places ([MS-XLS] 2.2.7.2 supporting links):

* a SupBook record (2.4.271) whose virtual path (2.5.277, rule ole-link) is the DDE service
  and topic joined by the character 0x03, with ctab 0: a DDE data source (2.2.7.6);
* ExternName records after it, one per DDE item, with the fWantAdvise flag when
  the link updates automatically;
* cell formulas whose parsed expression (PtgNameX) names an ExternSheet entry
  (2.5.344 XTI) that points at that SupBook, and one of its ExternNames.

Excel asks to update such links when the workbook opens, so every DDE SupBook is reported
whether or not a cell uses it, and each formula that uses one is reported at its cell. Excel
4.0 macro sheets (BoundSheet8.dt 1) start DDE conversations with INITIATE(app, topic)
(Ftab 0x00AF); a formula that calls it is decompiled from its tokens and read the same way
as a text formula (scanner.formulas).

The parsed-expression decompiler here also serves .xlsb (scanner.formats.xlsb): [MS-XLSB]
2.5.97 uses the same tokens with wider row numbers and Unicode string literals.
"""

from __future__ import annotations

import enum
import math
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

from scanner.analysis import dde_finding
from scanner.errors import EncryptedInput, LimitExceeded, MalformedInput, UnsupportedInput
from scanner.formats.base import PartScan, ScanContext, ScanItem
from scanner.formats.cfb import has_stream, is_cfb, open_cfb, read_stream
from scanner.formats.objectpool import object_pool_scans
from scanner.formulas import canonical_reference, findings_for_formula
from scanner.model import (
    Confidence,
    DdeCall,
    Evidence,
    FileFormat,
    Finding,
    Formula,
    HostApplication,
    Location,
    ScanConfig,
    ScanLimits,
    Technique,
)

WORKBOOK_STREAMS = ("Workbook", "Book")

# Record types ([MS-XLS] 2.3 record enumeration).
RT_FORMULA = 0x0006
RT_EOF = 0x000A
RT_EXTERNSHEET = 0x0017
RT_LBL = 0x0018
RT_EXTERNNAME = 0x0023
RT_FILEPASS = 0x002F
RT_CONTINUE = 0x003C
RT_BOUNDSHEET8 = 0x0085
RT_SUPBOOK = 0x01AE
RT_ARRAY = 0x0221
RT_SHRFMLA = 0x04BC
RT_BOF = 0x0809
# BOF records of BIFF2, BIFF3 and BIFF4 (Excel 2.x, 3.0 and 4.0 worksheets).
OLD_BOFS = {0x0009: "Excel 2.x", 0x0209: "Excel 3.0", 0x0409: "Excel 4.0"}

MAX_RECORD_SIZE = 8224
BIFF8_VERSION = 0x0600
# BOF.vers of BIFF5/7 (Excel 5.0 and 95) and of the BIFF2-4 forms of the BOF record. Any
# other value is read as BIFF8: a crafted version number must not buy an unscanned file.
OLD_VERSIONS = frozenset({0x0200, 0x0300, 0x0400, 0x0500})
# BOF.dt (2.4.21): the kind of substream.
DT_GLOBALS = 0x0005
DT_MACRO_SHEET = 0x0040

# SupBook.cch special values (2.4.271).
CCH_SELF = 0x0401
CCH_ADD_IN = 0x3A01
DDE_SEPARATOR = "\x03"

# ExternName flags ([MS-XLS] ExternName).
EXTERN_BUILTIN = 0x0001
EXTERN_WANT_ADVISE = 0x0002
EXTERN_WANT_PICT = 0x0004
EXTERN_OLE = 0x0008
EXTERN_OLE_LINK = 0x0010

# Lbl flags (2.4.150): fHidden and fBuiltin. A built-in name is stored as one character, the
# index of its name in this list.
LBL_HIDDEN = 0x0001
LBL_BUILTIN = 0x0020
BUILTIN_NAMES = (
    "Consolidate_Area", "Auto_Open", "Auto_Close", "Extract", "Database", "Criteria",
    "Print_Area", "Print_Titles", "Recorder", "Data_Form", "Auto_Activate",
    "Auto_Deactivate", "Sheet_Title", "_FilterDatabase",
)  # fmt: skip


# Function numbers (Ftab) that matter here, with their fixed argument counts
# where PtgFunc (2.5.198.62) leaves the count out.
FTAB_INITIATE = 0x00AF
FTAB_CONCATENATE = 0x0150
FTAB_USER_DEFINED = 0x00FF

# Formulas longer than this many bytes of tokens are read only so far: Excel's own limit is
# 8,192 characters of text, which never takes this many tokens.
MAX_RGCE = 65_536
MAX_STACK = 1024
MAX_OPERAND_CHARS = 8192
MAX_LISTED_ITEMS = 32
MAX_DAMAGE_MESSAGES = 5
_CHECK_EVERY = 4096


class SheetState(enum.Enum):
    """BoundSheet8.hsState ([MS-XLS] 2.4.28) and BrtBundleSh.hsState ([MS-XLSB])."""

    VISIBLE = "visible"
    HIDDEN = "hidden"
    VERY_HIDDEN = "veryHidden"

    @classmethod
    def of(cls, value: int) -> SheetState:
        # Values past "very hidden" are not visible either.
        return (cls.VISIBLE, cls.HIDDEN, cls.VERY_HIDDEN)[value] if value < 3 else cls.HIDDEN


class SheetKind(enum.Enum):
    """BoundSheet8.dt ([MS-XLS] 2.4.28), or an .xlsb sheet part's content type."""

    WORKSHEET = "worksheet"
    MACRO_SHEET = "macro sheet"
    CHART = "chart"
    VBA_MODULE = "VBA module"
    DIALOG_SHEET = "dialog sheet"
    OTHER = "other"

    @classmethod
    def of(cls, value: int) -> SheetKind:
        kinds = {0: cls.WORKSHEET, 1: cls.MACRO_SHEET, 2: cls.CHART, 6: cls.VBA_MODULE}
        return kinds.get(value, cls.OTHER)


def sheet_label(name: str, state: SheetState) -> str:
    """How a sheet is named in a location: "Data (hidden)"."""
    return name if state is SheetState.VISIBLE else f"{name} ({state.value})"


def sheet_steps(name: str, state: SheetState, kind: SheetKind) -> tuple[str, ...]:
    steps: list[str] = []
    if state is SheetState.HIDDEN:
        steps.append(f"sheet '{name}' is hidden")
    elif state is SheetState.VERY_HIDDEN:
        steps.append(f"sheet '{name}' is very hidden (only a macro can show it)")
    if kind is SheetKind.MACRO_SHEET:
        steps.append(f"sheet '{name}' is an Excel 4.0 macro sheet")
    return tuple(steps)


def name_detail(name: str, sheet: str, hidden: bool) -> str:
    """How a defined name is named in a location."""
    detail = f'defined name "{show(name)}"'
    if sheet:
        detail += f" (sheet {sheet})"
    return detail + (" (hidden)" if hidden else "")


class _Damage:
    """Damaged records met while reading: reported together once everything readable was read."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.messages) < MAX_DAMAGE_MESSAGES:
            self.messages.append(message)

    def __bool__(self) -> bool:
        return self.count > 0

    def error(self) -> MalformedInput:
        more = self.count - len(self.messages)
        text = "; ".join(self.messages) + (f"; and {more} more" if more > 0 else "")
        return MalformedInput(text)


def show(text: str) -> str:
    """A string with its control characters written as escapes (the 0x03 of a DDE path)."""
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" for c in text)


def cell_name(row: int, col: int) -> str:
    """A1-style name of a zero-based cell."""
    letters = ""
    number = col + 1
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"


@dataclass(frozen=True)
class DdeTarget:
    """A DDE source that a formula token reaches through the workbook's link tables."""

    application: str
    topic: str
    item: str | None
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Resolved:
    """How a token that names something elsewhere reads, and the DDE source it stands for."""

    text: str
    dde: DdeTarget | None = None


class LinkResolver(Protocol):
    """The workbook tables a formula's tokens refer to (names, sheets, supporting links)."""

    def external_name(self, ixti: int, iname: int) -> Resolved: ...

    def sheet_prefix(self, ixti: int) -> Resolved: ...

    def defined_name(self, index: int) -> str: ...


@dataclass(frozen=True)
class PtgDialect:
    """Where BIFF8 tokens ([MS-XLS] 2.5.198) and XLSB tokens ([MS-XLSB] 2.5.97) differ."""

    name: str
    row_bytes: int
    array_bytes: int
    wide_strings: bool


BIFF8_PTGS = PtgDialect("BIFF8", row_bytes=2, array_bytes=7, wide_strings=False)
XLSB_PTGS = PtgDialect("XLSB", row_bytes=4, array_bytes=14, wide_strings=True)


@dataclass(frozen=True)
class Decompiled:
    """A formula's tokens written back as formula text, with what they refer to.

    `complete` is false when the tokens could not all be read (the text then holds what
    was); `dde` lists the DDE sources reached through the link tables; `initiate` is true
    when the formula calls INITIATE.
    """

    text: str
    complete: bool
    notes: tuple[str, ...]
    dde: tuple[DdeTarget, ...]
    initiate: bool


# Fixed argument counts of the Ftab functions that PtgFunc may carry (those whose count is
# not fixed always come as PtgFuncVar). Names are only for the decompiled text.
_FIXED: dict[int, tuple[str, int]] = {
    0x0002: ("ISNA", 1), 0x0003: ("ISERROR", 1), 0x000A: ("NA", 0), 0x000F: ("SIN", 1),
    0x0010: ("COS", 1), 0x0011: ("TAN", 1), 0x0012: ("ATAN", 1), 0x0013: ("PI", 0),
    0x0014: ("SQRT", 1), 0x0015: ("EXP", 1), 0x0016: ("LN", 1), 0x0017: ("LOG10", 1),
    0x0018: ("ABS", 1), 0x0019: ("INT", 1), 0x001A: ("SIGN", 1), 0x001B: ("ROUND", 2),
    0x001E: ("REPT", 2), 0x001F: ("MID", 3), 0x0020: ("LEN", 1), 0x0021: ("VALUE", 1),
    0x0022: ("TRUE", 0), 0x0023: ("FALSE", 0), 0x0026: ("NOT", 1), 0x0027: ("MOD", 2),
    0x0028: ("DCOUNT", 3), 0x0029: ("DSUM", 3), 0x002A: ("DAVERAGE", 3),
    0x002B: ("DMIN", 3), 0x002C: ("DMAX", 3), 0x002D: ("DSTDEV", 3), 0x002F: ("DVAR", 3),
    0x0030: ("TEXT", 2), 0x0035: ("GOTO", 1), 0x003F: ("RAND", 0), 0x0041: ("DATE", 3),
    0x0042: ("TIME", 3), 0x0043: ("DAY", 1), 0x0044: ("MONTH", 1), 0x0045: ("YEAR", 1),
    0x0047: ("HOUR", 1), 0x0048: ("MINUTE", 1), 0x0049: ("SECOND", 1), 0x004A: ("NOW", 0),
    0x004B: ("AREAS", 1), 0x004C: ("ROWS", 1), 0x004D: ("COLUMNS", 1),
    0x0053: ("TRANSPOSE", 1), 0x0056: ("TYPE", 1), 0x0061: ("ATAN2", 2), 0x0062: ("ASIN", 1),
    0x0063: ("ACOS", 1), 0x0069: ("ISREF", 1), 0x006F: ("CHAR", 1), 0x0070: ("LOWER", 1),
    0x0071: ("UPPER", 1), 0x0072: ("PROPER", 1), 0x0075: ("EXACT", 2), 0x0076: ("TRIM", 1),
    0x0077: ("REPLACE", 4), 0x0079: ("CODE", 1), 0x007E: ("ISERR", 1), 0x007F: ("ISTEXT", 1),
    0x0080: ("ISNUMBER", 1), 0x0081: ("ISBLANK", 1), 0x0082: ("T", 1), 0x0083: ("N", 1),
    0x008C: ("DATEVALUE", 1), 0x008D: ("TIMEVALUE", 1), 0x008E: ("SLN", 3),
    0x008F: ("SYD", 4), 0x00A2: ("CLEAN", 1), 0x00A3: ("MDETERM", 1), 0x00A4: ("MINVERSE", 1),
    0x00A5: ("MMULT", 2), 0x00AF: ("INITIATE", 2), 0x00B0: ("REQUEST", 2),
    0x00B1: ("POKE", 3), 0x00B2: ("EXECUTE", 2), 0x00B3: ("TERMINATE", 1),
    0x00B8: ("FACT", 1), 0x00BE: ("ISNONTEXT", 1), 0x00C6: ("ISLOGICAL", 1),
    0x00D3: ("LENB", 1), 0x00D4: ("ROUNDUP", 2), 0x00D5: ("ROUNDDOWN", 2), 0x00D6: ("ASC", 1),
    0x00D7: ("DBCS", 1), 0x00DD: ("TODAY", 0), 0x00E5: ("SINH", 1), 0x00E6: ("COSH", 1),
    0x00E7: ("TANH", 1), 0x00E8: ("ASINH", 1), 0x00E9: ("ACOSH", 1), 0x00EA: ("ATANH", 1),
    0x00EB: ("DGET", 3), 0x0105: ("ERROR.TYPE", 1), 0x010F: ("GAMMALN", 1),
    0x0114: ("COMBIN", 2), 0x0117: ("EVEN", 1), 0x011B: ("FISHER", 1),
    0x011C: ("FISHERINV", 1), 0x011D: ("FLOOR", 2), 0x0120: ("CEILING", 2), 0x012A: ("ODD", 1),
    0x012B: ("PERMUT", 2), 0x0151: ("POWER", 2), 0x0156: ("RADIANS", 1),
    0x0157: ("DEGREES", 1), 0x015A: ("COUNTIF", 2), 0x015B: ("COUNTBLANK", 1),
}  # fmt: skip

# Names of common functions that take a variable number of arguments (PtgFuncVar).
_VARIADIC: dict[int, str] = {
    0x0000: "COUNT", 0x0001: "IF", 0x0004: "SUM", 0x0005: "AVERAGE", 0x0006: "MIN",
    0x0007: "MAX", 0x0008: "ROW", 0x0009: "COLUMN", 0x001C: "LOOKUP", 0x001D: "INDEX",
    0x0024: "AND", 0x0025: "OR", 0x0036: "HALT", 0x0037: "RETURN", 0x0040: "MATCH",
    0x004E: "OFFSET", 0x0052: "SEARCH", 0x0064: "CHOOSE", 0x0065: "HLOOKUP",
    0x0066: "VLOOKUP", 0x006C: "SET.VALUE", 0x006E: "EXEC", 0x0073: "LEFT", 0x0074: "RIGHT",
    0x0078: "SUBSTITUTE", 0x007C: "FIND", 0x0094: "INDIRECT", 0x0095: "REGISTER",
    0x0096: "CALL", 0x00A9: "COUNTA", 0x00C5: "TRUNC", 0x0101: "EVALUATE",
    0x0150: "CONCATENATE", 0x0159: "SUMIF",
}  # fmt: skip

# Command-equivalent functions (Cetab) seen in Excel 4.0 macros.
_CETAB: dict[int, str] = {
    0x0001: "OPEN", 0x000A: "QUIT", 0x0020: "FILE.DELETE", 0x0076: "ALERT",
    0x00F0: "RUN",
}  # fmt: skip

_ERRORS = {
    0x00: "#NULL!", 0x07: "#DIV/0!", 0x0F: "#VALUE!", 0x17: "#REF!", 0x1D: "#NAME?",
    0x24: "#NUM!", 0x2A: "#N/A", 0x2B: "#GETTING_DATA",
}  # fmt: skip
_BINARY = {
    0x03: "+", 0x04: "-", 0x05: "*", 0x06: "/", 0x07: "^", 0x08: "&", 0x09: "<", 0x0A: "<=",
    0x0B: "=", 0x0C: ">=", 0x0D: ">", 0x0E: "<>", 0x0F: " ", 0x10: ",", 0x11: ":",
}  # fmt: skip
_SIMPLE_CONSTANT = re.compile(r'"(?:[^"]|"")*"|CHAR\(\d{1,3}\)|-?\d+(?:\.\d+)?')


class _Stop(Exception):
    """Raised inside the decompiler when the rest of the tokens cannot be read."""


class _Decompiler:
    """Reads one parsed expression (rgce) as the stack machine Excel evaluates it with."""

    def __init__(self, rgce: bytes, dialect: PtgDialect, resolver: LinkResolver) -> None:
        self.data = rgce
        self.dialect = dialect
        self.resolver = resolver
        self.pos = 0
        self.stack: list[str] = []
        self.notes: list[str] = []
        self.dde: list[DdeTarget] = []
        self.initiate = False

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise _Stop(
                f"token at byte {self.pos} of the formula runs past its end "
                f"({len(self.data)} bytes)"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack("<H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def row(self) -> int:
        return self.u16() if self.dialect.row_bytes == 2 else self.u32()

    def push(self, text: str) -> None:
        if len(self.stack) >= MAX_STACK:
            raise _Stop(f"more than {MAX_STACK} operands pending")
        if len(text) > MAX_OPERAND_CHARS:
            text = text[:MAX_OPERAND_CHARS] + "..."
            self.note(f"an operand longer than {MAX_OPERAND_CHARS} characters was cut")
        self.stack.append(text)

    def pop(self) -> str:
        if not self.stack:
            self.note("a token wants more operands than the formula pushed")
            return "?"
        return self.stack.pop()

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def location(self, relative: bool) -> str:
        row = self.row()
        column = self.u16()
        col = column & 0x3FFF
        col_relative = bool(column & 0x4000)
        row_relative = bool(column & 0x8000)
        if relative:
            # PtgRefN/PtgAreaN (shared formulas): offsets from the cell that uses them.
            return f"R[{row}]C[{col}]" if row_relative or col_relative else f"R{row + 1}C{col + 1}"
        name = cell_name(row, col)
        letters = name.rstrip("0123456789")
        digits = name[len(letters) :]
        return ("" if col_relative else "$") + letters + ("" if row_relative else "$") + digits

    def area(self, relative: bool) -> str:
        first_row = self.row()
        last_row = self.row()
        first_col = self.u16()
        last_col = self.u16()
        if relative:
            return f"R[{first_row}]C[{first_col & 0x3FFF}]:R[{last_row}]C[{last_col & 0x3FFF}]"
        return (
            f"{cell_name(first_row, first_col & 0x3FFF)}:{cell_name(last_row, last_col & 0x3FFF)}"
        )

    def string(self) -> str:
        if self.dialect.wide_strings:
            count = self.u16()
            raw = self.take(2 * count)
            return raw.decode("utf-16-le", "replace")
        count = self.u8()
        high = self.u8() & 0x01
        raw = self.take(count * (2 if high else 1))
        return raw.decode("utf-16-le", "replace") if high else raw.decode("latin-1")

    def function(self, name: str, argc: int) -> None:
        args = [self.pop() for _ in range(argc)][::-1]
        if name == "CONCATENATE" and args and all(_SIMPLE_CONSTANT.fullmatch(a) for a in args):
            # Same value, written so that scanner.formulas can fold it.
            self.push("&".join(args))
            return
        self.push(f"{name}({','.join(args)})")

    def external(self, ixti: int, iname: int) -> None:
        resolved = self.resolver.external_name(ixti, iname)
        if resolved.dde is not None:
            self.dde.append(resolved.dde)
        self.push(resolved.text)

    def three_d(self, ixti: int, where: str) -> None:
        resolved = self.resolver.sheet_prefix(ixti)
        if resolved.dde is None:
            self.push(resolved.text + where)
            return
        target = DdeTarget(
            resolved.dde.application,
            resolved.dde.topic,
            where,
            (*resolved.dde.steps, f"the cell {where} of it is the item"),
        )
        self.dde.append(target)
        self.push(canonical_reference(target.application, target.topic, where))

    def attr(self) -> None:
        kind = self.u8()
        data = self.u16()
        if kind & 0x04:
            # PtgAttrChoose: a jump table of data + 1 offsets follows.
            self.take(2 * (data + 1))
        elif kind & 0x10:
            # PtgAttrSum: SUM of the one operand on the stack.
            self.push(f"SUM({self.pop()})")

    def extend(self) -> None:
        eptg = self.u8()
        if self.dialect.wide_strings and eptg == 0x19:
            # PtgList ([MS-XLSB] 2.5.97.52): a structured reference to a table.
            self.take(12)
            self.push("Table[]")
        else:
            # PtgElf* and PtgSxName: natural-language and PivotTable references.
            self.take(4)
            self.push("#REF!")

    def token(self, ptg: int) -> None:
        if ptg in _BINARY:
            right = self.pop()
            left = self.pop()
            self.push(f"{left}{_BINARY[ptg]}{right}")
        elif ptg == 0x12:
            self.push("+" + self.pop())
        elif ptg == 0x13:
            self.push("-" + self.pop())
        elif ptg == 0x14:
            self.push(self.pop() + "%")
        elif ptg == 0x15:
            self.push(f"({self.pop()})")
        elif ptg == 0x16:
            self.push("")
        elif ptg == 0x17:
            self.push('"' + self.string().replace('"', '""') + '"')
        elif ptg == 0x18:
            self.extend()
        elif ptg == 0x19:
            self.attr()
        elif ptg == 0x1C:
            code = self.u8()
            self.push(_ERRORS.get(code, f"#ERR{code}"))
        elif ptg == 0x1D:
            self.push("TRUE" if self.u8() else "FALSE")
        elif ptg == 0x1E:
            self.push(str(self.u16()))
        elif ptg == 0x1F:
            value: float = struct.unpack("<d", self.take(8))[0]
            if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
                self.push(str(int(value)))
            else:
                self.push(repr(value))
        elif ptg in (0x01, 0x02):
            # PtgExp/PtgTbl: the formula is the shared or table formula of another cell.
            self.take(4)
            self.push("#SHARED")
        elif 0x20 <= ptg <= 0x7F:
            self.classed(0x20 | (ptg & 0x1F))
        else:
            raise _Stop(f"unknown token 0x{ptg:02X} at byte {self.pos - 1} of the formula")

    def classed(self, base: int) -> None:
        row_bytes = self.dialect.row_bytes
        if base == 0x20:
            self.take(self.dialect.array_bytes)
            self.push("{array}")
        elif base == 0x21:
            iftab = self.u16()
            if iftab == FTAB_INITIATE:
                self.initiate = True
            name, argc = _FIXED.get(iftab, (f"FUNCTION{iftab}", -1))
            if argc < 0:
                self.note(f"function {iftab} has an unknown argument count: one is assumed")
                argc = 1
            self.function(name, argc)
        elif base == 0x22:
            argc = self.u8() & 0x7F
            tab = self.u16()
            iftab = tab & 0x7FFF
            if tab & 0x8000:
                name = _CETAB.get(iftab, f"COMMAND{iftab}")
            elif iftab == FTAB_USER_DEFINED and argc > 0:
                # A user-defined function: its name is the first operand.
                args = [self.pop() for _ in range(argc - 1)][::-1]
                self.push(f"{self.pop()}({','.join(args)})")
                return
            else:
                if iftab == FTAB_INITIATE:
                    self.initiate = True
                name = _FIXED.get(iftab, (_VARIADIC.get(iftab, f"FUNCTION{iftab}"), 0))[0]
            self.function(name, argc)
        elif base == 0x23:
            self.push(self.resolver.defined_name(self.u32()))
        elif base in (0x24, 0x2C):
            self.push(self.location(relative=base == 0x2C))
        elif base in (0x25, 0x2D):
            self.push(self.area(relative=base == 0x2D))
        elif base in (0x26, 0x27, 0x28):
            # PtgMemArea/Err/NoMem: the sub-expression that follows computes the operand.
            self.take(6)
        elif base == 0x29:
            self.take(2)
        elif base == 0x2A:
            self.take(row_bytes + 2)
            self.push("#REF!")
        elif base == 0x2B:
            self.take(2 * row_bytes + 4)
            self.push("#REF!")
        elif base == 0x39:
            ixti = self.u16()
            self.external(ixti, self.u32())
        elif base == 0x3A:
            ixti = self.u16()
            self.three_d(ixti, self.location(relative=False).replace("$", ""))
        elif base == 0x3B:
            ixti = self.u16()
            self.three_d(ixti, self.area(relative=False))
        elif base == 0x3C:
            ixti = self.u16()
            self.take(row_bytes + 2)
            self.three_d(ixti, "#REF!")
        elif base == 0x3D:
            ixti = self.u16()
            self.take(2 * row_bytes + 4)
            self.three_d(ixti, "#REF!")
        else:
            raise _Stop(f"unknown token 0x{base:02X} at byte {self.pos - 1} of the formula")

    def run(self) -> Decompiled:
        complete = True
        try:
            while self.pos < len(self.data):
                self.token(self.u8())
        except _Stop as stop:
            complete = False
            self.note(f"{stop}: the rest of it is not read")
        if complete and len(self.stack) == 1:
            text = self.stack[0]
        else:
            if complete:
                self.note(f"the tokens leave {len(self.stack)} operands instead of one")
            text = " ".join(self.stack)
        return Decompiled(
            text=text,
            complete=complete,
            notes=tuple(self.notes),
            dde=tuple(self.dde),
            initiate=self.initiate,
        )


def decompile(rgce: bytes, dialect: PtgDialect, resolver: LinkResolver) -> Decompiled:
    """Formula text for a parsed expression, best effort; never raises on bad tokens."""
    notes: tuple[str, ...] = ()
    if len(rgce) > MAX_RGCE:
        rgce = rgce[:MAX_RGCE]
        notes = (f"formula tokens over {MAX_RGCE} bytes: only the first {MAX_RGCE} read",)
    result = _Decompiler(rgce, dialect, resolver).run()
    if notes:
        result = Decompiled(result.text, False, notes + result.notes, result.dde, result.initiate)
    return result


def may_call_initiate(rgce: bytes) -> bool:
    """False when no token of the formula can be a call of INITIATE (a cheap pre-test)."""
    return b"\xaf\x00" in rgce


# PtgNameX and the 3-D reference tokens, in their three classes: the only tokens that reach
# a supporting link.
_LINK_TOKENS = re.compile(rb"[\x39-\x3d\x59-\x5d\x79-\x7d]")


def worth_decompiling(rgce: bytes, has_dde: bool) -> bool:
    """False when the formula can neither reach a DDE link nor call INITIATE (cheap)."""
    return (has_dde and _LINK_TOKENS.search(rgce) is not None) or may_call_initiate(rgce)


def findings_for_rgce(
    rgce: bytes,
    dialect: PtgDialect,
    resolver: LinkResolver,
    has_dde: bool,
    location: Location,
    steps: tuple[str, ...],
    host: HostApplication,
    config: ScanConfig,
) -> list[Finding]:
    """DDE_FORMULA findings for a formula's tokens; none, without decompiling, when they can
    neither reach a DDE link nor call INITIATE."""
    if not worth_decompiling(rgce, has_dde):
        return []
    decompiled = decompile(rgce, dialect, resolver)
    return findings_for_decompiled(decompiled, location, steps, host, config)


def findings_for_decompiled(
    decompiled: Decompiled,
    location: Location,
    steps: tuple[str, ...],
    host: HostApplication,
    config: ScanConfig,
) -> list[Finding]:
    """DDE_FORMULA findings for a decompiled formula: its remote references and INITIATE
    calls as scanner.formulas reads its text, and every DDE source its tokens reach.

    A DDE source whose reference the text does not show (the formula could not be read to
    its end) is reported with the reference alone as its evidence.
    """
    if not decompiled.dde and not decompiled.initiate:
        return []
    all_steps = (
        *steps,
        "formula decompiled from its parsed tokens",
        *decompiled.notes,
        *(step for target in decompiled.dde for step in target.steps),
    )
    text = "=" + decompiled.text
    findings = findings_for_formula(Formula(text, location, all_steps), host, config)
    shown = {(f.dde.application, f.dde.topic) for f in findings if f.dde is not None}
    for target in decompiled.dde:
        if (target.application, target.topic) in shown:
            continue
        shown.add((target.application, target.topic))
        canonical = canonical_reference(target.application, target.topic, target.item)
        call = DdeCall(
            application=target.application,
            topic=target.topic,
            item=target.item or "",
            keyword="remote reference",
            automatic=True,
        )
        evidence = Evidence(raw=text, deobfuscated=canonical, steps=all_steps)
        findings.append(dde_finding(call, Technique.DDE_FORMULA, evidence, location, host, config))
    return findings


class _Reader:
    """A bounded cursor over one record's body and the bodies of the CONTINUE records after
    it ([MS-XLS] 2.1.4), read as one byte sequence except inside strings."""

    def __init__(self, fragments: Sequence[bytes], what: str) -> None:
        self._fragments = fragments
        self._index = 0
        self._pos = 0
        self._left = sum(len(fragment) for fragment in fragments)
        self.what = what

    def remaining(self) -> int:
        return self._left

    def _advance(self) -> bool:
        """Move to the next fragment when the current one is used up; False at the end."""
        while self._pos >= len(self._fragments[self._index]):
            if self._index + 1 >= len(self._fragments):
                return False
            self._index += 1
            self._pos = 0
        return True

    def take(self, size: int) -> bytes:
        if size > self.remaining():
            raise MalformedInput(
                f"{self.what}: {size} bytes wanted but only {self.remaining()} left in the record"
            )
        parts: list[bytes] = []
        while size > 0:
            self._advance()
            fragment = self._fragments[self._index]
            chunk = fragment[self._pos : self._pos + size]
            parts.append(chunk)
            self._pos += len(chunk)
            self._left -= len(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = struct.unpack("<H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def i16(self) -> int:
        value: int = struct.unpack("<h", self.take(2))[0]
        return value

    def chars(self, count: int) -> str:
        """An XLUnicodeStringNoCch of `count` characters (2.5.296): a flag byte whose bit 0
        says 2-byte characters, then the characters. A string cut by the end of a record
        goes on in the next CONTINUE record, which starts with a flag byte of its own."""
        high = self.u8() & 0x01
        parts: list[str] = []
        left = count
        while left > 0:
            if self._pos >= len(self._fragments[self._index]):
                if not self._advance():
                    raise MalformedInput(
                        f"{self.what}: a string of {count} characters runs past the end of "
                        "the record"
                    )
                high = self.u8() & 0x01
                continue
            fragment = self._fragments[self._index]
            width = 2 if high else 1
            available = (len(fragment) - self._pos) // width
            if available == 0:
                raise MalformedInput(f"{self.what}: a 2-byte character is cut by a record end")
            step = min(left, available)
            raw = fragment[self._pos : self._pos + step * width]
            self._pos += step * width
            self._left -= step * width
            parts.append(raw.decode("utf-16-le", "replace") if high else raw.decode("latin-1"))
            left -= step
        return "".join(parts)

    def short_string(self) -> str:
        """ShortXLUnicodeString (2.5.240): a 1-byte count, then XLUnicodeStringNoCch."""
        return self.chars(self.u8())

    def string(self) -> str:
        """XLUnicodeString (2.5.294): a 2-byte count, then XLUnicodeStringNoCch."""
        return self.chars(self.u16())


@dataclass(frozen=True)
class _Record:
    offset: int
    type: int
    fragments: tuple[bytes, ...]

    @property
    def body(self) -> bytes:
        return self.fragments[0]


_MERGED = frozenset({RT_SUPBOOK, RT_EXTERNNAME, RT_EXTERNSHEET, RT_LBL, RT_BOUNDSHEET8})


def _records(
    stream: bytes,
    start: int,
    damage: _Damage | None,
    check_time: Callable[[], None],
    merge: frozenset[int] = _MERGED,
) -> Iterator[_Record]:
    """The records from `start` on, each with its CONTINUE records when its type is in
    `merge`; stops at the end of the stream or at a record that runs past it."""
    offset = start
    end = len(stream)
    count = 0
    while offset + 4 <= end:
        count += 1
        if count % _CHECK_EVERY == 0:
            check_time()
        record_type, size = struct.unpack_from("<HH", stream, offset)
        body_at = offset + 4
        if body_at + size > end:
            if damage is not None:
                damage.add(
                    f"record 0x{record_type:04X} at offset {offset} declares {size} bytes but "
                    f"only {end - body_at} remain in the stream"
                )
            return
        if size > MAX_RECORD_SIZE and damage is not None:
            damage.add(
                f"record 0x{record_type:04X} at offset {offset} is {size} bytes long, over "
                f"the BIFF8 maximum of {MAX_RECORD_SIZE}"
            )
        record_at = offset
        fragments = [stream[body_at : body_at + size]]
        offset = body_at + size
        if record_type in merge:
            while offset + 4 <= end:
                next_type, next_size = struct.unpack_from("<HH", stream, offset)
                if next_type != RT_CONTINUE or offset + 4 + next_size > end:
                    break
                fragments.append(stream[offset + 4 : offset + 4 + next_size])
                offset += 4 + next_size
        yield _Record(record_at, record_type, tuple(fragments))
    if offset < end and any(stream[offset:]) and damage is not None:
        damage.add(f"the stream ends with {end - offset} stray bytes at offset {offset}")


class LinkKind(enum.Enum):
    """Supporting link types ([MS-XLS] 2.2.7.2), from SupBook.cch and virtPath."""

    SELF = "self-referencing"
    ADD_IN = "add-in"
    SAME_SHEET = "same-sheet"
    UNUSED = "unused"
    DDE = "DDE data source"
    OLE = "OLE data source"
    EXTERNAL = "external workbook"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class ExternName:
    name: str
    flags: int

    @property
    def advise(self) -> bool:
        return bool(self.flags & EXTERN_WANT_ADVISE)

    @property
    def described(self) -> str:
        words = [
            word
            for bit, word in (
                (EXTERN_WANT_ADVISE, "advise"),
                (EXTERN_WANT_PICT, "picture"),
                (EXTERN_OLE, "ole"),
                (EXTERN_OLE_LINK, "ole link"),
            )
            if self.flags & bit
        ]
        return show(self.name) + (f" ({', '.join(words)})" if words else "")


@dataclass(frozen=True)
class SupBook:
    """One supporting link: a SupBook record and the ExternName records after it."""

    number: int
    offset: int
    kind: LinkKind
    ctab: int
    virt_path: str
    names: tuple[ExternName, ...]

    @property
    def service(self) -> str:
        return self.virt_path.split(DDE_SEPARATOR, 1)[0]

    @property
    def topic(self) -> str:
        parts = self.virt_path.split(DDE_SEPARATOR, 1)
        return parts[1] if len(parts) > 1 else ""

    def item(self, iname: int) -> str | None:
        return self.names[iname - 1].name if 1 <= iname <= len(self.names) else None


@dataclass(frozen=True)
class Sheet:
    name: str
    state: SheetState
    kind: SheetKind
    offset: int

    @property
    def label(self) -> str:
        return sheet_label(self.name, self.state)

    def steps(self) -> tuple[str, ...]:
        return sheet_steps(self.name, self.state, self.kind)


@dataclass(frozen=True)
class DefinedName:
    name: str
    rgce: bytes
    hidden: bool
    sheet: str

    @property
    def detail(self) -> str:
        return name_detail(self.name, self.sheet, self.hidden)


@dataclass(frozen=True)
class Globals:
    """What the workbook globals substream says about the rest of the workbook."""

    sheets: tuple[Sheet, ...]
    links: tuple[SupBook, ...]
    xti: tuple[tuple[int, int, int], ...]
    names: tuple[DefinedName, ...]
    end: int


class _PendingLink:
    """A SupBook being read: its ExternName records follow it in the stream."""

    def __init__(self, offset: int, ctab: int, kind: LinkKind, path: str) -> None:
        self.offset = offset
        self.ctab = ctab
        self.kind = kind
        self.path = path
        self.names: list[ExternName] = []


def _classify(ctab: int, path: str) -> LinkKind:
    if path == "\x00":
        return LinkKind.SAME_SHEET
    if path == " ":
        return LinkKind.UNUSED
    head = path.find(DDE_SEPARATOR)
    # ole-link = path-string %x0003 path-string; an encoded file path starts with 0x01 or
    # 0x02 and uses 0x03 as its directory separator, so it is never a DDE source.
    if ctab == 0 and head > 0 and path[0] not in "\x01\x02":
        return LinkKind.DDE
    return LinkKind.EXTERNAL


def _read_supbook(record: _Record) -> tuple[int, int, str]:
    """(ctab, cch, virtPath) of a SupBook record; virtPath is "" for the special kinds."""
    reader = _Reader(record.fragments, f"SUPBOOK at offset {record.offset}")
    ctab = reader.u16()
    cch = reader.u16()
    if cch in (CCH_SELF, CCH_ADD_IN):
        return ctab, cch, ""
    if cch == 0:
        raise MalformedInput(f"SUPBOOK at offset {record.offset} has an empty virtual path")
    return ctab, cch, reader.chars(cch)


def _final_kind(kind: LinkKind, ctab: int, path: str, names: Sequence[ExternName]) -> LinkKind:
    """DDE or OLE, once the link's names are known ([MS-XLS] 2.5.107 ExternOleDdeLink)."""
    # A DDE-shaped path with a sheet count: its names decide. Only DDE and OLE items carry
    # these flags, so Excel reads the link as a DDE or OLE source.
    if (
        kind is LinkKind.EXTERNAL
        and DDE_SEPARATOR in path[1:]
        and path[0] not in "\x01\x02"
        and any(n.flags & (EXTERN_WANT_ADVISE | EXTERN_WANT_PICT | EXTERN_OLE) for n in names)
    ):
        kind = LinkKind.DDE
    if kind is LinkKind.DDE and names and all(n.flags & EXTERN_OLE_LINK for n in names):
        return LinkKind.OLE
    return kind


def _read_boundsheet(record: _Record) -> Sheet:
    reader = _Reader(record.fragments, f"BOUNDSHEET8 at offset {record.offset}")
    offset = reader.u32()
    state = reader.u8() & 0x03
    kind = reader.u8()
    name = reader.short_string()
    return Sheet(name, SheetState.of(state), SheetKind.of(kind), offset)


def _read_externsheet(record: _Record, damage: _Damage) -> list[tuple[int, int, int]]:
    reader = _Reader(record.fragments, f"EXTERNSHEET at offset {record.offset}")
    count = reader.u16()
    room = reader.remaining() // 6
    if count > room:
        damage.add(
            f"EXTERNSHEET at offset {record.offset} declares {count} entries but holds {room}"
        )
        count = room
    return [(reader.u16(), reader.i16(), reader.i16()) for _ in range(count)]


def _read_lbl(record: _Record) -> tuple[str, bytes, bool, int]:
    reader = _Reader(record.fragments, f"LBL at offset {record.offset}")
    flags = reader.u16()
    reader.take(1)  # chKey
    cch = reader.u8()
    cce = reader.u16()
    reader.take(2)
    itab = reader.u16()
    reader.take(4)
    name = reader.chars(cch) if cch else ""
    if flags & LBL_BUILTIN and name:
        code = ord(name[0])
        name = BUILTIN_NAMES[code] if code < len(BUILTIN_NAMES) else f"built-in name {code}"
    rgce = reader.take(cce)
    return name, rgce, bool(flags & LBL_HIDDEN), itab


def _bof(record: _Record) -> tuple[int, int]:
    if len(record.body) < 4:
        raise MalformedInput(f"BOF record at offset {record.offset} is too short")
    version, kind = struct.unpack_from("<HH", record.body, 0)
    return version, kind


def read_globals(
    stream: bytes,
    damage: _Damage,
    check_time: Callable[[], None],
    ignore_filepass: bool = False,
) -> Globals:
    """The workbook globals substream: sheets, supporting links, XTIs and defined names."""
    if len(stream) < 4:
        raise MalformedInput(f"workbook stream of {len(stream)} bytes holds no record")
    first_type = struct.unpack_from("<H", stream, 0)[0]
    if first_type in OLD_BOFS:
        raise UnsupportedInput(
            f"{OLD_BOFS[first_type]} worksheet (BIFF2-4): only Excel 97-2003 workbooks "
            "(BIFF8) are read"
        )
    if first_type != RT_BOF:
        raise MalformedInput(
            f"workbook stream does not start with a BOF record (0x0809) but with 0x{first_type:04X}"
        )
    sheets: list[Sheet] = []
    links: list[_PendingLink] = []
    xti: list[tuple[int, int, int]] = []
    raw_names: list[tuple[str, bytes, bool, int]] = []
    end = len(stream)
    first = True
    for record in _records(stream, 0, damage, check_time):
        if first:
            first = False
            version, _kind = _bof(record)
            if version in OLD_VERSIONS:
                raise UnsupportedInput(
                    f"Excel 5.0/95 workbook (BIFF5, BOF version 0x{version:04X}): only "
                    "Excel 97-2003 workbooks (BIFF8) are read"
                )
            continue
        kind = record.type
        if kind == RT_EOF:
            end = record.offset + 4 + len(record.body)
            break
        try:
            if kind == RT_FILEPASS:
                if ignore_filepass:
                    continue
                raise EncryptedInput(
                    f"workbook is encrypted (FILEPASS record at offset {record.offset}): the "
                    "records after it cannot be read without the password"
                )
            if kind == RT_BOUNDSHEET8:
                sheets.append(_read_boundsheet(record))
            elif kind == RT_SUPBOOK:
                try:
                    ctab, cch, path = _read_supbook(record)
                except MalformedInput as error:
                    # Keep the link's place: XTIs count SupBooks by position.
                    damage.add(str(error))
                    links.append(_PendingLink(record.offset, 0, LinkKind.UNREADABLE, ""))
                    continue
                if cch == CCH_SELF:
                    link_kind = LinkKind.SELF
                elif cch == CCH_ADD_IN:
                    link_kind = LinkKind.ADD_IN
                else:
                    link_kind = _classify(ctab, path)
                links.append(_PendingLink(record.offset, ctab, link_kind, path))
            elif kind == RT_EXTERNNAME:
                if not links:
                    damage.add(f"EXTERNNAME at offset {record.offset} comes before any SUPBOOK")
                    continue
                reader = _Reader(record.fragments, f"EXTERNNAME at offset {record.offset}")
                flags = reader.u16()
                reader.take(4)
                links[-1].names.append(ExternName(reader.short_string(), flags))
            elif kind == RT_EXTERNSHEET:
                xti.extend(_read_externsheet(record, damage))
            elif kind == RT_LBL:
                raw_names.append(_read_lbl(record))
        except MalformedInput as error:
            damage.add(str(error))
    else:
        damage.add("the workbook globals substream has no EOF record")
    books = tuple(
        SupBook(
            number=number,
            offset=link.offset,
            kind=_final_kind(link.kind, link.ctab, link.path, link.names),
            ctab=link.ctab,
            virt_path=link.path,
            names=tuple(link.names),
        )
        for number, link in enumerate(links, start=1)
    )
    names = tuple(
        DefinedName(
            name=name,
            rgce=rgce,
            hidden=hidden,
            sheet=(sheets[itab - 1].name if 0 < itab <= len(sheets) else str(itab)) if itab else "",
        )
        for name, rgce, hidden, itab in raw_names
    )
    return Globals(tuple(sheets), books, tuple(xti), names, end)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


_LinkT = TypeVar("_LinkT")


def xti_link(
    xti: Sequence[tuple[int, int, int]], links: Sequence[_LinkT], ixti: int
) -> tuple[tuple[int, int, int], _LinkT] | None:
    """The Xti entry `ixti` and the supporting link it points at; None when either is out of
    range ([MS-XLS] 2.5.344, [MS-XLSB] 2.5.172)."""
    if not 0 <= ixti < len(xti):
        return None
    entry = xti[ixti]
    if not 0 <= entry[0] < len(links):
        return None
    return entry, links[entry[0]]


def own_sheets_prefix(sheets: Sequence[_Named], first: int, last: int) -> Resolved:
    """The prefix of a 3-D reference to this workbook's sheets `first` to `last`."""
    names = [_sheet_name(sheets, first), _sheet_name(sheets, last)]
    label = names[0] if first == last else f"{names[0]}:{names[1]}"
    return Resolved("'" + label.replace("'", "''") + "'!")


def _sheet_name(sheets: Sequence[_Named], index: int) -> str:
    return sheets[index].name if 0 <= index < len(sheets) else f"#{index}"


def defined_name_text(names: Sequence[DefinedName], index: int) -> str:
    """How the 1-based defined name `index` reads in a formula."""
    if 1 <= index <= len(names):
        return names[index - 1].name or f"#NAME{index}"
    return f"#NAME{index}"


class BiffLinks:
    """LinkResolver over a BIFF8 workbook's SupBooks, XTIs and defined names."""

    def __init__(self, book: Globals) -> None:
        self.book = book

    def _link(self, ixti: int) -> tuple[tuple[int, int, int], SupBook] | None:
        return xti_link(self.book.xti, self.book.links, ixti)

    def _dde_steps(self, token: str, ixti: int, link: SupBook) -> list[str]:
        steps = [
            f"{token}: EXTERNSHEET entry {ixti} points to SUPBOOK {link.number}, a DDE source "
            f"whose virtual path '{show(link.virt_path)}' splits at 0x03 into service "
            f"{link.service!r} and topic {link.topic!r}"
        ]
        if link.ctab:
            steps.append(f"SUPBOOK {link.number} has ctab {link.ctab}, not the 0 of a DDE source")
        return steps

    def external_name(self, ixti: int, iname: int) -> Resolved:
        found = self._link(ixti)
        if found is None:
            return Resolved(f"#REF!{iname}")
        _entry, link = found
        item = link.item(iname)
        if link.kind is LinkKind.DDE:
            steps = self._dde_steps("PtgNameX", ixti, link)
            if item is None:
                steps.append(f"it has no EXTERNNAME {iname}: the item is unknown")
            else:
                steps.append(f"EXTERNNAME {iname} of it is the item {item!r}")
            return Resolved(
                canonical_reference(link.service, link.topic, item),
                DdeTarget(link.service, link.topic, item, tuple(steps)),
            )
        if item is None and link.kind is LinkKind.SELF:
            return Resolved(self.defined_name(iname))
        name = item if item is not None else f"#NAME{iname}"
        if link.kind is LinkKind.EXTERNAL:
            return Resolved(f"[{link.number}]!{name}")
        return Resolved(name)

    def sheet_prefix(self, ixti: int) -> Resolved:
        found = self._link(ixti)
        if found is None:
            return Resolved("#REF!")
        (_book, first, last), link = found
        if link.kind is LinkKind.DDE:
            steps = self._dde_steps("3-D reference", ixti, link)
            return Resolved("", DdeTarget(link.service, link.topic, None, tuple(steps)))
        if link.kind is LinkKind.SAME_SHEET:
            return Resolved("!")
        if link.kind is LinkKind.SELF:
            return own_sheets_prefix(self.book.sheets, first, last)
        return Resolved(f"[{link.number}]!")

    def defined_name(self, index: int) -> str:
        return defined_name_text(self.book.names, index)


def dde_links(book: Globals) -> list[SupBook]:
    return [link for link in book.links if link.kind is LinkKind.DDE and link.service.strip()]


def items_text(names: Sequence[_Named]) -> str:
    """A DDE link's item names for DdeCall.item: the first MAX_LISTED_ITEMS, and how many more."""
    shown = [show(n.name) for n in names[:MAX_LISTED_ITEMS]]
    more = len(names) - len(shown)
    return ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def link_finding(
    link: SupBook, location: Location, host: HostApplication, config: ScanConfig
) -> Finding:
    """One DDE_LINK finding for a DDE SupBook, used by a formula or not."""
    call = DdeCall(
        application=link.service,
        topic=link.topic,
        item=items_text(link.names),
        keyword="SupBook",
        automatic=any(name.advise for name in link.names),
    )
    items = "; ".join(name.described for name in link.names[:MAX_LISTED_ITEMS])
    raw = f"SUPBOOK ctab={link.ctab} virtPath='{show(link.virt_path)}'" + (
        f"; EXTERNNAME items: {items}" if link.names else "; no EXTERNNAME items"
    )
    steps = [
        f"virtual path split at its 0x03 separator into service {link.service!r} and topic "
        f"{link.topic!r} ([MS-XLS] 2.5.277)"
    ]
    if link.ctab:
        steps.append(f"ctab is {link.ctab}, not the 0 of a DDE source; its items carry DDE flags")
    if any(name.advise for name in link.names):
        steps.append("an item asks for automatic updates (fWantAdvise)")
    evidence = Evidence(
        raw=raw, deobfuscated=canonical_reference(link.service, link.topic), steps=tuple(steps)
    )
    return dde_finding(call, Technique.DDE_LINK, evidence, location, host, config)


class _Allowance:
    """Bytes that sheet scans started from BoundSheet8.lbPlyPos alone may still walk."""

    def __init__(self, limit: int) -> None:
        self.left = limit


def _substreams(
    stream: bytes, start: int, damage: _Damage, check_time: Callable[[], None]
) -> list[int]:
    """Offsets of the BOF records that start a substream after the globals.

    Damage inside a substream is its sheet scan's to report; damage between substreams
    (a record running past the end after the last EOF) is reported here.
    """
    found: list[int] = []
    depth = 0
    local = _Damage()
    for record in _records(stream, start, local, check_time, merge=frozenset()):
        if record.type == RT_BOF:
            if depth == 0:
                found.append(record.offset)
            depth += 1
        elif record.type == RT_EOF and depth > 0:
            depth -= 1
    if depth == 0:
        for message in local.messages:
            if "over the BIFF8 maximum" not in message:
                damage.add(message)
    return found


def _formula_cell(record: _Record) -> tuple[str, bytes] | None:
    """(cell, rgce) of a FORMULA, SHRFMLA or ARRAY record; None when too short to hold one."""
    body = record.body
    if record.type == RT_FORMULA:
        if len(body) < 22:
            return None
        row, col = struct.unpack_from("<HH", body, 0)
        cce = struct.unpack_from("<H", body, 20)[0]
        at = 22
        where = cell_name(row, col)
    else:
        head = 10 if record.type == RT_SHRFMLA else 14
        if len(body) < head:
            return None
        first_row, last_row, first_col, last_col = struct.unpack_from("<HHBB", body, 0)
        cce = struct.unpack_from("<H", body, head - 2)[0]
        at = head
        where = f"{cell_name(first_row, first_col)}:{cell_name(last_row, last_col)}"
    if at + cce > len(body):
        raise MalformedInput(
            f"formula record 0x{record.type:04X} at offset {record.offset} declares {cce} "
            f"bytes of tokens but holds {len(body) - at}"
        )
    return where, body[at : at + cce]


def _scan_sheet(
    stream: bytes,
    start: int,
    sheet: Sheet,
    resolver: BiffLinks,
    has_dde: bool,
    base: Location,
    ctx: ScanContext,
    allowance: _Allowance | None,
    extra_steps: tuple[str, ...] = (),
) -> Iterator[ScanItem]:
    damage = _Damage()
    host = ctx.host or HostApplication.EXCEL
    depth = 0
    macro = sheet.kind is SheetKind.MACRO_SHEET
    ended = False
    for record in _records(stream, start, damage, ctx.check_time, merge=frozenset()):
        if allowance is not None:
            allowance.left -= 4 + len(record.body)
            if allowance.left < 0:
                raise LimitExceeded(
                    "sheet substreams found only through BoundSheet8.lbPlyPos: walk limit reached"
                )
        if record.type == RT_BOF:
            if depth == 0 and len(record.body) >= 4:
                macro = macro or struct.unpack_from("<H", record.body, 2)[0] == DT_MACRO_SHEET
            depth += 1
            continue
        if record.type == RT_EOF:
            depth -= 1
            if depth <= 0:
                ended = True
                break
            continue
        if record.type not in (RT_FORMULA, RT_SHRFMLA, RT_ARRAY):
            continue
        try:
            placed = _formula_cell(record)
        except MalformedInput as error:
            damage.add(str(error))
            continue
        if placed is None:
            damage.add(f"formula record 0x{record.type:04X} at offset {record.offset} is too short")
            continue
        where, rgce = placed
        if not worth_decompiling(rgce, has_dde):
            continue
        steps = list(extra_steps) + list(sheet.steps())
        if macro and sheet.kind is not SheetKind.MACRO_SHEET:
            steps.append(f"sheet '{sheet.name}' is an Excel 4.0 macro sheet (BOF)")
        if record.type == RT_SHRFMLA:
            steps.append(f"shared formula over {where} (SHRFMLA)")
        elif record.type == RT_ARRAY:
            steps.append(f"array formula over {where} (ARRAY)")
        decompiled = decompile(rgce, BIFF8_PTGS, resolver)
        location = base.at(f"{sheet.label}!{where}")
        yield from findings_for_decompiled(decompiled, location, tuple(steps), host, ctx.config)
    if not ended:
        damage.add(f"sheet '{sheet.name}' substream at offset {start} has no EOF record")
    if damage:
        raise damage.error()


def scan_workbook_stream(
    stream: bytes,
    ctx: ScanContext,
    *,
    stream_name: str = "Workbook",
    ignore_filepass: bool = False,
) -> Iterator[ScanItem]:
    """Findings of a BIFF8 workbook stream: its DDE links, and the formulas (cells, shared
    and array formulas, defined names) that use them or call INITIATE.

    `ignore_filepass` is for a stream that was already decrypted, whose FILEPASS record
    is still in place. Each sheet is a PartScan of its own; damage in the globals is raised
    after every readable finding was yielded.
    """
    damage = _Damage()
    book = read_globals(stream, damage, ctx.check_time, ignore_filepass)
    host = ctx.host or HostApplication.EXCEL
    base = ctx.location.child(stream_name)
    resolver = BiffLinks(book)
    links = dde_links(book)
    for link in links:
        yield link_finding(link, base.at(f"SupBook [{link.number}]"), host, ctx.config)
    for name in book.names:
        yield from findings_for_rgce(
            name.rgce, BIFF8_PTGS, resolver, bool(links), base.at(name.detail), (), host, ctx.config
        )

    by_offset = {sheet.offset: sheet for sheet in book.sheets}
    starts = _substreams(stream, book.end, damage, ctx.check_time)
    for position, start in enumerate(starts):
        sheet = by_offset.get(start)
        if sheet is None:
            label = f"substream {position + 1} (no BOUNDSHEET)"
            sheet = Sheet(label, SheetState.VISIBLE, SheetKind.WORKSHEET, start)
        run = partial(_scan_sheet, stream, start, sheet, resolver, bool(links), base, ctx, None)
        yield PartScan(base.at(f"sheet {sheet.label}"), run)
    # A sheet whose lbPlyPos points where the walk above found no substream (inside another
    # record's body): Excel reads it from there, so it is read from there too.
    seen = set(starts)
    allowance = _Allowance(2 * len(stream))
    for sheet in book.sheets:
        at = sheet.offset
        if at in seen or at + 4 > len(stream) or struct.unpack_from("<H", stream, at)[0] != RT_BOF:
            continue
        seen.add(at)
        step = (f"sheet '{sheet.name}' is read from its lbPlyPos {at}, inside another record",)
        run = partial(
            _scan_sheet, stream, at, sheet, resolver, bool(links), base, ctx, allowance, step
        )
        yield PartScan(base.at(f"sheet {sheet.label}"), run)
    if damage:
        raise damage.error()


def _workbook_head(data: bytes) -> bytes | None:
    """The start of the workbook stream of a compound file; None when it has none."""
    try:
        ole = open_cfb(data)
    except MalformedInput:
        return None
    try:
        for name in WORKBOOK_STREAMS:
            if has_stream(ole, name):
                try:
                    return read_stream(ole, name, ScanLimits().max_part_bytes)[:64]
                except LimitExceeded:
                    # Too large to look at cheaply: still a workbook; scan() reports the limit.
                    return b""
        return None
    except MalformedInput:
        return None
    finally:
        ole.close()


def starts_encrypted(stream: bytes) -> bool:
    """True when the record after the first BOF is FILEPASS (2.4.117): the stream is
    encrypted or obfuscated from there on."""
    if len(stream) < 4:
        return False
    first_type, size = struct.unpack_from("<HH", stream, 0)
    if first_type != RT_BOF and first_type not in OLD_BOFS:
        return False
    at = 4 + size
    return len(stream) >= at + 2 and stream[at : at + 2] == RT_FILEPASS.to_bytes(2, "little")


class ExcelBinaryFormat:
    """Excel 97-2003 .xls / .xlt / .xla (and any name: Excel opens them by content)."""

    format = FileFormat.XLS

    def identify(self, data: bytes, name: str) -> Confidence:
        if not is_cfb(data):
            return Confidence.NO
        head = _workbook_head(data)
        if head is None:
            return Confidence.NO
        if starts_encrypted(head):
            # Encrypted: the encrypted-Office handler's to open.
            return Confidence.NO
        return Confidence.YES

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        ole = open_cfb(data)
        try:
            stream_name = next((n for n in WORKBOOK_STREAMS if has_stream(ole, n)), None)
            if stream_name is None:
                raise UnsupportedInput("compound file has no Workbook stream")
            stream = read_stream(ole, stream_name, ctx.config.limits.max_part_bytes)
        finally:
            ole.close()
        ctx.budget.spend(len(stream), stream_name)
        # Embedded objects (MBD storages): Equation Editor objects and documents inside them,
        # each in a part of its own so a damaged workbook stream cannot hide them.
        yield from object_pool_scans(data, ctx, "MBD")
        yield from scan_workbook_stream(stream, ctx, stream_name=stream_name)
