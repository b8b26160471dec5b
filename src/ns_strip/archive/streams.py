"""Bounded, safe reading of the containers sdists and ``.deb`` files come in: tar streams (gzip,
xz, bzip2, zstd or none), ``ar`` archives and zip files. Nothing is extracted to disk.

Every artifact is hostile until read. What is refused (BadInputError naming the member):
absolute names and names that climb with ``..``, NUL bytes, device and FIFO members, sparse
members, hard links to nothing seen before, extended headers (pax, GNU long names) larger than
a header can sensibly be, more than :data:`MAX_MEMBERS` members, and more decompressed bytes
than :func:`expansion_limit` allows for the compressed size (the zip bomb's ratio check
of the wheel reader, applied to the whole stream: it also stops a tar bomb made of one
highly compressible member). Decompression is streamed in bounded chunks, so memory does not
grow with the archive; only the files the analyses read are kept (see ``members``).

zstd (Ubuntu's and newer Debian's ``.deb`` compression): Python's ``tarfile`` reads it only from
3.14 on. Before that, a ``.deb``'s zstd member is decompressed by ``dpkg-deb --fsys-tarfile``
(or ``--ctrl-tarfile``) when dpkg-deb is installed, read through the same bounds; without
dpkg-deb the artifact is refused with that reason.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import hashlib
import io
import lzma
import os
import shutil
import subprocess
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ..errors import BadInputError
from .members import MemberFile

MAX_MEMBERS = 500_000
MAX_NAME = 4096
MAX_EXTENDED_HEADER = 1 << 20  # a pax or GNU long-name header: a few names, never megabytes
MAX_RATIO = 200  # as for a wheel's members (ns_strip.wheels.MAX_RATIO)
RATIO_FLOOR = 64 << 20  # small archives of repeated text compress better than MAX_RATIO
MAX_TOTAL = 3 << 30  # as for a wheel's members together
CHUNK = 1 << 20

# What a read of a member wants: how many of its bytes to keep (None: only hash it).
Wanted = Callable[[str], "int | None"]


def expansion_limit(compressed_size: int) -> int:
    return min(MAX_TOTAL, max(RATIO_FLOOR, MAX_RATIO * compressed_size))


class BoundedReader(io.RawIOBase):
    """A read-only stream that refuses to deliver more than ``limit`` bytes in all."""

    def __init__(self, raw: BinaryIO, limit: int, label: str, what: str) -> None:
        super().__init__()
        self._raw = raw
        self._left = limit
        self._limit = limit
        self._label = label
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), CHUNK)
        if want == 0:
            return 0
        if self._left <= 0:
            # One byte more than allowed proves the stream is over its bound.
            if self._raw.read(1):
                raise BadInputError(
                    f"{self._what} expands to more than {self._limit} bytes; refusing a likely archive bomb",
                    self._label,
                )
            return 0
        data = self._raw.read(min(want, self._left))
        view[: len(data)] = data
        self._left -= len(data)
        return len(data)


class _SliceReader(io.RawIOBase):
    """``size`` bytes of ``handle`` from ``offset`` (an ar member), read sequentially."""

    def __init__(self, handle: BinaryIO, offset: int, size: int) -> None:
        super().__init__()
        self._fd = handle.fileno()
        self._position = offset
        self._end = offset + size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._end - self._position, CHUNK)
        if want <= 0:
            return 0
        data = os.pread(self._fd, want, self._position)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)


class _SafeTarInfo(tarfile.TarInfo):
    """Refuses, before tarfile reads them, the headers whose size it would read into memory."""

    def _proc_member(self, tarfile_):  # noqa: ANN001 - tarfile's own hook
        if self.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                         tarfile.SOLARIS_XHDTYPE) and self.size > MAX_EXTENDED_HEADER:
            raise _Refused(f"extended header of {self.size} bytes (more than {MAX_EXTENDED_HEADER})")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _Refused(f"member {self.name!r} is a sparse file")
        return super()._proc_member(tarfile_)


class _Refused(Exception):
    pass


def decompressor(raw: BinaryIO, member: str, label: str) -> BinaryIO:
    """A stream of ``raw`` decompressed by the compression ``member``'s name says."""
    if member.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if member.endswith(".xz") or member.endswith(".lzma"):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if member.endswith(".bz2"):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if member.endswith(".zst"):
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+
        except ImportError:
            raise BadInputError(f"{member} is zstd-compressed, which this Python cannot read", label) from None
        return zstd.ZstdFile(raw)  # type: ignore[no-any-return]
    if member.endswith(".tar") or member == "data.tar":
        return raw
    raise BadInputError(f"{member}: unknown compression", label)


def normal_member_name(name: str, label: str) -> str | None:
    """A tar member's name as a normal relative path, or None for the archive's root itself.

    Raises BadInputError for names that are absolute, climb with ``..``, or hold a NUL.
    """
    if len(name) > MAX_NAME:
        raise BadInputError(f"member name of {len(name)} characters", label)
    if "\x00" in name:
        raise BadInputError(f"member name {name!r} holds a NUL byte", label)
    if name.startswith("/"):
        raise BadInputError(f"member {name!r} has an absolute name", label)
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise BadInputError(f"member {name!r} climbs out of the archive with '..'", label)
    return "/".join(parts) or None


def read_tar(stream: BinaryIO, label: str, wanted: Wanted, what: str, limit: int
             ) -> Iterator[tuple[str, MemberFile | None]]:
    """Every member of a tar ``stream`` (already decompressed, bounded to ``limit`` bytes):
    ``(path, MemberFile)`` for files and links, ``(path, None)`` for directories."""
    bounded = io.BufferedReader(BoundedReader(stream, limit, label, what), CHUNK)
    seen: dict[str, MemberFile] = {}
    count = 0
    try:
        with tarfile.open(fileobj=bounded, mode="r|", tarinfo=_SafeTarInfo) as archive:
            for info in archive:
                count += 1
                if count > MAX_MEMBERS:
                    raise BadInputError(f"{what} has more than {MAX_MEMBERS} members", label)
                path = normal_member_name(info.name, label)
                if path is None:
                    continue
                if info.isdir():
                    yield path, None
                elif info.issym():
                    yield path, MemberFile(0, "", link=info.linkname)
                elif info.islnk():
                    target = normal_member_name(info.linkname, label)
                    original = seen.get(target or "")
                    if original is None:
                        raise BadInputError(f"hard link {info.name!r} to {info.linkname!r}, not seen before", label)
                    yield path, original
                elif info.isreg():
                    entry = _read_member(archive, info, path, wanted(path), label)
                    seen[path] = entry
                    yield path, entry
                else:
                    raise BadInputError(f"member {info.name!r} is a special file (a device or FIFO)", label)
    except _Refused as exc:
        raise BadInputError(f"{what}: {exc}", label) from None
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error, ValueError, UnicodeError) as exc:
        raise BadInputError(f"{what} is not a readable tar stream ({exc or type(exc).__name__})", label) from exc


def _read_member(archive: tarfile.TarFile, info: tarfile.TarInfo, path: str, keep: int | None,
                 label: str) -> MemberFile:
    handle = archive.extractfile(info)
    assert handle is not None
    hasher = hashlib.sha256()
    kept: list[bytes] | None = [] if keep is not None and info.size <= keep else None
    size = 0
    while chunk := handle.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
        if kept is not None:
            kept.append(chunk)
    if size != info.size:
        raise BadInputError(f"member {info.name!r} is truncated", label)
    digest = _record_digest(hasher.digest())
    return MemberFile(size, digest, b"".join(kept) if kept is not None else None)


def _record_digest(digest: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


# -- ar (.deb) ---------------------------------------------------------------------------------

AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


def ar_members(handle: BinaryIO, label: str) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of the members of an ar archive (a ``.deb``)."""
    size = os.fstat(handle.fileno()).st_size
    if os.pread(handle.fileno(), len(AR_MAGIC), 0) != AR_MAGIC:
        raise BadInputError("not a Debian package (no ar archive header)", label)
    members: dict[str, tuple[int, int]] = {}
    position = len(AR_MAGIC)
    while position < size:
        if len(members) >= 16:
            raise BadInputError("more ar members than a Debian package has", label)
        header = os.pread(handle.fileno(), _AR_HEADER, position)
        if len(header) != _AR_HEADER or header[58:60] != b"`\n":
            raise BadInputError(f"malformed ar member header at byte {position}", label)
        name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
        try:
            length = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise BadInputError(f"ar member {name!r} has no readable size", label) from None
        start = position + _AR_HEADER
        if length < 0 or start + length > size:
            raise BadInputError(f"ar member {name!r} runs past the end of the file", label)
        if name in members:
            raise BadInputError(f"ar member {name!r} appears twice", label)
        members[name] = (start, length)
        position = start + length + (length & 1)
    return members


def deb_tar_stream(path: str, handle: BinaryIO, members: dict[str, tuple[int, int]], prefix: str, label: str
                   ) -> tuple[BinaryIO, str, int, subprocess.Popen | None]:
    """The decompressed stream of the ``control.tar.*`` or ``data.tar.*`` member, its name, its
    compressed size, and the dpkg-deb process that produces it (for zstd before Python 3.14)."""
    found = [name for name in members if name == prefix or name.startswith(prefix + ".")]
    if len(found) != 1:
        raise BadInputError(f"no single {prefix} member in the package", label)
    name = found[0]
    offset, size = members[name]
    raw = io.BufferedReader(_SliceReader(handle, offset, size), CHUNK)
    if name.endswith(".zst"):
        try:
            return decompressor(raw, name, label), name, size, None  # type: ignore[arg-type]
        except BadInputError:
            pass
        if shutil.which("dpkg-deb") is None:
            raise BadInputError(f"{name} is zstd-compressed: Python before 3.14 needs dpkg-deb to read it, "
                                "and dpkg-deb is not installed", label) from None
        option = "--fsys-tarfile" if prefix == "data.tar" else "--ctrl-tarfile"
        process = subprocess.Popen(["dpkg-deb", option, os.path.abspath(path)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        return process.stdout, name, size, process  # type: ignore[return-value]
    return decompressor(raw, name, label), name, size, None  # type: ignore[arg-type]


# -- zip (sdists) ------------------------------------------------------------------------------


def read_zip(path: str, label: str, wanted: Wanted) -> Iterator[tuple[str, MemberFile | None]]:
    """Every member of a zip sdist, bounded like a wheel's (declared sizes, ratio, total)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadInputError(f"not a readable zip archive ({exc})", label) from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise BadInputError(f"more than {MAX_MEMBERS} members", label)
        total = 0
        for info in infos:
            if info.flag_bits & 0x1:
                raise BadInputError(f"member {info.filename!r} is encrypted", label)
            if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise BadInputError(f"member {info.filename!r} declares {info.file_size} bytes from "
                                    f"{info.compress_size}; refusing a likely zip bomb", label)
            total += info.file_size
        if total > MAX_TOTAL:
            raise BadInputError(f"members add up to {total} bytes uncompressed; refusing a likely zip bomb", label)
        seen: set[str] = set()
        for info in infos:
            if info.orig_filename != info.filename:
                raise BadInputError(f"member name {info.orig_filename!r} holds a NUL byte", label)
            path_ = normal_member_name(info.filename.replace("\\", "/"), label)
            if path_ is None:
                continue
            if path_ in seen:
                raise BadInputError(f"member {path_!r} appears twice", label)
            seen.add(path_)
            mode = info.external_attr >> 16
            if info.is_dir():
                yield path_, None
                continue
            if (mode & 0o170000) == 0o120000:
                yield path_, MemberFile(0, "", link="(zip link)")
                continue
            keep = wanted(path_)
            hasher = hashlib.sha256()
            kept: list[bytes] | None = [] if keep is not None and info.file_size <= keep else None
            size = 0
            try:
                with archive.open(info) as stream:
                    while chunk := stream.read(CHUNK):
                        hasher.update(chunk)
                        size += len(chunk)
                        if kept is not None:
                            kept.append(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, ValueError,
                    lzma.LZMAError) as exc:
                raise BadInputError(f"cannot read member {info.filename!r} ({exc})", label) from exc
            yield path_, MemberFile(size, _record_digest(hasher.digest()), b"".join(kept) if kept is not None else None)

