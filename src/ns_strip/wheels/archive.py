"""A wheel's ZIP structure, read without trusting it: member names, kinds and sizes, local
headers, and the bytes of one member.

Everything here is checked before any member is used: ``..`` or absolute names, duplicate
members, symbolic links and other special files, encryption, member data that overlaps or runs
past the archive, and sizes that look like a zip bomb.
"""

from __future__ import annotations

import bz2
import collections
import dataclasses
import lzma
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from installer.exceptions import InstallerError
from installer.utils import parse_wheel_filename

from ..errors import BadInputError, ShippedJournalError
from ..journal import JOURNAL_DIR
from ..safeio import FileTooLargeError

# Zip bombs. Every member is decompressed in bounded chunks and never past the size the central
# directory declares for it (more data than declared is a refusal), so what a member can cost is
# what it declares, and all members together may declare at most MAX_TOTAL_UNCOMPRESSED bytes.
# No ratio of sizes is judged: real wheels hold members that compress hundreds of times (a
# 2 MB library of zero-filled sections in 9 KB, in pillow 13.0.0), and a high ratio costs
# nothing once what a member declares bounds what it yields. Only a ratio no method can reach
# is refused, as a lie: deflate produces at most 258 bytes for every 2 bits it reads (1032:1).
MAX_TOTAL_UNCOMPRESSED = 3 << 30
DEFLATE_MAX_RATIO = 1032
# The central directory is parsed whole by zipfile, at about 400 bytes of memory and 10 µs for
# every entry: a 13 MB archive of 300,000 empty entries costs 112 MB. Real wheels hold at most
# tens of thousands of members in a few MB of directory.
MAX_MEMBERS = 200_000
MAX_DIRECTORY_BYTES = 32 << 20
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
              zlib.error, lzma.LZMAError, struct.error, RuntimeError, InstallerError)


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


_END = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")


def check_directory_size(handle: BinaryIO, label: str) -> None:
    """Refuse a central directory too large to parse, before zipfile parses it: more than
    MAX_DIRECTORY_BYTES, or more than MAX_MEMBERS entries (counted by their signatures, which
    is what zipfile would iterate over, whatever the entry count says). An archive whose end
    record cannot be found is left to zipfile to refuse."""
    size = os.fstat(handle.fileno()).st_size
    tail_size = min(size, _END.size + 0xFFFF)
    tail = os.pread(handle.fileno(), tail_size, size - tail_size)
    found = tail.rfind(b"PK\x05\x06")
    if found < 0 or found + _END.size > len(tail):
        return
    end = size - tail_size + found
    _, _, _, _, entries, directory_size, _, _ = _END.unpack_from(tail, found)
    if found >= _ZIP64_LOCATOR.size and tail[found - _ZIP64_LOCATOR.size:found - _ZIP64_LOCATOR.size + 4] == b"PK\x06\x07":
        _, _, zip64_end, _ = _ZIP64_LOCATOR.unpack_from(tail, found - _ZIP64_LOCATOR.size)
        record = os.pread(handle.fileno(), _ZIP64_END.size, zip64_end)
        if len(record) == _ZIP64_END.size and record[:4] == b"PK\x06\x06":
            fields = _ZIP64_END.unpack(record)
            entries, directory_size = fields[7], fields[8]
            end = zip64_end
    if directory_size > MAX_DIRECTORY_BYTES or (entries != 0xFFFF and entries > MAX_MEMBERS):
        raise BadInputError(
            f"central directory of {directory_size} bytes and {entries} entries, more than the "
            f"{MAX_DIRECTORY_BYTES} bytes and {MAX_MEMBERS} members ns-strip reads", label,
        )
    directory = os.pread(handle.fileno(), directory_size, max(end - directory_size, 0))
    counted = directory.count(b"PK\x01\x02")
    if counted > MAX_MEMBERS:
        raise BadInputError(f"central directory of {counted} entries, more than the {MAX_MEMBERS} members "
                            "ns-strip reads", label)


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
        _check_declared_sizes(info, label)
        total += info.file_size
    if total > MAX_TOTAL_UNCOMPRESSED:
        raise BadInputError(
            f"members add up to {total} bytes uncompressed, more than the {MAX_TOTAL_UNCOMPRESSED} "
            "bytes ns-strip accepts; refusing a likely zip bomb", label,
        )
    return _read_local_headers(archive, handle, label)


def _check_declared_sizes(info: zipfile.ZipInfo, label: str) -> None:
    """Sizes that no content can have are a lie about the member, refused before it is read."""
    name = info.filename
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise BadInputError(
            f"member {name!r} is stored uncompressed but declares {info.file_size} bytes in "
            f"{info.compress_size}; refusing a lying size", label,
        )
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 1024:
        raise BadInputError(
            f"member {name!r} declares {info.file_size} bytes from {info.compress_size} deflated, more than "
            f"deflate can produce ({DEFLATE_MAX_RATIO}:1); refusing a lying size", label,
        )


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
    if installs_into_journal(name):
        raise ShippedJournalError(f"member {name!r}", label)


def installs_into_journal(name: str) -> bool:
    """Whether a member or RECORD path lands in ``.ns-strip-journal/`` at the top of the site dir
    (directly, or through the wheel's ``NAME.data/purelib/`` or ``platlib/``)."""
    parts = name.split("/")
    if parts[0] == JOURNAL_DIR:
        return True
    return len(parts) >= 3 and parts[0].endswith(".data") and parts[1] in ("purelib", "platlib") \
        and parts[2] == JOURNAL_DIR


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
        disagreement = _local_disagreement(info, fields)
        if disagreement:
            raise BadInputError(
                f"member {name!r}: its local header gives another {disagreement} than the central directory "
                "(tools would read it differently)", label,
            )
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


def _local_disagreement(info: zipfile.ZipInfo, fields: tuple) -> str | None:
    """What a local header says differently from the central directory, if anything.

    A reader that trusts the local headers (a streaming unzip) would otherwise get other
    content than the one checked here. Sizes and CRC may be left out of the local header (zero,
    with a data descriptor after the data) or moved to a ZIP64 extra field (0xFFFFFFFF).
    """
    flags, method, crc, compress_size, file_size = fields[2], fields[3], fields[6], fields[7], fields[8]
    if method != info.compress_type:
        return "compression method"
    if (flags ^ info.flag_bits) & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        return "encryption flag"
    described_later = bool(flags & FLAG_DATA_DESCRIPTOR)  # a value left 0 comes after the data
    for local, central, what, zip64 in ((crc, info.CRC, "CRC", False),
                                        (compress_size, info.compress_size, "compressed size", True),
                                        (file_size, info.file_size, "size", True)):
        if local == central or (described_later and local == 0) or (zip64 and local == ZIP32_LIMIT):
            continue
        return what
    return None


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


class MemberSizeError(BadInputError):
    """A member's data decompresses to more, or less, than its declared size."""


# One decompressed chunk is at most this large (what a member yields at a time).
OUT_CHUNK = 4 * CHUNK


class _Inflater:
    """One interface over the decompressors of the methods a wheel may use: ``decompress(data,
    max_length)`` never returns more than ``max_length`` bytes, and input not yet used is kept
    (``needs_input`` is false until it is)."""

    def __init__(self, method: int) -> None:
        self.method = method
        self._zlib = zlib.decompressobj(-15) if method == zipfile.ZIP_DEFLATED else None
        self._bz2 = bz2.BZ2Decompressor() if method == zipfile.ZIP_BZIP2 else None
        self._lzma: lzma.LZMADecompressor | None = None
        self._lzma_header = b""  # zip's LZMA members start with a header of their own
        self._stored_eof = False

    @property
    def eof(self) -> bool:
        if self._zlib is not None:
            return self._zlib.eof
        if self._bz2 is not None:
            return self._bz2.eof
        if self._lzma is not None:
            return self._lzma.eof
        return self._stored_eof

    @property
    def needs_input(self) -> bool:
        if self._zlib is not None:
            return not self._zlib.unconsumed_tail
        if self._bz2 is not None:
            return self._bz2.needs_input
        if self._lzma is not None:
            return self._lzma.needs_input
        return True

    def decompress(self, data: bytes | memoryview, max_length: int) -> bytes | memoryview:
        if self._zlib is not None:
            tail = self._zlib.unconsumed_tail
            return self._zlib.decompress(tail if tail else data, max_length)
        if self._bz2 is not None:
            return self._bz2.decompress(data, max_length)
        if self.method == zipfile.ZIP_LZMA:
            if self._lzma is None:
                data = self._start_lzma(data)
                if self._lzma is None:
                    return b""
            return self._lzma.decompress(data, max_length)
        return data  # stored: the caller reads no more than the member's size

    def _start_lzma(self, data: bytes | memoryview) -> bytes:
        """Collect zip's LZMA header (version, properties size, LZMA1 properties: APPNOTE 5.8.8),
        then start a raw LZMA1 decoder; the bytes after the header."""
        self._lzma_header += bytes(data)
        if len(self._lzma_header) < 4:
            return b""
        size = int.from_bytes(self._lzma_header[2:4], "little")
        if size != 5:
            raise lzma.LZMAError(f"LZMA properties of {size} bytes, not 5")
        if len(self._lzma_header) < 4 + size:
            return b""
        properties = self._lzma_header[4:9]
        state, dictionary = properties[0], int.from_bytes(properties[1:5], "little")
        if state >= 9 * 5 * 5:
            raise lzma.LZMAError("invalid LZMA properties")
        lc, lp, pb = state % 9, state // 9 % 5, state // 45
        self._lzma = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[
            {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": dictionary},
        ])
        rest, self._lzma_header = self._lzma_header[9:], b""
        return rest


def member_chunks(fd: int, member: Member, buffer: memoryview) -> Iterator[bytes | memoryview]:
    """A member's content in chunks of at most OUT_CHUNK bytes, read from the file at ``fd`` by
    offset (so threads share it), through ``buffer`` (reused: each chunk is valid until the next
    is asked for), and CRC-checked the way ``zipfile.ZipExtFile`` does.

    Never more than the declared size comes out of the decompressor: one byte more is asked
    for, and getting it is a refusal (MemberSizeError), as is a content shorter than declared.
    """
    info = member.info
    inflater = _Inflater(info.compress_type)
    position, remaining = member.data_offset, info.compress_size
    left = info.file_size
    crc = 0
    idle = 0  # rounds in a row that gave nothing: a decompressor that makes no progress
    while not inflater.eof:
        data: bytes | memoryview = b""
        if inflater.needs_input and remaining > 0:
            data = pread_into(fd, buffer[:min(len(buffer), remaining)], position)
            position += len(data)
            remaining -= len(data)
        elif inflater.needs_input and info.compress_type == zipfile.ZIP_STORED:
            break
        out = inflater.decompress(data, min(left, OUT_CHUNK) + 1)
        if len(out) > left:
            raise MemberSizeError(
                f"member {info.filename!r} decompresses to more than the {info.file_size} bytes it declares; "
                "refusing a likely zip bomb"
            )
        if not out and not data:
            if inflater.needs_input:
                break  # the compressed data ended without an end-of-stream marker
            idle += 1
            if idle > 16:
                raise zipfile.BadZipFile(f"member {info.filename!r}: the decompressor makes no progress")
            continue
        idle = 0
        left -= len(out)
        crc = zlib.crc32(out, crc)
        yield out
    if left:
        raise MemberSizeError(
            f"member {info.filename!r} decompresses to {info.file_size - left} bytes, not the "
            f"{info.file_size} it declares"
        )
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


def read_member(fd: int, member: Member, limit: int) -> bytes:
    """A member's whole content, if it declares at most ``limit`` bytes (else FileTooLargeError)."""
    if member.info.file_size > limit:
        raise FileTooLargeError(f"member {member.name!r}", member.info.file_size, limit)
    buffer = memoryview(bytearray(max(min(CHUNK, member.info.compress_size), 1)))
    return b"".join(bytes(chunk) for chunk in member_chunks(fd, member, buffer))
