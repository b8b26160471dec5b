"""Wheels as sources: :class:`WheelSource` implements the ``Source`` protocol over the members
of a ``.whl`` file. The wheel is shown as installed into a site dir: members of
``NAME-VER.data/purelib/`` and ``NAME-VER.data/platlib/`` appear without that prefix, where
installer puts them (both schemes are the site dir on every distro layout ns-strip serves);
every other member keeps its name in the archive (``NAME-VER.data/scripts/…`` stays under a
directory that is not an identifier, so detection passes it by). The RECORD read through the
source says the same: its rows for purelib/platlib members are shown with the installed path.

Everything is validated when the wheel is opened (:mod:`.archive`, :mod:`.record`), before any
result is used or anything is written; an unsafe wheel is refused with BadInputError (exit 3)
naming the member.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from installer.sources import WheelFile

from ..distributions import MAX_DIRECTORY_CHARS, RecordLine
from ..errors import BadInputError, UsageError
from ..extnames import is_extension_filename
from ..metadata_edit import csv_row, line_ending
from ..safeio import (
    MAX_RECORD_BYTES,
    FileTooLargeError,
    NotRegularFileError,
    open_regular,
)
from ..sources import DirListing, parent_of, stat_argument
from .archive import (
    CHUNK,
    WHEEL_NAME_FORM,
    ZIP_ERRORS,
    Member,
    check_directory_size,
    is_wheel_filename,
    member_chunks,
    read_member,
    reason,
    validate_members,
)
from .rawcopy import copy_range
from .record import Verified, parse_record_row, validate_layout, validate_record

# A member opened as a file is kept in memory up to this size, then in a temporary file.
_SPOOL_IN_MEMORY = 16 << 20

# Schemes installed into the site dir itself; their members are shown as installed.
SITE_SCHEMES = ("purelib", "platlib")

class WheelSource:
    """A validated wheel, read through the ``Source`` protocol (see the module docstring)."""

    def __init__(self, path: Path, handle: BinaryIO, archive: zipfile.ZipFile, members: dict[str, Member],
                 dist_info_dir: str, data_dir: str, label: str, verified: dict[str, Verified]) -> None:
        self.path = path
        self.label = label
        self.dist_info_dir = dist_info_dir
        self.data_dir = data_dir
        self._handle = handle  # the file validated is the file copied from, even if the path changes
        self._archive = archive
        self._members = members  # archive order
        self.verified = verified  # members whose content was checked against RECORD
        self._member_of: dict[str, str] = {}  # installed view path -> member name
        self._dirs: dict[str, DirListing] = {"": DirListing()}
        self._directory_chars = 0
        self._map_members()
        for listing in self._dirs.values():
            listing.files.sort()
            listing.subdirs.sort()
        self.record_member = f"{dist_info_dir}/RECORD"
        self.raw_record_lines, self._record_view = self._translate_record()

    # -- opening and validating ------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], label: str | None = None,
             verified: Mapping[str, Verified] | None = None) -> WheelSource:
        """Open and validate the wheel at ``path``; BadInputError if it is unsafe or malformed.

        ``verified``: members already checked in another wheel (for one just written from it):
        one found here exactly as described there is not read again.
        """
        wheel = Path(path)
        shown = label or str(path)
        if stat_argument(wheel) is None and not os.path.islink(wheel):
            raise UsageError("no such file", shown)
        if not is_wheel_filename(wheel.name):
            raise BadInputError(f"not a wheel file name (expected {WHEEL_NAME_FORM})", shown)
        # A FIFO or a device named like a wheel is refused, never waited on (a link the user
        # names is followed: the wheel is not inside a tree being processed).
        try:
            handle = os.fdopen(open_regular(wheel, follow_links=True), "rb")
        except NotRegularFileError as exc:
            raise BadInputError(f"is a {exc.kind}, not a wheel file", shown) from exc
        except BadInputError as exc:
            raise BadInputError(exc.message, shown) from exc
        try:
            check_directory_size(handle, shown)
            try:
                archive = zipfile.ZipFile(handle)
                archive.filename = os.fspath(wheel)  # installer takes name and version from it
            except ZIP_ERRORS as exc:
                raise BadInputError(f"not a readable zip archive ({reason(exc)})", shown) from exc
            members = validate_members(archive, handle, shown)
            wheel_file = WheelFile(archive)
            dist_info_dir, data_dir = validate_layout(wheel_file, archive.namelist(), shown)
            record = members.get(f"{dist_info_dir}/RECORD")

            def read_record() -> str:
                if record is None:
                    raise KeyError(f"There is no item named '{dist_info_dir}/RECORD' in the archive")
                try:
                    return read_member(handle.fileno(), record, MAX_RECORD_BYTES).decode("utf-8")
                except FileTooLargeError as exc:
                    raise FileTooLargeError(f"{shown}: member {record.name!r}", exc.size, exc.limit) from None

            checked = validate_record(wheel_file, archive, handle, members, read_record, shown, verified or {})
            return cls(wheel, handle, archive, members, dist_info_dir, data_dir, shown, checked)
        except BadInputError as exc:
            handle.close()
            if exc.path is None:
                exc.path = shown
            raise
        except ZIP_ERRORS as exc:
            handle.close()
            raise BadInputError(f"damaged archive ({reason(exc)})", shown) from exc

    def close(self) -> None:
        self._archive.close()
        self._handle.close()

    def __enter__(self) -> WheelSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _map_members(self) -> None:
        for name, member in self._members.items():
            shown = self._installed_path(name.rstrip("/"))
            if not shown:
                continue  # the NAME.data/purelib/ directory entry itself
            if shown in self._member_of:
                if member.is_dir and self._members[self._member_of[shown]].is_dir:
                    continue  # two entries for one directory say nothing different
                raise BadInputError(
                    f"members {self._member_of[shown]!r} and {name!r} both install as {shown!r}", self.label
                )
            self._member_of[shown] = name
            self._add_path(shown, member.is_dir, name)

    def _installed_path(self, name: str) -> str:
        for scheme in SITE_SCHEMES:
            prefix = f"{self.data_dir}/{scheme}"
            if name == prefix:
                return ""
            if name.startswith(prefix + "/"):
                return name[len(prefix) + 1:]
        return name

    def _add_path(self, path: str, is_dir: bool, member: str) -> None:
        """Enter a member's path in the listing. Its missing directories are found upwards from
        the member, so each is named once; their names are counted against the same budget as
        a tree's RECORDs, so members thousands deep cost at most that much."""
        clash = BadInputError(f"member {member!r} makes a path both a file and a directory", self.label)
        missing = []
        directory = path if is_dir else parent_of(path)
        while directory not in self._dirs:  # "" is always there
            missing.append(directory)
            self._directory_chars += len(directory)
            if self._directory_chars > MAX_DIRECTORY_CHARS:
                raise BadInputError(
                    f"members name over {MAX_DIRECTORY_CHARS} characters of distinct directories "
                    "(paths nested too deep, or too many of them); not read", self.label)
            directory = parent_of(directory)
        for directory in reversed(missing):
            above, _, name = directory.rpartition("/")
            parent = self._dirs[above]
            if name in parent.files:
                raise clash
            self._dirs[directory] = DirListing()
            parent.subdirs.append(name)
        if not is_dir:
            parent = self._dirs[parent_of(path)]
            name = path.rpartition("/")[2]
            if name in parent.subdirs:
                raise clash
            parent.files.append(name)

    def _translate_record(self) -> tuple[list[RecordLine], bytes]:
        """RECORD rows by member name (for the writer), and RECORD as the installed view shows it."""
        text = self._read_member(self.record_member, MAX_RECORD_BYTES).decode("utf-8")
        raw_lines: list[RecordLine] = []
        shown_lines: list[str] = []
        installed = {member: shown for shown, member in self._member_of.items()}
        for line in text.splitlines(keepends=True):
            if not line.strip():
                raw_lines.append(RecordLine(line, None))
                shown_lines.append(line)
                continue
            path, hash_, size = parse_record_row(line.rstrip("\r\n"))
            raw_lines.append(RecordLine(line, path))
            shown = installed.get(path, path)
            if shown == path:
                shown_lines.append(line)
            else:
                shown_lines.append(csv_row([shown, hash_, size], line_ending(line)))
        return raw_lines, "".join(shown_lines).encode("utf-8")

    # -- the Source protocol ---------------------------------------------------------------

    @property
    def dirs(self) -> dict[str, DirListing]:
        return self._dirs

    def read_bytes(self, path: str, limit: int = MAX_RECORD_BYTES) -> bytes:
        """A member's content, if it declares at most ``limit`` bytes (else FileTooLargeError)."""
        member = self.member_of(path)
        if member == self.record_member:
            return self._record_view
        return self._read_member(member, limit)

    def _read_member(self, member: str, limit: int) -> bytes:
        try:
            return read_member(self._handle.fileno(), self._members[member], limit)
        except FileTooLargeError as exc:
            raise FileTooLargeError(f"{self.label}: member {member!r}", exc.size, exc.limit) from None
        except BadInputError as exc:
            raise BadInputError(exc.message, self.label) from exc
        except ZIP_ERRORS as exc:
            raise BadInputError(f"cannot read member {member!r} ({reason(exc)})", self.label) from exc

    @contextlib.contextmanager
    def open_member(self, path: str) -> Iterator[BinaryIO]:
        """A member's content as a seekable file, however large: decompressed in bounded chunks
        into a temporary file that stays in memory only while it is small."""
        member = self.member_of(path)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            buffer = memoryview(bytearray(CHUNK))
            try:
                for chunk in member_chunks(self._handle.fileno(), self._members[member], buffer):
                    spool.write(chunk)
            except BadInputError as exc:
                raise BadInputError(exc.message, self.label) from exc
            except ZIP_ERRORS as exc:
                raise BadInputError(f"cannot read member {member!r} ({reason(exc)})", self.label) from exc
            spool.seek(0)
            yield spool

    def link_leaves_root(self, path: str) -> bool:
        return False  # symbolic link members are refused when the wheel is opened

    def is_link(self, path: str) -> bool:
        return False

    def climb_limit(self) -> int:
        return 0  # member names never climb; a RECORD row that does names no member

    # -- for writers and other commands ----------------------------------------------------

    def member_of(self, path: str) -> str:
        """The archive member behind an installed-view path."""
        try:
            return self._member_of[path.rstrip("/")]
        except KeyError:
            raise BadInputError(f"no member installs as {path!r}", self.label) from None

    def has_path(self, path: str) -> bool:
        return path.rstrip("/") in self._member_of

    def member_names(self) -> list[str]:
        return list(self._members)

    def extension_paths(self) -> list[str]:
        """The installed paths of every compiled extension module (``.so``/``.pyd``) member.

        For ``ns-strip ext`` on wheels: the path is the one the module has once installed,
        so its dotted name can be derived from it as for a site dir; read each with
        :meth:`open_member`.
        """
        return [shown for shown, member in self._member_of.items()
                if not self._members[member].is_dir and is_extension_filename(shown.rpartition("/")[2])]

    def copy_archive(self, target: BinaryIO) -> None:
        """Write the whole archive, as validated, to ``target``."""
        size = os.fstat(self._handle.fileno()).st_size
        if copy_range(self._handle.fileno(), 0, size, target) != size:
            raise BadInputError("the wheel shrank while it was being copied", self.label)

    def member(self, name: str) -> Member:
        return self._members[name]

    def copy_raw_member(self, name: str, target: BinaryIO) -> None:
        """Write a member's stored (still compressed) bytes to ``target``."""
        member = self._members[name]
        if copy_range(self._handle.fileno(), member.data_offset, member.info.compress_size,
                       target) != member.info.compress_size:
            raise BadInputError(f"member {name!r} is truncated", self.label)


