"""Embedded-object wrappers for the corpus and the tests: OLE 1.0 objects as RTF `\\objdata`
carries them ([MS-OLEDS] 2.2.4) and Packager ("Package" class) native data."""

from __future__ import annotations

import struct


def packager_native(name: str, payload: bytes) -> bytes:
    """Packager native data carrying one file: signature 2, label, source path, two uint32
    fields, temporary path, then the file's size and bytes (no leading size field; an
    \\x01Ole10Native stream adds one)."""
    label = name.encode() + b"\x00"
    source = b"C:\\Users\\Public\\" + label
    temporary = b"C:\\Temp\\" + label
    return (
        struct.pack("<H", 2)
        + label
        + source
        + struct.pack("<II", 0x00030000, len(temporary))
        + temporary
        + struct.pack("<I", len(payload))
        + payload
    )


def ole1_embedded(class_name: str, native: bytes) -> bytes:
    """An embedded OLE 1.0 object: version, FormatID 2, class, topic and item names, native data."""

    def ansi(text: str) -> bytes:
        raw = text.encode() + b"\x00"
        return struct.pack("<I", len(raw)) + raw

    head = struct.pack("<II", 0x00000501, 2) + ansi(class_name) + ansi("") + ansi("")
    return head + struct.pack("<I", len(native)) + native


def rtf_objdata_rows(objdata: bytes) -> str:
    """The object's bytes as RTF writes them: hex digits in lines of 128."""
    hexed = objdata.hex()
    return "\n".join(hexed[i : i + 128] for i in range(0, len(hexed), 128))
