"""Changing a tree through directory file descriptors, never through a path a link could redirect.

A site dir is filled by third-party code, and ns-strip runs as root: between the plan and each
step of its apply, a directory of the plan may have been replaced by a symbolic link to
somewhere outside the root. So every operation here is relative to the site dir's own file
descriptor, opened once: each directory on the way is opened with ``O_DIRECTORY | O_NOFOLLOW``
from its parent, and the final name is renamed, removed or created with ``dir_fd=``. A link
anywhere on the way is an :class:`UnsafePathError`, never followed.

On top of that, a :class:`FdTree` can be told what the plan saw (:meth:`FdTree.expect`, the
:class:`Identity` of each path and directory, taken at plan time): every walk and every
:meth:`FdTree.check` compares what is there now with it, and a difference is a
:class:`TreeChangedError` (the caller refuses or rolls back), so a file or directory swapped
in between is never acted on.

Paths are POSIX, relative to the tree's base, already normalised (no ``.``, ``..`` or empty
component): callers build them from a scan or validate them first (journal plans).
"""

from __future__ import annotations

import errno
import os
import resource
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from . import safeio
from .errors import BadInputError
from .slotted import FrozenSlotted, set_field

OPEN_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Directory descriptors kept open between steps: every directory a change works in, when the
# descriptor limit allows (a change visits each one in several passes, and opening it again each
# time would double a large strip's time); beyond that the cache is emptied at the next safe
# point, so a tree of any size never runs out of descriptors.
_MAX_CACHED_DIRS = 16384


def _descriptor_budget() -> int:
    """How many directory descriptors to keep: raise the soft limit towards the hard one (a
    usual soft limit is 1024) up to what the cache needs, and keep half of it free."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = 2 * _MAX_CACHED_DIRS + 64
        if soft != resource.RLIM_INFINITY and soft < wanted:
            raised = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
            if raised > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
                soft = raised
    except (OSError, ValueError):
        soft = 1024
    if soft == resource.RLIM_INFINITY:
        return _MAX_CACHED_DIRS
    return max(16, min(_MAX_CACHED_DIRS, soft // 2 - 32))


class Identity(FrozenSlotted):
    """What a path was when the plan looked at it: the same inode of the same type, and for a
    regular file also the same size and modification time (so a file rewritten in place, a
    namespace ``__init__.py`` turned into a hybrid, does not pass for the one planned). Not
    the change time: renaming one hard link of a file changes it for all its other links,
    and trees deduplicated with hard links are common."""

    __slots__ = ("dev", "ino", "kind", "size", "mtime_ns")

    dev: int
    ino: int
    kind: int  # stat.S_IFMT
    size: int | None
    mtime_ns: int | None

    def __init__(self, dev: int, ino: int, kind: int, size: int | None = None, mtime_ns: int | None = None) -> None:
        set_field(self, "dev", dev)
        set_field(self, "ino", ino)
        set_field(self, "kind", kind)
        set_field(self, "size", size)
        set_field(self, "mtime_ns", mtime_ns)

    @classmethod
    def of(cls, info: os.stat_result) -> Identity:
        kind = stat.S_IFMT(info.st_mode)
        if kind == stat.S_IFREG:
            return cls(info.st_dev, info.st_ino, kind, info.st_size, info.st_mtime_ns)
        return cls(info.st_dev, info.st_ino, kind)

    def same_object(self, other: Identity) -> bool:
        """Same inode and type, whatever happened to its content (directories: entries change)."""
        return (self.dev, self.ino, self.kind) == (other.dev, other.ino, other.kind)


class UnsafePathError(OSError):
    """A symbolic link, or something else than a directory, where a path needs a directory."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(errno.ELOOP, what, path)
        self.path = path


class TreeChangedError(OSError):
    """A path is no longer what the plan saw."""

    def __init__(self, path: str, what: str = "changed since it was planned") -> None:
        super().__init__(errno.ESTALE, what, path)
        self.path = path


def parent_and_name(rel: str) -> tuple[str, str]:
    parent, _, name = rel.rpartition("/")
    return parent, name


def ancestors(rel: str) -> list[str]:
    """The directories leading to ``rel``, outermost first (the base "" not included)."""
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


class FdTree:
    """A directory opened once, and every operation below it by directory descriptors."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path  # for messages only; never opened again
        self.identity = Identity.of(os.fstat(fd))
        self._dirs: dict[str, tuple[int, Identity]] = {}
        self._verified: set[str] = set()  # directories checked since the last trim
        self._expected: dict[str, Identity] = {}
        self._max_cached = _descriptor_budget()

    def close(self) -> None:
        self.trim(0)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def shown(self, rel: str) -> str:
        """A path for a message."""
        return str(self.path / rel) if rel else str(self.path)

    # -- what the plan saw ------------------------------------------------------------------

    def expect(self, identities: Mapping[str, Identity]) -> None:
        """From now on, walks and checks compare with these (``{}`` to stop comparing)."""
        self._expected = dict(identities)
        self.trim()  # every directory is checked against them on its next use

    def expected(self) -> dict[str, Identity]:
        return dict(self._expected)

    def identities(self, paths: Iterable[str]) -> dict[str, Identity]:
        """The identity of every path and of each directory leading to it, as they are now.

        Raises UnsafePathError for a link on the way, FileNotFoundError for a missing path.
        """
        found: dict[str, Identity] = {}
        for rel in paths:
            for directory in ancestors(rel):
                if directory not in found:
                    found[directory] = self._dir(directory)[1]
            if rel not in found:
                info = self.lstat(rel)
                if info is None:
                    raise FileNotFoundError(errno.ENOENT, "no such file or directory", self.shown(rel))
                found[rel] = Identity.of(info)
        return found

    def check(self, rel: str, *, whole: bool = True) -> os.stat_result:
        """The path as it is now, after checking it against what the plan saw (when it saw it).

        ``whole``: compare size and times too (False: the same inode is enough, for a
        directory or a file this apply itself has renamed).
        """
        info = self.lstat(rel)
        if info is None:
            raise TreeChangedError(self.shown(rel), "is gone since it was planned")
        want = self._expected.get(rel)
        if want is not None:
            now = Identity.of(info)
            if not (now == want if whole and want.kind == stat.S_IFREG else now.same_object(want)):
                raise TreeChangedError(self.shown(rel))
        return info

    # -- directories --------------------------------------------------------------------------

    def trim(self, keep: int | None = None) -> None:
        """Start a new step: directories are checked again on their next use, and cached
        descriptors are closed when there are more than ``keep`` (default: as many as the
        descriptor limit allows). Called only between operations: no descriptor handed out is
        in use then."""
        self._verified.clear()
        if len(self._dirs) > (self._max_cached if keep is None else keep):
            for fd, _ in self._dirs.values():
                os.close(fd)
            self._dirs.clear()

    def dir_fd(self, rel: str) -> int:
        """A descriptor of directory ``rel`` ("" is the base), valid until the next trim.

        Each directory on the way is checked once per step (between two trims): that it is
        still a real directory, the one opened before and the one the plan saw."""
        return self._dir(rel)[0]

    def _dir(self, rel: str) -> tuple[int, Identity]:
        if not rel:
            return self.fd, self.identity
        if rel in self._verified:
            return self._dirs[rel]
        parent_fd = self.fd
        prefix = ""
        cached: tuple[int, Identity] | None = None
        for name in rel.split("/"):
            prefix = f"{prefix}/{name}" if prefix else name
            cached = self._dirs.get(prefix)
            if cached is not None and prefix in self._verified:
                parent_fd = cached[0]
                continue
            info = self._lstat_at(parent_fd, name, prefix)
            if info is None:
                raise FileNotFoundError(errno.ENOENT, "no such directory", self.shown(prefix))
            if not stat.S_ISDIR(info.st_mode):
                kind = safeio.file_kind(info.st_mode)
                raise UnsafePathError(self.shown(prefix), f"is a {kind}, not a directory")
            want = self._expected.get(prefix)
            if want is not None and (want.ino, want.dev, want.kind) != (info.st_ino, info.st_dev, stat.S_IFDIR):
                raise TreeChangedError(self.shown(prefix))
            if cached is not None and (cached[1].ino, cached[1].dev) != (info.st_ino, info.st_dev):
                raise TreeChangedError(self.shown(prefix), "was replaced while in use")
            if cached is None:
                try:
                    fd = os.open(name, OPEN_DIR_FLAGS, dir_fd=parent_fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise UnsafePathError(self.shown(prefix), "was replaced by a link or a file") from exc
                    raise
                opened = Identity.of(os.fstat(fd))
                if (opened.ino, opened.dev) != (info.st_ino, info.st_dev):  # swapped between lstat and open
                    os.close(fd)
                    raise TreeChangedError(self.shown(prefix), "was replaced while being opened")
                cached = self._dirs[prefix] = (fd, opened)
            self._verified.add(prefix)
            parent_fd = cached[0]
        assert cached is not None  # rel has at least one component
        return cached

    def _lstat_at(self, dir_fd: int, name: str, rel: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    # -- operations ---------------------------------------------------------------------------

    def lstat(self, rel: str) -> os.stat_result | None:
        """The path's own status (a link is not followed), or None when there is nothing."""
        if not rel:
            return os.fstat(self.fd)
        parent, name = parent_and_name(rel)
        try:
            parent_fd = self.dir_fd(parent)
        except FileNotFoundError:
            return None
        return self._lstat_at(parent_fd, name, rel)

    def listdir(self, rel: str) -> list[str]:
        return os.listdir(self.dir_fd(rel))

    def rename(self, source: str, target: str) -> None:
        """Rename (replacing a file at ``target``); both parents reached without links."""
        source_parent, source_name = parent_and_name(source)
        target_parent, target_name = parent_and_name(target)
        source_fd = self.dir_fd(source_parent)
        target_fd = self.dir_fd(target_parent)
        os.rename(source_name, target_name, src_dir_fd=source_fd, dst_dir_fd=target_fd)

    def unlink(self, rel: str) -> None:
        parent, name = parent_and_name(rel)
        os.unlink(name, dir_fd=self.dir_fd(parent))

    def rmdir(self, rel: str) -> None:
        parent, name = parent_and_name(rel)
        fd = self.dir_fd(parent)
        cached = self._dirs.pop(rel, None)
        self._verified.discard(rel)
        if cached is not None:
            os.close(cached[0])
        os.rmdir(name, dir_fd=fd)

    def mkdir(self, rel: str, mode: int) -> None:
        parent, name = parent_and_name(rel)
        fd = self.dir_fd(parent)
        os.mkdir(name, mode, dir_fd=fd)
        # mkdir applies the umask; the mode must be the one asked for (a directory restored
        # by a rollback gets its old mode back).
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) != mode:
            new_fd = os.open(name, OPEN_DIR_FLAGS, dir_fd=fd)
            try:
                os.fchmod(new_fd, mode)
            finally:
                os.close(new_fd)

    def create(self, rel: str, data: bytes, mode: int | None = None, *, sync: bool = False) -> None:
        """Write a new file (never an existing one, never through a link)."""
        parent, name = parent_and_name(rel)
        fd = os.open(name, _CREATE_FLAGS, 0o644 if mode is None else mode, dir_fd=self.dir_fd(parent))
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if mode is not None:
                os.fchmod(fd, mode)  # the umask does not apply to a staged copy of a file
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def read(self, rel: str, limit: int | None) -> bytes:
        """A regular file's content, bounded (safeio's rules: no link, no FIFO, no device)."""
        parent, name = parent_and_name(rel)
        try:
            return safeio.read_regular(name, limit, dir_fd=self.dir_fd(parent))
        except BadInputError as exc:
            exc.path = self.shown(rel)  # safeio saw only the last component
            raise

    def open_for_sync(self, rel: str) -> int:
        """A descriptor to ``fsync`` the path (a file or a directory) with; the caller closes it.
        A directory's own cached descriptor is duplicated so a trim cannot close it."""
        info = self.lstat(rel)
        if info is not None and stat.S_ISDIR(info.st_mode):
            return os.dup(self.dir_fd(rel))
        parent, name = parent_and_name(rel)
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=self.dir_fd(parent))

    def remove_tree(self, rel: str) -> None:
        """Remove a directory and everything in it, without following any link (a link is
        removed as a link). Iterative: a deep tree cannot exhaust the stack."""
        pending = [rel]
        emptied: list[str] = []
        while pending:
            directory = pending.pop()
            emptied.append(directory)
            for name in self.listdir(directory):
                child = f"{directory}/{name}"
                info = self.lstat(child)
                if info is not None and stat.S_ISDIR(info.st_mode):
                    pending.append(child)
                elif info is not None:
                    self.unlink(child)
            self.trim()
        for directory in reversed(emptied):
            self.rmdir(directory)

