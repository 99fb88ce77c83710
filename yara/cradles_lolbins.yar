/*
    Download cradles and living-off-the-land binaries in the commands DDE campaigns run.

    These rules read only what a parser already recognised as DDE or Equation Editor
    evidence (field-instruction, formula, dde-link and equation-object streams): a command
    line in prose is not a command. They name the technique a finding uses to fetch or run
    code beyond the DDE call itself.
*/

rule Cradle_PowerShell_Download
{
    meta:
        technique = "dde-field dde-formula dde-link equation-editor"
        attack_id = "T1559.002 T1059.001 T1105"
        severity = "critical"
        description = "A PowerShell download cradle or encoded command (Net.WebClient, DownloadString, Invoke-WebRequest, IEX, -EncodedCommand) in DDE evidence, as in the 2017-2018 DDE campaigns"
        reference = "https://attack.mitre.org/techniques/T1059/001/"
        sample_positive = "word/ddeauto-powershell-cradle.docx"
        sample_negative = "word/ddeauto-cmd.docx"

    strings:
        $download_string = "DownloadString" nocase
        $download_file = "DownloadFile" nocase
        $webclient = "Net.WebClient" nocase
        $invoke_web = "Invoke-WebRequest" nocase
        $bits = "Start-BitsTransfer" nocase
        $iex = /\b(IEX|Invoke-Expression)\b/ nocase
        $powershell = "powershell" nocase
        $encoded = /powershell(\.exe)?[^\r\n|]{0,256}[ \t]-e[a-z]{0,13}[ \t]{1,8}[A-Za-z0-9+\/]{16,4096}/ nocase

    condition:
        (stream_label == "field-instruction" or stream_label == "formula"
         or stream_label == "dde-link" or stream_label == "equation-object")
        and (any of ($download_string, $download_file, $webclient, $invoke_web, $bits)
             or $encoded or ($powershell and $iex))
}

rule LOLBin_Proxy_Execution
{
    meta:
        technique = "dde-field dde-formula dde-link equation-editor"
        attack_id = "T1559.002 T1218"
        severity = "high"
        description = "A signed Windows binary used to fetch or run code (mshta, rundll32 url.dll, regsvr32 /i:, certutil -urlcache, bitsadmin /transfer, hh.exe with a URL, msiexec from a URL, wmic process call create) in DDE evidence"
        reference = "https://attack.mitre.org/techniques/T1218/"
        sample_positive = "csv/rundll32-url.csv"
        sample_negative = "csv/formula-cmd.csv"

    strings:
        $mshta = /mshta(\.exe)?["']?[ \t]{1,8}["']?(https?:|vbscript:|javascript:)/ nocase
        $rundll32 = /rundll32(\.exe)?["']?[ \t|']{1,8}[^\r\n]{0,64}(url\.dll|ieframe\.dll|shdocvw\.dll|zipfldr\.dll|advpack\.dll|javascript:)/ nocase
        $regsvr32 = /regsvr32(\.exe)?[^\r\n]{0,128}\/i:[ \t]{0,4}["']?https?:/ nocase
        $scrobj = "scrobj.dll" nocase
        $certutil = /certutil(\.exe)?[^\r\n]{0,128}[\-\/](urlcache|decode|decodehex)\b/ nocase
        $bitsadmin = /bitsadmin(\.exe)?[^\r\n]{0,128}\/transfer/ nocase
        $hh = /\\hh\.exe["']?[ \t]{1,8}["']?https?:/ nocase
        $msiexec = /msiexec(\.exe)?[^\r\n]{0,64}\/(i|package)[ \t]{0,4}["']?https?:/ nocase
        $wmic = /wmic(\.exe)?[^\r\n]{0,64}process[ \t]{1,8}call[ \t]{1,8}create/ nocase

    condition:
        (stream_label == "field-instruction" or stream_label == "formula"
         or stream_label == "dde-link" or stream_label == "equation-object")
        and any of them
}
