"""From a DDE conversation to the process-creation event Windows would record.

When no DDE server answers to the application name, Word and Excel offer to start it and
pass the application name followed by the topic to the process loader (this is how
`DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"` and `=cmd|'/c calc.exe'!A0` run
cmd.exe). The image is then found the way CreateProcess parses an unquoted command line
(Win32 API, CreateProcessW, lpCommandLine remarks): a quoted first token is the module;
otherwise the loader tries each space-separated prefix in turn, so the first prefix that
ends in an executable extension wins, and a bare name gets ".exe" appended.
"""

from __future__ import annotations

import re

from scanner.model import DdeCall, HostApplication, ProcessPrediction

EXECUTABLE_EXTENSIONS = (".exe", ".com", ".bat", ".cmd", ".pif", ".scr")

# A topic that starts by climbing out of a directory is appended to the application's own
# path without a separator ("MSEXCEL|'\..\..\..\Windows\System32\cmd.exe /c calc'!''"):
# the traversal cancels the application name and lands on another program.
_TRAVERSAL_TOPIC = re.compile(r"^\s*[\\/]*\.\.[\\/]")


def _normalise_path(path: str) -> tuple[str, bool]:
    """Resolve `.` and `..` segments the way Windows does for a path string."""
    drive = ""
    rest = path.replace("/", "\\")
    match = re.match(r"^([A-Za-z]:)", rest)
    if match:
        drive, rest = match.group(1), rest[2:]
    rooted = rest.startswith("\\")
    segments: list[str] = []
    changed = False
    for segment in rest.split("\\"):
        if segment in ("", "."):
            changed = changed or segment == "."
            continue
        if segment == "..":
            changed = True
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    prefix = drive + ("\\" if rooted or drive else "")
    return prefix + "\\".join(segments), changed


def _first_module(command_line: str) -> str:
    """The module CreateProcess would load for a command line with no application name."""
    text = command_line.lstrip()
    if text.startswith('"'):
        end = text.find('"', 1)
        return text[1:end] if end != -1 else text[1:]
    words = text.split(" ")
    first = words[0]
    if not re.search(r"[\\/]", first) or first.lower().endswith(EXECUTABLE_EXTENSIONS):
        return first
    # A path with spaces in a folder name: the loader tries each longer prefix until one
    # names a file. A word that looks like a switch ends the search: it is an argument.
    for count in range(2, len(words) + 1):
        if re.match(r"[/-]", words[count - 1]):
            break
        candidate = " ".join(words[:count])
        if candidate.lower().endswith(EXECUTABLE_EXTENSIONS):
            return candidate
    return first


def _basename(path: str) -> str:
    return re.split(r"[\\/]", path)[-1]


def predict_process(call: DdeCall, host: HostApplication) -> ProcessPrediction:
    """The child process that starting this DDE conversation would create."""
    application = call.application.strip()
    topic = call.topic
    steps: list[str] = []
    traversal = bool(topic and _TRAVERSAL_TOPIC.match(topic))
    if traversal:
        command_line = application + topic.lstrip()
        steps.append("topic climbs out of the application's folder: appended to its name")
    elif topic:
        command_line = f"{application} {topic}"
    else:
        command_line = application
    module = _first_module(command_line)
    resolved, changed = _normalise_path(module) if re.search(r"[\\/]", module) else (module, False)
    if changed:
        traversal = True
        steps.append(f"path traversal resolved: {module} -> {resolved}")
    image = _basename(resolved)
    if image and "." not in image:
        image += ".exe"
        steps.append(f"no extension: the loader appends .exe ({image})")
    image_path = resolved if re.search(r"[\\/]", resolved) else ""
    return ProcessPrediction(
        parent=host.value,
        image=image,
        command_line=command_line,
        image_path=image_path,
        path_traversal=traversal,
        steps=tuple(steps),
    )
