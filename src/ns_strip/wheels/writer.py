"""Writing a wheel: :func:`write_wheel` produces a new archive from the old one, less some
members, with some replaced, and a RECORD derived from the old one.

``zipfile`` can only add a member by compressing it again, which would change every byte and
cost time, so this module writes the ZIP structures itself (about a hundred lines, ZIP spec
APPNOTE 4.3): for a member kept as it is the compressed bytes are copied raw, with a fresh local
header built from the central directory's values (so a data descriptor is never needed). The
result is reproducible: the same input gives the same bytes. A member that must be written anew
keeps the original member's timestamp, or takes ``SOURCE_DATE_EPOCH`` when that is set. The
archive is written to a temporary file beside the output, synced, opened again and validated
like any input, and only then moved into place with ``os.replace``: a refused or failed write
leaves nothing behind. In that second validation a member copied raw is not decompressed and
hashed again: its bytes are the input's, whose hash was checked, so it is enough that the
output's directory gives it the input's method, CRC and sizes and its RECORD row is the input's
(copying goes through ``os.copy_file_range``, so the kernel moves those bytes without Python
reading them).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .. import journal
from ..errors import ApplyError, BadInputError, UsageError
from ..metadata_edit import rewrite_record
from ..sources import Source, TreeSource
from .archive import (
    FLAG_DATA_DESCRIPTOR,
    LOCAL_HEADER,
    LOCAL_SIGNATURE,
    SIGNATURE_FILES,
    ZIP32_LIMIT,
    ZIP64_EXTRA_ID,
    Member,
    reason,
)
from .record import Verified
from .source import WheelSource

_CENTRAL_HEADER = struct.Struct("<4sBBHHHHHIIIHHHHHII")
_END_OF_CENTRAL_DIRECTORY = struct.Struct("<4sHHHHIIH")
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_END_SIGNATURE = b"PK\x05\x06"
_ZIP32_COUNT_LIMIT = 0xFFFF
_DOS_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the first instant a ZIP timestamp can hold
_DOS_LAST = 4354819199  # 2107-12-31T23:59:59Z, the last one


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
    copied = {name: key for name, key in source.verified.items()
              if name not in removed_members and name not in replaced_members}
    _write_atomically(source, destination, lambda handle: _write_archive(
        source, handle, removed_members, replaced_members
    ), copied)


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

    _write_atomically(source, destination, source.copy_archive, source.verified)


def _write_atomically(source: WheelSource, destination: Path, fill, copied: Mapping[str, Verified]) -> None:
    """Write through a temporary file in the destination's directory, validate, then replace.

    The temporary file sits in a private directory under the input's own file name, so that
    the check below can open it as a wheel (installer reads name and version from the name).
    ``copied``: the members ``fill`` copies raw from ``source``, which are not hashed again.
    """
    directory = destination.parent
    mode = stat.S_IMODE(destination.stat().st_mode) if destination.exists() else None
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".ns-strip-", dir=directory))
    except OSError as exc:
        raise ApplyError(f"cannot write beside the output: {reason(exc)}; nothing was written",
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
            WheelSource.open(temporary, label=str(destination), verified=copied).close()
        except BadInputError as exc:
            raise ApplyError(f"the rewritten wheel does not validate ({exc.message}); nothing was written",
                             str(destination)) from exc
        os.replace(temporary, destination)
        journal._fsync_dir(directory)  # the rename itself is durable only once its directory is
    except OSError as exc:
        raise ApplyError(f"cannot write the wheel: {reason(exc)}; nothing was written", str(destination)) from exc
    finally:
        if temporary.exists():
            temporary.unlink()
        scratch.rmdir()


@dataclasses.dataclass(frozen=True)
class _Written:
    """What the central directory needs to know about one member written to the new archive."""

    member: Member
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
        member = source.member(name)
        info = member.info
        flags = info.flag_bits & ~FLAG_DATA_DESCRIPTOR
        stored = None  # kept members are copied raw, straight from the source
        if name in replaced:
            data = replaced[name]
            method = info.compress_type if info.compress_type == zipfile.ZIP_STORED else zipfile.ZIP_DEFLATED
            stored = _compress(data, method)
            entry = _Written(member, method, flags, member_timestamp(info), zlib.crc32(data),
                             len(stored), len(data), offset)
        else:
            entry = _Written(member, info.compress_type, flags, info.date_time, info.CRC,
                             info.compress_size, info.file_size, offset)
        if max(entry.offset, entry.compress_size, entry.file_size) >= ZIP32_LIMIT:
            raise BadInputError(f"member {name!r} is too large to rewrite (ZIP64 is not written)", source.label)
        local_extra = _without_zip64(member.local_extra)
        header = LOCAL_HEADER.pack(
            LOCAL_SIGNATURE, info.extract_version, entry.flags, entry.method, *_dos_time(entry.date_time),
            entry.crc, entry.compress_size, entry.file_size, len(member.name_bytes), len(local_extra),
        )
        handle.write(header + member.name_bytes + local_extra)
        if stored is None:
            source.copy_raw_member(name, handle)
        else:
            handle.write(stored)
        offset += len(header) + len(member.name_bytes) + len(local_extra) + entry.compress_size
        written.append(entry)
    if len(written) >= _ZIP32_COUNT_LIMIT or offset >= ZIP32_LIMIT:
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


# Copies this large or larger are made by copy_file_range.

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
        if ident != ZIP64_EXTRA_ID:
            kept += block
        position += 4 + size
    return bytes(kept)
