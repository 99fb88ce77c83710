"""The byte-level WordprocessingML reader and the field-evaluation shortcut, each checked
against the full path it stands in for (issue 8, performance).

- wordml.fast_extract_fields(data) must return exactly extract_fields(parse_xml(data)), or
  None (the caller then parses), and None whenever parse_xml refuses the part.
- fields._findings(..., exhaustive=False) (what findings_for_stories runs) must return
  exactly what evaluating every field returns.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest
from docx_builder import docx
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner import scan_bytes
from scanner.errors import MalformedInput
from scanner.fields import _findings, findings_for_stories
from scanner.formats import wordml
from scanner.formats.package import parse_xml
from scanner.formats.wordml import extract_fields, fast_extract_fields
from scanner.model import (
    FieldNode,
    FieldStory,
    HostApplication,
    Location,
    ScanConfig,
    ScanReport,
)

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "peers" / "oletools"
WORD_SUFFIXES = (".docx", ".docm", ".dotx", ".dotm")

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W_STRICT = "http://purl.oclc.org/ooxml/wordprocessingml/main"
W_2003 = "http://schemas.microsoft.com/office/word/2003/wordml"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
PAYLOAD = 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'


def reference(data: bytes, update_on_open: bool = False) -> tuple[FieldNode, ...] | None:
    """What the full path returns (None where parse_xml refuses the part)."""
    try:
        return extract_fields(parse_xml(data, "part.xml"), update_on_open)
    except MalformedInput:
        return None


def check(data: bytes, fast_expected: bool = True, update_on_open: bool = False) -> None:
    expected = reference(data, update_on_open)
    got = fast_extract_fields(data, update_on_open)
    if expected is None:
        assert got is None
    elif fast_expected:
        assert got == expected
    else:
        assert got is None or got == expected


def part(body: str, declarations: str = f'xmlns:w="{W}" xmlns:mc="{MC}"') -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f"<w:document {declarations}><w:body><w:p>{body}</w:p></w:body></w:document>"
    ).encode()


def mark(kind: str, extra: str = "") -> str:
    return f'<w:r><w:fldChar w:fldCharType="{kind}"{extra}/></w:r>'


def instr(text: str) -> str:
    return f'<w:r><w:instrText xml:space="preserve">{text}</w:instrText></w:r>'


def text(value: str) -> str:
    return f"<w:r><w:t>{value}</w:t></w:r>"


def field(*pieces: str, result: str = "") -> str:
    return mark("begin") + "".join(pieces) + mark("separate") + text(result) + mark("end")


# Hand-written parts: each must be read by the fast path (not handed back) and agree.

FAST_CASES = {
    "flat fields": field(instr(" PAGE "), result="1") + field(instr(PAYLOAD)),
    "split runs": field(*(instr(c) for c in PAYLOAD)),
    "begin and end only": mark("begin") + instr(PAYLOAD) + mark("end"),
    "dirty and update marks": field(instr("DDE cmd x"))
    + mark("begin", ' w:dirty="true"')
    + instr("DDE a b")
    + mark("end"),
    "entities and character references": field(
        instr("&#68;&#x44;E&#x41;UTO cmd &quot;/c calc.exe&quot; &lt;&gt;&amp;&apos;")
    ),
    "line ends and tabs": field(instr("DDEAUTO\r\ncmd\r\t'/c calc'\r")),
    "attribute with > and odd spacing": "<w:r><w:fldChar\n w:x=\"a>b\"  w:fldCharType = 'begin' ></w:fldChar></w:r>"
    + instr(PAYLOAD)
    + '<w:r><w:fldChar w:fldCharType="end"/>/>x="1"></w:r>',
    "mark with children": '<w:r><w:fldChar w:fldCharType="begin"><w:ffData><w:name w:val="x"/>'
    "</w:ffData></w:fldChar></w:r>" + instr(PAYLOAD) + mark("end"),
    "nested quote": mark("begin")
    + instr("DDEAUTO ")
    + field(instr("QUOTE 99 10"), instr("9 100"), result="ignored")
    + instr(' "/c calc.exe"')
    + mark("end"),
    "field result spanning paragraphs": mark("begin")
    + instr("TOC")
    + mark("separate")
    + text("a")
    + "</w:p><w:p>"
    + field(instr(PAYLOAD), result="in result")
    + text("b")
    + "</w:p><w:p>"
    + mark("end"),
    "wrappers": mark("begin")
    + '<w:ins w:id="1"><w:sdt><w:sdtContent><w:hyperlink w:anchor="x">'
    + instr("DDE")
    + "</w:hyperlink></w:sdtContent></w:sdt></w:ins>"
    + '<w:smartTag w:uri="u"><w:customXml w:element="e">'
    + instr("AUTO cmd x")
    + "</w:customXml></w:smartTag>"
    + '<w:moveFrom w:id="2">'
    + instr(" moved")
    + "</w:moveFrom>"
    + mark("end"),
    "deleted runs": mark("begin")
    + instr("DDEAUTO cmd ")
    + '<w:del w:id="3"><w:r><w:delInstrText>"/c notepad.exe"</w:delInstrText></w:r>'
    + instr("deleted")
    + '<w:del w:id="4">'
    + mark("end")
    + "</w:del>"
    + mark("separate")
    + "</w:del><w:del/>"
    + instr('"/c calc.exe"')
    + mark("end"),
    "simple fields nested": '<w:fldSimple w:instr=" DDE cmd &quot;/c calc.exe&quot; " w:dirty="1">'
    + text("a")
    + '<w:fldSimple w:instr="QUOTE x">'
    + text("b")
    + '<w:del><w:r><w:t>gone</w:t></w:r></w:del><w:fldSimple w:instr="PAGE"/>'
    + "</w:fldSimple>"
    + mark("begin")
    + instr("DDE x y")
    + text("c")
    + "</w:fldSimple>"
    + mark("separate")
    + text("d")
    + mark("end")
    + '<w:fldSimple w:instr="\tDDE\na b"/>',
    "flat simple fields": '<w:fldSimple w:instr="PAGE">'
    + text("1")
    + instr("ignored")
    + text("2")
    + '</w:fldSimple ><w:fldSimple w:instr="DDE cmd x"></w:fldSimple>'
    + text("between"),
    "simple field inside a complex result": mark("begin")
    + instr("IF 1 = 1")
    + mark("separate")
    + '<w:fldSimple w:instr="DDE cmd x">'
    + text("r")
    + "</w:fldSimple>"
    + mark("end"),
    "alternate content": '<mc:AlternateContent><mc:Choice Requires="wps">'
    + field(instr(PAYLOAD))
    + "</mc:Choice><mc:Fallback>"
    + field(instr("PAGE"))
    + '</mc:Fallback></mc:AlternateContent><mc:AlternateContent xmlns:zz="urn:zz">'
    + '<mc:Choice Requires="zz">'
    + field(instr("PAGE"))
    + "</mc:Choice>"
    + text("loose")
    + "<mc:Fallback>"
    + mark("begin")
    + instr("DDE a b")
    + '<mc:AlternateContent><mc:Fallback/><mc:Choice Requires="w14">'
    + instr("never")
    + "</mc:Choice></mc:AlternateContent>"
    + "</mc:Fallback><mc:Fallback>"
    + instr("second fallback")
    + "</mc:Fallback></mc:AlternateContent>"
    + mark("end")
    + "<mc:AlternateContent/>",
    "a field left open": mark("begin") + instr(PAYLOAD) + mark("separate") + text("x"),
    "stray marks": mark("end") + mark("separate") + mark("bogus") + text("t") + instr("i"),
    "other namespaces": '<o:fldChar xmlns:o="urn:o" o:fldCharType="begin"/><x:r xmlns:x="urn:x">'
    '<x:instrText>DDE</x:instrText><x:t>t</x:t><x:fldSimple x:instr="DDE a b"/></x:r>'
    + field(instr('<w:t xmlns:w="' + W + '">not text</w:t>DDE a b')),
    # Text after a tag that reads like an attribute (x="...">) must not extend the tag.
    "text that looks like attributes": '<w:r><w:fldChar w:fldCharType="begin" />x="</w:r>'
    + "<w:r><w:instrText>DDEAUTO cmd /c</w:instrText></w:r>"
    + '<w:r><w:t>"></w:t></w:r><w:r><w:fldChar w:fldCharType="end" />x="1"></w:r>',
    "empty runs": field("<w:r><w:instrText/></w:r><w:r><w:instrText></w:instrText></w:r>")
    + mark("begin")
    + instr("DDE")
    + mark("separate")
    + "<w:r><w:t/></w:r>"
    + mark("end"),
}


@pytest.mark.parametrize("name", sorted(FAST_CASES))
@pytest.mark.parametrize("update_on_open", [False, True])
def test_fast_reader_agrees_on_hand_written_parts(name: str, update_on_open: bool) -> None:
    check(part(FAST_CASES[name]), update_on_open=update_on_open)


def test_fast_reader_takes_any_prefix_and_the_default_namespace() -> None:
    body = field(instr(PAYLOAD), result="r") + '<w:fldSimple w:instr="DDE a b"/>'
    for namespace in (W, W_STRICT, W_2003):
        for declarations, rename in (
            (f'xmlns:w="{namespace}"', "w:"),
            (f'xmlns:ns0="{namespace}"', "ns0:"),
            (f'xmlns="{namespace}" xmlns:w="{namespace}"', ""),
            (f"xmlns:q='{namespace}' xmlns:w='{namespace}'", "q:"),
        ):
            renamed = body.replace("<w:", "<" + rename).replace("</w:", "</" + rename)
            data = (
                f"<{rename}document {declarations}><{rename}body>{renamed}</{rename}body>"
                f"</{rename}document>"
            ).encode()
            check(data)
    # The same URI under two prefixes, one of them declared again below the root.
    check(part(field(instr(PAYLOAD)), f'xmlns:w="{W}" xmlns:mc="{MC}" xmlns:x="{W}"'))
    check(part(f'<w:r xmlns:w="{W}">' + instr(PAYLOAD) + "</w:r>"))


def test_fast_reader_mixes_the_three_wordprocessingml_namespaces() -> None:
    # An attribute in several of them is read as _w_attr prefers (transitional, strict,
    # 2003); w:del is removed in the first two only.
    declarations = f'xmlns:w="{W}" xmlns:s="{W_STRICT}" xmlns:o="{W_2003}" xmlns:mc="{MC}"'
    body = (
        '<w:r><w:fldChar o:fldCharType="separate" s:fldCharType="end" w:fldCharType="begin"/>'
        '<s:fldChar o:fldCharType="begin" s:dirty="true" w:dirty="false"/></w:r>'
        + "<s:r><s:instrText>DDE </s:instrText><o:instrText>cmd </o:instrText></s:r>"
        + "<s:del>"
        + instr("gone")
        + "</s:del><o:del>"
        + instr("kept")
        + "</o:del>"
        + '<o:fldSimple s:instr="strict" o:instr="2003"><s:t>a</s:t><o:t>b</o:t></o:fldSimple>'
        + '<w:r><o:fldChar o:fldCharType="end" s:fldCharType="separate"/><o:t>r</o:t>'
        + '<w:fldChar o:fldCharType="end"/></w:r>'
    )
    data = part(body, declarations)
    expected = reference(data)
    assert expected is not None
    (outer,) = expected
    (inner,) = outer.instruction
    assert isinstance(inner, FieldNode) and inner.detail == "field 2"
    assert inner.instruction[:3] == ("DDE ", "cmd ", "kept")
    assert inner.result == "r" and not inner.dirty
    simple = FieldNode(("strict",), result="ab", detail="field 3 (fldSimple)", simple=True)
    assert inner.instruction[3] == simple
    assert fast_extract_fields(data) == expected


def test_fast_reader_keeps_a_deleted_root() -> None:
    data = f'<w:del xmlns:w="{W}">{field(instr(PAYLOAD))}</w:del>'.encode()
    expected = reference(data)
    assert expected and expected[0].instruction == (PAYLOAD,)
    assert fast_extract_fields(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        part("<!-- c -->" + field(instr(PAYLOAD))),
        part(field(instr("<![CDATA[DDEAUTO]]> cmd x"))),
        part("<?pi x?>" + field(instr(PAYLOAD))),
        part(field(instr(PAYLOAD))).replace(b"UTF-8", b"ISO-8859-1"),
        part(field(instr(PAYLOAD + "\u0085x"))).replace(b'version="1.0"', b'version="1.1"'),
        part(field(instr(PAYLOAD))).decode().encode("utf-16"),
        # w means another namespace below: the prefix has two meanings.
        part(field(instr(PAYLOAD)) + '<x xmlns:w="urn:other"><w:t>x</w:t></x>'),
        # A default namespace declared below the root.
        part(f'<r xmlns="{W}"><instrText>x</instrText></r>' + field(instr(PAYLOAD))),
        # Not well-formed, or a namespace error: parse_xml refuses them.
        part(field(instr(PAYLOAD)))[:-5],
        part(field(instr(PAYLOAD))).replace(b"<w:body>", b"<w:body><u:x/>"),
        part('<w:r w:a="1" w:a="2"/>'),
        part(field(instr("&bogus;"))),
        b"",
        b"not xml",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "DDE">]><d>&e;</d>',
    ],
)
def test_fast_reader_hands_back_what_it_cannot_be_sure_of(data: bytes) -> None:
    assert fast_extract_fields(data) is None
    check(data, fast_expected=False)


def test_fast_reader_checks_the_time() -> None:
    calls: list[int] = []
    body = field(instr(" PAGE ")) * 5000
    assert fast_extract_fields(part(body), check_time=lambda: calls.append(1))
    assert calls


# Documents generated with the obfuscations the fast path must survive. Hypothesis draws a
# seed and the document is built from a Random seeded with it: far cheaper per example than
# nested strategies (or st.randoms, one draw per call), so hundreds fit in the test budget.

OTHER = "urn:example:other"
TOKENS = [
    "DDEAUTO ",
    "DDE ",
    "ddeauto ",
    "QUOTE 68 68 69 ",
    "SET x ",
    "REF x ",
    "IF 1 = 1 ",
    "PAGE ",
    "cmd ",
    '"/c calc.exe" ',
    "c:\\\\windows\\\\system32\\\\cmd.exe ",
    " ",
]
ODD = [*"\"'\\{}&<>é“\u00a0\t\r\n/=;#x", "\r\n", "xmlns:w=", "]]>", '/>x="1">']
NAMED = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;"}
KINDS = ["begin", "separate", "end", "begin", "end", "bogus"]
DIRTIES = ["", "", "", "true", "1", "false", "on"]
WRAPPERS = [
    ("<{e}ins {a}id='1'>", "</{e}ins>"),
    ("<{e}sdt><{e}sdtContent>", "</{e}sdtContent></{e}sdt>"),
    ('<{e}hyperlink {a}anchor="x">', "</{e}hyperlink>"),
    ("<{e}smartTag>", "</{e}smartTag>"),
    ("<{e}moveFrom>", "</{e}moveFrom>"),
    ("<{e}del {a}id='2'>", "</{e}del>"),
    ("<{e}del>", "</{e}del>"),
    (f'<o:del xmlns:o="{OTHER}">', "</o:del>"),
]
REQUIRES = ["wps", "w14 wps", "zz", "wps zz", "", None]
# Leaves the fast path reads, and ones it must hand back (comment, CDATA, processing
# instruction, a WordprocessingML prefix bound to another namespace below the root).
PLAIN_LEAVES = [
    "<{e}r><{e}t/></{e}r>",
    "<{e}r><{e}instrText/></{e}r>",
    "<{e}del/>",
    f'<o:t xmlns:o="{OTHER}">DDE a b</o:t>',
    f'<o:fldChar xmlns:o="{OTHER}" o:fldCharType="begin"/>',
    f'<{{e}}r xmlns:o2="{OTHER}"><o2:instrText>DDE a b</o2:instrText></{{e}}r>',
]
UNREADABLE_LEAVES = [
    "<!-- c -->",
    "<{e}r><{e}instrText><![CDATA[DDE]]></{e}instrText></{e}r>",
    "<?pi x?>",
    f'<x xmlns:w="{OTHER}"><w:t>x</w:t></x>',
]
# (element prefix, attribute prefix, markup-compatibility prefix, namespace declarations).
NAMINGS = [
    ("w:", "w:", "mc:", 'xmlns:w="{ns}" xmlns:mc="{mc}"'),
    ("ns0:", "ns0:", "ns1:", "xmlns:ns0='{ns}' xmlns:ns1='{mc}'"),
    ("", "w:", "mc:", 'xmlns="{ns}" xmlns:w="{ns}" xmlns:mc="{mc}"'),
    ("w:", "x:", "mc:", 'xmlns:w="{ns}"\n xmlns:x="{ns}" xmlns:mc="{mc}" xmlns:zz="urn:zz"'),
]
HEADS = [
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n',
    "<?xml version='1.0'?>",
    "",
    "\ufeff",
    '\ufeff<?xml version="1.0" encoding="utf-8"?>',
]


seeds = st.integers(0, 2**64).map(random.Random)


def escape(value: str, forms: list[int], attribute: bool) -> str:
    """XML text or a double-quoted attribute value for `value`, each character written raw
    or as a reference (forms: 0 raw, 1 decimal, 2 hexadecimal, 3 named when there is one)."""
    out = []
    for index, char in enumerate(value):
        form = forms[index % len(forms)] if forms else 0
        must = char in "<&" or (attribute and char == '"') or (char == ">" and "]]" in value)
        if form == 0 and not must:
            out.append(char)
        elif form == 3 and char in NAMED:
            out.append(NAMED[char])
        elif form == 2:
            out.append(f"&#x{ord(char):X};")
        else:
            out.append(f"&#{ord(char)};")
    return "".join(out)


def fld_char(kind: str, dirty: str, style: int) -> str:
    attributes = f'{{a}}fldCharType="{kind}"' + (f' {{a}}dirty="{dirty}"' if dirty else "")
    if style == 1:
        return f"<{{e}}r><{{e}}fldChar {attributes}></{{e}}fldChar></{{e}}r>"
    if style == 2:
        single = attributes.replace('"', "'")
        return f'<{{e}}r><{{e}}fldChar\n\t{single} />/>x="1"></{{e}}r>'
    if style == 3:
        return f'<{{e}}r><{{e}}fldChar {{a}}x="a>b" {attributes}/></{{e}}r>'
    if style == 4:
        return f'<{{e}}r><{{e}}fldChar fldCharType="{kind}"/></{{e}}r>'
    return f"<{{e}}r><{{e}}fldChar {attributes}/></{{e}}r>"


class Generator:
    """One random WordprocessingML story part; `readable` is False once something the fast
    path must hand back was written."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.readable = True
        self.leaves = 0

    def string(self, attribute: bool) -> str:
        rng = self.rng
        value = "".join(
            rng.choice(TOKENS if rng.random() < 0.6 else ODD) for _ in range(rng.randint(0, 5))
        )
        forms = [rng.choice((0, 0, 1, 2, 3)) for _ in range(rng.randint(0, 6))]
        written = escape(value, forms, attribute)
        if "xmlns" in written:
            # The reader takes anything that looks like a namespace declaration, text
            # included, as one: here w would have two meanings, and it hands back.
            self.readable = False
        return written

    def leaf(self) -> str:
        rng = self.rng
        self.leaves += 1
        choice = rng.randrange(8)
        if choice == 0:
            return f'<{{e}}r><{{e}}t xml:space="preserve">{self.string(False)}</{{e}}t></{{e}}r>'
        if choice == 1:
            return f"<{{e}}r><{{e}}instrText>{self.string(False)}</{{e}}instrText></{{e}}r>"
        if choice == 2:
            return f"<{{e}}r><{{e}}delInstrText>{self.string(False)}</{{e}}delInstrText></{{e}}r>"
        if choice in (3, 4, 5):
            return fld_char(rng.choice(KINDS), rng.choice(DIRTIES), rng.randrange(5))
        if choice == 6 and rng.random() < 0.1:
            self.readable = False
            return rng.choice(UNREADABLE_LEAVES)
        return rng.choice(PLAIN_LEAVES)

    def items(self, depth: int) -> str:
        return "".join(self.item(depth) for _ in range(self.rng.randint(0, 4)))

    def item(self, depth: int) -> str:
        rng = self.rng
        if depth >= 4 or self.leaves > 40 or rng.random() < 0.5:
            return self.leaf()
        choice = rng.randrange(4)
        if choice == 0:
            dirty = rng.choice(DIRTIES)
            return (
                fld_char("begin", dirty, 0)
                + self.items(depth + 1)
                + fld_char("separate", "", 0)
                + self.items(depth + 1)
                + fld_char("end", "", 0)
            )
        if choice == 1:
            dirty = rng.choice(DIRTIES)
            attributes = f'{{a}}instr="{self.string(True)}"'
            attributes += f' {{a}}dirty="{dirty}"' if dirty else ""
            if rng.random() < 0.3:
                return f"<{{e}}fldSimple {attributes}/>"
            return f"<{{e}}fldSimple {attributes}>{self.items(depth + 1)}</{{e}}fldSimple>"
        if choice == 2:
            opening, closing = rng.choice(WRAPPERS)
            return opening + self.items(depth + 1) + closing
        xml = "<{m}AlternateContent>"
        for _ in range(rng.randint(0, 3)):
            requires = rng.choice(REQUIRES)
            required = "" if requires is None else f' Requires="{requires}"'
            xml += f"<{{m}}Choice{required}>{self.items(depth + 1)}</{{m}}Choice>"
        if rng.random() < 0.7:
            xml += f"<{{m}}Fallback>{self.items(depth + 1)}</{{m}}Fallback>"
        return xml + "</{m}AlternateContent>"

    def document(self) -> bytes:
        rng = self.rng
        element, attribute, mc, declarations = rng.choice(NAMINGS)
        namespace = rng.choice([W, W, W_STRICT, W_2003])
        body = "".join(f"<{{e}}p>{self.items(0)}</{{e}}p>" for _ in range(rng.randint(1, 4)))
        root = rng.choice(["document", "document", "hdr", "del"])
        xml = (
            f"<{{e}}{root} {declarations}><{{e}}body>{body}</{{e}}body></{{e}}{root}>".replace(
                "{ns}", namespace
            )
            .replace("{mc}", MC)
            .replace("{e}", element)
            .replace("{a}", attribute)
            .replace("{m}", mc)
        )
        data = (rng.choice(HEADS) + xml).encode()
        if rng.random() < 0.06:
            data = data[: rng.randrange(len(data) + 1)]  # cut short: parse_xml refuses it
        return data


@settings(max_examples=500, deadline=None)
@given(seeds, st.booleans())
def test_fast_reader_agrees_on_generated_documents(
    rng: random.Random, update_on_open: bool
) -> None:
    generator = Generator(rng)
    data = generator.document()
    expected = reference(data, update_on_open)
    got = fast_extract_fields(data, update_on_open)
    if expected is None:
        assert got is None
        return
    if generator.readable:
        assert got is not None
    assert got is None or got == expected
    story = [FieldStory(Location(("g.docx", "word/document.xml")), expected)]
    assert _findings(story, HostApplication.WORD, ScanConfig(), exhaustive=False) == (
        _findings(story, HostApplication.WORD, ScanConfig(), exhaustive=True)
    )


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300) | seeds.map(lambda rng: Generator(rng).document()[::2] + b"\xff<"))
def test_fast_reader_never_raises(data: bytes) -> None:
    check(data, fast_expected=False)


# Field trees for the evaluation shortcut: SET / REF / QUOTE / IF obfuscation, bookmarks set
# after they are read, nested and top-level DDE.

WORDS = [
    "DDEAUTO",
    "dde",
    "DDE",
    "SET",
    "set",
    "REF",
    "QUOTE",
    "IF",
    "PAGE",
    "b",
    "B",
    "cmd",
    '"/c calc.exe"',
    "68 68 69",
    "1 = 1",
    "\\a",
    " ",
    "\u00a0",
    "\t",
]


def field_tree(rng: random.Random, depth: int = 0) -> FieldNode:
    def words() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 5)))

    if depth >= 3 or rng.random() < 0.6:
        return FieldNode((words(),), result=rng.choice(["", "x", "cmd"]), dirty=rng.random() < 0.3)
    pieces = [
        words() if rng.random() < 0.5 else field_tree(rng, depth + 1)
        for _ in range(rng.randint(1, 4))
    ]
    return FieldNode(tuple(pieces), result=rng.choice(["", "y"]))


@settings(max_examples=200, deadline=None)
@given(seeds)
def test_evaluation_shortcut_agrees(rng: random.Random) -> None:
    fields = [
        FieldStory(
            Location(("t.docx", f"word/part{i}.xml")),
            tuple(field_tree(rng) for _ in range(rng.randint(0, 6))),
        )
        for i in range(rng.randint(1, 3))
    ]
    config = ScanConfig()
    expected = _findings(fields, HostApplication.WORD, config, exhaustive=True)
    assert _findings(fields, HostApplication.WORD, config, exhaustive=False) == expected
    assert findings_for_stories(fields, HostApplication.WORD, config) == expected


def test_evaluation_shortcut_keeps_set_fields_and_long_instructions() -> None:
    stories = [
        FieldStory(
            Location(("t.docx", "word/document.xml")),
            (
                FieldNode(("DDEAUTO ", FieldNode(("REF x",)), ' "/c calc.exe"')),
                FieldNode(("  set x cmd",)),
                FieldNode(("x",)),
                FieldNode(("DDE" + " " * (1 << 20), "x y")),
                # Cut after its first piece, this one reads DDE; whole, it would read DDEX.
                FieldNode((" " * (1 << 20) + "DDE", "X cmd")),
            ),
        )
    ]
    config = ScanConfig()
    got = _findings(stories, HostApplication.WORD, config, exhaustive=False)
    assert got == _findings(stories, HostApplication.WORD, config, exhaustive=True)
    assert [(f.location.detail, f.process.command_line) for f in got] == [
        ("field 1", "cmd /c calc.exe"),
        ("field 5", ""),
        ("field 6", ""),
    ]
    assert got[2].dde is not None and got[2].dde.keyword == "DDE"


# Every Word sample of the corpus and of oletools' test files: part by part, and whole scans
# with both shortcuts switched off.


def _word_samples() -> list[Path]:
    roots = [ROOT / "corpus" / "samples", ROOT / "corpus" / "adversarial", PEERS]
    return sorted(
        path
        for root in roots
        if root.is_dir()
        for path in root.rglob("*")
        if path.is_file() and path.suffix.lower() in WORD_SUFFIXES
    )


SAMPLES = _word_samples()


def _xml_parts(path: Path) -> list[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return []
    parts = []
    for info in infos:
        if info.filename.lower().endswith(".xml") and info.file_size < 32 << 20:
            try:
                parts.append((info.filename, archive.read(info)))
            except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError):
                continue
    return parts


def test_fast_reader_agrees_on_every_word_sample_part() -> None:
    assert len(SAMPLES) > 40
    read = handed_back = utf16 = 0
    for path in SAMPLES:
        for name, data in _xml_parts(path):
            expected = reference(data)
            got = fast_extract_fields(data)
            assert got is None or got == expected, (path, name)
            if expected is None:
                assert got is None, (path, name)
            elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
                # The fast reader reads UTF-8 only and hands UTF-16 parts to the parser.
                assert got is None, (path, name)
                utf16 += 1
            elif got is None:
                handed_back += 1
            else:
                read += 1
    # Every UTF-8 sample part parse_xml accepts is read by the fast path (the corpus alone
    # has 157 of them; oletools' files add more); the corpus's UTF-16 header parts are not.
    assert read >= 150 and handed_back == 0 and utf16 == 2


def _report(report: ScanReport) -> tuple[object, ...]:
    return report.findings, report.problems, report.verdict


# oletools' encrypted.* files are locked with passwords nobody knows: every scan spends its
# time in key derivation, never in a WordprocessingML part.
SCANNED = [path for path in SAMPLES if not path.name.startswith("encrypted.")]


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.name)
def test_scan_is_the_same_without_the_shortcuts(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = path.read_bytes()
    monkeypatch.setattr(wordml, "FAST_READER_MIN_BYTES", 0)  # small parts too
    fast = scan_bytes(data, path.name)

    def slow_fields(
        stories: list[FieldStory], host: HostApplication, config: ScanConfig
    ) -> list[object]:
        return list(_findings(stories, host, config, exhaustive=True))

    monkeypatch.setattr(wordml, "fast_extract_fields", lambda *args, **kwargs: None)
    monkeypatch.setattr(wordml, "findings_for_stories", slow_fields)
    assert _report(scan_bytes(data, path.name)) == _report(fast)


def test_benchmark_shaped_document_is_read_by_the_fast_path() -> None:
    ordinary = [
        (" PAGE ", "1"),
        (' DATE \\@ "yyyy-MM-dd" ', "2024-01-31"),
        (" REF Total \\h ", "t"),
    ]
    body = "".join(
        text(f"sentence {i}.") + (field(instr(ordinary[i % 3][0]), result=ordinary[i % 3][1]))
        for i in range(300)
    )
    data = part(body + field(instr(PAYLOAD), result="x"))
    fields = fast_extract_fields(data)
    assert fields is not None and fields == reference(data)
    assert len(fields) == 301 and fields[-1].instruction == (PAYLOAD,)
    assert fields[-1].detail == "field 301"


def test_only_parts_past_the_size_threshold_take_the_fast_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def spy(data: bytes, *args: object, **kwargs: object) -> tuple[FieldNode, ...] | None:
        calls.append(len(data))
        return fast_extract_fields(data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(wordml, "fast_extract_fields", spy)
    small = docx(field(instr(PAYLOAD)))
    padding = text("x" * 100) * (wordml.FAST_READER_MIN_BYTES // 100)
    large = docx(padding + field(instr(PAYLOAD)))
    for data, expected_calls in ((small, 0), (large, 1)):
        calls.clear()
        (finding,) = scan_bytes(data, "t.docx").findings
        assert finding.process.command_line == "c:\\windows\\system32\\cmd.exe /k calc.exe"
        assert finding.location.detail == "field 1"
        assert len(calls) == expected_calls
