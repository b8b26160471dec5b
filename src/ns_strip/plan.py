"""From a scan to a strip plan: the files to remove, the RECORDs to rewrite, the directories
left empty. The plan is complete before anything changes, so a dry run shows exactly what a
real run does and the apply step can be all-or-nothing."""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence

from .distributions import NAMESPACE_PACKAGES_TXT, is_metadata_dir
from .metadata_edit import rewrite_record
from .nspkg import is_nspkg_pth
from .scan import INIT, PYCACHE, Candidate, KeptFile, ScanResult, dotted
from .sources import Source, join, parent_of


@dataclasses.dataclass(frozen=True)
class Removal:
    path: str
    description: str | None  # None for bytecode and other files that follow a removal
    kind: str  # init | bytecode | nspkg_pth | namespace_packages_txt


@dataclasses.dataclass
class StripPlan:
    removals: list[Removal]
    rewrites: dict[str, bytes]  # RECORD / installed-files.txt path -> new content
    empty_dirs: list[str]  # deepest first
    kept: list[KeptFile]
    # RECORD rows dropped for namespace files an earlier tool deleted without updating RECORD
    # (distutils-r1 removes declared namespaces' files this way).
    stale_rows: list[str] = dataclasses.field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.removals or self.rewrites or self.empty_dirs)

    @property
    def removed_paths(self) -> list[str]:
        return [r.path for r in self.removals]


def is_kept_by_user(candidate: Candidate, patterns: Sequence[str]) -> bool:
    """``--keep`` patterns match a path (``zope/__init__.py``) or a dotted name (``zope``)."""
    names = [candidate.path]
    if candidate.kind == "init":
        names.append(dotted(parent_of(candidate.path)))
    return any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in patterns)


def bytecode_of_init(source: Source, init: str) -> list[str]:
    """Compiled forms of an ``__init__.py``: PEP 3147 ``__pycache__`` files and legacy ones beside."""
    package = parent_of(init)
    found = []
    listing = source.dirs.get(join(package, PYCACHE))
    if listing is not None:
        found.extend(
            join(join(package, PYCACHE), name)
            for name in listing.files
            if name.startswith("__init__.") and name.endswith(".pyc")
        )
    beside = source.dirs[package].files
    found.extend(join(package, name) for name in ("__init__.pyc", "__init__.pyo") if name in beside)
    return found


def plan_strip(result: ScanResult, keep: Sequence[str] = ()) -> StripPlan:
    source = result.source
    removals: list[Removal] = []
    kept = list(result.kept)
    for candidate in result.candidates:
        if keep and is_kept_by_user(candidate, keep):
            kept.append(KeptFile(candidate.path, "keep", "listed in --keep"))
            continue
        removals.append(Removal(candidate.path, candidate.description, candidate.kind))
        if candidate.kind == "init":
            removals.extend(Removal(p, None, "bytecode") for p in bytecode_of_init(source, candidate.path))

    removed = {r.path for r in removals}
    stale = namespace_leftovers(result)
    rewrites: dict[str, bytes] = {}
    # Only the RECORDs that list a removed file are read in full (and validated: a row that is
    # not valid stops the strip here, before anything changes).
    for dist in result.owners.distributions_of(removed | stale):
        if dist.record_path is None or dist.record_path in removed:
            continue
        rewrites[dist.record_path] = rewrite_record(dist.record_lines, removed | stale, {})
    return StripPlan(removals, rewrites, _emptied_directories(source, removed), kept, sorted(stale))


_INIT_BYTECODE_BESIDE = ("__init__.pyc", "__init__.pyo")


def namespace_leftovers(result: ScanResult) -> set[str]:
    """Missing files (NS401) that are legacy namespace files: a ``*-nspkg.pth``, a
    ``namespace_packages.txt``, or an ``__init__`` (source or bytecode) of a directory that
    now has no ``__init__.py``. Their RECORD rows describe a strip already done."""
    leftovers = set()
    for paths in result.missing.values():
        for path in paths:
            directory, _, name = path.rpartition("/")
            if not directory and is_nspkg_pth(name):
                leftovers.add(path)
            elif name == NAMESPACE_PACKAGES_TXT and is_metadata_dir(directory):
                leftovers.add(path)
            else:
                in_cache = directory == PYCACHE or directory.endswith("/" + PYCACHE)
                package = parent_of(directory) if in_cache else directory
                if in_cache:
                    is_init = name.startswith("__init__.") and name.endswith(".pyc")
                else:
                    is_init = name == INIT or name in _INIT_BYTECODE_BESIDE
                listing = result.source.dirs.get(package) if package else None
                if is_init and listing is not None and INIT not in listing.files:
                    leftovers.add(path)
    return leftovers


def _emptied_directories(source: Source, removed: set[str]) -> list[str]:
    """Directories that hold nothing once ``removed`` is gone, deepest first.

    Only directories that held a removed file, and their parents emptied in turn, qualify:
    an empty directory that was there before is not ours to remove.
    """
    emptied: set[str] = set()
    pending = sorted({parent_of(path) for path in removed if parent_of(path)}, key=lambda d: -d.count("/"))
    while pending:
        directory = pending.pop(0)
        if directory in emptied or not directory:
            continue
        listing = source.dirs[directory]
        files_left = any(join(directory, name) not in removed for name in listing.files)
        dirs_left = any(join(directory, sub) not in emptied for sub in listing.subdirs)
        if files_left or dirs_left:
            continue
        emptied.add(directory)
        parent = parent_of(directory)
        if parent:
            pending.append(parent)
            pending.sort(key=lambda d: -d.count("/"))
    return sorted(emptied, key=lambda d: (-d.count("/"), d))


__all__ = ["INIT", "Removal", "StripPlan", "plan_strip", "bytecode_of_init"]
