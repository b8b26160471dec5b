"""Making a change durable: ``fsync`` of many files and directories of an :class:`FdTree`.

The journal's order of syncs is what makes it all-or-nothing across a power cut: the staged
files before the plan that names them, the directories of the renames before the commit
marker. A large strip syncs thousands of files, and the file system commits concurrent syncs
together (one journal commit for many files instead of one each), so they are synced several
at once, through descriptors opened without following links.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .fdtree import FdTree

if TYPE_CHECKING:
    from concurrent.futures import Executor


class _SyncThreads:
    """Syncs descriptors several at once: the file system commits concurrent syncs together,
    one journal commit for many files instead of one each, which is most of a large strip's
    time. A few are synced in the calling thread, and so are all when no thread can be started
    (a run under an address-space limit). Each is on disk when :meth:`sync` returns; the first
    error is raised."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pool: Executor | None = None
        self.stack_size = 0

    def __enter__(self) -> _SyncThreads:
        if self.count >= 4:
            # Imported here: a single package's strip syncs a few files and need not pay for it.
            import threading
            from concurrent.futures import ThreadPoolExecutor

            # A syncing thread needs little stack; the default reserves 8 MiB of address space.
            self.stack_size = threading.stack_size(1 << 18)
            self.pool = ThreadPoolExecutor(max_workers=min(16, self.count))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.pool is not None:
            import threading

            self.pool.shutdown()
            threading.stack_size(self.stack_size)

    def sync(self, fn: Callable[[int], None], fds: list[int]) -> None:
        if self.pool is not None and len(fds) >= 4:
            try:
                for _ in self.pool.map(fn, fds):
                    pass
                return
            except RuntimeError:  # "can't start new thread": one after another, then
                pass
        for fd in fds:
            fn(fd)


def _sync_dir_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the renames are still atomic


def sync_paths(tree: FdTree, paths: Iterable[str], *, directories: bool) -> None:
    """fsync files (errors raised) or directories (best effort; a directory a later step
    removed is passed over), in chunks of descriptors opened through the tree."""
    paths = list(paths)
    chunk = 256
    with _SyncThreads(len(paths)) as threads:
        for start in range(0, len(paths), chunk):
            fds = []
            try:
                for rel in paths[start:start + chunk]:
                    try:
                        fds.append(tree.open_for_sync(rel))
                    except OSError:
                        if not directories:
                            raise
                threads.sync(_sync_dir_fd if directories else os.fsync, fds)
            finally:
                for fd in fds:
                    os.close(fd)
            tree.trim()
