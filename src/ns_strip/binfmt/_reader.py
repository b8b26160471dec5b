"""Bounds-checked random access to a binary file, shared by the format readers.

Every read names what it reads, so a file that points past its own end fails with a message
like ``dynamic symbol table (2000000 entries): 48000000 bytes at 0x1f40 would extend past the
end of the file (14000 bytes)``.
Reads go through a small cache of fixed-size blocks: symbol and string tables are read many
small pieces at a time, and the cache keeps that to one file read per block while keeping
memory bounded whatever the file claims.
"""

from __future__ import annotations

import collections
import io
import os
import struct

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from typing import BinaryIO

BLOCK_SIZE = 4 * 1024  # a page: the headers of a small extension, or the part of a table a lookup needs
MAX_CACHED_BLOCKS = 1024  # 4 MiB at most
MAX_STRING = 4096  # longer symbol or library names are not names


class MalformedBinary(Exception):
    """The file is truncated, garbage or hostile; the message is one line, without the path."""


class Reader:
    """Reads a seekable binary stream or, with :meth:`of_fd`, an open file descriptor."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream: BinaryIO | None = stream
        self._fd: int | None = None
        stream.seek(0, io.SEEK_END)
        self.size = stream.tell()
        self._blocks: collections.OrderedDict[int, bytes] = collections.OrderedDict()

    @classmethod
    def of_fd(cls, fd: int, size: int) -> Reader:
        """A reader of the regular file open as ``fd`` (not closed here), ``size`` bytes long.

        Reads are ``pread`` calls: no buffered file object to make, no seek, one system call
        per block; a small extension is two, the page of its headers, symbols and strings and
        the page of its dynamic segment.
        """
        reader = cls.__new__(cls)
        reader._stream = None
        reader._fd = fd
        reader.size = size
        reader._blocks = collections.OrderedDict()
        return reader

    def check(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise MalformedBinary(
                f"{what}: {size} bytes at {offset:#x} would extend past the end of the file ({self.size} bytes)"
            )

    def read(self, offset: int, size: int, what: str) -> bytes:
        if offset < 0 or size < 0 or offset + size > self.size:
            self.check(offset, size, what)  # raises
        if size == 0:
            return b""
        first = offset // BLOCK_SIZE
        last = (offset + size - 1) // BLOCK_SIZE
        if first == last:
            # The common case (a header, a few entries, a name), inlined: a dozen such reads
            # per file make function calls a visible share of inspecting a small extension.
            start = offset - first * BLOCK_SIZE
            block = self._blocks.get(first)
            if block is None:
                block = self._block(first)
            else:
                self._blocks.move_to_end(first)
            return block[start : start + size]
        if size > BLOCK_SIZE * 4:
            # Large tables are read directly rather than churning the cache.
            return self._read_exactly(offset, size)
        data = b"".join(self._block(index) for index in range(first, last + 1))
        start = offset - first * BLOCK_SIZE
        return data[start : start + size]

    def unpack(self, fmt: str, offset: int, what: str) -> tuple:
        return struct.unpack(fmt, self.read(offset, struct.calcsize(fmt), what))

    def cstring(self, offset: int, what: str, limit: int | None = None) -> bytes:
        """A NUL-terminated string at ``offset``, ending at ``limit`` (an offset) at the latest."""
        end = min(self.size if limit is None else limit, offset + MAX_STRING + 1)
        self.check(offset, 0, what)
        if offset >= end:
            raise MalformedBinary(f"{what} at {offset:#x} lies outside its table")
        pieces = []
        position = offset
        while position < end:
            chunk = self.read(position, min(end - position, 256), what)
            nul = chunk.find(b"\0")
            if nul >= 0:
                pieces.append(chunk[:nul])
                return b"".join(pieces)
            pieces.append(chunk)
            position += len(chunk)
        raise MalformedBinary(f"{what} at {offset:#x} is not terminated")

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is not None:
            self._blocks.move_to_end(index)
            return block
        block = self._read_exactly(index * BLOCK_SIZE, min(BLOCK_SIZE, self.size - index * BLOCK_SIZE))
        self._blocks[index] = block
        if len(self._blocks) > MAX_CACHED_BLOCKS:
            self._blocks.popitem(last=False)
        return block

    def _read_exactly(self, offset: int, size: int) -> bytes:
        if self._fd is None:
            self._stream.seek(offset)  # type: ignore[union-attr]
            data = self._stream.read(size)  # type: ignore[union-attr]
        else:
            data = os.pread(self._fd, size, offset)
            while 0 < len(data) < size:  # a short read that is not the end of the file
                more = os.pread(self._fd, size - len(data), offset + len(data))
                if not more:
                    break
                data += more
        if len(data) != size:
            # The file shrank while being read.
            raise MalformedBinary("file ended early while being read")
        return data


def decode_name(raw: bytes) -> str:
    """Symbol and library names are bytes; show undecodable ones escaped, never fail."""
    return raw.decode("utf-8", errors="backslashreplace")
