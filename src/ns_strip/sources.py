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
from .safeio import read_regular

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

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        """The content of a file; over ``limit`` bytes raises safeio.FileTooLargeError."""
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
            if not root_path.is_dir():
                raise UsageError("--root is not a directory", root)
            if not path.startswith("/"):
                raise UsageError("with --root, PATH must be absolute in the target system", path)
            site = root_path / path.lstrip("/")
        else:
            root_path = None
            site = Path(path)
        if not site.is_dir():
            raise UsageError("not a directory" if site.exists() else "no such directory", str(site))
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

    def read_bytes(self, rel: str, limit: int | None = None) -> bytes:
        # Only a link can lead out: linked directories are never descended into.
        if self.is_link(rel) and self.link_leaves_root(rel):
            raise BadInputError("symbolic link leaves the root; not read", rel)
        try:
            if limit is not None:
                path = f"{self.site_dir}/{rel}" if rel else os.fspath(self.site_dir)
                # A link that stays inside the root (checked above) is read at its target.
                return read_regular(os.path.realpath(path) if self.is_link(rel) else path, limit)
            return _read_file(f"{self.site_dir}/{rel}" if rel else os.fspath(self.site_dir))
        except OSError as exc:
            raise BadInputError(f"cannot read: {exc.strerror}", str(self.path_of(rel))) from exc

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


def _read_file(path: str) -> bytes:
    """A whole file, with plain system calls: a tree's RECORDs, METADATA and inits are tens of
    thousands of small files, and a buffered file object costs more than reading one."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


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
