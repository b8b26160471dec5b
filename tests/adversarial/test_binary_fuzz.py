"""Mutational fuzzing of real extension binaries through ``ext`` (issue 11's adversarial suite).

Seeds are built by the real toolchains (gcc: an ELF CPython extension; mingw-w64: PE DLLs for
amd64 and x86; clang with ld64.lld: a Mach-O bundle and a universal binary of two). From each,
a fixed-seed generator makes mutants: bit flips, truncations, and overwrites of the fields a
reader trusts with counts and offsets (ELF e_phoff/e_shoff/e_phnum/e_shnum/e_shstrndx and the
dynamic segment; PE e_lfanew, NumberOfSections, SizeOfOptionalHeader, NumberOfRvaAndSizes, the
export directory and its counts and RVAs; Mach-O ncmds/sizeofcmds, every load command's size and
LC_SYMTAB's offsets and counts; fat nfat_arch and each slice's offset and size) with huge,
boundary and file-size values.

Every mutant is inspected in this process (a bad binary is an ``ExtensionInfo.problem``, never
an exception), and all of a seed's mutants go through ``ns-strip ext`` in one child under the
memory limit and timeout: exit 0 or 1 only, no traceback, every mutant reported.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from ext_toolchain import build_elf, build_macho, build_pyd, fat_binary
from hostile import assert_clean_exit, run_limited
from ns_strip.extensions import check_extension, inspect_extension_file

SEED = 20261202
BIT_FLIPS = 120
RANDOM_OVERWRITES = 60
TRUNCATIONS = 24

U32 = (0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
U64 = (*U32, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
U16 = (0, 1, 0x7FFF, 0xFFFF)


def _fields_elf(data: bytes) -> Iterator[tuple[int, str]]:
    """(offset, struct format) of the fields an ELF reader trusts."""
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        yield from ((0x20, end + "Q"), (0x28, end + "Q"), (0x36, end + "H"), (0x38, end + "H"),
                    (0x3A, end + "H"), (0x3C, end + "H"), (0x3E, end + "H"))
        phoff, = struct.unpack_from(end + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 0x36)
        for index in range(phnum):
            entry = phoff + index * phentsize
            # p_offset, p_vaddr, p_filesz, p_memsz of every segment (PT_DYNAMIC among them)
            yield from ((entry + 8, end + "Q"), (entry + 16, end + "Q"), (entry + 32, end + "Q"),
                        (entry + 40, end + "Q"))
            if struct.unpack_from(end + "I", data, entry)[0] == 2:  # PT_DYNAMIC: its entries' values
                dyn_offset, = struct.unpack_from(end + "Q", data, entry + 8)
                dyn_size, = struct.unpack_from(end + "Q", data, entry + 32)
                for position in range(dyn_offset, dyn_offset + min(dyn_size, 16 * 40), 16):
                    yield position + 8, end + "Q"
    else:
        yield from ((0x1C, end + "I"), (0x20, end + "I"), (0x2C, end + "H"), (0x30, end + "H"), (0x32, end + "H"))


def _rva_to_offset(sections: list[tuple[int, int, int, int]], rva: int) -> int | None:
    for virtual_address, virtual_size, raw_offset, raw_size in sections:
        if virtual_address <= rva < virtual_address + max(virtual_size, raw_size):
            return raw_offset + rva - virtual_address
    return None


def _fields_pe(data: bytes) -> Iterator[tuple[int, str]]:
    yield 0x3C, "<I"  # e_lfanew
    pe, = struct.unpack_from("<I", data, 0x3C)
    yield pe + 6, "<H"  # NumberOfSections
    yield pe + 20, "<H"  # SizeOfOptionalHeader
    optional = pe + 24
    magic, = struct.unpack_from("<H", data, optional)
    directories = optional + (112 if magic == 0x20B else 96)
    yield directories - 4, "<I"  # NumberOfRvaAndSizes
    yield from ((directories, "<I"), (directories + 4, "<I"), (directories + 8, "<I"), (directories + 12, "<I"))
    count, = struct.unpack_from("<H", data, pe + 6)
    size, = struct.unpack_from("<H", data, pe + 20)
    sections = []
    for index in range(count):
        header = optional + size + index * 40
        virtual_size, virtual_address, raw_size, raw_offset = struct.unpack_from("<IIII", data, header + 8)
        sections.append((virtual_address, virtual_size, raw_offset, raw_size))
        yield from ((header + 8, "<I"), (header + 12, "<I"), (header + 16, "<I"), (header + 20, "<I"))
    export_rva, = struct.unpack_from("<I", data, directories)
    export = _rva_to_offset(sections, export_rva)
    if export is not None:
        # Name, Base, NumberOfFunctions, NumberOfNames, AddressOfFunctions, AddressOfNames, ...Ordinals
        yield from ((export + offset, "<I") for offset in (12, 16, 20, 24, 28, 32, 36))


def _fields_macho(data: bytes, base: int = 0) -> Iterator[tuple[int, str]]:
    magic, = struct.unpack_from(">I", data, base)
    if magic in (0xCAFEBABE, 0xBEBAFECA):
        yield base + 4, ">I"  # nfat_arch
        count, = struct.unpack_from(">I", data, base + 4)
        for index in range(min(count, 8)):
            entry = base + 8 + index * 20
            yield from ((entry + 8, ">I"), (entry + 12, ">I"), (entry + 16, ">I"))
            offset, = struct.unpack_from(">I", data, entry + 8)
            yield from _fields_macho(data, offset)
        return
    end = "<" if magic in (0xCFFAEDFE, 0xCEFAEDFE) else ">"  # read big-endian: a little-endian file's is reversed
    header_size = 32 if magic in (0xFEEDFACF, 0xCFFAEDFE) else 28
    yield base + 16, end + "I"  # ncmds
    yield base + 20, end + "I"  # sizeofcmds
    ncmds, = struct.unpack_from(end + "I", data, base + 16)
    position = base + header_size
    for _ in range(min(ncmds, 64)):
        if position + 8 > len(data):
            return
        command, size = struct.unpack_from(end + "II", data, position)
        yield position + 4, end + "I"  # cmdsize
        if command == 0x2:  # LC_SYMTAB: symoff, nsyms, stroff, strsize
            yield from ((position + offset, end + "I") for offset in (8, 12, 16, 20))
        elif size >= 16:  # dataoff/datasize of linkedit commands, segment fields: all offsets or counts
            yield from ((position + offset, end + "I") for offset in range(8, min(size, 48), 4))
        position += max(size, 8)


FIELDS = {"elf": _fields_elf, "pe": _fields_pe, "macho": _fields_macho}


def mutants(data: bytes, kind: str, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """(label, mutated bytes): targeted overwrites, random overwrites, bit flips, truncations."""
    for offset, fmt in FIELDS[kind](data):
        width = struct.calcsize(fmt)
        if offset + width > len(data):
            continue
        values = {"H": U16, "I": U32, "Q": U64}[fmt[-1]]
        for value in (*values, len(data), len(data) - 1):
            value &= (1 << (8 * width)) - 1
            mutated = bytearray(data)
            struct.pack_into(fmt, mutated, offset, value)
            yield f"field@{offset:#x}={value:#x}", bytes(mutated)
    for index in range(RANDOM_OVERWRITES):
        offset = rng.randrange(0, len(data) - 8)
        mutated = bytearray(data)
        mutated[offset:offset + 4] = struct.pack("<I", rng.choice(U32))
        yield f"overwrite{index}@{offset:#x}", bytes(mutated)
    for index in range(BIT_FLIPS):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            # Most flips in the first 4 KiB, where the headers and tables a reader follows are.
            position = rng.randrange(0, min(len(data), 4096)) if rng.random() < 0.8 else rng.randrange(len(data))
            mutated[position] ^= 1 << rng.randrange(8)
        yield f"flip{index}", bytes(mutated)
    cuts = sorted({0, 1, 3, 4, 16, 52, 64, 0x40, 0x80, 0x100, len(data) // 2, len(data) - 1}
                  | {rng.randrange(len(data)) for _ in range(TRUNCATIONS)})
    for cut in cuts:
        yield f"truncated@{cut}", data[:cut]


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, tuple[str, Path, str]]:
    """name -> (format, a real binary, the file name its mutants take)."""
    out = tmp_path_factory.mktemp("seeds")
    arm64 = build_macho(out / "arm64" / "foo.cpython-311-darwin.so", "arm64", "PyInit_foo")
    x86_64 = build_macho(out / "x86_64" / "foo.cpython-311-darwin.so", "x86_64", "PyInit_foo")
    return {
        "elf": ("elf", build_elf(out / "elf" / "foo.cpython-311-x86_64-linux-gnu.so", "foo"),
                "cpython-311-x86_64-linux-gnu.so"),
        "pe-amd64": ("pe", build_pyd(out / "amd64" / "foo.cp311-win_amd64.pyd", "amd64", "PyInit_foo",
                                     python_dll="python3.dll"), "cp311-win_amd64.pyd"),
        "pe-x86": ("pe", build_pyd(out / "x86" / "foo.cp311-win32.pyd", "x86", "PyInit_foo"), "cp311-win32.pyd"),
        "macho": ("macho", arm64, "cpython-311-darwin.so"),
        "macho-fat": ("macho", fat_binary(out / "fat" / "foo.cpython-311-darwin.so",
                                          {"arm64": arm64, "x86_64": x86_64}), "cpython-311-darwin.so"),
    }


@pytest.mark.parametrize("name", ["elf", "pe-amd64", "pe-x86", "macho", "macho-fat"])
def test_mutants_of_a_real_binary(name, seeds, tmp_path):
    kind, seed_path, suffix = seeds[name]
    data = seed_path.read_bytes()
    rng = random.Random(f"{SEED}-{name}")
    directory = tmp_path / "mutants"
    directory.mkdir()
    labels = {}
    for index, (label, mutated) in enumerate(mutants(data, kind, rng)):
        path = directory / f"m{index:04d}.{suffix}"
        path.write_bytes(mutated)
        labels[path.name] = label
        # In this process first: an exception here names the mutant precisely.
        try:
            info = inspect_extension_file(path, path.name)
            check_extension(info)
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"{name} mutant {label} ({path}) raised {exc!r}") from exc
    assert len(labels) > 300, "the generator made fewer mutants than it should"
    # Then the command line on all of them at once, in a child under the memory limit.
    result = run_limited("ext", "--json", str(directory), timeout=120)
    assert_clean_exit(result, {0, 1})
    reported = {Path(entry["path"]).name for entry in json.loads(result.stdout)["extensions"]}
    skipped = set(labels) - reported
    # A mutant may lose its init symbols and read as a plain library (skipped in a walk); the
    # rest are reported, readable or as NS205.
    assert len(skipped) < len(labels) // 4, sorted(skipped)[:10]
    the_seed = run_limited("ext", "--json", str(seed_path), timeout=60)
    assert_clean_exit(the_seed, {0, 1})
    assert json.loads(the_seed.stdout)["extensions"][0]["exported"] == ["foo"]
