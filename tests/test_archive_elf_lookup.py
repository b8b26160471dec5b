"""``binfmt.elf.find_exports``: init functions looked up through the ELF hash tables, as the
dynamic loader finds them, instead of decoding every dynamic symbol (issue 15, phase 2).

It must say exactly what the full reader says about the names asked for, on real objects
built with each hash style, and on damaged ones either answer or raise MalformedBinary: never
another exception, never an unbounded walk."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from ext_toolchain import build_elf, tool
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ns_strip.binfmt import MalformedBinary, read_binary
from ns_strip.binfmt._reader import Reader
from ns_strip.binfmt.elf import find_exports, gnu_hash, sysv_hash

STYLES = {"gnu": ("-Wl,--hash-style=gnu",), "sysv": ("-Wl,--hash-style=sysv",), "both": ("-Wl,--hash-style=both",)}


def _dynamic_tags(path: Path) -> str:
    return subprocess.run([tool("readelf"), "-d", str(path)], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module", params=sorted(STYLES))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    style = request.param
    path = build_elf(tmp_path_factory.mktemp(style) / "spam.so", "spam", extra=STYLES[style])
    tags = _dynamic_tags(path)
    assert ("(GNU_HASH)" in tags) == (style in ("gnu", "both"))
    assert ("(HASH)" in tags) == (style in ("sysv", "both"))
    return style, path


def _lookup(data: bytes, names: tuple[str, ...]) -> tuple[str, ...]:
    return find_exports(Reader(io.BytesIO(data)), names)


def test_finds_what_the_full_reader_finds(built: tuple[str, Path]) -> None:
    _, path = built
    data = path.read_bytes()
    exported = read_binary(io.BytesIO(data)).init_symbols
    assert exported == ("PyInit_spam",)
    asked = ("PyInit_spam", "PyInit_eggs", "PyInit_spa", "PyInit_spamm", "PyModExport_spam", "Py_Initialize")
    assert _lookup(data, asked) == ("PyInit_spam",)


def test_an_imported_symbol_is_not_an_export(tmp_path: Path) -> None:
    """A module that calls another's PyInit (undefined here) does not export it."""
    source = tmp_path / "caller.c"
    source.write_text("extern void *PyInit_other(void);\nvoid *PyInit_caller(void) { return PyInit_other(); }\n")
    library = tmp_path / "caller.so"
    subprocess.run([tool("gcc"), "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    data = library.read_bytes()
    assert _lookup(data, ("PyInit_caller", "PyInit_other")) == ("PyInit_caller",)


def test_hash_functions_match_the_gabi_and_gnu_definitions() -> None:
    # Values from the System V ABI's and glibc's own examples / implementations.
    assert sysv_hash(b"") == 0 and gnu_hash(b"") == 5381
    assert sysv_hash(b"printf") == 0x077905A6
    assert gnu_hash(b"printf") == 0x156B2BB8
    assert sysv_hash(b"jdfgsdhfsdfsd 6445dsfsd7fg/*/+bfjsdgf%$^") == 248446350


def test_real_libraries_agree_with_the_full_reader() -> None:
    """Every CPython extension module of the running interpreter's standard library."""
    import _ctypes  # an extension module of the standard library: its directory holds the others

    directory = Path(_ctypes.__file__).parent
    checked = 0
    for path in sorted(directory.glob("*.so")):
        data = path.read_bytes()
        module = path.name.split(".")[0]
        full = read_binary(io.BytesIO(data)).init_symbols
        asked = (f"PyInit_{module}", "PyInit_not_there")
        assert _lookup(data, asked) == tuple(name for name in asked if name in full), path
        checked += 1
    assert checked > 20


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_objects_answer_or_raise_malformed(built: tuple[str, Path], data: st.DataObject) -> None:
    _, path = built
    original = bytearray(path.read_bytes())
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        # Mostly in the first pages, where the headers, the hash table and .dynsym live.
        limit = data.draw(st.sampled_from([4096, 16384, len(original)]))
        offset = data.draw(st.integers(0, min(limit, len(original)) - 1))
        damaged[offset] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    try:
        found = _lookup(bytes(damaged), ("PyInit_spam", "PyInit_eggs"))
    except MalformedBinary as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert set(found) <= {"PyInit_spam", "PyInit_eggs"}


def test_a_sysv_chain_that_loops_is_refused(tmp_path: Path) -> None:
    path = build_elf(tmp_path / "spam.so", "spam", extra=STYLES["sysv"])
    data = bytearray(path.read_bytes())
    table = _section_offset(path, ".hash")
    nbucket, nchain = struct.unpack_from("<II", data, table)
    bucket = sysv_hash(b"PyInit_spam") % nbucket
    (first,) = struct.unpack_from("<I", data, table + 8 + bucket * 4)
    assert first != 0
    chain_at = table + 8 + nbucket * 4
    # The chain entry of the bucket's first symbol points back at it: a cycle.
    struct.pack_into("<I", data, chain_at + first * 4, first)
    # And the name no longer matches, so the walk would go on forever.
    found_or_error: object
    try:
        found_or_error = _lookup(bytes(data), ("PyInit_eggs",))
    except MalformedBinary as exc:
        found_or_error = str(exc)
    assert found_or_error in ((), "DT_HASH chain does not end (a cycle)")


def _section_offset(path: Path, name: str) -> int:
    if shutil.which("readelf") is None and not os.environ.get("CI"):
        pytest.skip("readelf is not installed")
    out = subprocess.run([tool("readelf"), "-S", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 4 and fields[1] == name:
            return int(fields[4], 16)
    raise AssertionError(f"no {name} in {path}")
