"""Build small WordprocessingML packages by hand for tests (what python-docx cannot express)."""

from __future__ import annotations

import io
import zipfile

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
MAIN_CT = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"


def run_instr(text: str) -> str:
    return f'<w:r><w:instrText xml:space="preserve">{text}</w:instrText></w:r>'


def fld(kind: str, extra: str = "") -> str:
    return f'<w:r><w:fldChar w:fldCharType="{kind}"{extra}/></w:r>'


def complex_field(*instr: str, result: str = "") -> str:
    body = "".join(run_instr(i) for i in instr)
    return fld("begin") + body + fld("separate") + f"<w:r><w:t>{result}</w:t></w:r>" + fld("end")


def document(body: str, extra_ns: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W_NS}" xmlns:r="{R_NS}" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
        'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
        f"{extra_ns}><w:body><w:p>{body}</w:p></w:body></w:document>"
    )


def package(
    parts: dict[str, str | bytes],
    overrides: dict[str, str] | None = None,
    document_rels: str = "",
    main_content_type: str = MAIN_CT,
) -> bytes:
    overrides = {"/word/document.xml": main_content_type, **(overrides or {})}
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Default Extension="rtf" ContentType="application/rtf"/>'
        + "".join(
            f'<Override PartName="{name}" ContentType="{ct}"/>' for name, ct in overrides.items()
        )
        + "</Types>"
    )
    root_rels = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", root_rels)
        if document_rels:
            archive.writestr(
                "word/_rels/document.xml.rels",
                '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
                f'openxmlformats.org/package/2006/relationships">{document_rels}</Relationships>',
            )
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def docx(body: str, **kwargs: object) -> bytes:
    return package({"word/document.xml": document(body)}, **kwargs)  # type: ignore[arg-type]
