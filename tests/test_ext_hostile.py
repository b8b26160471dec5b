"""Truncated, empty, garbage and hostile binaries: each is one NS205 line, exit 1, no traceback,
in bounded time (a subprocess with a timeout) and memory (counts are capped before use)."""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from ext_toolchain import build_elf, build_macho, build_pyd, run_module

from ns_strip.binfmt.macho import LC_DYLD_INFO_ONLY
from ns_strip.extensions import check_extension, inspect_extension

ELF_NAME = "foo.cpython-311-x86_64-linux-gnu.so"


def assert_ns205(path: Path, reason: str) -> None:
    """``ns-strip ext`` on ``path`` prints exactly one NS205 line containing ``reason``."""
    result = run_module("ext", str(path), "-q", timeout=60)
    assert result.stderr == ""
    assert result.returncode == 1
    [line] = result.stdout.splitlines()
    assert line.startswith(f"NS205 {path.name}: malformed binary: ")
    assert reason in line


def patched(source: Path, target: Path, *patches: tuple[int, str, int]) -> Path:
    data = bytearray(source.read_bytes())
    for offset, fmt, value in patches:
        struct.pack_into(fmt, data, offset, value)
    target.write_bytes(bytes(data))
    return target


@pytest.fixture
def elf(tmp_path) -> Path:
    return build_elf(tmp_path / "real" / ELF_NAME, "foo", extra=("-Wl,--hash-style=both",))


@pytest.fixture
def pyd(tmp_path) -> Path:
    return build_pyd(tmp_path / "real" / "foo.cp311-win_amd64.pyd", "amd64", "PyInit_foo")


@pytest.fixture
def macho(tmp_path) -> Path:
    return build_macho(tmp_path / "real" / "foo.cpython-311-darwin.so", "arm64", "PyInit_foo")


@pytest.mark.parametrize("kind", ["elf", "pyd", "macho"])
def test_every_truncation_is_ns205(request, kind):
    path = request.getfixturevalue(kind)
    data = path.read_bytes()
    lengths = sorted({*range(0, 256), *range(0, len(data), 97), len(data) - 1})
    for length in lengths:
        info = inspect_extension(io.BytesIO(data[:length]), path.name)
        [finding] = check_extension(info)
        assert finding.code == "NS205", (length, finding)
    assert check_extension(inspect_extension(io.BytesIO(data), path.name)) == []


def test_truncated_file_on_the_command_line(elf, tmp_path):
    target = tmp_path / ELF_NAME
    target.write_bytes(elf.read_bytes()[:3000])
    assert_ns205(target, "would extend past the end of the file (3000 bytes)")


def test_zero_length_and_garbage(tmp_path):
    empty = tmp_path / "empty" / ELF_NAME
    empty.parent.mkdir()
    empty.touch()
    assert_ns205(empty, "empty file")
    rng = random.Random(1234)
    for index, magic in enumerate([b"", b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"]):
        for size in (3, 64, 4096):
            garbage = (magic + rng.randbytes(size))[:size] if size >= len(magic) else magic[:size]
            info = inspect_extension(io.BytesIO(garbage), ELF_NAME)
            assert [f.code for f in check_extension(info)] == ["NS205"], (magic, size)
    target = tmp_path / "garbage" / ELF_NAME
    target.parent.mkdir()
    target.write_bytes(b"\x00garbage" * 100)
    assert_ns205(target, "not an ELF, PE or Mach-O file")


def _elf_offsets(path: Path) -> dict[str, int]:
    with open(path, "rb") as stream:
        elf = ELFFile(stream)
        return {
            "shoff": elf.header.e_shoff,
            "hash": elf.get_section_by_name(".hash")["sh_offset"],
        }


@pytest.mark.parametrize(
    "name, patch, reason",
    [
        ("phoff", lambda o: [(32, "<Q", 1 << 40)], "program header table"),
        ("shoff", lambda o: [(40, "<Q", 1 << 40)], "section header table"),
        ("phnum", lambda o: [(56, "<H", 0xFFFE)], "claims 65534 program headers"),
        ("phnum-xnum", lambda o: [(56, "<H", 0xFFFF)], "65535 or more program headers"),
        ("shnum", lambda o: [(60, "<H", 0xFFFF)], "section header table (65535 entries)"),
        ("nchain", lambda o: [(o["hash"] + 4, "<I", 0x7FFFFFFF)], "dynamic symbol table claims 2147483647 symbols"),
        ("nchain-past-end", lambda o: [(o["hash"] + 4, "<I", 1 << 20)], "dynamic symbol table (1048576 entries)"),
    ],
)
def test_hostile_elf_headers(elf, tmp_path, name, patch, reason):
    target = patched(elf, tmp_path / ELF_NAME, *patch(_elf_offsets(elf)))
    assert_ns205(target, reason)


def test_hostile_gnu_hash(tmp_path):
    # Without DT_HASH, the symbol count comes from DT_GNU_HASH.
    elf = build_elf(tmp_path / "real" / ELF_NAME, "foo", extra=("-Wl,--hash-style=gnu",))
    with open(elf, "rb") as stream:
        table = ELFFile(stream).get_section_by_name(".gnu.hash")["sh_offset"]
    target = patched(elf, tmp_path / ELF_NAME, (table, "<I", 0xFFFFFFF0))
    assert_ns205(target, "DT_GNU_HASH claims 4294967280 buckets")


def _pe_layout(path: Path) -> dict[str, int]:
    data = path.read_bytes()
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    sections, optional_size = struct.unpack_from("<H", data, pe + 6)[0], struct.unpack_from("<H", data, pe + 20)[0]
    optional = pe + 24
    directories = optional + (112 if struct.unpack_from("<H", data, optional)[0] == 0x20B else 96)
    export_rva = struct.unpack_from("<I", data, directories)[0]
    for index in range(sections):
        entry = optional + optional_size + 40 * index
        size, rva, _, raw = struct.unpack_from("<IIII", data, entry + 8)
        if rva <= export_rva < rva + size:
            return {"directories": directories, "export": raw + export_rva - rva, "pe": pe}
    raise AssertionError("no export section")


@pytest.mark.parametrize(
    "name, patch, reason",
    [
        ("export-rva", lambda o: [(o["directories"], "<I", 0x7FFFFF00)], "export directory RVA 0x7fffff00"),
        ("names-huge", lambda o: [(o["export"] + 24, "<I", 0xFFFFFFFF)], "claims 4294967295 names"),
        ("names-past", lambda o: [(o["export"] + 24, "<I", 0x10000)], "export name table"),
        ("lfanew", lambda o: [(0x3C, "<I", 0x7FFFFFF0)], "PE signature"),
        ("sections", lambda o: [(o["pe"] + 6, "<H", 0xFFFF)], "claims 65535 sections"),
    ],
)
def test_hostile_pe(pyd, tmp_path, name, patch, reason):
    target = patched(pyd, tmp_path / pyd.name, *patch(_pe_layout(pyd)))
    assert_ns205(target, reason)


def _trie_child_offset(path: Path) -> int:
    """File offset of the export trie root's first child pointer."""
    data = path.read_bytes()
    ncmds = struct.unpack_from("<I", data, 16)[0]
    position = 32
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, position)
        if cmd == LC_DYLD_INFO_ONLY:
            trie = struct.unpack_from("<I", data, position + 40)[0]
            assert data[trie] == 0 and data[trie + 1] >= 1  # root: not terminal, has children
            return data.index(b"\0", trie + 2) + 1
        position += size
    raise AssertionError("no export trie")


@pytest.mark.parametrize(
    "name, patch, reason",
    [
        ("ncmds", lambda m: [(16, "<I", 0xFFFFFFFF)], "claims 4294967295 load commands"),
        ("cmdsize-0", lambda m: [(32 + 4, "<I", 0)], "load command 1 of"),
        ("trie-cycle", lambda m: [(_trie_child_offset(m), "<B", 0)], "export trie has a cycle"),
    ],
)
def test_hostile_macho(macho, tmp_path, name, patch, reason):
    target = patched(macho, tmp_path / macho.name, *patch(macho))
    assert_ns205(target, reason)


def test_hostile_universal_header(macho, tmp_path):
    target = tmp_path / macho.name
    target.write_bytes(struct.pack(">II", 0xCAFEBABE, 0xFFFFFFFF) + macho.read_bytes())
    assert_ns205(target, "universal header claims 4294967295 architectures")
    target.write_bytes(struct.pack(">IIiiIII", 0xCAFEBABE, 1, 0x0100000C, 0, 1 << 30, 1 << 20, 14))
    assert_ns205(target, "architecture 1 of 1")


def test_a_bad_file_does_not_hide_the_others(elf, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / ELF_NAME).write_bytes(elf.read_bytes())
    (site / "bad.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF\x02\x01\x01")
    result = run_module("ext", str(site), timeout=60)
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.splitlines() == [
        "2 extension module(s) in " + str(site),
        "NS205 bad.cpython-311-x86_64-linux-gnu.so: malformed binary: ELF identification: 16 bytes at 0x0 would extend "
        "past the end of the file (7 bytes)",
    ]
