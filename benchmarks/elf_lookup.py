"""Where looking init names up through the ELF hash table pays: ``read_binary`` on gcc-built
shared objects of N exported functions, every dynamic symbol decoded against the promised
names looked up through the hash table, in one process (interpreter start-up not counted).
``elf.LOOKUP_FROM_SYMBOLS`` is set from where the two cross.

    python benchmarks/elf_lookup.py [--counts 16,32,64,128,1000,10000] [--repetitions 300]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ns_strip.binfmt import elf, read_binary

WANTED = ("PyInit_big", "PyModExport_big")


def build(directory: Path, count: int) -> bytes:
    source = directory / f"big{count}.c"
    lines = [f"int helper_{index}(int x) {{ return x + {index}; }}" for index in range(count)]
    source.write_text("\n".join([*lines, "void *PyInit_big(void) { return (void *)0; }"]) + "\n")
    out = source.with_suffix(".so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O0", "-o", str(out), str(source)], check=True)
    return out.read_bytes()


def microseconds_per_read(data: bytes, repetitions: int, lookup_from: int) -> float:
    """``read_binary`` with the threshold forced: 0 always looks up, sys.maxsize never does."""
    saved, elf.LOOKUP_FROM_SYMBOLS = elf.LOOKUP_FROM_SYMBOLS, lookup_from
    try:
        stream = io.BytesIO(data)
        assert read_binary(stream, WANTED).init_symbols == ("PyInit_big",)
        start = time.perf_counter()
        for _ in range(repetitions):
            read_binary(stream, WANTED)
        return (time.perf_counter() - start) / repetitions * 1e6
    finally:
        elf.LOOKUP_FROM_SYMBOLS = saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="16,32,64,128,1000,10000", help="exported functions per object")
    parser.add_argument("--repetitions", type=int, default=300)
    args = parser.parse_args()
    print(f"{'symbols':>8}  {'all decoded':>12}  {'looked up':>10}")
    with tempfile.TemporaryDirectory() as directory:
        for count in (int(text) for text in args.counts.split(",")):
            data = build(Path(directory), count)
            # Alternating, twice; the better of each side.
            times = [microseconds_per_read(data, args.repetitions, limit) for limit in (sys.maxsize, 0) * 2]
            print(f"{count:>8}  {min(times[0::2]):>9.0f} us  {min(times[1::2]):>7.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
