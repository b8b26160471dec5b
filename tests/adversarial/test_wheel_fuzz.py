"""Mutational fuzzing of a wheel's bytes (fixed seed): bit flips, truncations, and huge or
boundary values over the fields of the end record, the central directory and the local headers.
Opening a mutant either gives a wheel that every reading command handles, or refuses it with a
BadInputError (exit 3): never another exception, never a traceback."""

from __future__ import annotations

import random
import struct
import zipfile
from pathlib import Path

import pytest

from hostile import assert_clean_exit, run_limited
from nstree import PKGUTIL_INIT, run_cli
from wheelbuild import RawMember, raw_wheel

from ns_strip.errors import NsStripError
from ns_strip.wheels import WheelSource

SEED = 20261202
VALUES = (0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


def _fields(data: bytes) -> list[tuple[int, str]]:
    """(offset, format) of every number in the end record, central directory and local headers."""
    fields = []
    end = data.rfind(b"PK\x05\x06")
    fields += [(end + offset, fmt) for offset, fmt in ((8, "<H"), (10, "<H"), (12, "<I"), (16, "<I"), (20, "<H"))]
    position = data.find(b"PK\x01\x02")
    while 0 <= position < end:
        fields += [(position + offset, fmt) for offset, fmt in (
            (8, "<H"), (10, "<H"), (16, "<I"), (20, "<I"), (24, "<I"), (28, "<H"), (30, "<H"), (32, "<H"),
            (38, "<I"), (42, "<I"))]
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, position + 28)
        position += 46 + name_length + extra_length + comment_length
    position = data.find(b"PK\x03\x04")
    while 0 <= position < end:
        fields += [(position + offset, fmt) for offset, fmt in (
            (6, "<H"), (8, "<H"), (14, "<I"), (18, "<I"), (22, "<I"), (26, "<H"), (28, "<H"))]
        position = data.find(b"PK\x03\x04", position + 4)
    return fields


def _mutants(data: bytes, rng: random.Random):
    for offset, fmt in _fields(data):
        for value in VALUES:
            mutated = bytearray(data)
            struct.pack_into(fmt, mutated, offset, value & ((1 << (8 * struct.calcsize(fmt))) - 1))
            yield f"field@{offset}={value:#x}", bytes(mutated)
    for index in range(150):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
        yield f"flip{index}", bytes(mutated)
    for cut in sorted({rng.randrange(len(data)) for _ in range(40)} | {0, 4, 22, len(data) - 22, len(data) - 1}):
        yield f"truncated@{cut}", data[:cut]


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA],
                         ids=["stored", "deflate", "bzip2", "lzma"])
def test_mutants_of_a_wheel_are_read_or_refused(method, tmp_path):
    wheel = raw_wheel(tmp_path / "seed", [
        RawMember("okns/__init__.py", PKGUTIL_INIT.encode(), method=method),
        RawMember("okns/mod.py", b"VALUE = 1\n" * 20, method=method),
        RawMember("okns/fast.cpython-311-x86_64-linux-gnu.so", b"\x7fELF" + bytes(60), method=method),
    ])
    data = wheel.read_bytes()
    rng = random.Random(f"{SEED}-{method}")
    mutant = tmp_path / "mutant" / wheel.name
    mutant.parent.mkdir()
    outcomes = {"opened": 0, "refused": 0}
    for label, mutated in _mutants(data, rng):
        mutant.write_bytes(mutated)
        try:
            WheelSource.open(mutant).close()
        except NsStripError as exc:
            assert exc.exit_code == 3, (label, exc)
            outcomes["refused"] += 1
            continue
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(f"mutant {label} raised {exc!r}") from exc
        outcomes["opened"] += 1
        for command in (["scan"], ["ext"], ["import-names"], ["check"]):
            code, _, err = run_cli(*command, str(mutant))
            assert code in (0, 1), (label, command, err)
    assert outcomes["refused"] > 100 and outcomes["opened"] > 10, outcomes


def test_a_mutant_through_the_command_line_in_a_child(tmp_path):
    """The same in a memory-limited child for a sample: one line, exit 3."""
    wheel = raw_wheel(tmp_path / "seed", [RawMember("okns/__init__.py", PKGUTIL_INIT.encode())])
    data = bytearray(wheel.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<I", data, end + 12, 0xFFFFFFFF)  # a central directory of 4 GiB
    Path(wheel).write_bytes(bytes(data))
    result = run_limited("scan", str(wheel), timeout=60)
    assert_clean_exit(result, {3})
