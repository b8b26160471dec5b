"""Audit of every ``.pth`` file of a site dir, for PEP 829.

``site.py`` adds a ``.pth`` file's path lines to ``sys.path`` and *executes* its lines that start
with ``import``. PEP 829 (accepted for Python 3.15) deprecates the executed lines: they keep
working through 3.17 and are ignored from 3.18 on. Each ``.pth`` file is sorted by what it holds:

- path lines only: NS131 (info), keeps working;
- setuptools namespace loaders (``*-nspkg.pth``): NS103 from the scan, stripped as before; on
  3.18 they do nothing, and PEP 420 finds the directories anyway;
- the finder of an editable install (``__editable__.*.pth`` importing ``__editable___*_finder``):
  NS132, that editable install stops being importable;
- any other import line (setuptools' ``distutils-precedence.pth``, coverage's subprocess hook,
  virtualenv's patches, …): NS133, that code stops running at start-up.

Lines are read as text and parsed, never executed. The target Python version, when known, says
whether the lines run there at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

from .errors import BadInputError
from .findings import Finding
from .nspkg import is_nspkg_pth, namespace_of_line
from .safeio import MAX_TEXT_BYTES, read_regular
from .sources import Source

PEP829_IGNORED_FROM = (3, 18)
_KNOWN_CODE = (
    ("_distutils_hack", "setuptools' override of distutils", "setuptools no longer replaces distutils at start-up"),
    ("coverage", "coverage's subprocess measurement", "subprocesses are no longer measured"),
    ("_virtualenv", "virtualenv's start-up patches", "virtualenv's patches no longer apply"),
)


def is_import_line(line: str) -> bool:
    return line.startswith(("import ", "import\t"))


# What an executed line is, for the census of ``ns-strip archive`` and for NS132/NS133.
LINE_KINDS = ("nspkg", "setuptools", "editable", "other")


def line_kind(filename: str, line: str) -> tuple[str, str | None]:
    """(kind, namespace) of an executed ``.pth`` line: setuptools' namespace loader, setuptools'
    own hook (distutils-precedence), an editable install's finder, or other code."""
    namespace = namespace_of_line(line)
    if namespace is not None and (is_nspkg_pth(filename) or "sys.modules.setdefault" in line):
        return "nspkg", namespace
    if "__editable__" in line or filename.startswith("__editable__"):
        return "editable", None
    if "_distutils_hack" in line or "import setuptools" in line:
        return "setuptools", None
    return "other", None


def audit_pth(path: str, data: bytes, version: tuple[int, int] | None = None,
              distributions: Iterable[str] = ()) -> list[Finding]:
    """Findings for one ``.pth`` file (``path`` as it is to be shown)."""
    name = os.path.basename(path)
    owners = tuple(distributions)
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    code_lines = []
    path_lines = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#") or not line.strip():
            continue
        if is_import_line(line):
            code_lines.append((number, line.strip()))
        else:
            path_lines += 1
    if not code_lines:
        return [Finding("NS131", path, f"{path_lines} path line(s), no code: keeps working under PEP 829",
                        owners, {"path_lines": path_lines})]
    if is_nspkg_pth(name) and all(namespace_of_line(line) for _, line in code_lines):
        return []  # setuptools namespace loaders: NS103/NS502 report them, strip removes them
    findings = []
    ignored = version is not None and version >= PEP829_IGNORED_FROM
    when = (f"ignored by the target Python {version[0]}.{version[1]} (PEP 829)" if ignored and version
            else "deprecated by PEP 829 from Python 3.15, ignored from 3.18")
    for number, line in code_lines:
        if line_kind(name, line)[0] == "editable":
            module = line.split()[1].rstrip(";") if len(line.split()) > 1 else "?"
            findings.append(Finding(
                "NS132", path,
                f"line {number} imports the editable-install finder {module}: {when}; then the editable install "
                "is not importable (reinstall it with a path-based editable mode, or not editable)",
                owners, {"line": number, "pep829": "ignored" if ignored else "deprecated"},
            ))
            continue
        what, effect = "code", "that code no longer runs at start-up"
        for marker, known, known_effect in _KNOWN_CODE:
            if marker in line:
                what, effect = known, known_effect
                break
        shown = line if len(line) <= 80 else line[:77] + "..."
        findings.append(Finding(
            "NS133", path, f"line {number} runs {what} at every start ({shown}): {when}; then {effect}",
            owners, {"line": number, "pep829": "ignored" if ignored else "deprecated"},
        ))
    return findings


def audit_source(source: Source, version: tuple[int, int] | None = None,
                 owners_of: Callable[[str], Sequence[str]] | None = None) -> list[Finding]:
    """Every ``.pth`` at the top of a scanned site dir or wheel (paths relative to it)."""
    root = source.dirs.get("")
    if root is None:
        return []
    findings = []
    for name in sorted(root.files):
        if not name.endswith(".pth") or name.startswith(".") or name in root.links:
            continue
        try:
            data = source.read_bytes(name, MAX_TEXT_BYTES)
        except BadInputError:
            continue  # too large, a FIFO, a link out: not read (scan reports what it can)
        findings.extend(audit_pth(name, data, version, owners_of(name) if owners_of else ()))
    return findings


def audit_directory(site: str, version: tuple[int, int] | None = None) -> list[Finding]:
    """Every ``.pth`` in a site dir of an interpreter (absolute paths), for 'doctor'."""
    try:
        names = sorted(os.listdir(site))
    except OSError:
        return []
    findings = []
    for name in names:
        if not name.endswith(".pth") or name.startswith("."):
            continue
        path = os.path.join(site, name)
        try:
            data = read_regular(path, MAX_TEXT_BYTES)
        except BadInputError:
            continue
        findings.extend(
            Finding(f.code, f.path, f.message, f.distributions, dict(f.details, site=site))
            for f in audit_pth(path, data, version)
        )
    return findings
