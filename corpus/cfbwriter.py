"""The corpus and tests write compound files with the scanner's own writer (it also re-packs
OLE object storages found inside Outlook messages)."""

import sys
from pathlib import Path

try:
    from scanner.formats.cfbwrite import SECTOR, write_cfb
except ModuleNotFoundError:  # run as a script from a source tree that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from scanner.formats.cfbwrite import SECTOR, write_cfb

__all__ = ["SECTOR", "write_cfb"]
