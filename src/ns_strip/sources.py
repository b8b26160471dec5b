"""Where files come from: an installed tree on disk (and, through the same interface, a wheel).

A source is a listing of POSIX paths relative to its root plus a way to read them. Detection
and planning work on that listing only, so they never touch the file system directly and
never follow a symbolic link out of the root.
"""

from __future__ import annotations

import contextlib
import gc
import os
import posixpath
import re
import stat
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import BadInputError, UsageError
from .safeio import MAX_RECORD_BYTES, OutsideRootError, read_regular, read_regular_status
from .slotted import Slotted

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # Source is an interface for type checkers only: at run time a plain class

# The scheme layouts installer and pip use: scripts sit three levels above the site dir
# (<prefix>/bin beside <prefix>/lib/pythonX.Y/site-packages), so an installed RECORD may name
# them as ../../../bin/foo.
# Compiled by re's cache when first used: only a RECORD's rows that climb out ask.
_SCHEME_SITE_DIR = r"(^|/)lib(64)?/(python\d(\.\d+)?t?|pypy\d(\.\d+)?)/(site|dist)-packages$"


class DirListing(Slotted):
    __slots__ = ("files", "subdirs", "links")

    files: list[str]  # names of files and file links
    subdirs: list[str]  # names of real directories
    links: set[str]  # names (files or dirs) that are symlinks

    def __init__(self, files: list[str] | None = None, subdirs: list[str] | None = None,
                 links: set[str] | None = None) -> None:
        self.files = [] if files is None else files
        self.subdirs = [] if subdirs is None else subdirs
        self.links = set() if links is None else links


PYCACHE = "__pycache__"
# The listing of a directory not listed yet (see DeferredListings).
DEFERRED = DirListing()


class DeferredListings(dict):  # type: ignore[type-arg]
    """Directory listings (relative path -> DirListing) where bytecode caches are listed only
    when first asked for.

    A site dir's ``__pycache__`` directories hold nearly half its files (a ``.pyc`` for every
    module), and only a strip that removes an ``__init__.py`` needs to look into one. Each is
    known from its parent's listing, so ``in`` answers at once; getting its listing (``[]``,
    ``get``) lists it then, and anything that goes over every listing (``items()``,
    ``values()``, iteration, ``len``) lists them all first.
    """

    def __init__(self, walk: Callable[[str], Iterator[tuple[str, DirListing]]]) -> None:
        super().__init__()
        self._walk = walk

    def update(self, items: Iterable[tuple[str, DirListing]]) -> None:  # type: ignore[override]
        for key, listing in items:
            dict.__setitem__(self, key, listing)

    def _listed(self, key: str) -> None:
        listing = dict.get(self, key)
        if listing is DEFERRED:
            self.update(self._walk(key))
        elif listing is None and PYCACHE in key:
            # Below a cache not listed yet (a hostile tree may nest directories there): only the
            # first cache on the way down is ever deferred, and listing it lists all below it.
            parts = key.split("/")
            if PYCACHE in parts[:-1]:
                cache = "/".join(parts[: parts.index(PYCACHE) + 1])
                if dict.get(self, cache) is DEFERRED:
                    self.update(self._walk(cache))

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and dict.get(self, key) is None:
            self._listed(key)
        return dict.__contains__(self, key)

    def _list_all(self) -> None:
        for key in [key for key, listing in dict.items(self) if listing is DEFERRED]:
            self._listed(key)

    def __getitem__(self, key: str) -> DirListing:
        listing = dict.get(self, key)
        if listing is None or listing is DEFERRED:
            self._listed(key)
        return dict.__getitem__(self, key)

    def get(self, key: str, default: DirListing | None = None) -> DirListing | None:  # type: ignore[override]
        listing = dict.get(self, key)
        if listing is None or listing is DEFERRED:  # the common case, a listed one, costs one lookup
            self._listed(key)
            listing = dict.get(self, key)
        return default if listing is None else listing

    def items(self):  # type: ignore[no-untyped-def]
        self._list_all()
        return dict.items(self)

    def values(self):  # type: ignore[no-untyped-def]
        self._list_all()
        return dict.values(self)

    def keys(self):  # type: ignore[no-untyped-def]
        self._list_all()
        return dict.keys(self)

    def __iter__(self) -> Iterator[str]:
        self._list_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._list_all()
        return dict.__len__(self)


def listed_items(dirs: dict[str, DirListing]) -> Iterator[tuple[str, DirListing]]:
    """The listings made so far, without listing the deferred bytecode caches: for a caller
    that never looks into a ``__pycache__`` (and its subdirectories), such as the scan."""
    for directory, listing in dict.items(dirs):
        if listing is not DEFERRED:
            yield directory, listing


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
        self._site_fd: int | None = None
        # path -> (device, inode, size, modification time) of the file the first read of it
        # found: a change planned from what was read checks that the file is still that one
        # (see journal.identities_at_plan).
        self.read_identities: dict[str, tuple[int, int, int, int]] = {}

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
            listings = DeferredListings(self._walk)
            with gc_paused():
                listings.update(self._walk(""))
            self._dirs = listings
        return self._dirs

    def _walk(self, top: str) -> Iterator[tuple[str, DirListing]]:
        """Listings of ``top`` and the directories below it. From the root, a bytecode cache is
        not listed but left to :class:`DeferredListings`; from a cache, everything below it is
        listed (so no cache is ever deferred inside another)."""
        deferring = not top
        pending = [top]
        base = os.fspath(self.site_dir)
        deferred: list[str] = []
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
                            below = f"{rel}/{entry.name}" if rel else entry.name
                            if entry.name == PYCACHE and deferring:
                                deferred.append(below)
                            else:
                                pending.append(below)
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
            for below in deferred:
                yield below, DEFERRED
            deferred.clear()

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
        directory, _, name = rel.rpartition("/")
        listing = self.dirs.get(directory)
        if not rel or (listing is not None and name in listing.links):
            path = os.path.realpath(f"{self.site_dir}/{rel}" if rel else self.site_dir)
            if os.path.commonpath([path, self._real_boundary]) != self._real_boundary:
                raise OutsideRootError(str(self.path_of(rel)), "the root")
            return read_regular(path, limit, within=self._real_boundary)
        site_fd = self._site_fd if self._site_fd is not None else self._site_descriptor()
        try:
            data, found = read_regular_status(rel, limit, dir_fd=site_fd, within=self._real_boundary)
        except BadInputError as exc:
            exc.path = str(self.path_of(rel))  # safeio saw only the path below the site dir
            raise
        # The first read is kept: what was analysed came from it.
        self.read_identities.setdefault(rel, (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns))
        return data

    def _site_descriptor(self) -> int:
        """The site dir, opened once: a file below it is opened by its path from there, so the
        kernel looks up only the components below the site dir, not the whole absolute path,
        for each of the thousands of files a scan reads. What is opened is still checked to
        lie inside the root (``within``): a directory on the way may be a link."""
        if self._site_fd is None:
            try:
                fd = os.open(self.site_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as exc:
                raise BadInputError(f"cannot open directory: {exc.strerror or exc}", str(self.site_dir)) from exc
            self._close_site_fd = weakref.finalize(self, os.close, fd)
            self._site_fd = fd
        return self._site_fd

    def close(self) -> None:
        """Close the site dir's descriptor, if a read opened it (a later read opens it again)."""
        if self._site_fd is not None:
            self._close_site_fd()
            self._site_fd = None

    def is_link(self, rel: str) -> bool:
        directory, _, name = rel.rpartition("/")
        listing = self.dirs.get(directory)
        return listing is not None and name in listing.links

    def climb_limit(self) -> int:
        if self.root is not None:
            inside = os.path.relpath(self.site_dir, self.root)
            return 0 if inside == "." else len(Path(inside).parts)
        return 3 if re.search(_SCHEME_SITE_DIR, Path(os.path.abspath(self.site_dir)).as_posix()) else 0

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
