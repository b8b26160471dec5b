"""Make the source of the ns-strip(1) man page from docs/ns-strip.rst.

    PYTHONPATH=src python3 docs/build_man.py docs/ns-strip.rst OUT.rst && rst2man OUT.rst ns-strip.1

docs/ns-strip.rst is the one hand-written command reference. What the code already says is
filled in here, never copied by hand: the version (``ns_strip.__version__``) and the table of
finding codes (``ns_strip.findings.CHECKS``), at the comment ``.. generated: finding codes``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ns_strip import __version__
from ns_strip.findings import CHECKS

MARKER = ".. generated: finding codes"
VERSION_FIELD = ":Version:"


def finding_table() -> str:
    rows = [(check.code, check.severity.value, _literal(check.title)) for check in CHECKS.values()]
    widths = [max(len(row[i]) for row in rows + [("code", "severity", "meaning")]) for i in range(3)]
    rule = "  ".join("=" * width for width in widths)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(("code", "severity", "meaning"), widths)).rstrip(), rule]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.append(rule)
    return "\n".join(lines)


def _literal(title: str) -> str:
    """File names in a title as literals; rst would read ``*-nspkg.pth`` as emphasis."""
    words = []
    for word in title.split(" "):
        core = word.rstrip(",:;")
        if any(mark in core for mark in ("*", "__", ".py", ".txt", ".pth")) and core:
            word = f"``{core}``{word[len(core):]}"
        words.append(word)
    return " ".join(words)


def build(source: str) -> str:
    if source.count(MARKER) != 1:
        raise SystemExit(f"build_man.py: {MARKER!r} must appear once in the source")
    lines = []
    for line in source.splitlines():
        if line.strip() == MARKER:
            lines.append(finding_table())
        elif line.startswith(VERSION_FIELD):
            lines.append(f"{VERSION_FIELD} ns-strip {__version__}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: build_man.py SOURCE.rst OUTPUT.rst", file=sys.stderr)
        return 2
    source, output = (Path(arg) for arg in argv)
    output.write_text(build(source.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
