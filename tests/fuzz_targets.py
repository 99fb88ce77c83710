"""Fuzz harnesses for every parser entry point, shared by the short pass in CI
(tests/test_fuzz.py, Hypothesis) and the long developer run (tools/fuzz.py, atheris).

A harness is a name, seed files from corpus/samples (plus seeds written here where the
corpus has no file of that kind), a file name to scan under, and a target:

- `scan` harnesses run the whole scanner (`scan_bytes`) and check the property every
  input must meet: exactly one report, for this input, with no `internal` problem, no
  timeout and no dead worker (a crash or hang is found as one of those);
- `call` harnesses drive one parser function directly and check that it returns or
  raises only the typed errors of scanner.errors.

Adding a parser is one line in HARNESSES. A harness whose seed globs match nothing (the
format's samples are not generated yet) still runs, on its magic bytes.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scanner import walker
from scanner.api import scan_bytes
from scanner.errors import ScanError
from scanner.formats.base import ByteBudget, ScanContext
from scanner.isolation import BytesJob, IsolatedScanner
from scanner.model import Location, ProblemKind, ScanConfig, ScanLimits, ScanReport

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "corpus" / "samples"
sys.path.insert(0, str(REPO / "corpus"))

# Limits for fuzzing: small enough that a mutated seed never legitimately needs more, so
# that going past them is a finding (slow path, runaway allocation) and not noise.
FUZZ_LIMITS = ScanLimits(
    timeout_seconds=10.0,
    max_part_bytes=16 * 1024 * 1024,
    max_total_bytes=64 * 1024 * 1024,
    max_memory_bytes=1024 * 1024 * 1024,
)
FUZZ_CONFIG = ScanConfig(limits=FUZZ_LIMITS)
# A mutated small seed that takes this long is a performance bug worth a look.
SLOW_SECONDS = 5.0
MAX_INPUT = 256 * 1024


class PropertyFailure(AssertionError):
    """An input broke the harness property (the fuzzers save such inputs)."""


def _known_open() -> dict[str, tuple[str, ...]]:
    """Harness -> failure signatures of bugs found, reported and not fixed yet.

    corpus/adversarial/regressions.json marks them with `open` and `signature`; an input
    failing only that way is let through, so the rest of the harness keeps its value (and CI
    stays green) until the owner's fix lands and the entry loses its `open` key.
    """
    path = REPO / "corpus" / "adversarial" / "regressions.json"
    if not path.exists():
        return {}
    known: dict[str, tuple[str, ...]] = {}
    for entry in json.loads(path.read_text("utf-8"))["regressions"]:
        if "open" in entry and entry.get("signature"):
            known[entry["harness"]] = (*known.get(entry["harness"], ()), entry["signature"])
    return known


KNOWN_OPEN = _known_open()


def check_report(report: ScanReport, data: bytes, name: str) -> None:
    """The property of every scan: one report, for this input, nothing lost or crashed."""
    if report.path != name or report.size != len(data):
        raise PropertyFailure(f"report for {report.path!r} ({report.size} bytes), not this input")
    for problem in report.problems:
        if problem.kind in (ProblemKind.INTERNAL, ProblemKind.TIMEOUT):
            raise PropertyFailure(f"{problem.kind.value} problem: {problem.message}")
        if "ended abruptly" in problem.message:
            raise PropertyFailure(f"worker crashed: {problem.message}")
    if report.duration_ms > SLOW_SECONDS * 1000:
        raise PropertyFailure(f"scan took {report.duration_ms:.0f} ms")


def _context() -> ScanContext:
    return ScanContext(
        config=FUZZ_CONFIG,
        location=Location(("fuzz",)),
        host=None,
        depth=0,
        deadline=time.monotonic() + FUZZ_LIMITS.timeout_seconds,
        budget=ByteBudget(FUZZ_LIMITS.max_total_bytes),
    )


def _typed_only(call: Callable[[bytes], object]) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        with contextlib.suppress(ScanError):
            call(data)

    run.__name__ = getattr(call, "__name__", "call")
    return run


def _identify(data: bytes) -> None:
    for name in ("fuzz", "fuzz.docx", "fuzz.xls", "fuzz.csv", "fuzz.rtf", "fuzz.eml"):
        walker.identify(data, name)


def _rtf_tokens(data: bytes) -> None:
    from scanner.formats import rtf_tokens

    for _ in rtf_tokens.iter_tokens(data):
        pass
    for _ in rtf_tokens.RtfReader(data).events():
        pass


def _rtf_fields(data: bytes) -> None:
    from scanner.formats import rtf

    rtf.extract_field_stories(data, Location(("fuzz.rtf",)))


def _rtf_objects(data: bytes) -> None:
    from scanner import equation
    from scanner.formats import rtfobjects

    for obj in rtfobjects.extract_objects(data).objects:
        equation.parse_ole1(obj.data)


def _mtef(data: bytes) -> None:
    from scanner import equation

    equation.parse_mtef(data)
    equation.analyze_equation_data(data, "fuzz")
    equation.parse_ole1(data)
    equation.parse_compobj(data)


def _cfb(data: bytes) -> None:
    from scanner.formats import cfb

    ole = cfb.open_cfb(data)
    for name in cfb.stream_names(ole)[:64]:
        cfb.read_stream(ole, name, 1024 * 1024)


def _package(data: bytes) -> None:
    from scanner.formats.package import Package

    package = Package(data, _context())
    for name in package.names[:64]:
        package.read(name)


def _wordml(data: bytes) -> None:
    from scanner.formats import wordml
    from scanner.formats.package import parse_xml

    wordml.extract_fields(parse_xml(data, "fuzz.xml"), update_on_open=True)


def _wordml_fast(data: bytes) -> None:
    """The fast field reader never disagrees with the parser: when it answers, the parser
    reads the same fields (and does not refuse the part)."""
    from scanner.formats import wordml
    from scanner.formats.package import parse_xml

    fast = wordml.fast_extract_fields(data, update_on_open=True)
    if fast is None:
        return
    try:
        parsed = wordml.extract_fields(parse_xml(data, "fuzz.xml"), update_on_open=True)
    except ScanError as error:
        raise AssertionError(f"fast reader answered where the parser refused: {error}") from None
    if parsed != fast:
        raise AssertionError("fast reader and parser read different fields")


def _compressed_rtf(data: bytes) -> None:
    from scanner.formats.rtfcompressed import decompress_rtf

    decompress_rtf(data, 1024 * 1024)


@dataclass(frozen=True)
class Harness:
    name: str
    # Globs under corpus/samples; "zip:GLOB:MEMBER" takes one member out of each package.
    seeds: tuple[str, ...]
    # Bytes to fuzz behind when no seed exists (each format's magic).
    magic: tuple[bytes, ...] = ()
    # The file name the input is scanned under (identification uses it as a hint only).
    filename: str = "fuzz.bin"
    # None: a scan harness. Else the parser call to drive (typed errors allowed).
    call: Callable[[bytes], None] | None = None
    # Written seeds, for formats whose corpus files hold them only inside something else.
    made: Callable[[], list[bytes]] | None = None

    def seed_inputs(self) -> list[bytes]:
        found: list[bytes] = []
        for pattern in self.seeds:
            if pattern.startswith("zip:"):
                _, glob, member = pattern.split(":", 2)
                for path in sorted(SAMPLES.glob(glob)):
                    with zipfile.ZipFile(path) as archive:
                        if member in archive.namelist():
                            found.append(archive.read(member))
                continue
            found.extend(p.read_bytes() for p in sorted(SAMPLES.glob(pattern)) if p.is_file())
        if self.made is not None:
            found.extend(self.made())
        found.extend(self.magic)
        unique = list(dict.fromkeys(seed for seed in found if len(seed) <= MAX_INPUT))
        return unique or [b""]

    def run(self, data: bytes, pool: IsolatedScanner | None = None) -> None:
        """Run one input; raise PropertyFailure (or the parser's own exception) if it breaks
        the property. Scan harnesses go through `pool` when given (hard limits)."""
        if self.call is not None:
            self.call(data)
            return
        if pool is not None:
            report = pool.scan_one(BytesJob(data, self.filename))
        else:
            report = scan_bytes(data, self.filename, FUZZ_CONFIG)
        try:
            check_report(report, data, self.filename)
        except PropertyFailure as failure:
            if not any(signature in str(failure) for signature in KNOWN_OPEN.get(self.name, ())):
                raise


def _mtef_seeds() -> list[bytes]:
    import equationwriter

    return [
        equationwriter.benign_mtef(),
        equationwriter.cve_2017_11882_mtef(),
        equationwriter.cve_2018_0802_mtef(),
        equationwriter.cve_2018_0798_mtef(),
        equationwriter.mathtype_mtef(),
    ]


def _mail_seeds() -> list[bytes]:
    import mailwriter

    rtf = b"{\\rtf1{\\field{\\*\\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe calc}}}"
    return [
        mailwriter.winmail_dat("subject", rtf),
        mailwriter.compressed_rtf(rtf),
    ]


def _zip_seeds() -> list[bytes]:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.csv", b"=cmd|'/c calc.exe'!A0\n")
        archive.writestr("inner/b.rtf", b"{\\rtf1{\\field{\\*\\fldinst DDEAUTO cmd calc}}}")
    return [out.getvalue()]


def _gzip_seeds() -> list[bytes]:
    import gzip

    return [gzip.compress(b"=cmd|'/c calc.exe'!A0\n", mtime=0)]


CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"

HARNESSES: tuple[Harness, ...] = (
    Harness("identify", ("*/*",), call=_identify),
    Harness("docx", ("word/*.docx", "word/*.docm", "clean/*.docx"), (ZIP_MAGIC,), "fuzz.docx"),
    Harness("xlsx", ("excel/*.xls[xm]", "clean/*.xlsx"), (ZIP_MAGIC,), "fuzz.xlsx"),
    Harness("ooxml-other", ("equation/*.pptx",), (ZIP_MAGIC,), "fuzz.pptx"),
    Harness("opc-package", ("word/ddeauto-cmd.docx",), (ZIP_MAGIC,), call=_typed_only(_package)),
    Harness(
        "wordml",
        ("zip:word/ddeauto-*.docx:word/document.xml",),
        call=_typed_only(_wordml),
    ),
    Harness(
        "wordml-fast",
        ("zip:word/ddeauto-*.docx:word/document.xml",),
        call=_wordml_fast,
    ),
    Harness("rtf", ("rtf/*.rtf", "equation/*.rtf"), (b"{\\rtf1",), "fuzz.rtf"),
    Harness("rtf-tokens", ("rtf/*.rtf",), (b"{\\rtf1",), call=_typed_only(_rtf_tokens)),
    Harness("rtf-fields", ("rtf/*.rtf",), (b"{\\rtf1",), call=_typed_only(_rtf_fields)),
    Harness("rtf-objects", ("equation/*.rtf",), (b"{\\rtf1",), call=_typed_only(_rtf_objects)),
    Harness("mtef", (), call=_typed_only(_mtef), made=_mtef_seeds),
    Harness("cfb", ("doc/*.doc", "mail/*.msg"), (CFB_MAGIC,), call=_typed_only(_cfb)),
    Harness("doc", ("doc/*.doc",), (CFB_MAGIC,), "fuzz.doc"),
    Harness("xls", ("*/*.xls",), (CFB_MAGIC,), "fuzz.xls"),
    Harness("xlsb", ("*/*.xlsb",), (ZIP_MAGIC,), "fuzz.xlsb"),
    Harness("encrypted", ("encrypted/*",), (CFB_MAGIC,), "fuzz.docx"),
    Harness("csv", ("csv/*.csv", "csv/*.txt", "clean/*.csv"), (b"=",), "fuzz.csv"),
    Harness("sylk", ("csv/*.slk", "csv/sylk*"), (b"ID;P\r\n",), "fuzz.slk"),
    Harness("html", (), (b"<html>",), "fuzz.html", made=lambda: [_html_seed()]),
    Harness("officexml", ("xml/*",), (b"<?xml version='1.0'?>",), "fuzz.xml"),
    Harness("odf", ("odf/*",), (ZIP_MAGIC,), "fuzz.odt"),
    Harness("mime", ("mail/*.eml",), (b"From: a@example.invalid\r\n",), "fuzz.eml"),
    Harness("msg", ("mail/*.msg",), (CFB_MAGIC,), "fuzz.msg"),
    Harness("tnef", (), (b"\x78\x9f\x3e\x22",), "winmail.dat", made=lambda: _mail_seeds()[:1]),
    Harness(
        "compressed-rtf", (), call=_typed_only(_compressed_rtf), made=lambda: _mail_seeds()[1:]
    ),
    Harness("zip", (), (ZIP_MAGIC,), "fuzz.zip", made=_zip_seeds),
    Harness("gzip", (), (b"\x1f\x8b\x08",), "fuzz.gz", made=_gzip_seeds),
)

BY_NAME = {harness.name: harness for harness in HARNESSES}


def _html_seed() -> bytes:
    return (
        b"<html><body><p><!--[if supportFields]><span style='mso-element:field-begin'>"
        b'</span> DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/c calc.exe" '
        b"<span style='mso-element:field-end'></span><![endif]--></p></body></html>"
    )


INTERESTING_32 = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF)
OPS = 11


def _mutate_once(data: bytes, op: int, where: int, blob: bytes, others: Sequence[bytes]) -> bytes:
    size = len(data)
    pos = where % (size + 1)
    if op == 0 and size:
        index = where % size
        return data[:index] + bytes([data[index] ^ (1 << (where >> 8) % 8)]) + data[index + 1 :]
    if op == 1 and size:
        index = where % size
        value = (0x00, 0xFF, 0x7F, 0x80, 0x0A, 0x7B, 0x7D, 0x5C)[(where >> 8) % 8]
        return data[:index] + bytes([value]) + data[index + 1 :]
    if op == 2:
        value = INTERESTING_32[(where >> 8) % len(INTERESTING_32)]
        return data[:pos] + value.to_bytes(4, "little") + data[pos + 4 :]
    if op == 3:
        return data[:pos] + blob + data[pos:]
    if op == 4:
        return data[:pos] + data[pos + 1 + (where >> 16) % 256 :]
    if op == 5 and size:
        start = where % size
        chunk = data[start : start + 1 + (where >> 16) % 64]
        return data[:pos] + chunk + data[pos:]
    if op == 6:
        return data[:pos]
    if op == 7 and others:
        other = others[where % len(others)]
        cut = (where >> 12) % (len(other) + 1)
        return data[:pos] + other[cut:]
    if op == 8:
        return _mutate_zip_member(data, where, blob, others)
    if op == 9 and size:
        # Repetition builds deep nesting ({{{{, <a><a><a>, nested MIME) from a small seed.
        start = where % size
        chunk = data[start : start + 1 + (where >> 16) % 8]
        return data[:start] + chunk * (2 + (where >> 20) % 512) + data[start:]
    if op == 10:
        return data[:pos] + blob * (1 + (where >> 16) % 64) + data[pos:]
    return data + blob


def _mutate_zip_member(data: bytes, where: int, blob: bytes, others: Sequence[bytes]) -> bytes:
    """Mutate the content of one member and pack the archive again, so that mutations reach
    the XML and binary parts behind valid deflate streams and CRCs."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [(info, archive.read(info)) for info in archive.infolist()[:256]]
    except Exception:  # zlib.error, BadZipFile, ...: a byte-level mutation broke the archive
        return data + blob
    if not members:
        return data + blob
    chosen = where % len(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, (info, content) in enumerate(members):
            if index == chosen:
                op = (where >> 4) % 8
                content = _mutate_once(content, op if op != 8 else 3, where >> 3, blob, others)
            archive.writestr(info.filename, content)
    return out.getvalue()


def mutate(data: bytes, steps: Sequence[tuple[int, int, bytes]], others: Sequence[bytes]) -> bytes:
    for op, where, blob in steps:
        data = _mutate_once(data, op % OPS, where, blob, others)
        if len(data) > MAX_INPUT:
            data = data[:MAX_INPUT]
    return data


def random_steps(rng: random.Random) -> list[tuple[int, int, bytes]]:
    """Mutation steps for the random engine (tools/fuzz.py without atheris)."""
    return [
        (
            rng.randrange(OPS),
            rng.getrandbits(32),
            bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 16))),
        )
        for _ in range(rng.randrange(1, 6))
    ]
