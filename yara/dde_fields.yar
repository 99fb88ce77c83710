/*
    DDE and DDEAUTO Word fields, seen the way Word reads them.

    Word runs the instruction of a field (ECMA-376 Part 1, 17.16; RTF 1.9.1 \field), never
    its cached result. ddescan's parsers rebuild each instruction from its runs or groups
    (split runs, \'hh and \uN escapes, QUOTE char codes undone) and hand it to these rules
    as a `field-instruction` stream; the stored forms (w:instrText, w:fldSimple/@w:instr,
    RTF \fldinst, the 0x13 field-begin mark of a .doc) are matched in the decompressed
    parts and raw files too, so a field the parsers could not read is still reported.
*/

rule DDE_Field_Instruction
{
    meta:
        technique = "dde-field"
        attack_id = "T1559.002"
        severity = "high"
        description = "A Word field whose instruction is DDE or DDEAUTO: Word asks the named application for data and, when none answers, offers to start it as a program"
        reference = "https://attack.mitre.org/techniques/T1559/002/"
        sample_positive = "word/ddeauto-one-char-per-run.docx"
        sample_negative = "clean/page-field-with-dde-result.docx"

    strings:
        // A rebuilt instruction starts with the keyword (optionally after a brace of a
        // nested field's rendering).
        $instruction = /^[ \t\r\n{]{0,16}DDE(AUTO)?[ \t\r\n"]/ nocase
        // WordprocessingML (OOXML, Word 2003 XML, Flat OPC) is not matched as stored XML:
        // its parsers hand every field code to this rule rebuilt ($instruction), split runs
        // and entities undone; a pattern on "<w:instrText" made YARA verify every field run
        // of a document (45 ms per 10 MB of document.xml, more than reading its fields).
        // RTF: the keyword right after \fldinst.
        $rtf_fldinst = /\\fldinst[ \t\r\n]{1,16}DDE(AUTO)?[ \t\r\n"]/ nocase
        // Word 97-2003: 0x13 begins a field, its instruction follows (8-bit or UTF-16 text).
        $doc_field = /\x13[ \t]{0,8}DDE(AUTO)?[ \t"]/ nocase ascii wide

    condition:
        ($instruction and stream_label == "field-instruction")
        or ($rtf_fldinst and (stream_label == "raw-file" or stream_label == "embedded-file"))
        or ($doc_field
            and (stream_label == "raw-file" or stream_label == "embedded-file"
                 or stream_label == "ole-stream"))
}

rule DDE_Field_Quote_Char_Codes
{
    meta:
        technique = "dde-field"
        attack_id = "T1559.002"
        severity = "high"
        description = "A field code built from QUOTE character codes (QUOTE 99 109 100 = cmd), the trick that hides the DDE keyword or the program name from string signatures"
        reference = "https://www.mcafee.com/blogs/other-blogs/mcafee-labs/dropping-ddeauto-with-a-little-help-from-quote/"
        sample_positive = "word/ddeauto-quote-codes.docx"
        sample_negative = "clean/ordinary-fields.docx"

    strings:
        $quote_codes = /QUOTE[ \t\r\n]{1,16}([0-9]{1,3}[ \t\r\n]{1,16}){2,64}[0-9]{1,3}/ nocase

    condition:
        $quote_codes and stream_label == "field-instruction"
}
