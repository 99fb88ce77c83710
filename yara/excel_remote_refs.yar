/*
    Excel DDE remote references and DDE links.

    A remote reference (application|topic!item, [MS-XLSX] and the Excel formula grammar)
    makes Excel start a DDE conversation, and start the application as a program when no
    server answers. The parsers hand every formula that holds one to these rules as a
    `formula` stream and every external DDE link (ddeLink, office:dde-source, SupBook) as a
    `dde-link` stream; the stored forms are matched in decompressed sheet parts and in
    single-file XML spreadsheets as well.
*/

rule Excel_DDE_Remote_Reference
{
    meta:
        technique = "dde-formula"
        attack_id = "T1559.002"
        severity = "high"
        description = "A spreadsheet formula with a DDE remote reference (application|'topic'!item), which Excel resolves by starting a DDE conversation"
        reference = "https://attack.mitre.org/techniques/T1559/002/"
        sample_positive = "excel/formula-concatenation.xlsx"
        sample_negative = "clean/ordinary-formulas.xlsx"

    strings:
        // Parsed formulas: app|'topic'!item (the form every DDE campaign uses). Stored OOXML
        // cells are not matched in the raw sheet part: every <f>/<formula> the parser reads
        // that can hold a reference reaches this rule as a formula stream, and a pattern
        // anchored on "<f" made YARA verify every formula of a large sheet (150 ms per 10 MB
        // of sheet XML, more than the parse itself).
        $ref = /\|'[^'\r\n]{0,1024}'!/
        // OpenDocument: the DDE() function in a cell formula.
        $ods_dde = /table:formula=["']of:=[^"'<]{0,1024}\bDDE\(/ nocase
        // Excel 2003 XML Spreadsheet: ss:Formula with a remote reference.
        $xml2003 = /ss:Formula="[^"<]{0,1024}\|[^"<]{0,1024}!/

    condition:
        ($ref and stream_label == "formula")
        or ($ods_dde and stream_label == "xml-part")
        or (($xml2003 or $ods_dde)
            and (stream_label == "raw-file" or stream_label == "embedded-file"))
}

rule Excel_DDE_Link
{
    meta:
        technique = "dde-link"
        attack_id = "T1559.002"
        severity = "high"
        description = "An external DDE link (SpreadsheetML ddeLink, OpenDocument dde-source or dde-connection-decl, Excel 2003 SupBook) that Excel or LibreOffice updates by starting a DDE conversation"
        reference = "https://attack.mitre.org/techniques/T1559/002/"
        sample_positive = "excel/ddelink-unused.xlsx"
        sample_negative = "excel/formula-cmd.xlsx"

    strings:
        $pair = /[A-Za-z0-9_.]{1,64}\|'/
        $ddelink = /<([A-Za-z0-9_]{1,16}:)?ddeLink[ \t\r\n][^>]{0,512}ddeService[ \t]{0,4}=/
        // One string per ODF element: as one alternation YARA searched with the atom "<"
        // alone (20 ms more per 10 MB of any input).
        $odf_connection = /<text:dde-connection-decl[ \t\r\n>]/
        $odf_source = /<office:dde-source[ \t\r\n>]/
        $odf_link = /<table:dde-link[ \t\r\n>]/
        $supbook = /<([A-Za-z0-9_]{1,16}:)?SupBook>[ \t\r\n]{0,64}<([A-Za-z0-9_]{1,16}:)?Path>[^<]{1,256}\|/

    condition:
        (stream_label == "dde-link" and ($pair or $ddelink or any of ($odf_*) or $supbook))
        or (($ddelink or any of ($odf_*) or $supbook)
            and (stream_label == "xml-part" or stream_label == "raw-file"
                 or stream_label == "embedded-file"))
}

rule Excel_DDE_Path_Traversal
{
    meta:
        technique = "dde-formula"
        attack_id = "T1559.002"
        severity = "critical"
        description = "A DDE remote reference whose topic climbs out of the application's folder (MSEXCEL|'\\..\\..\\Windows\\System32\\cmd.exe ...'): the loader lands on another program, a known evasion of application allow-lists"
        reference = "https://www.kb.cert.org/vuls/id/512136"
        sample_positive = "excel/formula-msexcel-traversal.xlsx"
        sample_negative = "excel/formula-cmd.xlsx"

    strings:
        $traversal = /[A-Za-z0-9_.]{1,64}[ \t]{0,8}\|[ \t]{0,8}'?[ \t]{0,8}[\\\/]{0,2}\.\.[\\\/]/

    condition:
        $traversal
        and (stream_label == "formula" or stream_label == "dde-link"
             or stream_label == "xml-part")
}
