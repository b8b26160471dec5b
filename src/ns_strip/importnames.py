"""PEP 794 import names of a distribution, computed from what it ships and compared with what
its METADATA declares.

From the distribution's own files (its RECORD), top down: a top-level module (``x.py``), a
compiled extension (``x.cpython-311-….so``, ``x.pyd``) or a regular package (``x/__init__.py``)
is an Import-Name. A directory without ``__init__.py``, or whose ``__init__.py`` is a pure (or
unparseable) legacy namespace declaration, is an Import-Namespace, and the walk goes on below
it to the first level that is not a namespace. A *hybrid* ``__init__.py`` (a declaration plus
code of its own) is an Import-Name: the file belongs to one distribution, so others must not
ship it, which is what Import-Name promises. A name with a part that starts with ``_`` gets
the ``; private`` marker. Directories holding no Python file are not import names.

Declarations are read with :mod:`.coremetadata` (Metadata 2.5 ``Import-Name``/``Import-Namespace``,
the same on every version of packaging);
a field that is absent means "not declared" and is not compared (PEP 794 then assumes the
project name), while an empty ``Import-Name:`` declares "no import names".
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator

from .coremetadata import import_fields
from .distributions import Distribution, metadata_headers
from .extnames import is_extension_filename, parse_extension_filename
from .findings import Finding
from .initfile import Kind, classify_init_at
from .safeio import MAX_METADATA_BYTES, MAX_TEXT_BYTES
from .sources import Source, join, parent_of

PRIVATE = "; private"
# mypyc's shared group library of a compiled project: <hash>__mypyc.cpython-3X-….so at the top
# level (black, mypy). Named by a hash of the project's modules, imported only by them.
_MYPYC_GROUP = re.compile(r"[0-9a-f]{8,}__mypyc")


def is_mypyc_group(name: str) -> bool:
    """A mypyc group library's module name: a private implementation detail, never a conflict."""
    return _MYPYC_GROUP.fullmatch(name) is not None
INIT_STEM = "__init__"
PYCACHE = "__pycache__"


@dataclasses.dataclass(frozen=True)
class ImportEntry:
    name: str  # dotted
    kind: str  # module | extension | package | hybrid | namespace
    path: str  # the file that provides it (for a namespace: its directory)

    @property
    def private(self) -> bool:
        return any(part.startswith("_") for part in self.name.split(".")) or is_mypyc_group(self.name)

    @property
    def field_value(self) -> str:
        return self.name + PRIVATE if self.private and self.kind != "namespace" else self.name


@dataclasses.dataclass
class ImportLayout:
    """What one distribution provides for import, and what it declares."""

    distribution: Distribution
    metadata_path: str | None
    names: list[ImportEntry]
    namespaces: list[ImportEntry]
    everything: set[str]  # every importable dotted name it ships, at any depth
    any_namespaces: set[str]  # namespace directories at any depth (also inside regular packages)
    declared_names: list[str] | None  # as written, None when the field is absent
    declared_namespaces: list[str] | None
    names_from: str = "files"  # files (RECORD, installed-files.txt) | top_level.txt (egg-info without a list)

    @property
    def import_names(self) -> list[str]:
        return [entry.field_value for entry in self.names]

    @property
    def import_namespaces(self) -> list[str]:
        return [entry.name for entry in self.namespaces]

    @property
    def declares(self) -> bool:
        return self.declared_names is not None or self.declared_namespaces is not None

    def effective(self) -> tuple[set[str], set[str]]:
        """(names, namespaces) for conflict checks. A distribution that declares either field
        is taken at its word, an absent field meaning none (PEP 794: Import-Namespace is only
        needed where an Import-Name would otherwise claim the name); one that declares nothing
        is described by its contents (closer to the truth than PEP 794's fallback, the
        project name)."""
        if self.declares:
            return bare_names(self.declared_names or ()), bare_names(self.declared_namespaces or ())
        return {e.name for e in self.names}, {e.name for e in self.namespaces}

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.distribution.name,
            "version": self.distribution.version,
            "metadata_dir": self.distribution.metadata_dir,
            "import_names": self.import_names,
            "import_namespaces": self.import_namespaces,
            "declared_import_names": self.declared_names,
            "declared_import_namespaces": self.declared_namespaces,
            "names_from": self.names_from,
        }


def bare_name(value: str) -> str:
    """An Import-Name value without its ``; private`` (or any other) annotation."""
    return value.partition(";")[0].strip()


def bare_names(values: Iterable[str]) -> set[str]:
    return {bare_name(value) for value in values if bare_name(value)}


def module_name(filename: str) -> str | None:
    """The module a file defines by its name: ``x.py``/``x.pyc`` or an extension; None otherwise."""
    if is_extension_filename(filename):
        module = parse_extension_filename(filename).module
    elif filename.endswith((".py", ".pyc")):
        module = filename.rpartition(".")[0]
    else:
        return None
    return module if module.isidentifier() else None


class _Files:
    """One distribution's importable files as a tree of directories."""

    def __init__(self, files: Iterable[str]) -> None:
        self.files: dict[str, set[str]] = {"": set()}
        self.subdirs: dict[str, set[str]] = {"": set()}
        for path in files:
            directory, _, filename = path.rpartition("/")
            parts = directory.split("/") if directory else []
            if any(not part.isidentifier() or part == PYCACHE for part in parts):
                continue  # metadata, NAME.data/, ../../../bin, bytecode: not import locations
            # Register the directory and its ancestors upwards, stopping at the first one known
            # (its own ancestors are then known too): linear in the path, where joining every
            # prefix was quadratic (16,000 rows 1,000 deep took minutes).
            child = directory
            while child not in self.files:
                parent, _, name = child.rpartition("/")
                self.subdirs.setdefault(parent, set()).add(name)
                self.subdirs.setdefault(child, set())
                self.files[child] = set()
                child = parent
            self.files[directory].add(filename)

    def modules(self, directory: str) -> Iterator[tuple[str, str]]:
        """(module name, file) for the modules directly in ``directory``, ``__init__`` excepted."""
        seen = set()
        for filename in sorted(self.files.get(directory, ())):
            module = module_name(filename)
            if module is None or module == INIT_STEM or module in seen:
                continue
            seen.add(module)
            yield module, join(directory, filename)

    def init_of(self, directory: str) -> str | None:
        names = self.files.get(directory, set())
        if "__init__.py" in names:
            return join(directory, "__init__.py")
        compiled = sorted(n for n in names if module_name(n) == INIT_STEM)
        return join(directory, compiled[0]) if compiled else None

    def holds_python(self, directory: str) -> bool:
        return directory in self._python_dirs

    @functools.cached_property
    def _python_dirs(self) -> set[str]:
        """Directories with a module or an init at any depth, worked out upwards from each one
        without recursion: a hostile RECORD may list a path thousands deep."""
        found: set[str] = set()
        for directory in self.files:
            if not (any(True for _ in self.modules(directory)) or self.init_of(directory)):
                continue
            while directory not in found:
                found.add(directory)
                if not directory:
                    break
                directory = directory.rpartition("/")[0]
        return found


TOP_LEVEL_TXT = "top_level.txt"


def compute_layout(source: Source, dist: Distribution) -> ImportLayout:
    if dist.record_path is None and _exists(source, join(dist.metadata_dir, TOP_LEVEL_TXT)):
        return _top_level_layout(source, dist)
    return _files_layout(source, dist)


def _top_level_layout(source: Source, dist: Distribution) -> ImportLayout:
    """An egg-info without a file list (every Debian python3-* egg-info): the names come from
    its ``top_level.txt``, their kinds from what is on disk. A declared namespace
    (``namespace_packages.txt``) is an Import-Namespace; below it, the name the distribution is
    called by (``zope.interface``) when that is there."""
    text = source.read_bytes(join(dist.metadata_dir, TOP_LEVEL_TXT), limit=MAX_TEXT_BYTES).decode("utf-8", errors="replace")
    tops = [line.strip().replace("/", ".") for line in text.splitlines() if line.strip()]
    declared = set(dist.declared_namespaces or ())
    names: list[ImportEntry] = []
    namespaces: list[ImportEntry] = []
    everything: set[str] = set()
    for top in dict.fromkeys(tops):
        if not all(part.isidentifier() for part in top.split(".")):
            continue
        entry = _entry_on_disk(source, top)
        if entry is None:
            continue
        everything.add(top)
        if entry.kind == "namespace" or top in declared:
            namespaces.append(ImportEntry(top, "namespace", top.replace(".", "/")))
            below = dist.name.replace("-", ".").replace("_", ".")
            if below.startswith(top + ".") and _entry_on_disk(source, below) is not None:
                names.append(_entry_on_disk(source, below))  # type: ignore[arg-type]
                everything.add(below)
        else:
            names.append(entry)
    return ImportLayout(dist, None, sorted(names, key=lambda e: e.name), sorted(namespaces, key=lambda e: e.name),
                        everything, {e.name for e in namespaces}, None, None, TOP_LEVEL_TXT)


def _entry_on_disk(source: Source, name: str) -> ImportEntry | None:
    path = name.replace(".", "/")
    listing = source.dirs.get(path)
    if listing is not None:
        init = join(path, "__init__.py") if "__init__.py" in listing.files else None
        kind = _package_kind(source, init)
        return ImportEntry(name, kind, init or path)
    parent = source.dirs.get(parent_of(path))
    last = path.rpartition("/")[2]
    if parent is not None:
        for filename in sorted(parent.files):
            if module_name(filename) == last:
                kind = "extension" if is_extension_filename(filename) else "module"
                return ImportEntry(name, kind, join(parent_of(path), filename))
    return None


def _files_layout(source: Source, dist: Distribution) -> ImportLayout:
    tree = _Files(dist.files)
    names: list[ImportEntry] = []
    namespaces: list[ImportEntry] = []
    everything: set[str] = set()
    any_namespaces: set[str] = set()

    # An explicit stack, not recursion: a hostile RECORD may list a path thousands deep. The
    # results are sorted below, so the order of the walk does not matter.
    pending = [("", "", True)]
    while pending:
        directory, prefix, top_down = pending.pop()
        for module, path in tree.modules(directory):
            everything.add(prefix + module)
            if top_down:
                kind = "extension" if is_extension_filename(path) else "module"
                names.append(ImportEntry(prefix + module, kind, path))
        for sub in sorted(tree.subdirs.get(directory, ())):
            path = join(directory, sub)
            if not tree.holds_python(path):
                continue
            dotted = prefix + sub
            everything.add(dotted)
            kind = _package_kind(source, tree.init_of(path))
            if kind == "namespace":
                any_namespaces.add(dotted)
            if top_down and kind == "namespace":
                namespaces.append(ImportEntry(dotted, kind, path))
            elif top_down:
                names.append(ImportEntry(dotted, kind, tree.init_of(path) or path))
            pending.append((path, dotted + ".", top_down and kind == "namespace"))
    metadata_path = join(dist.metadata_dir, "METADATA") if dist.metadata_dir.endswith(".dist-info") else None
    declared_names = declared_namespaces = None
    if metadata_path is not None and _exists(source, metadata_path):
        declared_names, declared_namespaces = import_fields(
            metadata_headers(source.read_bytes(metadata_path, limit=MAX_METADATA_BYTES)))
    return ImportLayout(dist, metadata_path, sorted(names, key=lambda e: e.name),
                        sorted(namespaces, key=lambda e: e.name), everything, any_namespaces, declared_names,
                        declared_namespaces)


def _exists(source: Source, path: str) -> bool:
    listing = source.dirs.get(parent_of(path))
    return listing is not None and path.rpartition("/")[2] in listing.files


def _package_kind(source: Source, init: str | None) -> str:
    if init is None or not _exists(source, init):
        return "namespace"  # listed but not installed (NS401): the directory is what imports
    if not init.endswith(".py"):
        return "package"  # a compiled __init__: its code is not read here
    found = classify_init_at(source, init)
    if found.kind in (Kind.PURE, Kind.UNPARSEABLE):
        return "namespace"
    return "hybrid" if found.kind is Kind.HYBRID else "package"


def layout_findings(layout: ImportLayout) -> list[Finding]:
    """NS402 for each name declared and shipped differently; NS404 for a name in both fields."""
    if layout.metadata_path is None or not layout.declares:
        return []
    where = layout.metadata_path
    owner = (layout.distribution.name,)
    found: list[Finding] = []
    computed_names = {entry.name for entry in layout.names}
    computed_namespaces = {entry.name for entry in layout.namespaces}
    if layout.declared_names is not None:
        declared = bare_names(layout.declared_names)
        for name in sorted(computed_names - declared):
            found.append(Finding("NS402", where, f"ships {name} but does not declare it as Import-Name",
                                 owner, {"name": name, "field": "Import-Name", "problem": "undeclared"}))
        for name in sorted(declared - computed_names):
            if name in layout.everything and name not in computed_namespaces:
                continue  # a submodule of a shipped package: listing it is allowed
            problem = "is a namespace in the contents" if name in computed_namespaces else "is not shipped"
            found.append(Finding("NS402", where, f"declares Import-Name {name}, which {problem}",
                                 owner, {"name": name, "field": "Import-Name", "problem": "not shipped"}))
    if layout.declared_namespaces is not None:
        declared = bare_names(layout.declared_namespaces)
        for name in sorted(computed_namespaces - declared):
            found.append(Finding("NS402", where, f"ships namespace {name} but does not declare it as Import-Namespace",
                                 owner, {"name": name, "field": "Import-Namespace", "problem": "undeclared"}))
        for name in sorted(declared - layout.any_namespaces):
            shipped = name in layout.everything
            problem = "is a regular package or module in the contents" if shipped else "is not shipped"
            found.append(Finding("NS402", where, f"declares Import-Namespace {name}, which {problem}",
                                 owner, {"name": name, "field": "Import-Namespace", "problem": "not shipped"}))
    if layout.declared_names is not None and layout.declared_namespaces is not None:
        for name in sorted(bare_names(layout.declared_names) & bare_names(layout.declared_namespaces)):
            found.append(Finding("NS404", where, f"{name} is listed as both Import-Name and Import-Namespace",
                                 owner, {"name": name}))
    return found


def matches_declaration(layout: ImportLayout) -> bool:
    """Whether METADATA already says exactly what the contents give (nothing to write)."""
    if layout.declared_names is None or layout.declared_namespaces is None:
        return False
    declared = sorted(_normalised(value) for value in layout.declared_names)
    return declared == sorted(layout.import_names) and bare_names(layout.declared_namespaces) == set(
        layout.import_namespaces)


def _normalised(value: str) -> str:
    name, _, annotation = value.partition(";")
    return name.strip() + (PRIVATE if annotation.strip() == "private" else "")
