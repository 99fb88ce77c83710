from __future__ import annotations

import sys
from pathlib import Path

# Test helpers (tests/docx_builder.py) are imported as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OLETOOLS = SHARED / "peers" / "oletools"
