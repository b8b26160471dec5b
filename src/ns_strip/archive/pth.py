"""The ``.pth`` audit: which lines of the ``.pth`` files in a site dir run code at start-up.

``site.py`` executes a ``.pth`` line that starts with ``import`` (followed by a space or a
tab); every other line is a directory to add to ``sys.path`` or a comment. Executable lines
are what the planned end of ``.pth`` code execution (Python 3.18, the date the issue gives)
breaks, so each is reported by kind:

- ``nspkg``: setuptools' namespace loader (``*-nspkg.pth``), read by :mod:`ns_strip.nspkg`;
  ``ns-strip strip`` removes these, since PEP 420 needs no loader;
- ``setuptools``: setuptools' own hooks (``distutils-precedence.pth``: ``_distutils_hack``);
- ``editable``: an editable install's finder (``__editable__…``);
- ``other``: any other code (coverage start-up, path games, a plug-in's hook).
"""

from __future__ import annotations

from typing import Any

from ..findings import Finding
from ..nspkg import is_nspkg_pth, namespace_of_line
from ..sources import Source

KINDS = ("nspkg", "setuptools", "editable", "other")


def line_kind(filename: str, line: str) -> tuple[str, str | None]:
    """(kind, namespace) of an executable ``.pth`` line."""
    namespace = namespace_of_line(line)
    if namespace is not None and (is_nspkg_pth(filename) or "sys.modules.setdefault" in line):
        return "nspkg", namespace
    if "_distutils_hack" in line or "import setuptools" in line:
        return "setuptools", None
    if "__editable__" in line:
        return "editable", None
    return "other", None


def audit_pth(source: Source) -> list[dict[str, Any]]:
    """Every executable line of the ``.pth`` files at the top of ``source``."""
    root = source.dirs.get("")
    if root is None:
        return []
    found = []
    for filename in root.files:
        if not filename.endswith(".pth") or filename in root.links:
            continue
        text = source.read_bytes(filename).decode("utf-8", errors="replace").lstrip("\ufeff")
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.startswith(("import ", "import\t")):
                continue  # site.py's own test: exactly these start an executable line
            kind, namespace = line_kind(filename, raw.strip())
            found.append({"path": filename, "line": number, "kind": kind, "namespace": namespace,
                          "text": raw.strip()[:200]})
    return found


def pth_findings(lines: list[dict[str, Any]]) -> list[Finding]:
    return [
        Finding("NS602", line["path"], f"line {line['line']} runs code at start-up ({line['kind']}): "
                f"executable .pth lines stop working in Python 3.18", (), {"line": line["line"], "kind": line["kind"]})
        for line in lines
    ]
