"""The corpus and tests write compound files with the scanner's own writer (it also re-packs
OLE object storages found inside Outlook messages)."""

from scanner.formats.cfbwrite import SECTOR, write_cfb

__all__ = ["SECTOR", "write_cfb"]
