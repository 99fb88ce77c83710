"""The ordered registry of formats. identify() runs in this order; the first YES wins.

Adding a format is one module in scanner/formats/ and one line here. Order matters only
between formats that may both claim the same bytes: specific signatures first, the
permissive text formats (CSV) last.
"""

from __future__ import annotations

from scanner.formats.base import FormatHandler

REGISTRY: tuple[FormatHandler, ...] = ()
