from __future__ import annotations

import sys
from pathlib import Path

# Test helpers (tests/docx_builder.py) and the corpus writers (corpus/docwriter.py,
# cfbwriter.py, ...) are imported as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "corpus"))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OLETOOLS = SHARED / "peers" / "oletools"
