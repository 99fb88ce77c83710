/*
    DDE formulas in text spreadsheets: CSV/TSV (RFC 4180 and Excel's variants) and SYLK.

    Excel evaluates a cell that starts with = + - or @ as a formula, so a DDE remote
    reference in a CSV or SYLK file runs a program when the file is opened. These rules read
    the stored text of the whole file (raw-file, or embedded-file for an attachment or an
    archive member); the parser's own formula findings carry the decoded forms (UTF-16,
    full-width operators) to excel_remote_refs.yar.
*/

rule CSV_DDE_Formula_Cell
{
    meta:
        technique = "dde-formula"
        attack_id = "T1559.002"
        severity = "high"
        description = "A CSV/TSV cell that starts with = + - or @ and holds a DDE remote reference (CSV injection): Excel runs the program when the file is opened and the user accepts its prompts"
        reference = "https://owasp.org/www-community/attacks/CSV_Injection"
        sample_positive = "csv/quoted-cell.csv"
        sample_negative = "clean/ordinary-values.csv"

    strings:
        // A cell start (start of file or line, or a delimiter), an optional opening quote
        // and blanks, the formula operator, then app|'topic'!item within the same cell.
        $cell = /(^|[\r\n,;\t|])"?[ \t]{0,16}[=+\-@][^\r\n,;\t"]{0,256}\|'[^'\r\n]{0,1024}'!/
        $cell_utf16 = /(^|[\r\n,;\t|])"?[ \t]{0,16}[=+\-@][^\r\n,;\t"]{0,256}\|'[^'\r\n]{0,1024}'!/ wide

    condition:
        ($cell or $cell_utf16)
        and (stream_label == "raw-file" or stream_label == "embedded-file")
        // Not a document format that merely quotes such text: RTF, compound file, ZIP, XML.
        and uint32(0) != 0x74725C7B
        and uint32(0) != 0xE011CFD0
        and uint32(0) != 0x04034B50
        and uint8(0) != 0x3C
}

rule SYLK_DDE_Formula
{
    meta:
        technique = "dde-formula"
        attack_id = "T1559.002"
        severity = "high"
        description = "A SYLK file (ID;P header) with a cell whose expression (;E) holds a DDE remote reference; Excel opens SYLK whatever the file is named"
        reference = "https://en.wikipedia.org/wiki/Symbolic_Link_(SYLK)"
        sample_positive = "csv/sylk-named.csv"
        sample_negative = "csv/formula-cmd.csv"

    strings:
        $header = "ID;P"
        // An E (expression) field holding a bar. `;;` is a literal semicolon inside a field
        // (SYLK: "any field containing the reserved semicolon character must have two of
        // them"), so a `;E` right after another `;` is text: K"a;;E.g. x|y" does not match.
        // Anchored on ";E" rather than on the record start "\nC;": every line of a sheet is
        // a C record, and verifying each one cost YARA 1 s per 10 MB.
        $cell = /[^;\r\n];E[^\r\n]{0,1024}\|/

    condition:
        $header at 0 and $cell
        and (stream_label == "raw-file" or stream_label == "embedded-file")
}
