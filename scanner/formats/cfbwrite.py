"""A small, deterministic writer of Compound File Binary files ([MS-CFB], version 3).

Used by the scanner to re-pack an OLE object storage found inside another compound file
(an Outlook ATTACH_OLE attachment) as a file of its own, and by the corpus generator and the
tests to build legacy Office files (.doc, .xls) from their own format rules. Written from
[MS-CFB] alone, not from any reader:

- 512-byte sectors (version 3, 2.2 header), one FAT whose sectors are listed in the header
  DIFAT (no DIFAT sectors: files up to about 7 MB), the directory in its own sector chain;
- streams shorter than the mini-stream cutoff (4096 bytes) live in the mini stream (64-byte
  mini sectors, chained by the mini FAT), as [MS-CFB] 2.6.3 requires, the rest in sectors;
- each storage's children form a binary search tree ordered as 2.6.4 says (shorter names
  first, then by upper-cased UTF-16 code units); every node is black, which readers accept.

Paths use "/" between storage and stream names: {"WordDocument": ..., "ObjectPool/_1/x": ...}.
Everything is written in a fixed order with zero timestamps and CLSIDs, so the same input
gives the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
HEADER_DIFAT = 109
ENTRIES_PER_SECTOR = SECTOR // 128
IDS_PER_SECTOR = SECTOR // 4

FREESECT = 0xFFFFFFFF
ENDOFCHAIN = 0xFFFFFFFE
FATSECT = 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF

STORAGE = 1
STREAM = 2
ROOT = 5
BLACK = 1


@dataclass
class _Node:
    name: str
    kind: int
    data: bytes = b""
    children: dict[str, _Node] = field(default_factory=dict)
    sid: int = 0
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    start: int = ENDOFCHAIN


def _order(name: str) -> tuple[int, list[int]]:
    """[MS-CFB] 2.6.4: compare lengths first, then upper-cased UTF-16 code units."""
    units = struct.unpack(f"<{len(name.encode('utf-16-le')) // 2}H", name.encode("utf-16-le"))
    return (len(units), [ord(chr(u).upper()) if u < 0xD800 else u for u in units])


def _tree(streams: Mapping[str, bytes]) -> _Node:
    root = _Node("Root Entry", ROOT)
    for path, data in streams.items():
        parts = path.split("/")
        if any(not part or len(part.encode("utf-16-le")) > 62 for part in parts):
            raise ValueError(f"bad compound-file path {path!r}")
        node = root
        for part in parts[:-1]:
            # A storage has no sectors: its start sector is 0 ([MS-CFB] 2.6.3).
            node = node.children.setdefault(part, _Node(part, STORAGE, start=0))
            if node.kind != STORAGE:
                raise ValueError(f"{path!r} puts a stream inside a stream")
        if parts[-1] in node.children:
            raise ValueError(f"duplicate compound-file path {path!r}")
        node.children[parts[-1]] = _Node(parts[-1], STREAM, bytes(data))
    return root


def _number(root: _Node) -> list[_Node]:
    """Directory order: depth first, each storage's children in name order."""
    ordered: list[_Node] = []
    pending = [root]
    while pending:
        node = pending.pop()
        node.sid = len(ordered)
        ordered.append(node)
        kids = sorted(node.children.values(), key=lambda n: _order(n.name))
        pending.extend(reversed(kids))
    for node in ordered:
        kids = sorted(node.children.values(), key=lambda n: _order(n.name))
        node.child = _link(kids)
    return ordered


def _link(kids: list[_Node]) -> int:
    """Make a balanced search tree of sorted siblings; return the id of its root."""
    if not kids:
        return NOSTREAM
    middle = len(kids) // 2
    top = kids[middle]
    top.left = _link(kids[:middle])
    top.right = _link(kids[middle + 1 :])
    return top.sid


def _chain(fat: list[int], first: int, count: int) -> None:
    for index in range(first, first + count):
        fat[index] = index + 1 if index + 1 < first + count else ENDOFCHAIN


def _sectors(size: int, unit: int) -> int:
    return (size + unit - 1) // unit


def _entry(node: _Node, size: int) -> bytes:
    encoded = node.name.encode("utf-16-le") + b"\x00\x00"
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        encoded,
        len(encoded),
        node.kind,
        BLACK,
        node.left,
        node.right,
        node.child,
        b"\x00" * 16,
        0,
        0,
        0,
        node.start,
        size,
    )


def write_cfb(streams: Mapping[str, bytes]) -> bytes:
    """A compound file holding `streams` (path -> bytes), byte for byte reproducible."""
    root = _tree(streams)
    nodes = _number(root)
    small = [n for n in nodes if n.kind == STREAM and 0 < len(n.data) < MINI_CUTOFF]
    large = [n for n in nodes if n.kind == STREAM and len(n.data) >= MINI_CUTOFF]

    mini_fat: list[int] = []
    mini_stream = bytearray()
    for node in small:
        count = _sectors(len(node.data), MINI_SECTOR)
        node.start = len(mini_fat)
        mini_fat.extend([FREESECT] * count)
        _chain(mini_fat, node.start, count)
        mini_stream += node.data.ljust(count * MINI_SECTOR, b"\x00")

    # Sector layout: large streams, mini stream, mini FAT, directory, then the FAT itself.
    body: list[bytes] = []
    runs: list[tuple[int, int]] = []

    def place(data: bytes) -> int:
        first = sum(len(b) for b in body) // SECTOR
        count = _sectors(len(data), SECTOR)
        body.append(data.ljust(count * SECTOR, b"\x00"))
        runs.append((first, count))
        return first

    for node in large:
        node.start = place(node.data)
    root.start = place(bytes(mini_stream)) if mini_stream else ENDOFCHAIN
    mini_fat_bytes = struct.pack(f"<{len(mini_fat)}I", *mini_fat)
    if mini_fat:
        padding = (-len(mini_fat)) % IDS_PER_SECTOR
        mini_fat_bytes += struct.pack(f"<{padding}I", *([FREESECT] * padding))
    mini_fat_start = place(mini_fat_bytes) if mini_fat else ENDOFCHAIN
    mini_fat_count = _sectors(len(mini_fat_bytes), SECTOR)

    sizes = {id(n): len(n.data) for n in nodes if n.kind == STREAM}
    sizes[id(root)] = len(mini_stream)
    directory = b"".join(_entry(n, sizes.get(id(n), 0)) for n in nodes)
    unused = (-len(nodes)) % ENTRIES_PER_SECTOR
    directory += b"".join(
        struct.pack("<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM,
                    b"\x00" * 16, 0, 0, 0, 0, 0)
        for _ in range(unused)
    )  # fmt: skip
    directory_start = place(directory)

    data_sectors = sum(len(b) for b in body) // SECTOR
    fat_count = 1
    while data_sectors + fat_count > fat_count * IDS_PER_SECTOR:
        fat_count += 1
    if fat_count > HEADER_DIFAT:
        raise ValueError("compound file too large for a header-only DIFAT")
    fat = [FREESECT] * (fat_count * IDS_PER_SECTOR)
    for first, count in runs:
        _chain(fat, first, count)
    for index in range(data_sectors, data_sectors + fat_count):
        fat[index] = FATSECT
    difat = list(range(data_sectors, data_sectors + fat_count))
    difat += [FREESECT] * (HEADER_DIFAT - len(difat))

    header = SIGNATURE + struct.pack(
        "<16sHHHHH6sIIIIIIIII",
        b"\x00" * 16,
        0x003E,  # minor version
        0x0003,  # major version 3: 512-byte sectors
        0xFFFE,  # little-endian byte order mark
        9,  # sector shift: 2^9 = 512
        6,  # mini sector shift: 2^6 = 64
        b"\x00" * 6,
        0,  # number of directory sectors: MUST be 0 in version 3
        fat_count,
        directory_start,
        0,  # transaction signature
        MINI_CUTOFF,
        mini_fat_start,
        mini_fat_count,
        ENDOFCHAIN,  # first DIFAT sector: none
        0,
    )
    header += struct.pack(f"<{HEADER_DIFAT}I", *difat)
    assert len(header) == SECTOR
    return header + b"".join(body) + struct.pack(f"<{len(fat)}I", *fat)
