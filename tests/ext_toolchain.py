"""Build real extension modules for the ``ext`` tests with real toolchains.

gcc and the Python headers build ELF extensions that really import; mingw-w64 builds ``.pyd``
DLLs (a plain C function as ``PyInit_foo``: the export table is what is read); clang with
ld64.lld builds Mach-O bundles. A missing tool skips the test on a developer's machine and
fails it in CI (CI=true), so CI never passes by skipping.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import io
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from ns_strip.cli import main

def missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not installed")


def tool(name: str) -> str:
    """``name`` on PATH, or a versioned ``name-14`` as Debian installs LLVM tools."""
    found = shutil.which(name)
    if found:
        return found
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        versions = sorted(glob.glob(os.path.join(directory, f"{name}-[0-9]*")))
        if versions:
            return versions[-1]
    missing(name)
    raise AssertionError  # not reached


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def _built(out: Path, key: str, build) -> Path:
    """Build into ``out`` by calling ``build(path)``, once per distinct ``key`` per session."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    store = _store() / digest
    if not store.exists():
        partial = store.with_suffix(".part")
        build(partial)
        partial.replace(store)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store, out)
    return out


_STORE: list[Path] = []


def _store() -> Path:
    # One directory of builds per test session: the same source is compiled once.
    if not _STORE:
        _STORE.append(Path(tempfile.mkdtemp(prefix="ns-strip-ext-builds-")))
        atexit.register(shutil.rmtree, _STORE[0], True)
    return _STORE[0]


def module_source(module: str, init_name: str | None = None) -> str:
    """C source of a real extension module named ``module`` (multi-phase init, which a
    non-ASCII name requires)."""
    if init_name is None:
        if module.isascii():
            init_name = f"PyInit_{module}"
        else:
            init_name = "PyInitU_" + module.encode("punycode").decode().replace("-", "_")
    escaped = "".join(f"\\x{byte:02x}" for byte in module.encode("utf-8"))
    return f"""
#include <Python.h>
static PyObject *answer(PyObject *self, PyObject *args) {{ return PyLong_FromLong(42); }}
static PyMethodDef methods[] = {{{{"answer", answer, METH_NOARGS, NULL}}, {{NULL, NULL, 0, NULL}}}};
static struct PyModuleDef def = {{PyModuleDef_HEAD_INIT, "{escaped}", NULL, 0, methods}};
PyMODINIT_FUNC {init_name}(void) {{ return PyModuleDef_Init(&def); }}
"""


def build_elf(out: Path, module: str, init_name: str | None = None, extra: tuple[str, ...] = ()) -> Path:
    """A real CPython extension for the running interpreter, built by gcc."""
    gcc = tool("gcc")
    include = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(include, "Python.h")):
        missing(f"Python.h (in {include})")
    source = module_source(module, init_name)

    def build(path: Path) -> None:
        src = path.with_suffix(".c")
        src.write_text(source, "utf-8")
        _run([gcc, "-shared", "-fPIC", "-O0", f"-I{include}", "-o", str(path), str(src), *extra])

    return _built(out, "elf\0" + source + "\0".join(extra), build)


def plain_source(symbol: str, extra: str = "") -> str:
    return f"{extra}\nvoid *{symbol}(void) {{ return (void *)0; }}\n"


def build_cross_elf(out: Path, target: str, symbol: str) -> Path:
    """An ELF shared object for another machine (clang -target ... and ld.lld), exporting ``symbol``."""
    clang, lld = tool("clang"), tool("ld.lld")
    source = plain_source(symbol)

    def build(path: Path) -> None:
        src, obj = path.with_suffix(".c"), path.with_suffix(".o")
        src.write_text(source)
        _run([clang, "-target", target, "-fPIC", "-c", "-o", str(obj), str(src)])
        _run([lld, "-shared", "-o", str(path), str(obj)])

    return _built(out, f"cross\0{target}\0{source}", build)


MINGW = {"amd64": "x86_64-w64-mingw32", "x86": "i686-w64-mingw32"}


def build_pyd(out: Path, machine: str, symbol: str, python_dll: str | None = None) -> Path:
    """A Windows DLL built by mingw-w64, exporting ``symbol``; importing ``python_dll`` if given."""
    prefix = MINGW[machine]
    gcc = tool(f"{prefix}-gcc")
    call = "Py_IncRef((void *)0);" if python_dll else ""
    source = (
        ("void Py_IncRef(void *);\n" if python_dll else "")
        + f"__declspec(dllexport) void *{symbol}(void) {{ {call} return (void *)0; }}\n"
    )

    def build(path: Path) -> None:
        src = path.with_suffix(".c")
        src.write_text(source)
        command = [gcc, "-shared", "-o", str(path), str(src)]
        if python_dll:
            definition, library = path.with_suffix(".def"), path.with_suffix(".a")
            definition.write_text(f"LIBRARY {python_dll}\nEXPORTS\nPy_IncRef\n")
            _run([tool(f"{prefix}-dlltool"), "-d", str(definition), "-l", str(library)])
            command.append(str(library))
        _run(command)

    return _built(out, f"pe\0{machine}\0{python_dll}\0{source}", build)


MACHO_TARGETS = {"arm64": "arm64-apple-macos11", "x86_64": "x86_64-apple-macos11"}


def build_macho(out: Path, arch: str, symbol: str, kind: str = "-bundle") -> Path:
    """A Mach-O bundle (or ``-dylib``) for ``arch`` built by clang and ld64.lld."""
    clang, ld64 = tool("clang"), tool("ld64.lld")
    source = plain_source(symbol)

    def build(path: Path) -> None:
        src, obj = path.with_suffix(".c"), path.with_suffix(".o")
        src.write_text(source)
        _run([clang, "-target", MACHO_TARGETS[arch], "-c", "-o", str(obj), str(src)])
        install_name = ["-install_name", f"@rpath/{out.name}"] if kind == "-dylib" else []
        _run([ld64, "-arch", arch, "-platform_version", "macos", "11.0", "11.0", kind, *install_name,
              "-undefined", "dynamic_lookup", "-o", str(path), str(obj)])  # fmt: skip

    return _built(out, f"macho\0{arch}\0{kind}\0{out.name}\0{source}", build)


CPU_TYPES = {"arm64": 0x0100000C, "x86_64": 0x01000007}


def fat_binary(out: Path, slices: dict[str, Path], use_lipo: bool = True) -> Path:
    """A universal binary of real thin Mach-O files: llvm-lipo's, or a fat header written here
    (the container is only a header and aligned copies of the slices)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if use_lipo:
        _run([tool("llvm-lipo"), "-create", *map(str, slices.values()), "-output", str(out)])
        return out
    header = struct.pack(">II", 0xCAFEBABE, len(slices))
    offset, body, entries = 0x4000, b"", b""
    for arch, path in slices.items():
        data = path.read_bytes()
        entries += struct.pack(">iiIII", CPU_TYPES[arch], 0, offset + len(body), len(data), 14)
        body += data + bytes(-len(data) % 0x4000)
    out.write_bytes((header + entries).ljust(offset, b"\0") + body)
    return out


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def run_module(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ns_strip", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def import_in_subprocess(directory: Path, module: str) -> subprocess.CompletedProcess:
    code = f"import {module}; print({module}.answer())"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=directory, timeout=120,
        env={**os.environ, "PYTHONPATH": str(directory)},
    )  # fmt: skip
