"""Mach-O bundles and dylibs, thin or universal ("fat"): per architecture the CPU type, the
exported init functions, the dylibs loaded and the install name.

Exports come from the export trie that dyld itself uses (LC_DYLD_INFO[_ONLY] or
LC_DYLD_EXPORTS_TRIE), walked only along edges that can lead to an init function's name, so
the walk costs the same for ten exports or a million. Without a trie, the external defined
symbols of LC_SYMTAB (the range LC_DYSYMTAB names) are used. Offsets in a slice's load
commands are relative to that slice.

Public API: :func:`is_macho`, :func:`read` (used by :func:`ns_strip.binfmt.read_binary`).
"""

from __future__ import annotations

import struct

from . import INIT_PREFIXES, MAX_INIT_SYMBOLS, Binary, BinaryImage
from ._reader import MAX_STRING, MalformedBinary, Reader, decode_name

MAX_ARCHITECTURES = 32  # a universal binary holds two, rarely four
MAX_LOAD_COMMANDS_SIZE = 1 << 24
MAX_TRIE_NODES = 1 << 16  # nodes visited, after pruning to init-function names
MAX_SYMBOLS = 1 << 22
MAX_DYLIBS = 1024

FAT_MAGICS = {b"\xca\xfe\xba\xbe": 32, b"\xca\xfe\xba\xbf": 64}
# first four bytes -> (byte order, word size)
THIN_MAGICS = {
    b"\xfe\xed\xfa\xce": ("big", 32),
    b"\xfe\xed\xfa\xcf": ("big", 64),
    b"\xce\xfa\xed\xfe": ("little", 32),
    b"\xcf\xfa\xed\xfe": ("little", 64),
}
MH_DYLIB, MH_BUNDLE = 6, 8
LC_SEGMENT, LC_SYMTAB, LC_DYSYMTAB, LC_LOAD_DYLIB, LC_ID_DYLIB, LC_SEGMENT_64 = 0x1, 0x2, 0xB, 0xC, 0xD, 0x19
LC_DYLD_INFO, LC_DYLD_INFO_ONLY, LC_DYLD_EXPORTS_TRIE = 0x22, 0x80000022, 0x80000033
LC_LOADS = {LC_LOAD_DYLIB, 0x80000018, 0x8000001F, 0x80000023}  # plain, weak, re-export, upward
N_STAB, N_TYPE, N_EXT, N_SECT = 0xE0, 0x0E, 0x01, 0x0E

CPU_TYPES = {
    7: "i386",
    0x01000007: "x86_64",
    12: "arm",
    0x0100000C: "arm64",
    0x0200000C: "arm64_32",
    18: "ppc",
    0x01000012: "ppc64",
}
CPU_SUBTYPE_ARM64E = 2

# Mach-O C symbols carry a leading underscore.
_TARGETS = tuple(b"_" + prefix.encode("ascii") for prefix in INIT_PREFIXES)


def is_macho(magic: bytes) -> bool:
    return magic in FAT_MAGICS or magic in THIN_MAGICS


def read(reader: Reader) -> Binary:
    magic = reader.read(0, 4, "magic number")
    if magic in THIN_MAGICS:
        return Binary("macho", (_read_slice(reader, 0, reader.size),))
    wide = FAT_MAGICS[magic] == 64
    (count,) = reader.unpack(">I", 4, "universal header")
    if count == 0 or count > MAX_ARCHITECTURES:
        raise MalformedBinary(f"universal header claims {count} architectures (1 to {MAX_ARCHITECTURES} expected)")
    entry = ">iiQQII" if wide else ">iiIII"
    size = struct.calcsize(entry)
    images = []
    for index in range(count):
        _, _, offset, length, *_ = reader.unpack(entry, 8 + index * size, "universal architecture entry")
        reader.check(offset, length, f"architecture {index + 1} of {count}")
        images.append(_read_slice(reader, offset, length))
    return Binary("macho", tuple(images))


def _read_slice(reader: Reader, base: int, length: int) -> BinaryImage:
    magic = reader.read(base, 4, "Mach-O header")
    if magic not in THIN_MAGICS:
        raise MalformedBinary(f"architecture at {base:#x} is not a Mach-O image")
    byte_order, word_size = THIN_MAGICS[magic]
    endian = "<" if byte_order == "little" else ">"
    header_size = 28 if word_size == 32 else 32
    cputype, cpusubtype, filetype, ncmds, sizeofcmds, _ = reader.unpack(endian + "iiIIII", base + 4, "Mach-O header")
    if filetype not in (MH_DYLIB, MH_BUNDLE):
        raise MalformedBinary(f"Mach-O file type {filetype} is not a bundle or dylib: nothing can be imported from it")
    if sizeofcmds > min(MAX_LOAD_COMMANDS_SIZE, length - header_size) or ncmds > sizeofcmds // 8:
        raise MalformedBinary(f"Mach-O header claims {ncmds} load commands in {sizeofcmds} bytes, more than fits")
    commands = _LoadCommands(reader.read(base + header_size, sizeofcmds, "load commands"), endian, ncmds)
    if commands.segments_end > length:
        # Every segment's data must be in the slice: a cut-off file fails here, whatever is read.
        raise MalformedBinary(f"segments end at {commands.segments_end:#x}, past the end of the image ({length:#x})")
    machine = CPU_TYPES.get(cputype, f"cpu-{cputype:#x}")
    if machine == "arm64" and cpusubtype & 0xFF == CPU_SUBTYPE_ARM64E:
        machine = "arm64e"
    slice_reader = _Slice(reader, base, length)
    if commands.trie is not None:
        init_symbols = _walk_export_trie(slice_reader, *commands.trie)
    elif commands.symtab is not None:
        init_symbols = _external_symbols(slice_reader, endian, word_size, commands.symtab, commands.extdef)
    else:
        init_symbols = ()
    return BinaryImage(
        machine=machine,
        word_size=word_size,
        byte_order=byte_order,
        init_symbols=init_symbols,
        needed=tuple(commands.dylibs),
        soname=commands.install_name,
    )


class _LoadCommands:
    """The load commands that matter, each checked to lie inside the load command area."""

    def __init__(self, data: bytes, endian: str, count: int) -> None:
        self.trie: tuple[int, int] | None = None
        self.symtab: tuple[int, int, int, int] | None = None
        self.extdef: tuple[int, int] | None = None
        self.dylibs: list[str] = []
        self.install_name: str | None = None
        self.segments_end = 0
        position = 0
        for index in range(count):
            if position + 8 > len(data):
                raise MalformedBinary(f"load command {index + 1} of {count} lies past the load command area")
            cmd, size = struct.unpack_from(endian + "II", data, position)
            if size < 8 or position + size > len(data):
                raise MalformedBinary(f"load command {index + 1} of {count} has an impossible size {size}")
            body = data[position : position + size]
            self._take(cmd, body, endian)
            position += size

    def _take(self, cmd: int, body: bytes, endian: str) -> None:
        try:
            if cmd in (LC_DYLD_INFO, LC_DYLD_INFO_ONLY) and self.trie is None:
                self.trie = struct.unpack_from(endian + "II", body, 40)
            elif cmd == LC_DYLD_EXPORTS_TRIE:
                self.trie = struct.unpack_from(endian + "II", body, 8)
            elif cmd == LC_SYMTAB:
                self.symtab = struct.unpack_from(endian + "IIII", body, 8)
            elif cmd == LC_DYSYMTAB:
                self.extdef = struct.unpack_from(endian + "II", body, 16)
            elif cmd in LC_LOADS and len(self.dylibs) < MAX_DYLIBS:
                self.dylibs.append(_command_string(body, endian))
            elif cmd == LC_ID_DYLIB:
                self.install_name = _command_string(body, endian)
            elif cmd in (LC_SEGMENT, LC_SEGMENT_64):
                layout, at = (endian + "II", 32) if cmd == LC_SEGMENT else (endian + "QQ", 40)
                self.segments_end = max(self.segments_end, sum(struct.unpack_from(layout, body, at)))
        except struct.error:
            raise MalformedBinary(f"load command {cmd:#x} is too short ({len(body)} bytes)") from None
        if self.trie is not None and self.trie[1] == 0:
            self.trie = None


def _command_string(body: bytes, endian: str) -> str:
    (offset,) = struct.unpack_from(endian + "I", body, 8)
    if not 12 <= offset < len(body):
        raise MalformedBinary(f"dylib name offset {offset} lies outside its load command")
    return decode_name(body[offset:].split(b"\0", 1)[0])


class _Slice:
    """Reads relative to one architecture's slice, checked against the slice's length."""

    def __init__(self, reader: Reader, base: int, length: int) -> None:
        self.reader, self.base, self.length = reader, base, length

    def read(self, offset: int, size: int, what: str) -> bytes:
        if offset + size > self.length:
            raise MalformedBinary(f"{what} ({size} bytes at {offset:#x}) extends past its architecture's slice")
        return self.reader.read(self.base + offset, size, what)


def _walk_export_trie(part: _Slice, offset: int, size: int) -> tuple[str, ...]:
    trie = _Trie(part.read(offset, size, "export trie") if size <= 1 << 16 else None, part, offset, size)
    found: list[str] = []
    visited: set[int] = set()
    pending = [(0, b"")]
    while pending:
        node, prefix = pending.pop()
        if node in visited:
            raise MalformedBinary("export trie has a cycle")
        visited.add(node)
        if len(visited) > MAX_TRIE_NODES:
            raise MalformedBinary(f"export trie has more than {MAX_TRIE_NODES} nodes on init-function paths")
        position = node
        terminal_size, position = trie.uleb(position)
        if terminal_size and prefix.startswith(_TARGETS) and len(found) < MAX_INIT_SYMBOLS:
            found.append(decode_name(prefix[1:]))
        position += terminal_size
        child_count = trie.byte(position)
        position += 1
        for _ in range(child_count):
            edge, position = trie.cstring(position)
            child, position = trie.uleb(position)
            name = prefix + edge
            if len(name) > MAX_STRING:
                raise MalformedBinary("export trie holds a name longer than any symbol")
            if any(target.startswith(name) or name.startswith(target) for target in _TARGETS):
                pending.append((child, name))
    return tuple(sorted(found))


class _Trie:
    """Bounded access to the export trie, from memory when small, else through the reader."""

    def __init__(self, data: bytes | None, part: _Slice, offset: int, size: int) -> None:
        self._data, self._part, self._offset, self._size = data, part, offset, size

    def _bytes(self, position: int, count: int) -> bytes:
        if position >= self._size:
            raise MalformedBinary(f"export trie points at {position:#x}, past its end ({self._size:#x})")
        count = min(count, self._size - position)
        if self._data is not None:
            return self._data[position : position + count]
        return self._part.read(self._offset + position, count, "export trie")

    def byte(self, position: int) -> int:
        return self._bytes(position, 1)[0]

    def uleb(self, position: int) -> tuple[int, int]:
        value = shift = 0
        for index, byte in enumerate(self._bytes(position, 10)):
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value, position + index + 1
        raise MalformedBinary(f"export trie has an unterminated number at {position:#x}")

    def cstring(self, position: int) -> tuple[bytes, int]:
        chunk = self._bytes(position, MAX_STRING + 1)
        end = chunk.find(b"\0")
        if end < 0:
            raise MalformedBinary(f"export trie has an unterminated edge at {position:#x}")
        return chunk[:end], position + end + 1


def _external_symbols(part: _Slice, endian: str, word_size: int, symtab, extdef) -> tuple[str, ...]:
    symoff, nsyms, stroff, strsize = symtab
    first, count = extdef if extdef is not None else (0, nsyms)
    if first + count > nsyms or count > MAX_SYMBOLS:
        raise MalformedBinary(f"symbol table claims {count} external symbols from {first} of {nsyms}")
    layout = endian + ("IBBhI" if word_size == 32 else "IBBhQ")
    entry_size = struct.calcsize(layout)
    table = part.read(symoff + first * entry_size, count * entry_size, f"symbol table ({count} entries)")
    if stroff + strsize > part.length:
        raise MalformedBinary(f"string table ({strsize} bytes at {stroff:#x}) extends past the end of the file")
    found = []
    for name, kind, *_ in struct.iter_unpack(layout, table):
        if kind & N_STAB or not kind & N_EXT or kind & N_TYPE != N_SECT:
            continue
        if name >= strsize:
            raise MalformedBinary(f"symbol name offset {name:#x} lies past the string table")
        # A few bytes decide most symbols; only an init function's whole name is read.
        if not part.read(stroff + name, min(strsize - name, 16), "symbol name").startswith(_TARGETS):
            continue
        raw = part.read(stroff + name, min(strsize - name, MAX_STRING), "symbol name").split(b"\0", 1)[0]
        if len(found) < MAX_INIT_SYMBOLS:
            found.append(decode_name(raw[1:]))
    return tuple(found)
