/*
    Equation Editor 3.0 objects (EQNEDT32.EXE) and the MTEF record shapes of its exploits.

    The object is found in the decoded object data (rtf-object: an RTF \objdata after hex
    decoding; ole-stream: an OOXML embeddings part or another OLE storage), in an Equation
    Native stream, and in raw files where the bytes are stored as they are (a .doc ObjectPool,
    the hex of an RTF). Not Equation Editor: MathType (Equation.DSMT*, CLSID 0002CE03-...) and
    Office Math (OMML) equations.
*/

rule EquationEditor_Object
{
    meta:
        technique = "equation-editor"
        attack_id = "T1559.002"
        severity = "medium"
        description = "An Equation Editor 3.0 object (ProgID Equation.3 or CLSID 0002CE02-0000-0000-C000-000000000046): Windows starts EQNEDT32.EXE, removed from Office in January 2018 because documents exploited it"
        reference = "https://msrc.microsoft.com/update-guide/vulnerability/CVE-2017-11882"
        sample_positive = "equation/benign-equation3.rtf"
        sample_negative = "equation/mathtype-equation.rtf"

    strings:
        $progid = "Equation.3" ascii wide nocase fullword
        $clsid = { 02 CE 02 00 00 00 00 00 C0 00 00 00 00 00 00 46 }
        // Not searched as hex text in the raw RTF: the RTF parser hands every \objdata to
        // the rules decoded (rtf-object stream), which also defeats the blanks and junk
        // words attackers put between hex digits; two hex-text strings cost 20 ms per 10 MB
        // of RTF, a fifth of the whole rule set.

    condition:
        any of them
        and (stream_label == "rtf-object" or stream_label == "ole-stream"
             or stream_label == "equation-native" or stream_label == "raw-file"
             or stream_label == "embedded-file")
}

rule EquationEditor_MTEF_Font_Overflow
{
    meta:
        technique = "equation-editor"
        attack_id = "T1559.002 T1203"
        severity = "critical"
        description = "Equation Native data (28-byte EQNOLEFILEHDR, MTEF v3) with a FONT record whose name is longer than a font name can be (LF_FACESIZE is 32): the stack overflow of CVE-2017-11882 and CVE-2018-0802"
        reference = "https://msrc.microsoft.com/update-guide/vulnerability/CVE-2018-0802"
        sample_positive = "equation/cve-2017-11882-font.xlsx"
        sample_negative = "equation/benign-equation3.rtf"

    strings:
        // EQNOLEFILEHDR: cbHdr 0x1C, version 0x00020000, then cf, cbObject and 16 reserved
        // bytes; MTEF v3 (version 3, platform Windows, product Equation Editor, 3.x); then,
        // within the first records, FONT (tag 8), typeface, style and 33+ non-NUL name bytes.
        $font = /\x1c\x00\x00\x00\x02\x00.{22}\x03\x01\x01\x03.{0,64}\x08..[\x01-\xff]{33}/s

    condition:
        $font
        and (stream_label == "rtf-object" or stream_label == "ole-stream"
             or stream_label == "equation-native" or stream_label == "raw-file"
             or stream_label == "embedded-file")
}

rule EquationEditor_MTEF_Matrix_Overflow
{
    meta:
        technique = "equation-editor"
        attack_id = "T1559.002 T1203"
        severity = "critical"
        description = "Equation Native data (MTEF v3) with a MATRIX record of 32 or more rows and columns, whose partition bytes overflow EQNEDT32.EXE's stack buffer: the shape of CVE-2018-0798"
        reference = "https://msrc.microsoft.com/update-guide/vulnerability/CVE-2018-0798"
        sample_positive = "equation/cve-2018-0798-matrix.rtf"
        sample_negative = "equation/benign-equation3.rtf"

    strings:
        // MATRIX (tag 5), valign, h_just, v_just, then rows and cols.
        $matrix = /\x1c\x00\x00\x00\x02\x00.{22}\x03\x01\x01\x03.{0,64}\x05...[\x20-\xff][\x20-\xff]/s

    condition:
        $matrix
        and (stream_label == "rtf-object" or stream_label == "ole-stream"
             or stream_label == "equation-native" or stream_label == "raw-file"
             or stream_label == "embedded-file")
}
