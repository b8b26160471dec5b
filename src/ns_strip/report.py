"""What a command hands back to the command line: findings, JSON data and human lines.

Commands never print; they fill a Report, and ``cli`` renders it as one JSON object or as one
line per action or finding, then turns its findings into the exit code.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .findings import Finding


class LineLevel(str, enum.Enum):
    ACTION = "action"  # something done (or, in a dry run, that would be done)
    NOTE = "note"  # a summary or an explanation; hidden by -q
    DETAIL = "detail"  # shown only with -v


@dataclasses.dataclass
class Report:
    findings: list[Finding] = dataclasses.field(default_factory=list)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    lines: list[tuple[LineLevel, str]] = dataclasses.field(default_factory=list)
    # Set by commands whose outcome is not a finding (e.g. 'registry verify' drift).
    exit_code: int | None = None

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
