"""Coded findings, in the manner of check-wheel-contents: every check has a code, a fixed
severity and a title; users select or ignore findings by code prefix."""

from __future__ import annotations

import enum

from .errors import UsageError
from .slotted import FrozenSlotted, set_field

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Check(FrozenSlotted):
    __slots__ = ("code", "severity", "title")

    code: str
    severity: Severity
    title: str

    def __init__(self, code: str, severity: Severity, title: str) -> None:
        set_field(self, "code", code)
        set_field(self, "severity", severity)
        set_field(self, "title", title)


_CHECKS = [
    Check("NS101", Severity.INFO, "pure pkgutil-style namespace __init__.py (strippable)"),
    Check("NS102", Severity.INFO, "pure pkg_resources-style namespace __init__.py (strippable)"),
    Check("NS103", Severity.INFO, "*-nspkg.pth file"),
    Check("NS104", Severity.INFO, "namespace_packages.txt"),
    Check("NS105", Severity.INFO, "namespace declared in metadata, no files shipped for it"),
    # real systems (issue 12): Cython declarations in a namespace.
    Check("NS106", Severity.WARNING, "namespace directory holds Cython .pxd files: cimport needs a package there"),
    Check("NS110", Severity.WARNING, "hybrid namespace __init__.py: declares a namespace and runs other code; kept"),
    Check("NS111", Severity.ERROR, "namespace-like __init__.py that cannot be parsed; kept"),
    Check("NS112", Severity.WARNING, "namespace __init__.py below a regular package; kept"),
    Check("NS113", Severity.WARNING, "symbolic link leaving the root; not followed, kept"),
    # Hostile text inputs, bounded parsing (issue 11, items 6 and 8).
    Check("NS114", Severity.WARNING, "__init__.py over the parse limits (size or tokens); not parsed, kept"),
    Check("NS115", Severity.WARNING, "*-nspkg.pth over the size limit; not parsed, kept"),
    Check("NS116", Severity.WARNING, "*-nspkg.pth holding lines other than setuptools namespace loaders; kept"),
    # Hostile wheels and special files (issue 11, items 1, 5, 7).
    Check("NS120", Severity.ERROR, "a wheel member or RECORD row inside .ns-strip-journal/; refused (exit 3)"),
    Check("NS121", Severity.WARNING, "a FIFO, socket or device where a file is read; not read, kept"),
    # real systems (issue 12): the target interpreter's whole sys.path, .pth files and PEP 829,
    # the opt-in import check.
    Check("NS130", Severity.ERROR, "stripping would hide a namespace portion behind a legacy declaration on another sys.path entry; kept"),
    Check("NS131", Severity.INFO, ".pth file of path entries only (keeps working under PEP 829)"),
    Check("NS132", Severity.WARNING, ".pth import line of an editable install: ignored from Python 3.18 (PEP 829)"),
    Check("NS133", Severity.WARNING, ".pth import line running other code: ignored from Python 3.18 (PEP 829)"),
    Check("NS135", Severity.ERROR, "a module that imported before the strip fails after it; nothing stripped"),
    Check("NS201", Severity.ERROR, "extension's exported init name does not match its filename"),
    Check("NS202", Severity.ERROR, "extension module takes over a namespace"),
    Check("NS203", Severity.ERROR, "extension's filename tag contradicts the binary"),
    Check("NS204", Severity.WARNING, "extension without an ABI tag"),
    Check("NS205", Severity.ERROR, "malformed or truncated binary"),
    # real systems (issue 12): ctypes libraries with an extension-like name.
    Check("NS210", Severity.INFO, "shared object with an extension tag that exports no module init: a library, not a module"),
    Check("NS301", Severity.ERROR, "the same path shipped by two distributions with different content"),
    Check("NS302", Severity.INFO, "the same path shipped by two distributions with identical content"),
    Check("NS303", Severity.ERROR, "a regular package shadows namespace portions of another distribution"),
    Check("NS304", Severity.ERROR, "PEP 794 import-name overlap between distributions"),
    Check("NS401", Severity.WARNING, "RECORD disagrees with the files"),
    Check("NS402", Severity.WARNING, "declared Import-Name / Import-Namespace disagrees with the contents"),
    Check("NS403", Severity.INFO, "runtime requirement on setuptools needed only for namespaces"),
    Check("NS404", Severity.ERROR, "a name listed as both Import-Name and Import-Namespace"),
    # real systems (issue 12): setuptools 82 removed pkg_resources.
    Check("NS405", Severity.WARNING, "uses pkg_resources beyond namespace declarations: needs a pkg_resources provider"),
    # 'doctor': what an interpreter's sys.path shows (issue 5).
    Check("NS501", Severity.ERROR, "a regular package or module on sys.path hides namespace portions in other entries"),
    Check("NS502", Severity.WARNING, "leftover *-nspkg.pth on sys.path"),
    Check("NS503", Severity.WARNING, "stale bytecode of a namespace __init__.py that no longer exists"),
    # real systems (issue 12): portions hidden behind legacy declarations of other entries.
    Check("NS504", Severity.ERROR, "a namespace portion on sys.path is hidden behind a legacy declaration in another entry"),
    # 'registry verify' and 'doctor': drift between the registry and the files. Errors, so that
    # verify exits 1 on drift and --ignore can still silence one kind (issue 5).
    Check("NS510", Severity.ERROR, "registry: an interrupted command left a namespace directory unsettled"),
    Check("NS511", Severity.ERROR, "registry: namespace directory of registered packages is missing"),
    Check("NS512", Severity.ERROR, "registry: namespace placeholder missing"),
    Check("NS513", Severity.ERROR, "registry: a placeholder the toolkit created was changed since"),
    Check("NS514", Severity.ERROR, "registry: placeholder (or its bytecode) no longer wanted is still there"),
    Check("NS515", Severity.ERROR, "registry: directory no package uses holds only leftovers"),
    Check("NS516", Severity.ERROR, "registry: registered package's portions are gone"),
    Check("NS517", Severity.ERROR, "registry: registered package's manifest is missing or changed"),
    # 'archive': indexing whole archives of wheels, sdists and .debs (issue 15).
    Check("NS601", Severity.WARNING, "archive: artifact refused (hostile, broken or unreadable); recorded with its reason"),
    Check("NS603", Severity.WARNING, "archive: a namespace whose portions mix legacy and PEP 420 styles"),
]

CHECKS: dict[str, Check] = {check.code: check for check in _CHECKS}


class Finding(FrozenSlotted):
    """One finding. ``path`` is POSIX and relative to the scanned site dir or wheel root."""

    __slots__ = ("code", "path", "message", "distributions", "details")

    code: str
    path: str
    message: str
    distributions: tuple[str, ...]
    details: dict[str, Any]

    def __init__(self, code: str, path: str, message: str, distributions: tuple[str, ...] = (),
                 details: dict[str, Any] | None = None) -> None:
        if code not in CHECKS:
            raise ValueError(f"unknown finding code {code}")
        set_field(self, "code", code)
        set_field(self, "path", path)
        set_field(self, "message", message)
        set_field(self, "distributions", distributions)
        set_field(self, "details", {} if details is None else details)

    @property
    def severity(self) -> Severity:
        return CHECKS[self.code].severity

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "severity": self.severity.value,
            "path": self.path,
            "message": self.message,
            "distribution": self.distributions[0] if self.distributions else None,
            "distributions": list(self.distributions),
        }
        data.update(self.details)
        return data

    def to_line(self) -> str:
        where = f" [{', '.join(self.distributions)}]" if self.distributions else ""
        return f"{self.code} {self.path}: {self.message}{where}"


def parse_code_list(text: str | None, option: str) -> tuple[str, ...]:
    """Split a ``--select``/``--ignore`` value into code prefixes, refusing ones that match no code."""
    if not text:
        return ()
    prefixes = tuple(part.strip().upper() for part in text.split(",") if part.strip())
    for prefix in prefixes:
        if not any(code.startswith(prefix) for code in CHECKS):
            raise UsageError(f"{option}: {prefix!r} matches no finding code (see 'ns-strip --help')")
    return prefixes


class FindingFilter(FrozenSlotted):
    """``--select`` keeps only matching codes (all when empty); ``--ignore`` then drops codes."""

    __slots__ = ("select", "ignore")

    select: Sequence[str]
    ignore: Sequence[str]

    def __init__(self, select: Sequence[str] = (), ignore: Sequence[str] = ()) -> None:
        set_field(self, "select", select)
        set_field(self, "ignore", ignore)

    def wants(self, code: str) -> bool:
        if self.select and not any(code.startswith(p) for p in self.select):
            return False
        return not any(code.startswith(p) for p in self.ignore)

    def apply(self, findings: Iterable[Finding]) -> list[Finding]:
        return [finding for finding in findings if self.wants(finding.code)]


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(finding.severity is Severity.ERROR for finding in findings)
