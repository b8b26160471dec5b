"""Give untagged extension modules the ABI tag of the interpreter they are built for, as
dh_python3 does (``foo.so`` -> ``foo.cpython-311-x86_64-linux-gnu.so``), keeping RECORD true.

A file is renamed only when its binary exports the init function its name promises (else it
could not be imported under either name) and the new tag does not contradict the binary. All
targets are checked before anything is renamed; a target that exists is an error, and nothing
is changed.

Public API: :func:`default_tag`, :func:`parse_tag_option`, :func:`plan_rename`,
:func:`apply_renames`, :func:`locked_roots`, :class:`Rename`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.machinery
import os
import posixpath
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import journal, sitelock
from .distributions import load_distributions
from .errors import ApplyError, BadInputError, UsageError
from .extensions import ExtensionInfo, PythonTarget, exports_own_init, tag_contradictions, untagged_reason
from .extnames import EXTENSION_EXTENSIONS, TagStyle, normalize_tag, parse_extension_filename, tagged_filename
from .fdtree import FdTree
from .findings import Finding
from .metadata_edit import rewrite_record
from .sources import TreeSource


@dataclasses.dataclass(frozen=True)
class Rename:
    source: str  # POSIX, relative to the root
    target: str


def default_tag() -> tuple[str | None, str | None]:
    """The running interpreter's own tag (the first of its EXTENSION_SUFFIXES)."""
    return normalize_tag(importlib.machinery.EXTENSION_SUFFIXES[0])


def parse_tag_option(text: str) -> tuple[str | None, str | None]:
    """Check a ``--python-tag`` value; returns (tag, extension or None)."""
    tag, extension = normalize_tag(text)
    extensions = [extension] if extension else EXTENSION_EXTENSIONS
    probes = [parse_extension_filename(f"probe.{tag}{ext}") for ext in extensions]
    if not tag or all(probe.style is TagStyle.UNKNOWN for probe in probes):
        raise UsageError(f"--python-tag: {text!r} is not an ABI tag (e.g. cpython-311-x86_64-linux-gnu, abi3)")
    return tag, extension


def plan_rename(
    info: ExtensionInfo, tag: str | None, extension: str | None, target: PythonTarget | None
) -> tuple[Rename | None, Finding | None]:
    """The rename an untagged extension needs, or the finding that explains why there is none.

    Returns (None, None) for a file that needs no rename.
    """
    if info.binary is None or untagged_reason(info) is None:
        return None, None
    new_name = tagged_filename(info.name, tag, extension)
    new_path = posixpath.join(posixpath.dirname(info.path), new_name.filename)
    if not exports_own_init(info):
        exported = ", ".join(info.exported) or "no module"
        message = f"not renamed to {new_name.filename}: it exports the init function of {exported}, " \
                  f"not of {info.name.module}"  # fmt: skip
        return None, Finding("NS201", info.path, message, info.distributions)
    reasons = tag_contradictions(new_name, info.binary, target)
    if new_name.style is TagStyle.UNKNOWN:
        reasons.insert(0, f"no Python imports '{new_name.module}' from a file of that name")
    if reasons:
        message = f"not renamed to {new_name.filename}: {reasons[0]}"
        return None, Finding("NS203", info.path, message, info.distributions)
    return Rename(info.path, new_path), None


@contextlib.contextmanager
def locked_roots(paths: Sequence[str], *, shared: bool) -> Iterator[None]:
    """Hold the lock of every directory ``ext --rename PATH...`` renames in (a directory given,
    or the one holding a file given) from before it is read until the renames are done; in a
    fixed order (device and inode), so two runs on overlapping directories cannot deadlock.
    Paths that are neither are left to the command to report."""
    roots: dict[tuple[int, int], Path] = {}
    for text in paths:
        path = Path(text)
        root = path if path.is_dir() else path.parent if path.is_file() else None
        if root is not None:
            try:
                info = os.stat(root)
            except OSError:
                continue
            roots.setdefault((info.st_dev, info.st_ino), root)
    with sitelock.locked_sites([(root, None) for root in roots.values()], shared=shared):
        yield


def apply_renames(root: Path, renames: Sequence[Rename], *, dry_run: bool = False) -> list[str]:
    """Rename files under ``root`` and the RECORD rows listing them; returns the RECORDs changed.

    Checks every target and RECORD first (BadInputError, nothing changed); a failure while
    renaming undoes the renames already made (ApplyError). Holds the lock on ``root`` (shared
    for a dry run) and works through its directory descriptors, like strip.
    """
    moves = {rename.source: rename.target for rename in renames}
    with sitelock.locked_site(root, shared=dry_run) as tree:
        if journal.pending(tree):
            journal.inspect(tree)  # a journal ns-strip did not write is refused (exit 3), untouched
            raise ApplyError("an interrupted change left its journal here; run 'ns-strip strip' on it first",
                             str(journal.journal_dir(root)))
        targets = [rename.target for rename in renames]
        for rename in renames:
            if _exists(tree, rename.target) or targets.count(rename.target) > 1:
                raise BadInputError(f"cannot rename {rename.source} to {rename.target}: the target exists", str(root))
        # RECORDs are read under the lock: what is rewritten is what is there now.
        records = _records_to_rewrite(root, moves)
        if dry_run or not renames:
            return sorted(records)
        sitelock.check_still_named(tree)
        expected = journal.identities_at_plan(tree, journal.planned_paths((), records, (), moves))
        # The same journal as strip: every rename and RECORD rewrite lands, or none does, even
        # across a kill -9 (the next strip or rename run finishes or rolls back).
        journal.apply(tree, (), records, moves=moves, expected=expected)
    return sorted(records)


def _exists(tree: FdTree, rel: str) -> bool:
    try:
        return tree.lstat(rel) is not None
    except OSError as exc:
        raise BadInputError(f"cannot rename into {rel}: {exc.strerror}", exc.filename or tree.shown(rel)) from exc


def _records_to_rewrite(root: Path, moves: dict[str, str]) -> dict[str, bytes]:
    """New contents of each RECORD that lists a renamed file, every other row as it was."""
    return {
        dist.record_path: rewrite_record(dist.record_lines, (), {}, moves)
        for dist in load_distributions(TreeSource(root))
        if dist.record_path and not dist.record_path.endswith("installed-files.txt")
        and any(line.path in moves for line in dist.record_lines)
    }
