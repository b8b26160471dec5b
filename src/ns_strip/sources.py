"""Where files come from: an installed tree on disk (and, through the same interface, a wheel).

A source is a listing of POSIX paths relative to its root plus a way to read them. Detection
and planning work on that listing only, so they never touch the file system directly and
never follow a symbolic link out of the root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from .errors import BadInputError, UsageError
from .safeio import MAX_RECORD_BYTES, OutsideRootError, read_regular

# The scheme layouts installer and pip use: scripts sit three levels above the site dir
# (<prefix>/bin beside <prefix>/lib/pythonX.Y/site-packages), so an installed RECORD may name
# them as ../../../bin/foo.
_SCHEME_SITE_DIR = re.compile(r"(^|/)lib(64)?/(python\d(\.\d+)?t?|pypy\d(\.\d+)?)/(site|dist)-packages$")


@dataclasses.dataclass
class DirListing:
    files: list[str] = dataclasses.field(default_factory=list)  # names of files and file links
    subdirs: list[str] = dataclasses.field(default_factory=list)  # names of real directories
    links: set[str] = dataclasses.field(default_factory=set)  # names (files or dirs) that are symlinks


class Source(Protocol):
    label: str  # how to name the source to the user

    @property
    def dirs(self) -> dict[str, DirListing]:  # "" is the root
        ...

    def read_bytes(self, path: str, limit: int = MAX_RECORD_BYTES) -> bytes:
        """A file's content; NotRegularFileError, FileTooLargeError (over ``limit``) or another
        BadInputError when it cannot be read safely."""
        ...

    def link_leaves_root(self, path: str) -> bool: ...

    def climb_limit(self) -> int:
        """How many leading '..' a RECORD path may have and still stay inside the root."""
        ...


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while large, acyclic structures are built.

    A distro-sized tree is hundreds of thousands of listings and RECORD rows that live until the
    command ends; each automatic collection would traverse all of them again and find nothing,
    since they form no cycles. Nested pauses are fine: only the outermost one resumes it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


class TreeSource:
    """An installed tree: a site dir, optionally inside a staging root (DESTDIR)."""

    def __init__(self, site_dir: Path, root: Path | None = None, label: str | None = None) -> None:
        self.site_dir = site_dir
        self.root = root
        self.label = label or str(site_dir)
        self._dirs: dict[str, DirListing] | None = None
        self._real_boundary = os.path.realpath(root if root is not None else site_dir)

    @classmethod
    def open(cls, path: str, root: str | None = None) -> TreeSource:
        """Resolve PATH (absolute in the target system when ``root`` is given) and check it."""
        if root is not None:
            root_path = Path(root)
            found = stat_argument(root)
            if found is None or not stat.S_ISDIR(found.st_mode):
                raise UsageError("--root is not a directory", root)
            if not path.startswith("/"):
                raise UsageError("with --root, PATH must be absolute in the target system", path)
            site = root_path / path.lstrip("/")
        else:
            root_path = None
            site = Path(path)
        found = stat_argument(site)
        if found is None or not stat.S_ISDIR(found.st_mode):
            raise UsageError("not a directory" if found is not None else "no such directory", str(site))
        if root_path is not None:
            real_site = os.path.realpath(site)
            real_root = os.path.realpath(root_path)
            if os.path.commonpath([real_site, real_root]) != real_root:
                raise BadInputError(f"resolves outside --root {root}", str(site))
        return cls(site, root_path, label=path)

    @property
    def dirs(self) -> dict[str, DirListing]:
        if self._dirs is None:
            with gc_paused():
                self._dirs = dict(self._walk())
        return self._dirs

    def _walk(self) -> Iterator[tuple[str, DirListing]]:
        pending = [""]
        base = os.fspath(self.site_dir)
        while pending:
            rel = pending.pop()
            listing = DirListing()
            files, subdirs = listing.files, listing.subdirs
            try:
                with os.scandir(f"{base}/{rel}" if rel else base) as entries:
                    # Regular files first: they are most entries, and the type comes from the
                    # directory entry itself, so each is one check and no system call.
                    for entry in entries:
                        if entry.is_file(follow_symlinks=False):
                            files.append(entry.name)
                        elif entry.is_dir(follow_symlinks=False):
                            subdirs.append(entry.name)
                            pending.append(f"{rel}/{entry.name}" if rel else entry.name)
                        elif entry.is_symlink():
                            listing.links.add(entry.name)
                            # A link to a directory is never descended into: it may leave the
                            # root, and inside it would show the same files twice.
                            if not entry.is_dir(follow_symlinks=True):
                                files.append(entry.name)
                        else:
                            files.append(entry.name)  # sockets, fifos, devices
            except OSError as exc:
                raise BadInputError(f"cannot list directory: {exc.strerror}", str(self.path_of(rel))) from exc
            files.sort()
            subdirs.sort()
            yield rel, listing

    def path_of(self, rel: str) -> Path:
        return self.site_dir / rel if rel else self.site_dir

    def link_leaves_root(self, rel: str) -> bool:
        real = os.path.realpath(self.path_of(rel))
        return os.path.commonpath([real, self._real_boundary]) != self._real_boundary

    def read_bytes(self, rel: str, limit: int = MAX_RECORD_BYTES) -> bytes:
        """A file's content through :mod:`.safeio`: never a FIFO, socket or device (a
        NotRegularFileError, never a wait), at most ``limit`` bytes (FileTooLargeError), and
        never from outside the root. A link is read only when it resolves inside the root: its
        target is resolved, checked, then opened without following links, and the file opened
        is checked again to be inside the root (so a link swapped in between is caught)."""
        path = f"{self.site_dir}/{rel}" if rel else os.fspath(self.site_dir)
        if self.is_link(rel):
            path = os.path.realpath(path)
            if os.path.commonpath([path, self._real_boundary]) != self._real_boundary:
                raise OutsideRootError(str(self.path_of(rel)), "the root")
        return read_regular(path, limit, within=self._real_boundary)

    def is_link(self, rel: str) -> bool:
        directory, _, name = rel.rpartition("/")
        listing = self.dirs.get(directory)
        return listing is not None and name in listing.links

    def climb_limit(self) -> int:
        if self.root is not None:
            inside = os.path.relpath(self.site_dir, self.root)
            return 0 if inside == "." else len(Path(inside).parts)
        return 3 if _SCHEME_SITE_DIR.search(Path(os.path.abspath(self.site_dir)).as_posix()) else 0

    def mode_of(self, rel: str) -> int:
        return stat.S_IMODE(os.lstat(self.path_of(rel)).st_mode)


def stat_argument(path: str | os.PathLike[str]) -> os.stat_result | None:
    """``os.stat`` of a PATH from the command line (links followed: the user named it), None
    when nothing is there. A path that cannot be looked at, such as one inside a directory the
    user may not enter, is bad input (exit 3) naming it, not a traceback."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise BadInputError(f"cannot look at it: {exc.strerror or exc}", os.fspath(path)) from exc


def normalise_record_path(path: str, base: str = "") -> str:
    """A RECORD path made relative to the source root, with '.' and '..' folded."""
    joined = posixpath.join(base, path) if base else path
    return posixpath.normpath(joined)


def iter_files(source: Source) -> Iterator[str]:
    for directory, listing in source.dirs.items():
        for name in listing.files:
            yield join(directory, name)


WHEEL_SUFFIX = ".whl"


def is_wheel_path(path: str) -> bool:
    """Whether a command-line PATH names a wheel file (an unpacked ``x.whl/`` dir is a tree)."""
    return path.endswith(WHEEL_SUFFIX) and not os.path.isdir(path)
