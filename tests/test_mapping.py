"""Process prediction: from a DDE conversation to the image and command line."""

from __future__ import annotations

import pytest

from scanner.mapping import predict_process
from scanner.model import DdeCall, HostApplication


@pytest.mark.parametrize(
    ("application", "topic", "image", "command_line", "image_path"),
    [
        ("cmd", "/c calc.exe", "cmd.exe", "cmd /c calc.exe", ""),
        (
            "c:\\windows\\system32\\cmd.exe",
            "/k calc.exe",
            "cmd.exe",
            "c:\\windows\\system32\\cmd.exe /k calc.exe",
            "c:\\windows\\system32\\cmd.exe",
        ),
        (
            "c:\\windows\\system32\\cmd",
            "/k calc.exe",
            "cmd.exe",
            "c:\\windows\\system32\\cmd /k calc.exe",
            "c:\\windows\\system32\\cmd",
        ),
        (
            "MSEXCEL",
            "\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe",
            "cmd.exe",
            "MSEXCEL\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe",
            "Windows\\System32\\cmd.exe",
        ),
        (
            "cmd",
            "/k \\..\\..\\..\\Windows\\System32\\calc.exe",
            "cmd.exe",
            "cmd /k \\..\\..\\..\\Windows\\System32\\calc.exe",
            "",
        ),
        (
            '"C:\\Program Files\\Tool\\run.exe"',
            "x",
            "run.exe",
            '"C:\\Program Files\\Tool\\run.exe" x',
            "C:\\Program Files\\Tool\\run.exe",
        ),
        (
            "C:\\Program Files\\Tool\\run.exe -a",
            "x",
            "run.exe",
            "C:\\Program Files\\Tool\\run.exe -a x",
            "C:\\Program Files\\Tool\\run.exe",
        ),
        (
            "rundll32",
            "URL.dll,OpenURL calc.exe",
            "rundll32.exe",
            "rundll32 URL.dll,OpenURL calc.exe",
            "",
        ),
        ("calc", "", "calc.exe", "calc", ""),
    ],
)
def test_prediction(
    application: str, topic: str, image: str, command_line: str, image_path: str
) -> None:
    process = predict_process(DdeCall(application, topic), HostApplication.EXCEL)
    assert process.parent == "EXCEL.EXE"
    assert process.image == image
    assert process.command_line == command_line
    assert process.image_path == image_path


def test_path_traversal_is_resolved_and_recorded() -> None:
    process = predict_process(
        DdeCall(
            "C:\\Programs\\Microsoft\\Office\\MSWord\\..\\..\\..\\..\\windows\\system32\\"
            "WindowsPowerShell\\v1.0\\powershell.exe -NoP -W Hidden",
            "Microsoft Document.docx",
        ),
        HostApplication.WORD,
    )
    assert process.image == "powershell.exe"
    assert process.image_path == "C:\\windows\\system32\\WindowsPowerShell\\v1.0\\powershell.exe"
    assert process.path_traversal
    assert process.command_line.endswith("-W Hidden Microsoft Document.docx")
