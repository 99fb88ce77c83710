"""Compressed RTF ([MS-OXRTFCP]): the form in which Outlook stores a message's RTF body
(PidTagRtfCompressed, 0x1009 in .msg files and in winmail.dat).

Written here rather than taken from the `compressed_rtf` package: the algorithm is a page of
code, and this version bounds its output, checks the deadline, and raises only
scanner.errors types, which a third-party decoder does not promise on hostile input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from scanner.errors import LimitExceeded, MalformedInput

# [MS-OXRTFCP] 2.1.3.1.1: COMPTYPE values.
COMPRESSED = 0x75465A4C  # "LZFu"
UNCOMPRESSED = 0x414C454D  # "MELA"
HEADER_SIZE = 16

# [MS-OXRTFCP] 2.1.2.1 and 3.1.1.3: the dictionary starts with this text (207 bytes, with a
# CR LF after \blue0) and the write position after it.
_INITIAL = (
    b"{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss "
    b"\\fmodern \\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier"
    b"{\\colortbl\\red0\\green0\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx"
)
_DICTIONARY_SIZE = 4096
_CHECK_EVERY = 4096


def decompress_rtf(data: bytes, limit: int, check_time: Callable[[], None] | None = None) -> bytes:
    """The RTF text of a compressed-RTF stream, at most `limit` bytes.

    The CRC is not enforced: a reader that refused a bad CRC would let an attacker hide the
    body from the scanner while a lenient client might still render it.
    """
    if len(data) < HEADER_SIZE:
        raise MalformedInput("compressed RTF shorter than its 16-byte header")
    compressed_size, raw_size, kind, _crc = struct.unpack_from("<IIII", data, 0)
    # COMPSIZE counts the bytes after itself; a short stream is read as far as it goes.
    end = min(len(data), compressed_size + 4)
    if kind == UNCOMPRESSED:
        body = data[HEADER_SIZE : HEADER_SIZE + raw_size]
        if len(body) > limit:
            raise LimitExceeded(f"RTF body over the part size limit of {limit} bytes")
        return body
    if kind != COMPRESSED:
        raise MalformedInput(f"unknown compressed RTF type 0x{kind:08X}")
    dictionary = bytearray(_DICTIONARY_SIZE)
    dictionary[: len(_INITIAL)] = _INITIAL
    write = len(_INITIAL)
    out = bytearray()
    position = HEADER_SIZE
    tokens = 0
    while position < end:
        control = data[position]
        position += 1
        for bit in range(8):
            if position >= end:
                break
            if not control & (1 << bit):
                byte = data[position]
                position += 1
                out.append(byte)
                dictionary[write] = byte
                write = (write + 1) % _DICTIONARY_SIZE
                continue
            if position + 2 > end:
                raise MalformedInput("compressed RTF ends inside a dictionary reference")
            reference = (data[position] << 8) | data[position + 1]
            position += 2
            offset = reference >> 4
            if offset == write:
                return bytes(out)
            for _ in range((reference & 0xF) + 2):
                byte = dictionary[offset]
                out.append(byte)
                dictionary[write] = byte
                write = (write + 1) % _DICTIONARY_SIZE
                offset = (offset + 1) % _DICTIONARY_SIZE
        if len(out) > limit:
            raise LimitExceeded(f"RTF body inflates past the part size limit of {limit} bytes")
        tokens += 1
        if check_time is not None and tokens % _CHECK_EVERY == 0:
            check_time()
    # No end marker: keep what was decoded, as readers that stop at COMPSIZE do.
    return bytes(out)
