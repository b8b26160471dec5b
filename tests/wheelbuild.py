"""Wheels for the tests: built at test time by real backends, or crafted (hostile ones included).

- :func:`build_wheel` writes a project and builds it offline with setuptools, hatchling or
  flit_core through ``pip wheel --no-build-isolation`` (as a distro build does).
- :func:`craft_wheel` writes a wheel member by member with zipfile and a true RECORD that a
  test may then spoil, for the refusals that no backend would produce.
- :func:`raw_member` reads a member's stored (compressed) bytes, to prove a copy was raw.

Imported by the tests as a plain module (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import bz2
import dataclasses
import json
import lzma
import struct
import textwrap
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from nstree import build_setuptools_wheel, record_hash



def _write_files(project: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


def _top_level(files: dict[str, str | bytes]) -> list[str]:
    return sorted({rel.split("/")[0] for rel in files if rel.endswith(".py") or "/" in rel})


def build_wheel(
    work: Path,
    name: str,
    files: dict[str, str | bytes],
    backend: str = "setuptools",
    version: str = "1.0",
    namespace_packages: Sequence[str] = (),
    requires: Sequence[str] = (),
    import_names: Sequence[str] | None = None,
    import_namespaces: Sequence[str] | None = None,
    ext_modules: dict[str, str] | None = None,
) -> Path:
    """Build distribution ``name`` from ``files`` (paths relative to the import root).

    setuptools: every directory holding a ``.py`` file is a package, top-level ``.py`` files
    are modules, ``namespace_packages`` is passed as is, ``ext_modules`` maps a dotted module
    name to C source compiled by the real compiler. hatchling and flit_core: ``import_names``
    / ``import_namespaces`` become PEP 794 ``[project]`` keys (hatchling writes them as given;
    flit_core checks them against its module, named by the first of ``files``' top-level
    entries, or the dotted name of a namespace package's portion).
    """
    project = work / f"project-{name}-{backend}"
    _write_files(project, files)
    if backend == "setuptools":
        _setuptools_project(project, name, version, files, namespace_packages, requires, ext_modules or {})
    elif backend == "hatchling":
        _hatchling_project(project, name, version, files, requires, import_names, import_namespaces)
    elif backend == "flit":
        _flit_project(project, name, version, files, requires, import_names, import_namespaces)
    else:
        raise ValueError(f"unknown backend {backend}")
    return build_setuptools_wheel(project, work / f"dist-{name}-{backend}")


def _setuptools_project(project: Path, name: str, version: str, files: dict[str, str | bytes],
                        namespace_packages: Sequence[str], requires: Sequence[str],
                        ext_modules: dict[str, str]) -> None:
    packages = sorted({rel.rpartition("/")[0].replace("/", ".") for rel in files if "/" in rel and rel.endswith(".py")})
    modules = sorted(rel[:-3] for rel in files if "/" not in rel and rel.endswith(".py"))
    extensions = []
    for module, source in ext_modules.items():
        c_file = f"ext_src/{module.replace('.', '_')}.c"
        _write_files(project, {c_file: source})
        extensions.append(f"Extension({module!r}, [{c_file!r}])")
    (project / "setup.py").write_text(textwrap.dedent(f"""\
        from setuptools import Extension, setup
        setup(name={name!r}, version={version!r}, packages={packages!r}, py_modules={modules!r},
              namespace_packages={list(namespace_packages)!r}, install_requires={list(requires)!r},
              ext_modules=[{", ".join(extensions)}])
    """))


def _project_table(name: str, version: str, requires: Sequence[str], import_names: Sequence[str] | None,
                   import_namespaces: Sequence[str] | None) -> str:
    lines = [f"name = {json.dumps(name)}", f"version = {json.dumps(version)}",
             'description = "test distribution"', f"dependencies = {json.dumps(list(requires))}"]
    if import_names is not None:
        lines.append(f"import-names = {json.dumps(list(import_names))}")
    if import_namespaces is not None:
        lines.append(f"import-namespaces = {json.dumps(list(import_namespaces))}")
    return "\n".join(lines)


def _hatchling_project(project: Path, name: str, version: str, files: dict[str, str | bytes],
                       requires: Sequence[str], import_names: Sequence[str] | None,
                       import_namespaces: Sequence[str] | None) -> None:
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n[project]\n'
        + _project_table(name, version, requires, import_names, import_namespaces)
        + f"\n\n[tool.hatch.build.targets.wheel]\nonly-include = {json.dumps(_top_level(files))}\n"
    )


def _flit_project(project: Path, name: str, version: str, files: dict[str, str | bytes],
                  requires: Sequence[str], import_names: Sequence[str] | None,
                  import_namespaces: Sequence[str] | None) -> None:
    module = (import_names or _top_level(files))[0].partition(";")[0].strip()
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core >=4"]\nbuild-backend = "flit_core.buildapi"\n\n[project]\n'
        + _project_table(name, version, requires, import_names, import_namespaces)
        + f"\n\n[tool.flit.module]\nname = {json.dumps(module)}\n"
    )


# -- crafted wheels ----------------------------------------------------------------------------



def record_rows(members: Sequence[tuple[str | zipfile.ZipInfo, bytes]], dist_info: str) -> list[str]:
    rows = []
    for member, data in members:
        name = member.filename if isinstance(member, zipfile.ZipInfo) else member
        if not name.endswith("/"):
            rows.append(f"{name},{record_hash(data)},{len(data)}")
    rows.append(f"{dist_info}/RECORD,,")
    return rows


def craft_wheel(
    directory: Path,
    members: Sequence[tuple[str | zipfile.ZipInfo, bytes]],
    name: str = "crafted",
    version: str = "1.0",
    spoil_record: Callable[[list[str]], list[str]] | None = None,
    compresslevel: int | None = None,
    metadata: str | None = None,
) -> Path:
    """A wheel holding ``members`` (in order) plus METADATA, WHEEL and a RECORD listing them all.

    ``spoil_record`` may change the RECORD rows before they are written; ``compresslevel``
    sets deflate's level for every member.
    """
    dist_info = f"{name}-{version}.dist-info"
    everything = list(members) + [
        (f"{dist_info}/METADATA", (metadata or f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").encode()),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: ns-strip-tests\nRoot-Is-Purelib: true\n"
                               b"Tag: py3-none-any\n"),
    ]
    rows = record_rows(everything, dist_info)
    if spoil_record is not None:
        rows = spoil_record(rows)
    everything.append((f"{dist_info}/RECORD", ("\n".join(rows) + "\n").encode()))
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    directory.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        for member, data in everything:
            if isinstance(member, str):
                member = zipfile.ZipInfo(member, (2020, 2, 2, 0, 0, 0))
                member.compress_type = zipfile.ZIP_DEFLATED
                member.external_attr = 0o644 << 16
            archive.writestr(member, data, compresslevel=compresslevel)
    return wheel


def raw_member(wheel: Path, name: str) -> bytes:
    """The stored bytes of member ``name`` (still compressed), read past its local header."""
    with zipfile.ZipFile(wheel) as archive:
        info = archive.getinfo(name)
    with open(wheel, "rb") as handle:
        handle.seek(info.header_offset)
        header = handle.read(30)
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        return handle.read(info.compress_size)


@dataclasses.dataclass
class RawMember:
    """One member of :func:`raw_wheel`, every field of its headers under the test's control.

    ``data`` is the content RECORD describes; ``stored`` the bytes written as the member's data
    (by default ``data`` compressed by ``method``); ``declared`` the size both headers give (by
    default ``len(data)``); ``local`` overrides fields of the local header only (``method``,
    ``crc``, ``compress_size``, ``file_size``, ``flags``, ``name``).
    """

    name: str
    data: bytes = b""
    method: int = zipfile.ZIP_DEFLATED
    stored: bytes | None = None
    declared: int | None = None
    crc: int | None = None
    mode: int = 0o100644
    in_record: bool = True
    local: dict = dataclasses.field(default_factory=dict)


def compress(data: bytes, method: int) -> bytes:
    """``data`` as a zip member of ``method`` stores it (zip's LZMA: its own 9-byte header)."""
    if method == zipfile.ZIP_STORED:
        return data
    if method == zipfile.ZIP_DEFLATED:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush()
    if method == zipfile.ZIP_BZIP2:
        return bz2.compress(data)
    if method == zipfile.ZIP_LZMA:
        return lzma_header() + lzma.compress(data, lzma.FORMAT_RAW, filters=[LZMA_FILTER])
    raise ValueError(method)


LZMA_FILTER = {"id": lzma.FILTER_LZMA1, "preset": 1, "dict_size": 1 << 20}


def lzma_header() -> bytes:
    """Zip's LZMA header (APPNOTE 5.8.8) for LZMA_FILTER: version 9.20, 5 bytes of properties."""
    lc, lp, pb = 3, 0, 2
    return bytes([9, 20, 5, 0, (pb * 5 + lp) * 9 + lc]) + struct.pack("<I", LZMA_FILTER["dict_size"])


def raw_wheel(directory: Path, members: Sequence[RawMember], name: str = "crafted", version: str = "1.0",
              filename: str | None = None, record_extra: Sequence[str] = (), record_fields: dict | None = None) -> Path:
    """A wheel written structure by structure (ZIP spec APPNOTE 4.3), lies included: ``members``
    plus METADATA, WHEEL and a RECORD with a row for every member that is ``in_record`` (its
    ``data``'s hash and size) and the ``record_extra`` rows; ``record_fields`` sets RawMember
    fields of the RECORD member itself."""
    dist_info = f"{name}-{version}.dist-info"
    rows = [f"{m.name},{record_hash(m.data)},{len(m.data)}" for m in members if m.in_record and not m.name.endswith("/")]
    meta = [
        RawMember(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()),
        RawMember(f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: ns-strip-tests\nRoot-Is-Purelib: true\n"
                                        b"Tag: py3-none-any\n"),
    ]
    rows += [f"{m.name},{record_hash(m.data)},{len(m.data)}" for m in meta] + list(record_extra)
    rows.append(f"{dist_info}/RECORD,,")
    record = RawMember(f"{dist_info}/RECORD", ("\n".join(rows) + "\n").encode(), **(record_fields or {}))
    everything = [*members, *meta, record]
    body = b""
    central = b""
    for member in everything:
        stored = member.stored if member.stored is not None else compress(member.data, member.method)
        declared = len(member.data) if member.declared is None else member.declared
        crc = zlib.crc32(member.data) if member.crc is None else member.crc
        encoded = member.name.encode()
        flags = 0x800
        local = {"method": member.method, "crc": crc, "compress_size": len(stored), "file_size": declared,
                 "flags": flags, "name": encoded, **member.local}
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, local["flags"], local["method"], 0, 0x5442,
                             local["crc"], local["compress_size"], local["file_size"], len(local["name"]), 0)
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 0x0314, 20, flags, member.method, 0, 0x5442, crc,
                               len(stored), declared, len(encoded), 0, 0, 0, 0, member.mode << 16,
                               len(body)) + encoded
        body += header + local["name"] + stored
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(everything), len(everything), len(central), len(body), 0)
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / (filename or f"{name}-{version}-py3-none-any.whl")
    wheel.write_bytes(body + central + end)
    return wheel
