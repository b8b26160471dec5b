"""Detection: every namespace of every style in a source, the findings, what strip may remove.

The walk goes down from the root through namespace directories. Below a regular package a
legacy declaration is still found (NS112) but never stripped: there ``pkgutil.extend_path``
collects portions from every ``sys.path`` entry, which a PEP 420 directory inside a regular
package would not, so removing the file would change what imports.
"""

from __future__ import annotations

import functools

from .distributions import NAMESPACE_PACKAGES_TXT, Distribution, Owners, load_distributions
from .findings import Finding
from .initfile import InitClassification, Kind, Style, classify_init_at
from .nspkg import NspkgLine, is_nspkg_pth, parse_nspkg_pth
from .safeio import MAX_PTH_BYTES, FileTooLargeError
from .pthaudit import audit_source
from .slotted import FrozenSlotted, Slotted, set_field
from .sources import PYCACHE, Source, TreeSource, gc_paused, join, listed_items

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

INIT = "__init__.py"
# Files that make a directory hold Python code (a module or a compiled extension).
MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")

STYLE_CODES = {Style.PKGUTIL: "NS101", Style.PKG_RESOURCES: "NS102"}


class NamespaceEntry(Slotted):
    __slots__ = ("name", "style", "purity", "init", "distributions", "action")

    name: str
    style: str  # pep420 | pkgutil | pkg_resources | nspkg_pth | declared_only
    purity: str | None  # pure | hybrid | None
    init: str | None
    distributions: list[str]
    action: str  # strip | keep | none

    def __init__(self, name: str, style: str, purity: str | None, init: str | None, distributions: list[str],
                 action: str) -> None:
        self.name = name
        self.style = style
        self.purity = purity
        self.init = init
        self.distributions = distributions
        self.action = action

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "style": self.style, "purity": self.purity, "init": self.init,
                "distributions": list(self.distributions), "action": self.action}


class Candidate(FrozenSlotted):
    """A file that strip removes, and what to say when it does."""

    __slots__ = ("path", "kind", "description")

    path: str
    kind: str  # init | nspkg_pth | namespace_packages_txt
    description: str  # e.g. "pkg_resources-style namespace zope"

    def __init__(self, path: str, kind: str, description: str) -> None:
        set_field(self, "path", path)
        set_field(self, "kind", kind)
        set_field(self, "description", description)


class KeptFile(FrozenSlotted):
    __slots__ = ("path", "code", "reason")

    path: str
    code: str
    reason: str

    def __init__(self, path: str, code: str, reason: str) -> None:
        set_field(self, "path", path)
        set_field(self, "code", code)
        set_field(self, "reason", reason)

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "code": self.code, "reason": self.reason}


class ScanResult(Slotted):
    __slots__ = ("source", "distributions", "namespaces", "findings", "candidates", "kept", "owners", "missing")

    source: Source
    distributions: list[Distribution]
    namespaces: list[NamespaceEntry]
    findings: list[Finding]
    candidates: list[Candidate]
    kept: list[KeptFile]
    owners: Owners  # who lists a path, for the steps after the scan
    # RECORD (or installed-files.txt) path -> the files it lists that are not there (NS401)
    missing: dict[str, list[str]]

    def __init__(self, source: Source, distributions: list[Distribution], namespaces: list[NamespaceEntry],
                 findings: list[Finding], candidates: list[Candidate], kept: list[KeptFile], owners: Owners,
                 missing: dict[str, list[str]] | None = None) -> None:
        self.source = source
        self.distributions = distributions
        self.namespaces = namespaces
        self.findings = findings
        self.candidates = candidates
        self.kept = kept
        self.owners = owners
        self.missing = {} if missing is None else missing


def dotted(path: str) -> str:
    return path.replace("/", ".")


# The compiled forms of an __init__.py kept beside it (Python 2, or -B less runs).
_INIT_BESIDE = ("__init__.pyc", "__init__.pyo")


class _Scanner:
    def __init__(self, source: Source, records: str) -> None:
        self.source = source
        self.records = records
        self.distributions = load_distributions(source)
        self.owners = Owners(self.distributions)
        self.namespaces: dict[tuple[str, str, str | None], NamespaceEntry] = {}
        self.findings: list[Finding] = []
        self.candidates: list[Candidate] = []
        self.kept: list[KeptFile] = []
        # namespaces a *-nspkg.pth creates with no directory shipped: declared-only (NS105)
        self.loader_only: dict[str, tuple[str, list[str]]] = {}

    def run(self) -> ScanResult:
        self._scan_nspkg_pth()
        self._scan_declarations()
        self._scan_loader_only()
        self._scan_packages("", under_regular=False)
        self._scan_cython_declarations()
        self.findings.extend(audit_source(self.source, owners_of=self.owners.of_path))
        missing = self._missing_files() if isinstance(self.source, TreeSource) else {}
        namespaces = sorted(self.namespaces.values(), key=lambda n: (n.name, n.style, n.init or ""))
        return ScanResult(self.source, self.distributions, namespaces, self.findings, self.candidates, self.kept,
                          self.owners, missing)

    def _missing_files(self) -> dict[str, list[str]]:
        """NS401 for the RECORDs that list a namespace file already gone (a strip drops those
        rows); ``records="rewritten"`` adds those a strip would rewrite (they list a file it
        removes), ``records="all"`` checks every RECORD."""
        if self.records == "all":
            checked = self.distributions
        else:
            rewritten: set[int] = set()
            if self.records == "rewritten":
                rewritten = {id(dist) for dist in self.owners.distributions_of(c.path for c in self.candidates)}
            rewritten |= {id(dist) for dist in self._listing_gone_namespace_files()}
            checked = [dist for dist in self.distributions if dist.record is not None and id(dist) in rewritten]
        missing, findings = missing_record_files(self.source, checked)
        self.findings.extend(findings)
        return missing

    def _listing_gone_namespace_files(self) -> list[Distribution]:
        """The distributions whose RECORD names a legacy namespace file that is not there (what
        distutils-r1 or Debian leave; a strip drops those rows, see ``plan.namespace_leftovers``):
        the ``__init__`` of a package directory that has none now, a top-level ``*-nspkg.pth``,
        the distribution's own ``namespace_packages.txt``. Asked of the owners by path, so no
        RECORD's rows are parsed for it."""
        gone = []
        for directory, listing in listed_items(self.source.dirs):
            if directory and INIT not in listing.files and all(part.isidentifier() for part in directory.split("/")):
                gone.extend(join(directory, name) for name in (INIT, *_INIT_BESIDE) if name not in listing.files)
        found = self.owners.distributions_of(gone)
        root = self.source.dirs.get("")
        present = set(root.files) | root.links if root is not None else set()
        for dist in self.distributions:
            if dist.record is None:
                continue
            if any(is_nspkg_pth(path) and path not in present for path in dist.record.paths_named(("-nspkg.pth,",))):
                found.append(dist)
                continue
            metadata = self.source.dirs.get(dist.metadata_dir)
            if (metadata is not None and NAMESPACE_PACKAGES_TXT not in metadata.files
                    and dist.lists(join(dist.metadata_dir, NAMESPACE_PACKAGES_TXT))):
                found.append(dist)
        return found

    # -- helpers ---------------------------------------------------------------------------

    def _owners(self, path: str) -> list[str]:
        return self.owners.of_path(path)

    def _namespace(self, name: str, style: str, purity: str | None, init: str | None,
                   distributions: Iterable[str], action: str) -> None:
        key = (name, style, init)
        entry = self.namespaces.get(key)
        if entry is None:
            self.namespaces[key] = NamespaceEntry(name, style, purity, init, sorted(set(distributions)), action)
        else:
            entry.distributions = sorted(set(entry.distributions) | set(distributions))

    def _keep(self, path: str, code: str, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        self.kept.append(KeptFile(path, code, reason))
        self.findings.append(Finding(code, path, message, tuple(self._owners(path)), details or {}))

    def _holds_python(self, directory: str) -> bool:
        return directory in self._python_dirs

    @functools.cached_property
    def _python_dirs(self) -> set[str]:
        """Directories holding a module, or a package-named subdirectory that does.

        Worked out upwards from each directory with a module, without recursion: a hostile
        tree may be thousands of directories deep.
        """
        found: set[str] = set()
        # Bytecode caches are left out (and so not listed): the climb below stops at them.
        for directory, listing in listed_items(self.source.dirs):
            if not any(name.endswith(MODULE_SUFFIXES) for name in listing.files):
                continue
            while directory not in found:
                found.add(directory)
                parent, _, name = directory.rpartition("/")
                if not directory or name == PYCACHE or not name.isidentifier():
                    break
                directory = parent
        return found

    # -- setuptools' files -----------------------------------------------------------------

    def _scan_nspkg_pth(self) -> None:
        root = self.source.dirs.get("")
        if root is None:
            return
        parsed: dict[bytes, list[NspkgLine]] = {}
        for name in root.files:
            if not is_nspkg_pth(name):
                continue
            try:
                data = self.source.read_bytes(name, limit=MAX_PTH_BYTES)
            except FileTooLargeError as exc:
                self._keep(name, "NS115", f"not parsed: {exc.size} bytes, over the {exc.limit}-byte limit",
                           f"setuptools namespace loader of {exc.size} bytes, over the {exc.limit}-byte limit "
                           "for a .pth file; not parsed, kept")
                continue
            # Every portion of a namespace ships the same lines (30 zope.* packages, 30 copies):
            # each distinct file is parsed once.
            lines = parsed.get(data)
            if lines is None:
                lines = parsed[data] = parse_nspkg_pth(data)
            names = list(dict.fromkeys(line.namespace for line in lines if line.namespace))
            unreadable = [line.line for line in lines if not line.namespace]
            foreign = [line for line in lines if not line.loader]
            owners = self._owners(name)
            for namespace in names:
                if namespace.replace(".", "/") in self.source.dirs:
                    self._namespace(namespace, "nspkg_pth", None, None, owners, "keep" if foreign else "strip")
                else:
                    self.loader_only[namespace] = (name, owners)
            message = f"setuptools namespace loader for {', '.join(names) or 'no readable namespace'}"
            if unreadable:
                message += f" (lines {', '.join(map(str, unreadable))} not understood)"
            message += "; its import lines run at every start until Python 3.17, ignored from 3.18 (PEP 829)"
            self.findings.append(Finding("NS103", name, message, tuple(owners), {"namespaces": names}))
            if foreign:
                # Not only what setuptools writes: other code or a path entry would be lost.
                shown = "; ".join(f"line {line.line}: {line.text}" for line in foreign[:3])
                more = f"; and {len(foreign) - 3} more" if len(foreign) > 3 else ""
                self._keep(name, "NS116", f"holds lines that are not setuptools namespace loaders ({shown}{more})",
                           f"holds lines that are not setuptools namespace loaders; kept ({shown}{more})",
                           {"lines": [line.line for line in foreign]})
                continue
            described = ", ".join(names) if names else "(unreadable)"
            self.candidates.append(Candidate(name, "nspkg_pth", f"pkg_resources-style namespace {described}"))

    def _scan_declarations(self) -> None:
        for dist in self.distributions:
            txt = dist.namespace_packages_txt
            if txt is None:
                continue
            declared = dist.declared_namespaces or []
            self.findings.append(Finding(
                "NS104", txt,
                f"declares {', '.join(declared)}" if declared else "declares no namespace (empty file)",
                (dist.name,), {"namespaces": declared},
            ))
            described = (f"declaration of namespace{'s' if len(declared) > 1 else ''} {', '.join(declared)}"
                         if declared else f"empty namespace declaration of {dist.name}")
            self.candidates.append(Candidate(txt, "namespace_packages_txt", described))
            for namespace in declared:
                if not self._ships_below(dist, namespace.replace(".", "/")):
                    self.loader_only.pop(namespace, None)
                    self._namespace(namespace, "declared_only", None, None, [dist.name], "strip")
                    self.findings.append(Finding(
                        "NS105", txt, f"namespace {namespace} is declared but no file is shipped for it",
                        (dist.name,), {"namespace": namespace},
                    ))

    def _scan_loader_only(self) -> None:
        """A namespace only a *-nspkg.pth line creates, with no directory of it here and not
        declared in a namespace_packages.txt either (those are NS105 already)."""
        for namespace, (pth, owners) in sorted(self.loader_only.items()):
            self._namespace(namespace, "declared_only", None, None, owners, "strip")
            self.findings.append(Finding(
                "NS105", pth, f"namespace {namespace} is created by this loader but no file is shipped for it",
                tuple(owners), {"namespace": namespace},
            ))

    def _scan_cython_declarations(self) -> None:
        """NS106: Cython resolves ``cimport a.b`` through packages (an ``__init__.py`` or
        ``__init__.pxd`` at every level); it cannot cimport through a PEP 420 namespace, which
        is what a namespace directory is, or becomes once stripped."""
        for entry in self.namespaces.values():
            if entry.action == "keep" or entry.style == "declared_only":
                continue
            directory = entry.name.replace(".", "/")
            listing = self.source.dirs.get(directory)
            if listing is None or "__init__.pxd" in listing.files:
                continue
            pxd = self._pxd_below(directory)
            if pxd and not any(f.code == "NS106" and f.details.get("namespace") == entry.name for f in self.findings):
                shown = ", ".join(pxd[:3]) + (f" and {len(pxd) - 3} more" if len(pxd) > 3 else "")
                self.findings.append(Finding(
                    "NS106", directory,
                    f"namespace {entry.name} holds Cython declarations ({shown}); Cython cannot cimport them "
                    "through a PEP 420 namespace: the files are kept, but cimport needs an __init__.pxd here",
                    tuple(entry.distributions), {"namespace": entry.name, "pxd": pxd},
                ))

    def _pxd_below(self, directory: str) -> list[str]:
        found = []
        pending = [directory]
        while pending:
            current = pending.pop()
            listing = self.source.dirs.get(current)
            if listing is None:
                continue
            found.extend(join(current, name) for name in listing.files if name.endswith(".pxd"))
            pending.extend(join(current, sub) for sub in listing.subdirs if sub != PYCACHE)
        return sorted(found)

    def _ships_below(self, dist: Distribution, directory: str) -> bool:
        if dist.record_path is None:
            return directory in self.source.dirs
        return dist.lists_below(directory)

    # -- the package tree ------------------------------------------------------------------

    def _scan_packages(self, directory: str, under_regular: bool) -> None:
        # Depth first in sorted order, as a recursion would go, with an explicit stack: a
        # hostile tree may be thousands of directories deep.
        pending = [(directory, under_regular)]
        while pending:
            directory, under_regular = pending.pop()
            if directory:
                under_regular = self._scan_package(directory, under_regular)
            below = [
                (join(directory, sub), under_regular)
                for sub in self.source.dirs[directory].subdirs
                # not metadata (foo-1.0.dist-info), data (foo.data) or bytecode dirs
                if sub != PYCACHE and sub.isidentifier() and self._holds_python(join(directory, sub))
            ]
            pending.extend(reversed(below))

    def _scan_package(self, path: str, under_regular: bool) -> bool:
        """Classify one package directory; return whether what lies below counts as regular."""
        if INIT in self.source.dirs[path].files:
            return self._scan_init(path, join(path, INIT), under_regular)
        if not under_regular:
            self._namespace(dotted(path), "pep420", None, None, self.owners.of_directory(path), "none")
        return under_regular

    def _scan_init(self, package: str, init: str, under_regular: bool) -> bool:
        """Classify one ``__init__.py``; return whether the package below counts as regular."""
        name = dotted(package)
        if self.source.is_link(init) and self.source.link_leaves_root(init):
            self._keep(init, "NS113", "symbolic link leaving the root",
                       f"{INIT} of {name} is a symbolic link leaving the root; not read, kept")
            return True
        found = classify_init_at(self.source, init)
        if found.kind is Kind.REGULAR:
            return True
        if found.kind is Kind.OVERSIZED:
            # Not parsed: whatever it declares, the package below counts as regular (kept).
            self._keep(init, "NS114", f"not parsed: {found.error}",
                       f"{INIT} of {name} is not parsed ({found.error}); kept")
            return True
        assert found.style is not None
        owners = self._owners(init)
        style = found.style.value
        if under_regular:
            reason = (f"{style}-style namespace {name} is inside a regular package; its "
                      "extend_path reaches portions on other sys.path entries that a PEP 420 "
                      "directory there would not")
            self._namespace(name, style, _purity(found), init, owners, "keep")
            self._keep(init, "NS112", reason, reason + "; kept")
            return True
        if found.kind is Kind.PURE:
            self._namespace(name, style, "pure", init, owners, "strip")
            self.findings.append(Finding(
                STYLE_CODES[found.style], init, f"pure {style}-style namespace {name} (strippable)", tuple(owners),
            ))
            self.candidates.append(Candidate(init, "init", f"{style}-style namespace {name}"))
        elif found.kind is Kind.HYBRID:
            blocking = found.describe_blocking() or "a declaration nested in other code"
            self._namespace(name, style, "hybrid", init, owners, "keep")
            self._keep(
                init, "NS110", f"hybrid: also runs other code ({blocking})",
                f"hybrid {style}-style namespace {name}: kept, stripping is blocked by {blocking}",
                {"blocking": [{"line": b.line, "text": b.text} for b in found.blocking]},
            )
        else:
            self._namespace(name, style, None, init, owners, "keep")
            self._keep(init, "NS111", f"cannot be parsed: {found.error}",
                       f"namespace-like {INIT} of {name} cannot be parsed ({found.error}); kept")
        return False


def missing_record_files(source: Source, distributions: Iterable[Distribution]) -> tuple[dict[str, list[str]],
                                                                                        list[Finding]]:
    """NS401 for RECORD rows whose file is gone (hashes are not re-checked: that would read
    every installed file). A wheel's RECORD is checked in full when it is opened. Debian
    removes files a RECORD lists (keyrings.alt's keyrings/__init__.py): reported, not fatal."""
    present: dict[str, set[str]] = {}
    missing: dict[str, list[str]] = {}
    findings = []
    for dist in distributions:
        if dist.record_path is None:
            continue
        gone = []
        for path in dist.files:
            if path.startswith("../"):
                continue  # scripts and data outside the site dir
            directory, _, name = path.rpartition("/")
            names = present.get(directory)
            if names is None:
                listing = source.dirs.get(directory)
                names = present[directory] = set(listing.files) | listing.links if listing else set()
            if name not in names:
                gone.append(path)
        if gone:
            missing[dist.record_path] = gone
            findings.append(missing_files_finding(dist.record_path, dist.name, gone))
    return missing, findings


def missing_files_finding(record_path: str, distribution: str, gone: list[str]) -> Finding:
    shown = ", ".join(gone[:5]) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
    return Finding("NS401", record_path, f"lists {len(gone)} file(s) that are not installed: {shown}",
                   (distribution,), {"missing": gone})


def _purity(found: InitClassification) -> str | None:
    return {Kind.PURE: "pure", Kind.HYBRID: "hybrid"}.get(found.kind)


# Which RECORDs a scan compares with the files (NS401), see _Scanner._missing_files.
RECORDS_CHECKED = ("namespace", "rewritten", "all")


def scan(source: Source, records: str = "namespace") -> ScanResult:
    """Every namespace of ``source``, with NS401 for the RECORDs ``records`` names."""
    if records not in RECORDS_CHECKED:
        raise ValueError(records)
    with gc_paused():
        return _Scanner(source, records).run()
