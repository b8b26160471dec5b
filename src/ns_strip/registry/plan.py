"""What to do in one namespace directory, decided from the bookkeeping and the files as they
are now, and doing it: each step can run again after a crash, and a step found done is done."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import importlib.util
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import ApplyError, BadInputError
from ..findings import Finding
from ..manifest import namespace_name
from ..safeio import MAX_INIT_BYTES, read_regular
from ..scan import INIT, PYCACHE
from .database import fsync_directory
from .paths import RootPaths

PLACEHOLDER = (
    b"# Namespace package placeholder written by 'ns-strip registry' when the first package\n"
    b"# using this namespace was installed; it goes with the last one. Do not edit.\n"
    b"from pkgutil import extend_path\n"
    b"__path__ = extend_path(__path__, __name__)\n"
)
PLACEHOLDER_SHA256 = hashlib.sha256(PLACEHOLDER).hexdigest()
# The placeholder is written here first and linked into place, so no reader ever sees a
# half-written __init__.py (an empty one would make the namespace a regular package).
PLACEHOLDER_TEMPORARY = INIT + ".ns-strip-tmp"


@dataclasses.dataclass(frozen=True)
class Change:
    """One file-system step in a namespace directory (or, from verify, one that is due)."""

    action: str  # create | remove | rmdir
    site_dir: str
    path: str  # relative to site_dir
    reason: str
    code: str  # the drift finding when the step is due but not done

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "site_dir": self.site_dir, "path": self.path, "reason": self.reason}

    def describe(self) -> str:
        verb = {"create": "Creating", "remove": "Removing", "rmdir": "Removing directory"}[self.action]
        return f"{verb} {self.site_dir}/{self.path} ({self.reason})"


DUE = {"create": "created", "remove": "removed", "rmdir": "removed"}


@dataclasses.dataclass(frozen=True)
class DirectoryState:
    """What the bookkeeping says about one namespace directory."""

    site_dir: str
    directory: str
    packages: tuple[str, ...]
    wants_placeholder: bool
    created_sha256: str | None  # of the placeholder the toolkit created there

    @property
    def init(self) -> str:
        return f"{self.directory}/{INIT}"

    def to_json(self) -> dict[str, object]:
        return {
            "name": namespace_name(self.directory), "directory": self.directory, "site_dir": self.site_dir,
            "count": len(self.packages), "packages": list(self.packages),
            "placeholder": self.created_sha256 is not None,
        }


@dataclasses.dataclass
class DirectoryPlan:
    changes: list[Change]
    owns_placeholder: bool  # whether, once done, the toolkit's placeholder is there


def file_sha256(path: Path) -> str | None:
    """The hash of a regular file; None when there is none; "" for a link or another kind."""
    if not os.path.lexists(path):
        return None
    try:
        # Through safeio: a FIFO planted there is never waited on, a link never followed, and a
        # file larger than any placeholder (a few lines) is not one of ours, so not read whole.
        return hashlib.sha256(read_regular(path, MAX_INIT_BYTES)).hexdigest()
    except BadInputError:
        return ""


def depth_first(rows: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Deepest directories first, so a parent is looked at once its children are gone."""
    return sorted(set(rows), key=lambda row: (-row[1].count("/"), row))


def plan_directory(state: DirectoryState, base: Path, paths: RootPaths, findings: list[Finding]) -> DirectoryPlan:
    """What to do in one directory, from the bookkeeping and the files as they are now."""
    try:
        return _plan(state, base, paths, findings)
    except OSError as exc:
        raise ApplyError(f"cannot read it: {exc.strerror or exc}; nothing more was changed",
                         str(base / state.directory)) from exc


def _plan(state: DirectoryState, base: Path, paths: RootPaths, findings: list[Finding]) -> DirectoryPlan:
    path = base / state.directory
    if paths.leaves(base, state.directory):
        findings.append(Finding(
            "NS113", state.directory, "namespace directory is a symbolic link leaving its site dir; not touched",
            state.packages, {"site_dir": state.site_dir},
        ))
        return DirectoryPlan([], state.created_sha256 is not None)
    changes: list[Change] = []

    def change(action: str, relative: str, reason: str, code: str) -> None:
        changes.append(Change(action, state.site_dir, f"{state.directory}/{relative}", reason, code))

    init_sha = file_sha256(path / INIT)
    if os.path.lexists(path / PLACEHOLDER_TEMPORARY):
        change("remove", PLACEHOLDER_TEMPORARY, "unfinished placeholder", "NS515" if not state.packages else "NS514")
    if state.packages and state.wants_placeholder:
        if init_sha is None and path.is_dir():
            change("create", INIT, "namespace placeholder", "NS512")
            return DirectoryPlan(changes, True)
        # A file with exactly the placeholder's bytes was written by the toolkit (this is how
        # a placeholder created just before a crash, or found by 'rebuild', is taken back).
        return DirectoryPlan(changes, init_sha == PLACEHOLDER_SHA256)

    leaving = "no package uses the namespace any more" if not state.packages else "placeholder no longer wanted"
    ours = state.created_sha256 is not None and init_sha == state.created_sha256
    if ours:
        change("remove", INIT, leaving, "NS515" if not state.packages else "NS514")
    if not path.is_dir():
        return DirectoryPlan(changes, False)
    gone = {c.path.rpartition("/")[2] for c in changes}  # so far only direct children
    init_gone = ours or init_sha is None
    pycache = path / PYCACHE
    if init_gone and pycache.is_dir() and not pycache.is_symlink():
        names = sorted(os.listdir(pycache))
        removed = {base / c.path for c in changes if c.action == "remove"}
        stale = [n for n in names if _is_stale_bytecode(pycache / n, not state.packages, removed)]
        for name in stale:
            change("remove", f"{PYCACHE}/{name}", "bytecode of a module that no longer exists",
                   "NS515" if not state.packages else "NS514")
        if len(stale) == len(names) and (stale or not state.packages):
            change("rmdir", PYCACHE, "empty bytecode directory", "NS515" if not state.packages else "NS514")
            gone.add(PYCACHE)
    if not state.packages and all(name in gone for name in os.listdir(path)):
        change("rmdir", "", "no package uses the namespace any more", "NS515")
    return DirectoryPlan(changes, False)


def _is_stale_bytecode(path: Path, whole_directory: bool, removed: set[Path]) -> bool:
    """Bytecode in __pycache__ whose source is gone (or in ``removed``): the interpreter's leftover.

    While packages still use the directory only the bytecode of a missing ``__init__.py`` (a
    placeholder's) counts; once none does, that of every missing module.
    """
    if not path.name.endswith(".pyc") or path.is_symlink() or not path.is_file():
        return False
    if not whole_directory and not path.name.startswith("__init__."):
        return False
    try:
        source = Path(importlib.util.source_from_cache(str(path)))
    except (ValueError, NotImplementedError):
        return False
    return source in removed or not os.path.lexists(source)


def carry_out(change: Change, base: Path, checkpoint: Callable[[], None]) -> None:
    """Do one step; each is safe to do again after a crash, and a step found done is done."""
    target = base / change.path
    try:
        if change.action == "create":
            _write_placeholder(target, checkpoint)
        elif change.action == "remove":
            target.unlink(missing_ok=True)
        elif change.action == "rmdir":
            try:
                target.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise  # something appeared since: the directory stays, and is retired
        fsync_directory(target.parent)
    except OSError as exc:
        raise ApplyError(
            f"cannot {change.action} it: {exc.strerror or exc}; the next registry command finishes the change",
            str(target),
        ) from exc


def _write_placeholder(target: Path, checkpoint: Callable[[], None]) -> None:
    temporary = target.with_name(PLACEHOLDER_TEMPORARY)
    with open(temporary, "wb") as handle:
        handle.write(PLACEHOLDER)
        handle.flush()
        os.fsync(handle.fileno())
    checkpoint()
    try:
        os.link(temporary, target)  # unlike rename, never replaces a file that appeared meanwhile
    except FileExistsError:
        pass  # someone else's __init__.py: the plan next time sees it is not ours
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if not os.path.lexists(target):  # a file system without hard links
            os.rename(temporary, target)
    checkpoint()
    temporary.unlink(missing_ok=True)
