"""Wheels as sources, and a writer that rewrites a wheel without recompressing it.

Reading. :class:`WheelSource` implements the ``Source`` protocol over the members of a ``.whl``
file. The wheel is shown as installed into a site dir: members of ``NAME-VER.data/purelib/``
and ``NAME-VER.data/platlib/`` appear without that prefix, where installer puts them (both
schemes are the site dir on every distro layout ns-strip serves); every other member keeps
its name in the archive (``NAME-VER.data/scripts/…`` stays under a directory that is not an
identifier, so detection passes it by). The RECORD read through the source says the same: its
rows for purelib/platlib members are shown with the installed path.

Everything is validated when the wheel is opened, before any result is used or anything is
written; an unsafe wheel is refused with BadInputError (exit 3) naming the member: ``..`` or
absolute names, duplicate members, symbolic links and other special files, encryption, member
data that overlaps or runs past the archive, sizes that look like a zip bomb, and a RECORD that
does not match the members (installer's ``validate_record`` for unlisted members, hashes and
sizes; this module adds rows naming no member).

Writing. :func:`write_wheel` produces a new archive from the old one, less some members, with
some replaced, and a RECORD derived from the old one. ``zipfile`` can only add a member by
compressing it again, which would change every byte and cost time, so this module writes the
ZIP structures itself (about a hundred lines, ZIP spec APPNOTE 4.3): for a member kept as it is
the compressed bytes are copied raw, with a fresh local header built from the central
directory's values (so a data descriptor is never needed). The result is reproducible: the same
input gives the same bytes. A member that must be written anew keeps the original member's
timestamp, or takes ``SOURCE_DATE_EPOCH`` when that is set. The archive is written to a
temporary file beside the output, synced, opened again and validated like any input, and only
then moved into place with ``os.replace``: a refused or failed write leaves nothing behind.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import shutil
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from installer.exceptions import InstallerError
from installer.records import InvalidRecordEntry, parse_record_file
from installer.sources import WheelFile
from installer.utils import parse_wheel_filename

from . import journal
from .distributions import RecordLine
from .errors import ApplyError, BadInputError, UsageError
from .extnames import is_extension_filename
from .metadata_edit import csv_row, line_ending, rewrite_record
from .sources import DirListing, Source, TreeSource, parent_of

WHEEL_SUFFIX = ".whl"
# Schemes installed into the site dir itself; their members are shown as installed.
SITE_SCHEMES = ("purelib", "platlib")

# Zip bomb limits. A member may expand at most MAX_RATIO times its compressed size once it is
# larger than RATIO_FLOOR (small members of repeated text compress far better than that and are
# harmless); all members together may hold at most MAX_TOTAL_UNCOMPRESSED bytes. Deflate
# itself cannot exceed about 1032:1, so a member declaring more is lying about its size.
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20
MAX_TOTAL_UNCOMPRESSED = 3 << 30
ALLOWED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
SIGNATURE_FILES = ("RECORD.jws", "RECORD.p7s")

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL_HEADER = struct.Struct("<4sBBHHHHHIIIHHHHHII")
_END_OF_CENTRAL_DIRECTORY = struct.Struct("<4sHHHHIIH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_EXTRA_ID = 0x0001
_FLAG_ENCRYPTED = 0x0001
_FLAG_DATA_DESCRIPTOR = 0x0008
_ZIP32_LIMIT = 0xFFFFFFFF
_ZIP32_COUNT_LIMIT = 0xFFFF
_DOS_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the first instant a ZIP timestamp can hold
_DOS_LAST = 4354819199  # 2107-12-31T23:59:59Z, the last one

# zipfile and the decompressors raise these for damaged archives; each is turned into a
# one-line BadInputError naming the wheel (and the member where one is being read).
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
               zlib.error, struct.error, RuntimeError, InstallerError)


WHEEL_NAME_FORM = "NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl"


def is_wheel_filename(name: str) -> bool:
    try:
        parse_wheel_filename(name)
    except (ValueError, InstallerError):
        return False
    return True


def is_wheel_path(path: str) -> bool:
    """Whether a command-line PATH names a wheel file (an unpacked ``x.whl/`` dir is a tree)."""
    return path.endswith(WHEEL_SUFFIX) and not os.path.isdir(path)


@dataclasses.dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    name_bytes: bytes  # the name exactly as stored in the local header
    local_extra: bytes
    data_offset: int  # where the compressed bytes start in the archive

    @property
    def name(self) -> str:
        return self.info.filename

    @property
    def is_dir(self) -> bool:
        return self.info.filename.endswith("/")


class WheelSource:
    """A validated wheel, read through the ``Source`` protocol (see the module docstring)."""

    def __init__(self, path: Path, handle: BinaryIO, archive: zipfile.ZipFile, members: dict[str, _Member],
                 dist_info_dir: str, data_dir: str, label: str) -> None:
        self.path = path
        self.label = label
        self.dist_info_dir = dist_info_dir
        self.data_dir = data_dir
        self._handle = handle  # the file validated is the file copied from, even if the path changes
        self._archive = archive
        self._members = members  # archive order
        self._member_of: dict[str, str] = {}  # installed view path -> member name
        self._dirs: dict[str, DirListing] = {"": DirListing()}
        self._map_members()
        for listing in self._dirs.values():
            listing.files.sort()
            listing.subdirs.sort()
        self.record_member = f"{dist_info_dir}/RECORD"
        self.raw_record_lines, self._record_view = self._translate_record()

    # -- opening and validating ------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str], label: str | None = None) -> WheelSource:
        """Open and validate the wheel at ``path``; BadInputError if it is unsafe or malformed."""
        wheel = Path(path)
        shown = label or str(path)
        if not wheel.exists():
            raise UsageError("no such file", shown)
        if not wheel.is_file():
            raise UsageError("not a regular file", shown)
        if not is_wheel_filename(wheel.name):
            raise BadInputError(f"not a wheel file name (expected {WHEEL_NAME_FORM})", shown)
        try:
            handle = open(wheel, "rb")
        except OSError as exc:
            raise BadInputError(f"cannot read: {_reason(exc)}", shown) from exc
        try:
            try:
                archive = zipfile.ZipFile(handle)
            except _ZIP_ERRORS as exc:
                raise BadInputError(f"not a readable zip archive ({_reason(exc)})", shown) from exc
            members = _validate_members(archive, handle, shown)
            wheel_file = WheelFile(archive)
            dist_info_dir, data_dir = _validate_layout(wheel_file, shown)
            _validate_record(wheel_file, archive, members, dist_info_dir, shown)
            return cls(wheel, handle, archive, members, dist_info_dir, data_dir, shown)
        except BadInputError:
            handle.close()
            raise
        except _ZIP_ERRORS as exc:
            handle.close()
            raise BadInputError(f"damaged archive ({_reason(exc)})", shown) from exc

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
        parts = path.split("/")
        clash = BadInputError(f"member {member!r} makes a path both a file and a directory", self.label)
        for depth in range(1, len(parts) + 1 if is_dir else len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in self._dirs:
                parent = self._dirs[parent_of(directory)]
                if parts[depth - 1] in parent.files:
                    raise clash
                self._dirs[directory] = DirListing()
                parent.subdirs.append(parts[depth - 1])
        if not is_dir:
            parent = self._dirs[parent_of(path)]
            if parts[-1] in parent.subdirs:
                raise clash
            parent.files.append(parts[-1])

    def _translate_record(self) -> tuple[list[RecordLine], bytes]:
        """RECORD rows by member name (for the writer), and RECORD as the installed view shows it."""
        text = self._archive.read(self.record_member).decode("utf-8")
        raw_lines: list[RecordLine] = []
        shown_lines: list[str] = []
        installed = {member: shown for shown, member in self._member_of.items()}
        for line in text.splitlines(keepends=True):
            if not line.strip():
                raw_lines.append(RecordLine(line, None))
                shown_lines.append(line)
                continue
            path, hash_, size = next(parse_record_file([line.rstrip("\r\n")]))
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

    def read_bytes(self, path: str) -> bytes:
        member = self.member_of(path)
        if member == self.record_member:
            return self._record_view
        try:
            return self._archive.read(member)
        except _ZIP_ERRORS as exc:
            raise BadInputError(f"cannot read member {member!r} ({_reason(exc)})", self.label) from exc

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

    def extension_members(self) -> Iterator[tuple[str, bytes]]:
        """``(installed path, bytes)`` of every compiled extension module (``.so``/``.pyd``) member.

        For ``ns-strip ext`` on wheels: the path is the one the module has once installed,
        so its dotted name can be derived from it as for a site dir.
        """
        for shown, member in self._member_of.items():
            if not self._members[member].is_dir and is_extension_filename(shown.rpartition("/")[2]):
                yield shown, self.read_bytes(shown)

    def copy_archive(self, target: BinaryIO) -> None:
        """Write the whole archive, as validated, to ``target``."""
        self._handle.seek(0)
        shutil.copyfileobj(self._handle, target)

    def raw_member(self, name: str) -> tuple[_Member, bytes]:
        """A member and its stored (still compressed) bytes."""
        member = self._members[name]
        self._handle.seek(member.data_offset)
        data = self._handle.read(member.info.compress_size)
        if len(data) != member.info.compress_size:
            raise BadInputError(f"member {name!r} is truncated", self.label)
        return member, data


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _validate_members(archive: zipfile.ZipFile, handle: BinaryIO, label: str) -> dict[str, _Member]:
    infos = archive.infolist()
    counts = collections.Counter(info.filename for info in infos)
    total = 0
    for info in infos:
        name = info.filename
        _check_member_name(info, label)
        if counts[name] > 1:
            raise BadInputError(f"member {name!r} appears {counts[name]} times", label)
        kind = stat.S_IFMT(info.external_attr >> 16)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise BadInputError(f"member {name!r} is a symbolic link", label)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise BadInputError(f"member {name!r} is a special file (mode {oct(info.external_attr >> 16)})", label)
        if info.flag_bits & _FLAG_ENCRYPTED:
            raise BadInputError(f"member {name!r} is encrypted", label)
        if info.compress_type not in ALLOWED_METHODS:
            raise BadInputError(f"member {name!r} uses unsupported compression method {info.compress_type}", label)
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise BadInputError(
                f"member {name!r} declares {info.file_size} bytes from {info.compress_size} compressed "
                f"(more than {MAX_RATIO}:1); refusing a likely zip bomb", label,
            )
        total += info.file_size
    if total > MAX_TOTAL_UNCOMPRESSED:
        raise BadInputError(
            f"members add up to {total} bytes uncompressed, more than the {MAX_TOTAL_UNCOMPRESSED} "
            "bytes ns-strip accepts; refusing a likely zip bomb", label,
        )
    return _read_local_headers(archive, handle, label)


def _check_member_name(info: zipfile.ZipInfo, label: str) -> None:
    name = info.filename
    if info.orig_filename != name:
        raise BadInputError(f"member name {info.orig_filename!r} holds a NUL byte", label)
    if "\\" in name:
        raise BadInputError(f"member name {name!r} holds a backslash", label)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BadInputError(f"member {name!r} has an absolute name", label)
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if ".." in parts:
        raise BadInputError(f"member {name!r} climbs out of the archive with '..'", label)
    if any(part in ("", ".") for part in parts):
        raise BadInputError(f"member name {name!r} is not a normal path (empty or '.' part)", label)


def _read_local_headers(archive: zipfile.ZipFile, handle: BinaryIO, label: str) -> dict[str, _Member]:
    """Read every member's local header: its name must match, its data must lie inside the
    archive, and no two members' data may overlap (the trick of non-recursive zip bombs)."""
    archive_size = os.fstat(handle.fileno()).st_size
    members: dict[str, _Member] = {}
    spans = []
    for info in archive.infolist():
        name = info.filename
        handle.seek(info.header_offset)
        fixed = handle.read(_LOCAL_HEADER.size)
        if len(fixed) != _LOCAL_HEADER.size or fixed[:4] != _LOCAL_SIGNATURE:
            raise BadInputError(f"member {name!r} has no local header where the directory says", label)
        fields = _LOCAL_HEADER.unpack(fixed)
        name_length, extra_length = fields[9], fields[10]
        name_bytes = handle.read(name_length)
        local_extra = handle.read(extra_length)
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        if name_bytes.decode(encoding, errors="replace") != info.orig_filename:
            raise BadInputError(f"member {name!r} has another name in its local header", label)
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        end = start + info.compress_size
        if end > archive_size:
            raise BadInputError(f"member {name!r} runs past the end of the archive", label)
        spans.append((info.header_offset, end, name))
        members[name] = _Member(info, name_bytes, local_extra, start)
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise BadInputError(f"members {first!r} and {second!r} overlap in the archive", label)
    return members


def _validate_layout(wheel_file: WheelFile, label: str) -> tuple[str, str]:
    try:
        dist_info_dir = wheel_file.dist_info_dir
    except ValueError as exc:
        raise BadInputError(getattr(exc, "reason", str(exc)), label) from exc
    return dist_info_dir, wheel_file.data_dir


def _validate_record(wheel_file: WheelFile, archive: zipfile.ZipFile, members: Mapping[str, _Member],
                     dist_info_dir: str, label: str) -> None:
    try:
        wheel_file.validate_record(validate_contents=True)
    except WheelFile.validation_error as exc:
        issues = getattr(exc, "issues", [str(exc)])
        prefix = f"In {archive.filename}, "  # installer names the archive first
        first = issues[0].removeprefix(prefix)
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise BadInputError(f"RECORD does not match the archive: {first}{more}", label) from exc
    record = f"{dist_info_dir}/RECORD"
    text = archive.read(record).decode("utf-8")
    try:
        for path, _, _ in parse_record_file(text.splitlines()):
            if path not in members:
                raise BadInputError(f"RECORD lists {path!r}, which is not in the archive", label)
    except InvalidRecordEntry as exc:
        raise BadInputError(f"RECORD is malformed: {exc}", label) from exc


# -- writing ---------------------------------------------------------------------------------


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``-o``/``--in-place``: where a command that changes a wheel writes it."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT.whl",
                       help="for a wheel: write the result here (a directory: keep the wheel's file name)")
    where.add_argument("--in-place", action="store_true", help="for a wheel: replace it atomically")


def output_path(args: argparse.Namespace, wheel: bool, required: bool = True) -> Path | None:
    """Where to write, checking ``-o``/``--in-place`` against the kind of PATH (exit 2 if wrong)."""
    output = getattr(args, "output", None)
    in_place = getattr(args, "in_place", False)
    if not wheel:
        if output or in_place:
            raise UsageError("-o/--in-place apply to wheels only; a site dir is changed where it is", args.path)
        return None
    if in_place:
        return Path(args.path)
    if not output:
        if required:
            raise UsageError("a wheel is not changed in place unless asked: give -o OUT.whl or --in-place", args.path)
        return None
    target = Path(output)
    if target.is_dir():
        return target / Path(args.path).name
    if not is_wheel_filename(target.name):
        raise UsageError(f"the output must be a directory or a wheel file name ({WHEEL_NAME_FORM})", output)
    if not target.parent.is_dir():
        raise UsageError("the output's directory does not exist", output)
    return target


def member_timestamp(original: zipfile.ZipInfo) -> tuple[int, int, int, int, int, int]:
    """The timestamp of a member written anew: SOURCE_DATE_EPOCH if set, else the original's."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or not value.strip():
        return original.date_time
    try:
        epoch = int(value)
    except ValueError:
        raise UsageError(f"SOURCE_DATE_EPOCH must be an integer, not {value!r}") from None
    epoch = min(max(epoch, _DOS_EPOCH), _DOS_LAST)
    return time.gmtime(epoch)[:6]


def write_wheel(source: WheelSource, destination: Path, removed: Iterable[str], replaced: Mapping[str, bytes]) -> None:
    """Write ``source`` to ``destination`` without ``removed`` and with ``replaced`` contents.

    Paths are installed-view paths (as ``source.dirs`` shows them); a removed directory takes
    its directory entry, if the archive has one. RECORD is derived here from the archive's own
    (any RECORD in ``replaced`` is ignored), and a signature over the old RECORD is dropped.
    """
    removed_members = {source.member_of(path) for path in removed if source.has_path(path)}
    replaced_members = {source.member_of(path): data for path, data in replaced.items()}
    replaced_members.pop(source.record_member, None)
    signatures = {f"{source.dist_info_dir}/{name}" for name in SIGNATURE_FILES}
    removed_members |= signatures & set(source.member_names())
    replaced_members[source.record_member] = rewrite_record(
        source.raw_record_lines, removed_members, replaced_members
    )
    _write_atomically(source, destination, lambda handle: _write_archive(
        source, handle, removed_members, replaced_members
    ))


def apply_change(source: Source, output: Path | None, removed: Sequence[str], rewrites: Mapping[str, bytes],
                 empty_dirs: Sequence[str] = ()) -> None:
    """Remove files and directories and replace contents: in a site dir through the journal
    (all or nothing, in place), in a wheel by writing ``output`` (a copy when nothing changes)."""
    changed = bool(removed or rewrites or empty_dirs)
    if isinstance(source, WheelSource):
        assert output is not None
        if changed:
            write_wheel(source, output, [*removed, *empty_dirs], rewrites)
        else:
            copy_wheel(source, output)
    elif changed:
        assert isinstance(source, TreeSource)
        journal.apply(source.site_dir, removed, rewrites, empty_dirs)


def copy_wheel(source: WheelSource, destination: Path) -> None:
    """Write the wheel unchanged (``-o`` with nothing to change): a byte-for-byte copy."""
    if destination.exists() and os.path.samefile(destination, source.path):
        return

    _write_atomically(source, destination, source.copy_archive)


def _write_atomically(source: WheelSource, destination: Path, fill) -> None:
    """Write through a temporary file in the destination's directory, validate, then replace.

    The temporary file sits in a private directory under the input's own file name, so that
    the check below can open it as a wheel (installer reads name and version from the name).
    """
    directory = destination.parent
    mode = stat.S_IMODE(destination.stat().st_mode) if destination.exists() else None
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".ns-strip-", dir=directory))
    except OSError as exc:
        raise ApplyError(f"cannot write beside the output: {_reason(exc)}; nothing was written",
                         str(directory)) from exc
    temporary = scratch / source.path.name
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        try:
            WheelSource.open(temporary, label=str(destination)).close()
        except BadInputError as exc:
            raise ApplyError(f"the rewritten wheel does not validate ({exc.message}); nothing was written",
                             str(destination)) from exc
        os.replace(temporary, destination)
        journal._fsync_dir(directory)  # the rename itself is durable only once its directory is
    except OSError as exc:
        raise ApplyError(f"cannot write the wheel: {_reason(exc)}; nothing was written", str(destination)) from exc
    finally:
        if temporary.exists():
            temporary.unlink()
        scratch.rmdir()


@dataclasses.dataclass(frozen=True)
class _Written:
    """What the central directory needs to know about one member written to the new archive."""

    member: _Member
    method: int
    flags: int
    date_time: tuple[int, int, int, int, int, int]
    crc: int
    compress_size: int
    file_size: int
    offset: int


def _write_archive(source: WheelSource, handle, removed: set[str], replaced: Mapping[str, bytes]) -> None:
    written: list[_Written] = []
    offset = 0
    for name in source.member_names():
        if name in removed:
            continue
        member, stored = source.raw_member(name)
        info = member.info
        flags = info.flag_bits & ~_FLAG_DATA_DESCRIPTOR
        if name in replaced:
            data = replaced[name]
            method = info.compress_type if info.compress_type == zipfile.ZIP_STORED else zipfile.ZIP_DEFLATED
            stored = _compress(data, method)
            entry = _Written(member, method, flags, member_timestamp(info), zlib.crc32(data),
                             len(stored), len(data), offset)
        else:
            entry = _Written(member, info.compress_type, flags, info.date_time, info.CRC,
                             info.compress_size, info.file_size, offset)
        if max(entry.offset, entry.compress_size, entry.file_size) >= _ZIP32_LIMIT:
            raise BadInputError(f"member {name!r} is too large to rewrite (ZIP64 is not written)", source.label)
        header = _LOCAL_HEADER.pack(
            _LOCAL_SIGNATURE, info.extract_version, entry.flags, entry.method, *_dos_time(entry.date_time),
            entry.crc, entry.compress_size, entry.file_size, len(member.name_bytes),
            len(_without_zip64(member.local_extra)),
        )
        handle.write(header + member.name_bytes + _without_zip64(member.local_extra))
        handle.write(stored)
        offset += len(header) + len(member.name_bytes) + len(_without_zip64(member.local_extra)) + len(stored)
        written.append(entry)
    if len(written) >= _ZIP32_COUNT_LIMIT or offset >= _ZIP32_LIMIT:
        raise BadInputError("too many or too large members to rewrite (ZIP64 is not written)", source.label)
    directory_start = offset
    for entry in written:
        info = entry.member.info
        extra = _without_zip64(info.extra)
        record = _CENTRAL_HEADER.pack(
            _CENTRAL_SIGNATURE, info.create_version, info.create_system, info.extract_version, entry.flags,
            entry.method, *_dos_time(entry.date_time), entry.crc, entry.compress_size, entry.file_size,
            len(entry.member.name_bytes), len(extra), len(info.comment), 0, info.internal_attr,
            info.external_attr, entry.offset,
        )
        data = record + entry.member.name_bytes + extra + info.comment
        handle.write(data)
        offset += len(data)
    comment = source._archive.comment
    handle.write(_END_OF_CENTRAL_DIRECTORY.pack(
        _END_SIGNATURE, 0, 0, len(written), len(written), offset - directory_start, directory_start, len(comment),
    ) + comment)


def _compress(data: bytes, method: int) -> bytes:
    if method == zipfile.ZIP_STORED:
        return data
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def _dos_time(date_time: tuple[int, ...]) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


def _without_zip64(extra: bytes) -> bytes:
    """Extra fields less the ZIP64 one: sizes and offsets are written in the 32-bit fields."""
    kept = bytearray()
    position = 0
    while position + 4 <= len(extra):
        ident, size = struct.unpack_from("<HH", extra, position)
        block = extra[position:position + 4 + size]
        if len(block) != 4 + size:
            break  # a malformed tail carries nothing a reader could use; drop it
        if ident != _ZIP64_EXTRA_ID:
            kept += block
        position += 4 + size
    return bytes(kept)
