"""What a command hands back to the command line: findings, JSON data and human lines.

Commands never print; they fill a Report, and ``cli`` renders it as one JSON object or as one
line per action or finding, then turns its findings into the exit code.
"""

from __future__ import annotations

import enum

from .slotted import Slotted

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from typing import Any

    from .findings import Finding


class LineLevel(str, enum.Enum):
    ACTION = "action"  # something done (or, in a dry run, that would be done)
    NOTE = "note"  # a summary or an explanation; hidden by -q
    DETAIL = "detail"  # shown only with -v


class Report(Slotted):
    __slots__ = ("findings", "data", "lines", "exit_code")

    findings: list[Finding]
    data: dict[str, Any]
    lines: list[tuple[LineLevel, str]]
    # Set by commands whose outcome is not a finding (e.g. 'registry verify' drift).
    exit_code: int | None

    def __init__(self, findings: list[Finding] | None = None, data: dict[str, Any] | None = None,
                 lines: list[tuple[LineLevel, str]] | None = None, exit_code: int | None = None) -> None:
        self.findings = [] if findings is None else findings
        self.data = {} if data is None else data
        self.lines = [] if lines is None else lines
        self.exit_code = exit_code

    def action(self, text: str) -> None:
        self.lines.append((LineLevel.ACTION, text))

    def note(self, text: str) -> None:
        self.lines.append((LineLevel.NOTE, text))

    def detail(self, text: str) -> None:
        self.lines.append((LineLevel.DETAIL, text))

    def extend(self, other: Report) -> None:
        self.findings.extend(other.findings)
        self.lines.extend(other.lines)
        for key, value in other.data.items():
            if isinstance(value, list) and isinstance(self.data.get(key), list):
                self.data[key].extend(value)
            else:
                self.data[key] = value
