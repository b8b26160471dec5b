"""One change at a time per site dir: an exclusive ``flock`` on the site dir's own descriptor.

Every command that changes a tree (``strip`` of a site dir, ``ext --rename``,
``import-names --write``) holds the lock from before it reads the tree until its change is
complete, and an interrupted change is recovered only under it, so a second command never
mistakes the first one's live journal for an interrupted one. A dry run takes the lock shared:
it changes nothing, but waits until no change is half done.

The lock is taken on the directory itself, opened with ``O_DIRECTORY`` and, below ``--root``,
component by component without following links; it needs no lock file, which a hostile tree
could have planted as a FIFO, a link or a directory. It goes with the process: a ``kill -9``
releases it, and the next command recovers the journal. A command waits for the lock at most
``NS_STRIP_LOCK_TIMEOUT`` seconds (default 60; 0: do not wait), then fails (exit 4). On a file
system that cannot lock a directory (NFS), the change runs unlocked.

The same descriptor is the :class:`~ns_strip.fdtree.FdTree` the change is applied through, so
the site dir (and ``--root``) are opened once and cannot be swapped in between. Within one
process the lock is re-entrant: a nested request for the same directory gets the same tree.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import ApplyError, BadInputError, UsageError
from .fdtree import OPEN_DIR_FLAGS, FdTree
from .slotted import Slotted

LOCK_TIMEOUT_ENV = "NS_STRIP_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 60.0
# What flock on a directory fails with where the file system cannot lock one (NFS emulates
# flock with byte-range locks, which need a descriptor open for writing).
_NO_DIRECTORY_LOCKS = {errno.EBADF, errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


class _Held(Slotted):
    """A site dir this process has locked: its tree, how, and how many holders nest in it."""

    __slots__ = ("tree", "shared", "depth")

    def __init__(self, tree: FdTree, shared: bool, depth: int = 1) -> None:
        self.tree = tree
        self.shared = shared
        self.depth = depth


_held: dict[tuple[int, int], _Held] = {}


def lock_timeout() -> float:
    """Seconds to wait for the lock: ``NS_STRIP_LOCK_TIMEOUT``, else the default."""
    text = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise UsageError(f"{LOCK_TIMEOUT_ENV}={text!r}: not a number of seconds (0 or more)")
    return value


def open_site(site_dir: Path, root: Path | None = None) -> FdTree:
    """Open the site dir once as a descriptor: below ``root`` (a staging root the user named),
    each component of its real path without following links, so a link planted on the way
    after the check cannot lead elsewhere. Refuses (exit 3) a site dir that the path no longer
    names once opened."""
    try:
        if root is None:
            fd = os.open(site_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            fd = _open_below(root, site_dir)
    except OSError as exc:
        raise BadInputError(f"cannot open the site dir: {exc.strerror or exc}", str(site_dir)) from exc
    try:
        tree = FdTree(fd, site_dir)
        check_still_named(tree)
    except BaseException:
        os.close(fd)
        raise
    return tree


def check_still_named(tree: FdTree) -> None:
    """The scan read the site dir by its path: refuse (exit 3) when the path no longer names
    the directory the lock and the changes are on (it was swapped while being read)."""
    try:
        now = os.stat(tree.path)
    except OSError as exc:
        raise BadInputError(f"cannot stat the site dir: {exc.strerror or exc}; nothing was changed",
                            str(tree.path)) from exc
    if (now.st_dev, now.st_ino) != (tree.identity.dev, tree.identity.ino):
        raise BadInputError("the site dir was replaced while it was read; nothing was changed", str(tree.path))


def _open_below(root: Path, site_dir: Path) -> int:
    real_root = os.path.realpath(root)
    inside = os.path.relpath(os.path.realpath(site_dir), real_root)
    if inside == ".." or inside.startswith("../") or os.path.isabs(inside):
        raise BadInputError(f"resolves outside --root {root}", str(site_dir))
    fd = os.open(real_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if inside == ".":
        return fd
    try:
        for name in inside.split("/"):
            try:
                next_fd = os.open(name, OPEN_DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise BadInputError(f"{name!r} on the way from --root changed into a link or a file",
                                        str(site_dir)) from exc
                raise
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def locked_site(site_dir: Path, root: Path | None = None, *, shared: bool = False,
                timeout: float | None = None) -> Iterator[FdTree]:
    """The site dir as an :class:`FdTree`, locked (exclusive, or ``shared`` for a dry run)
    for the duration; waits at most ``timeout`` seconds (default: :func:`lock_timeout`)."""
    tree = open_site(site_dir, root)
    key = (tree.identity.dev, tree.identity.ino)
    held = _held.get(key)
    if held is not None:
        tree.close()
        if held.shared and not shared:
            raise ApplyError("cannot change a site dir this process holds for reading", str(site_dir))
        held.depth += 1
        try:
            yield held.tree
        finally:
            held.depth -= 1
        return
    try:
        _acquire(tree, shared, lock_timeout() if timeout is None else timeout)
    except BaseException:
        tree.close()
        raise
    _held[key] = _Held(tree, shared)
    try:
        yield tree
    finally:
        del _held[key]
        tree.close()  # closing the descriptor releases the lock


@contextlib.contextmanager
def locked_sites(sites: Sequence[tuple[Path, Path | None]], *, shared: bool = False) -> Iterator[list[FdTree]]:
    """Several site dirs (each a site dir and its ``--root``, as :func:`locked_site` takes them)
    locked together, each once, in the order of their device and inode numbers; gives their
    trees in the order of ``sites``. Every command that locks more than one takes them in this
    order, so two commands locking overlapping sets never each hold a lock the other waits for."""
    keys: list[tuple[int, int]] = []
    keyed: dict[tuple[int, int], tuple[Path, Path | None]] = {}
    for site_dir, root in sites:
        try:
            info = os.stat(site_dir)
        except OSError as exc:
            raise BadInputError(f"cannot look at the site dir: {exc.strerror or exc}", str(site_dir)) from exc
        keys.append((info.st_dev, info.st_ino))
        keyed.setdefault(keys[-1], (site_dir, root))
    with contextlib.ExitStack() as stack:
        trees = {key: stack.enter_context(locked_site(*keyed[key], shared=shared)) for key in sorted(keyed)}
        yield [trees[key] for key in keys]


def _acquire(tree: FdTree, shared: bool, timeout: float) -> None:
    operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        try:
            fcntl.flock(tree.fd, operation)
            return
        except OSError as exc:
            if exc.errno in _NO_DIRECTORY_LOCKS:
                return  # NFS cannot lock a directory: the change runs unlocked, as before locks
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                raise ApplyError(f"cannot lock the site dir: {exc.strerror or exc}; nothing was changed",
                                 tree.shown("")) from exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise ApplyError(
                f"another ns-strip is changing this site dir; gave up after {timeout:g} s "
                f"(set {LOCK_TIMEOUT_ENV} to wait longer); nothing was changed",
                tree.shown(""),
            )
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.2)
