"""Reading files of an untrusted tree: never block, never follow a link, never read without bound.

Everything below a site dir was put there by third-party code, and ns-strip runs as root. A FIFO
named ``__init__.py`` must not make a read wait forever, a link must not lead a read out of the
root, and a file of gigabytes must not be read into memory. Every read of a tree's file goes
through :func:`read_regular`, which opens without following a final link and without blocking,
checks with ``fstat`` that the open file is a regular one, and reads at most ``limit`` bytes.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import BadInputError

# Text files ns-strip parses (an __init__.py, a .pth, namespace_packages.txt, METADATA, RECORD):
# a namespace __init__.py is a few lines and a RECORD of a large distribution a few MiB. A file
# over its limit is not parsed; callers say what they do with it instead (keep it, report it).
MAX_INIT_BYTES = 1 << 20
MAX_TEXT_BYTES = 1 << 20
MAX_RECORD_BYTES = 64 << 20
# A .pth file is a few path lines or one import line per namespace (setuptools writes ~600 bytes
# per namespace): 64 KiB is a hundred namespaces. METADATA carries the whole project description,
# which can be large; only its headers are parsed.
MAX_PTH_BYTES = 64 << 10
# A module ns-strip looks into for imports of setuptools (NS403): larger ones are not read.
MAX_SOURCE_BYTES = 1 << 20
MAX_METADATA_BYTES = 16 << 20

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


class NotRegularFileError(BadInputError):
    """The path is a FIFO, socket, device, directory or link where a regular file was expected."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"is a {kind}, not a regular file; not read", path)
        self.kind = kind


class FileTooLargeError(BadInputError):
    """The file is larger than what ns-strip reads of its kind."""

    def __init__(self, path: str, size: int, limit: int) -> None:
        super().__init__(f"is {size} bytes, over the {limit}-byte limit for this kind of file; not read", path)
        self.size = size
        self.limit = limit


def file_kind(mode: int) -> str:
    """A file type in words, for messages."""
    if stat.S_ISREG(mode):
        return "regular file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def open_regular(path: str | os.PathLike[str], *, dir_fd: int | None = None, follow_links: bool = False) -> int:
    """Open a regular file for reading without following a final link and without blocking;
    see :func:`open_regular_sized`. Returns a file descriptor (the caller closes it)."""
    return open_regular_sized(path, dir_fd=dir_fd, follow_links=follow_links)[0]


def open_regular_sized(path: str | os.PathLike[str], *, dir_fd: int | None = None,
                       follow_links: bool = False) -> tuple[int, int]:
    """Open a regular file for reading (see :func:`open_regular_status`); returns a file
    descriptor (the caller closes it) and the file's size when it was opened."""
    fd, found = open_regular_status(path, dir_fd=dir_fd, follow_links=follow_links)
    return fd, found.st_size


def open_regular_status(path: str | os.PathLike[str], *, dir_fd: int | None = None,
                        follow_links: bool = False) -> tuple[int, os.stat_result]:
    """Open a regular file for reading without following a final link and without blocking.

    Returns a file descriptor (the caller closes it) and the file's status when it was opened
    (from the ``fstat`` that checks it: a reader needs no other system call to know where the
    file ends, or which file it read). Raises NotRegularFileError for anything but a regular file (a link included),
    BadInputError when it cannot be opened. ``follow_links``: for a path the user gave on the
    command line, not one found in a tree: a link is followed, and what it leads to must still
    be a regular file.

    A device is never opened: opening one runs its driver, and some act on open (a watchdog
    starts counting, a tape rewinds). So the path is first opened with ``O_PATH``, which
    reaches the inode without opening the file, its type is checked on that descriptor, and only
    a regular file is then opened for reading through ``/proc/self/fd`` (the same inode, so
    nothing swapped in between is read, and its check stands). Without ``O_PATH`` or ``/proc``
    the file is opened directly, non-blocking, and checked with ``fstat``.
    """
    shown = os.fspath(path)
    nofollow = 0 if follow_links else os.O_NOFOLLOW
    o_path = getattr(os, "O_PATH", 0)
    if o_path and _HAVE_PROC_FD:
        try:
            handle = os.open(path, o_path | nofollow | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as exc:
            raise BadInputError(f"cannot open: {exc.strerror or exc}", shown) from exc
        try:
            found = os.fstat(handle)
            if not stat.S_ISREG(found.st_mode):
                raise NotRegularFileError(shown, file_kind(found.st_mode))
            try:
                # The same inode as the one checked: nothing swapped in since is opened.
                return os.open(f"/proc/self/fd/{handle}", (_OPEN_FLAGS & ~os.O_NOFOLLOW)), found
            except OSError as exc:
                raise BadInputError(f"cannot open: {exc.strerror or exc}", shown) from exc
        finally:
            os.close(handle)
    try:
        fd = os.open(path, _OPEN_FLAGS & ~os.O_NOFOLLOW | nofollow, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link as the last component
            raise NotRegularFileError(shown, "symbolic link") from exc
        raise BadInputError(f"cannot open: {exc.strerror or exc}", shown) from exc
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise NotRegularFileError(shown, file_kind(found.st_mode))
    except BaseException:
        os.close(fd)
        raise
    return fd, found


_HAVE_PROC_FD = os.path.isdir("/proc/self/fd")


class OutsideRootError(BadInputError):
    """The file opened lies outside the directory it had to be in (a link, or a swapped one)."""

    def __init__(self, path: str, where: str) -> None:
        super().__init__(f"leads outside {where}; not read", path)


def check_within(fd: int, directory: str, shown: str) -> None:
    """Check that the open file ``fd`` lies inside ``directory`` (a resolved path).

    What is checked is the file actually opened, as the kernel names it in /proc/self/fd, so a
    link or a directory swapped between a check of the path and the open cannot lead a read
    out. Where /proc is missing the check is skipped: the open itself never followed a final
    link, and trees are listed without descending into linked directories.
    """
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return
    if opened != directory and not opened.startswith(directory.rstrip("/") + "/"):
        raise OutsideRootError(shown, directory)


def read_regular(path: str | os.PathLike[str], limit: int | None = MAX_TEXT_BYTES, *,
                 dir_fd: int | None = None, within: str | None = None) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes (None: no limit).

    Raises NotRegularFileError, FileTooLargeError or BadInputError; never blocks, never follows
    a final link. A file that grows while it is read is cut at ``limit`` + 1 bytes and refused.
    ``within``: a resolved directory the file opened must lie in (OutsideRootError otherwise).
    """
    return read_regular_status(path, limit, dir_fd=dir_fd, within=within)[0]


def read_regular_status(path: str | os.PathLike[str], limit: int | None = MAX_TEXT_BYTES, *,
                        dir_fd: int | None = None, within: str | None = None) -> tuple[bytes, os.stat_result]:
    """:func:`read_regular`, and the file's status when it was opened: which file was read (a
    change planned from the content can check that the file is still that one)."""
    shown = os.fspath(path)
    fd, found = open_regular_status(path, dir_fd=dir_fd)
    size = found.st_size
    try:
        if within is not None:
            check_within(fd, within, shown)
        if limit is not None and size > limit:
            raise FileTooLargeError(shown, size, limit)
        chunks = []
        total = 0
        # The first read asks for the size seen plus one byte (a buffer of the file's size, not
        # of a megabyte, for the many small files), so a file that did not grow is one read.
        want = min(size + 1, 1 << 20)
        while True:
            if limit is not None:
                want = min(want, limit + 1 - total)
            if want <= 0:
                raise FileTooLargeError(shown, total, limit or 0)
            try:
                chunk = os.read(fd, want)
            except OSError as exc:
                raise BadInputError(f"cannot read: {exc.strerror or exc}", shown) from exc
            if chunk:
                chunks.append(chunk)
                total += len(chunk)
            if len(chunk) < want:  # a regular file reads short only at its end
                return b"".join(chunks), found
            want = 1 << 20
    finally:
        os.close(fd)
