"""PE/COFF DLLs (``.pyd``): machine, word size, export-table names and imported DLL names.

A small reader of its own rather than pefile: ns-strip needs four structures (DOS stub
pointer, COFF header, optional header's data directories, section table) and two tables (the
export name pointers, the import descriptors), about a hundred lines. pefile would be a new
runtime dependency for every Linux distribution that packages ns-strip, it parses far more
than this (resources, relocations, debug directories) eagerly, and its bounds checks are
warnings rather than errors, where this reader must turn every inconsistency into a one-line
NS205. See the README's "ext" section.

Public API: :func:`read` (used by :func:`ns_strip.binfmt.read_binary`), :data:`MACHINES`.
"""

from __future__ import annotations

from . import INIT_PREFIXES, MAX_INIT_SYMBOLS, Binary, BinaryImage
from ._reader import MalformedBinary, Reader, decode_name

MAX_SECTIONS = 96  # the PE/COFF specification's own limit for images
MAX_EXPORT_NAMES = 1 << 20
MAX_IMPORTS = 4096

# IMAGE_FILE_MACHINE_* -> (machine as Windows' platform tags say it, word size)
MACHINES = {
    0x014C: ("x86", 32),
    0x8664: ("amd64", 64),
    0xAA64: ("arm64", 64),
    0x01C4: ("arm", 32),
    0x0200: ("ia64", 64),
}

# The platform part of a Windows tag -> the machine it is built for.
PLATFORM_MACHINES = {
    "win32": "x86",
    "win_amd64": "amd64",
    "win_arm64": "arm64",
    "win_arm32": "arm",
    "win_ia64": "ia64",
    "mingw_x86_64": "amd64",
    "mingw_i686": "x86",
    "mingw_aarch64": "arm64",
    "mingw_armv7": "arm",
}

_INIT_PREFIX_BYTES = tuple(prefix.encode("ascii") for prefix in INIT_PREFIXES)


def platform_machine(platform: str) -> str | None:
    """The machine a Windows tag's platform (``win_amd64``, ``mingw_x86_64_ucrt_gnu``) names."""
    if platform in PLATFORM_MACHINES:
        return PLATFORM_MACHINES[platform]
    for prefix, machine in PLATFORM_MACHINES.items():
        if prefix.startswith("mingw_") and platform.startswith(prefix + "_"):
            return machine
    return None


def read(reader: Reader) -> Binary:
    (pe_offset,) = reader.unpack("<I", 0x3C, "DOS header")
    if reader.read(pe_offset, 4, "PE signature") != b"PE\0\0":
        raise MalformedBinary("MZ file without a PE signature (a DOS program, not a DLL)")
    machine_code, section_count, _, symbols_at, symbol_count, optional_size, characteristics = reader.unpack(
        "<HHIIIHH", pe_offset + 4, "COFF header"
    )
    if symbols_at:
        # MinGW leaves a COFF symbol table and its string table after the sections: checking
        # that both fit catches a file cut off there.
        (strings_size,) = reader.unpack("<I", symbols_at + 18 * symbol_count, "COFF string table")
        reader.check(symbols_at + 18 * symbol_count, strings_size, "COFF string table")
    if machine_code not in MACHINES:
        machine, word_size = f"machine-{machine_code:#06x}", 0
    else:
        machine, word_size = MACHINES[machine_code]
    if not characteristics & 0x2000:  # IMAGE_FILE_DLL
        raise MalformedBinary("PE file is not a DLL: nothing can be imported from it")
    optional = pe_offset + 24
    (magic,) = reader.unpack("<H", optional, "optional header")
    if magic not in (0x10B, 0x20B):
        raise MalformedBinary(f"unknown PE optional header magic {magic:#x}")
    directories_at = optional + (96 if magic == 0x10B else 112)
    if optional_size < directories_at - optional:
        raise MalformedBinary(f"optional header of {optional_size} bytes is too small")
    (directory_count,) = reader.unpack("<I", directories_at - 4, "optional header")
    if section_count > MAX_SECTIONS:
        raise MalformedBinary(f"PE header claims {section_count} sections (at most {MAX_SECTIONS})")
    sections = _Sections(reader, optional + optional_size, section_count)
    directories = _directories(reader, directories_at, directory_count, optional + optional_size)
    exports = _export_names(reader, sections, directories[0][0]) if directories[0][0] else ()
    imports = _import_names(reader, sections, directories[1][0]) if directories[1][0] else ()
    image = BinaryImage(
        machine=machine,
        word_size=word_size or (64 if magic == 0x20B else 32),
        byte_order="little",
        init_symbols=exports,
        needed=imports,
    )
    return Binary("pe", (image,))


def _directories(reader: Reader, at: int, count: int, end: int) -> list[tuple[int, int]]:
    """(RVA, size) of the export (0) and import (1) directories; (0, 0) when absent.

    The sizes are not trusted: each table is bounds-checked where it is read."""
    present = min(count, 2, max(0, (end - at) // 8))
    found = [reader.unpack("<II", at + 8 * index, "data directory") for index in range(present)]
    return found + [(0, 0)] * (2 - present)


class _Sections:
    def __init__(self, reader: Reader, at: int, count: int) -> None:
        self._reader = reader
        table = reader.read(at, 40 * count, f"section table ({count} sections)")
        self._spans = []
        for index in range(count):
            entry = table[40 * index : 40 * index + 40]
            virtual_size, virtual_address, raw_size, raw_offset = (
                int.from_bytes(entry[offset : offset + 4], "little") for offset in (8, 12, 16, 20)
            )
            self._spans.append((virtual_address, max(virtual_size, raw_size), raw_offset, raw_size))
            # Every section's data must be in the file: a cut-off DLL fails here, whatever is read.
            reader.check(raw_offset, raw_size, f"section {index + 1} of {count}")

    def offset(self, rva: int, size: int, what: str) -> int:
        """The file offset of ``size`` bytes at ``rva``, checked to lie in one section's data."""
        for virtual_address, span, raw_offset, raw_size in self._spans:
            if virtual_address <= rva < virtual_address + span:
                delta = rva - virtual_address
                if delta + size > raw_size:
                    raise MalformedBinary(f"{what} (RVA {rva:#x}) extends past its section's data")
                self._reader.check(raw_offset + delta, size, what)
                return raw_offset + delta
        raise MalformedBinary(f"{what} RVA {rva:#x} is not in any section")

    def cstring(self, rva: int, what: str) -> bytes:
        return self._reader.cstring(self.offset(rva, 1, what), what)


def _export_names(reader: Reader, sections: _Sections, rva: int) -> tuple[str, ...]:
    at = sections.offset(rva, 40, "export directory")
    (*_, name_count, _, names_rva, _) = reader.unpack("<IIHHIIIIIII", at, "export directory")
    if name_count > MAX_EXPORT_NAMES:
        raise MalformedBinary(f"export directory claims {name_count} names (at most {MAX_EXPORT_NAMES})")
    if not name_count:
        return ()
    table = reader.read(sections.offset(names_rva, 4 * name_count, "export name table"), 4 * name_count,
                        "export name table")  # fmt: skip
    found = []
    for index in range(name_count):
        name_rva = int.from_bytes(table[4 * index : 4 * index + 4], "little")
        name = sections.cstring(name_rva, "export name")
        if name.startswith(_INIT_PREFIX_BYTES):
            found.append(decode_name(name))
            if len(found) >= MAX_INIT_SYMBOLS:
                break
    return tuple(found)


def _import_names(reader: Reader, sections: _Sections, rva: int) -> tuple[str, ...]:
    names = []
    for index in range(MAX_IMPORTS):
        descriptor = reader.read(sections.offset(rva + 20 * index, 20, "import descriptor"), 20, "import descriptor")
        if descriptor == bytes(20):
            return tuple(names)
        name_rva = int.from_bytes(descriptor[12:16], "little")
        names.append(decode_name(sections.cstring(name_rva, "imported DLL name")))
    raise MalformedBinary(f"import directory has more than {MAX_IMPORTS} entries")
