"""A wheel's ZIP structure, read without trusting it: member names, kinds and sizes, local
headers, and the bytes of one member.

Everything here is checked before any member is used: ``..`` or absolute names, duplicate
members, symbolic links and other special files, encryption, member data that overlaps or runs
past the archive, and sizes that look like a zip bomb.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import stat
import struct
import zipfile
import zlib
from typing import BinaryIO

from installer.exceptions import InstallerError
from installer.utils import parse_wheel_filename

from ..errors import BadInputError

# Zip bomb limits. A member may expand at most MAX_RATIO times its compressed size once it is
# larger than RATIO_FLOOR (small members of repeated text compress far better than that and are
# harmless); all members together may hold at most MAX_TOTAL_UNCOMPRESSED bytes. Deflate
# itself cannot exceed about 1032:1, so a member declaring more is lying about its size.
MAX_RATIO = 200
RATIO_FLOOR = 1 << 20
MAX_TOTAL_UNCOMPRESSED = 3 << 30
ALLOWED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
SIGNATURE_FILES = ("RECORD.jws", "RECORD.p7s")

LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
LOCAL_SIGNATURE = b"PK\x03\x04"
ZIP64_EXTRA_ID = 0x0001
_FLAG_ENCRYPTED = 0x0001
FLAG_DATA_DESCRIPTOR = 0x0008
_FLAG_COMPRESSED_PATCH = 0x0020
_FLAG_STRONG_ENCRYPTION = 0x0040
FLAG_UTF8_NAME = 0x0800
ZIP32_LIMIT = 0xFFFFFFFF


# zipfile and the decompressors raise these for damaged archives; each is turned into a
# one-line BadInputError naming the wheel (and the member where one is being read).
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
               zlib.error, struct.error, RuntimeError, InstallerError)


WHEEL_NAME_FORM = "NAME-VERSION[-BUILD]-PYTHON-ABI-PLATFORM.whl"


def is_wheel_filename(name: str) -> bool:
    try:
        parse_wheel_filename(name)
    except (ValueError, InstallerError):
        return False
    return True



@dataclasses.dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    name_bytes: bytes  # the name exactly as stored in the local header
    local_extra: bytes
    data_offset: int  # where the compressed bytes start in the archive
    local_flags: int  # the local header's flags (zipfile decodes the local name by them)

    @property
    def name(self) -> str:
        return self.info.filename

    @property
    def is_dir(self) -> bool:
        return self.info.filename.endswith("/")

def reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def validate_members(archive: zipfile.ZipFile, handle: BinaryIO, label: str) -> dict[str, Member]:
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


def _read_local_headers(archive: zipfile.ZipFile, handle: BinaryIO, label: str) -> dict[str, Member]:
    """Read every member's local header: its name must match, its data must lie inside the
    archive, and no two members' data may overlap (the trick of non-recursive zip bombs)."""
    archive_size = os.fstat(handle.fileno()).st_size
    members: dict[str, Member] = {}
    spans = []
    for info in archive.infolist():
        name = info.filename
        handle.seek(info.header_offset)
        fixed = handle.read(LOCAL_HEADER.size)
        if len(fixed) != LOCAL_HEADER.size or fixed[:4] != LOCAL_SIGNATURE:
            raise BadInputError(f"member {name!r} has no local header where the directory says", label)
        fields = LOCAL_HEADER.unpack(fixed)
        name_length, extra_length = fields[9], fields[10]
        name_bytes = handle.read(name_length)
        local_extra = handle.read(extra_length)
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"
        if name_bytes.decode(encoding, errors="replace") != info.orig_filename:
            raise BadInputError(f"member {name!r} has another name in its local header", label)
        start = info.header_offset + LOCAL_HEADER.size + name_length + extra_length
        end = start + info.compress_size
        if end > archive_size:
            raise BadInputError(f"member {name!r} runs past the end of the archive", label)
        spans.append((info.header_offset, end, name))
        members[name] = Member(info, name_bytes, local_extra, start, fields[2])
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise BadInputError(f"members {first!r} and {second!r} overlap in the archive", label)
    return members


def check_local_header(member: Member) -> None:
    """What ``ZipFile.open`` checks before reading a member, with its exceptions (the local
    header's signature and bounds are checked for every member when the wheel is opened)."""
    info = member.info
    if info.flag_bits & _FLAG_COMPRESSED_PATCH:
        raise NotImplementedError("compressed patched data (flag bit 5)")
    if info.flag_bits & _FLAG_STRONG_ENCRYPTION:
        raise NotImplementedError("strong encryption (flag bit 6)")
    encoding = "utf-8" if member.local_flags & FLAG_UTF8_NAME else "cp437"
    if member.name_bytes.decode(encoding) != info.orig_filename:
        raise zipfile.BadZipFile(
            f"File name in directory {info.orig_filename!r} and header {member.name_bytes!r} differ."
        )


# Members are read this many compressed bytes at a time: large enough that the per-chunk
# Python work is nothing beside hashing, small enough to stay in cache and reuse memory.
CHUNK = 1 << 20

def pread_into(fd: int, buffer: memoryview, offset: int) -> memoryview:
    """Fill ``buffer`` from ``offset`` in the file (by offset, so threads can share the file)."""
    done = 0
    while done < len(buffer):
        count = os.preadv(fd, [buffer[done:]], offset + done)
        if count == 0:
            raise EOFError  # as zipfile raises when a member's data is cut short
        done += count
    return buffer

