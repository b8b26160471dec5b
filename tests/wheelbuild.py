"""Wheels for the tests: built at test time by real backends, or crafted (hostile ones included).

- :func:`build_wheel` writes a project and builds it offline with setuptools, hatchling or
  flit_core through ``pip wheel --no-build-isolation`` (as a distro build does).
- :func:`craft_wheel` writes a wheel member by member with zipfile and a true RECORD that a
  test may then spoil, for the refusals that no backend would produce.
- :func:`raw_member` reads a member's stored (compressed) bytes, to prove a copy was raw.

Imported by the tests as a plain module (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import json
import struct
import textwrap
import zipfile
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
