"""The embedded objects of a Word or Excel 97-2003 compound file, as parts of their own.

A .doc keeps its embedded OLE objects in ObjectPool storages, an .xls in MBD storages
([MS-OLEDS] 2.3). Each is scanned apart from the document's text or workbook stream, so a
damaged stream cannot hide an Equation Editor object or a document carried in one.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from scanner.equation import OBJECT_POOL_TRIGGER, ObjectContext, scan_object_bytes
from scanner.formats.base import PartScan, ScanContext
from scanner.formats.embedded import object_pool_documents


def object_pool_scans(data: bytes, ctx: ScanContext, pool: str) -> Iterator[PartScan]:
    """Two parts over the compound file `data`: its Equation Editor objects, then the
    documents in its object storages (those whose path starts with `pool`)."""
    yield PartScan(
        ctx.location,
        partial(
            scan_object_bytes,
            data,
            ctx,
            ctx.location,
            ObjectContext(trigger=OBJECT_POOL_TRIGGER),
        ),
    )
    yield PartScan(ctx.location, partial(object_pool_documents, data, ctx.location, ctx, pool))
