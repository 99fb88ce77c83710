"""Typed errors. Parsers raise these; only the walker (scanner.walker) catches them."""

from __future__ import annotations


class ScanError(Exception):
    """Base of every error a parser may raise about its input."""


class MalformedInput(ScanError):
    """The bytes break the format's rules so badly that this part cannot be read."""


class UnsupportedInput(ScanError):
    """The bytes are of a kind (or variant) ddescan does not read."""


class EncryptedInput(ScanError):
    """The bytes are encrypted and no password given or found opens them (reported locked)."""


class LimitExceeded(ScanError):
    """A configured bound (size, count, depth, ratio) was reached; inspection stopped there."""


class ScanTimeout(BaseException):
    """The per-file time budget ran out.

    Derives from BaseException on purpose: a parser's `except Exception` must not be able
    to swallow it and keep burning time.
    """
