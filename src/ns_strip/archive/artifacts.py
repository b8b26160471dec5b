"""Artifacts as sources: a wheel, an sdist or a ``.deb``, each shown as the site dir it installs.

- A wheel is opened with :class:`ns_strip.wheels.WheelSource`, validated as every wheel command
  validates one (an unsafe wheel is refused the same way).
- A ``.deb``'s ``data.tar.*`` is streamed; the files under its Python site dirs
  (``usr/lib/python3/dist-packages/``, ``usr/lib/python3.X/{dist,site}-packages/``) make the view,
  all site dirs merged (they are all on ``sys.path``). Package and version come from
  ``control``. Debian's single-file ``foo.egg-info`` is shown as ``foo.egg-info/PKG-INFO``.
- An sdist (``.tar.gz``, ``.tar.bz2``, ``.tar.xz``, ``.tgz``, ``.zip``) is read from its source
  tree: the import root is ``src/`` when there is one, else the top directory; the top-level
  names of the egg-info's ``top_level.txt`` when it has one, else everything but the usual
  non-installed directories (tests, docs, examples…). Which files a build would install is a
  build's to decide: for an sdist this is the best reading without running one. Its PKG-INFO
  becomes the METADATA of a ``NAME-VERSION.dist-info`` in the view, with the egg-info's
  ``namespace_packages.txt`` beside it.

Debian removes RECORD from what it installs, and an sdist has none: a distribution without
one gets a RECORD made here from the files read (their sha256 and size), so the analyses that
attribute files by RECORD work unchanged. With several distributions in one view, a file goes
to the one whose own file list (RECORD, installed-files.txt, SOURCES.txt) names it, else to the
one whose name is the longest prefix of its path (``azure-mgmt-compute``: ``azure/mgmt/compute/``),
else to the one whose ``top_level.txt`` names its top-level name, else to the first.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import posixpath
import re
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import BadInputError
from ..extnames import is_extension_filename
from ..metadata_edit import csv_row
from ..safeio import MAX_INIT_BYTES, MAX_TEXT_BYTES
from ..sources import Source, WHEEL_SUFFIX
from . import streams
from .members import METADATA_SUFFIXES, MemberFile, MemberSource, kept_limit

WHEEL, SDIST, DEB = "wheel", "sdist", "deb"
SDIST_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")
_SITE_DIR = re.compile(r"^usr/(?:local/)?lib/python3(?:\.\d+)?/(?:dist|site)-packages(?:/|$)")
# Top-level entries of a source tree that builds do not install.
_NOT_INSTALLED = frozenset({
    "tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks", "benchmark", "scripts",
    "tools", "build", "dist", "ci", "setup.py", "conftest.py", "noxfile.py", "tasks.py", "fabfile.py",
    "bootstrap.py", "runtests.py", "setup.cfg", "pyproject.toml",
})


def artifact_kind(name: str) -> str | None:
    """The kind of artifact a file name says, or None for any other file."""
    lowered = name.lower()
    if lowered.endswith(WHEEL_SUFFIX):
        return WHEEL
    if lowered.endswith(".deb"):
        return DEB
    if lowered.endswith(SDIST_SUFFIXES):
        return SDIST
    return None


@dataclasses.dataclass
class Opened:
    kind: str
    source: Source
    package: str | None = None  # a .deb's package name
    package_version: str | None = None


@contextlib.contextmanager
def open_artifact(path: str, kind: str, label: str) -> Iterator[Opened]:
    if kind == WHEEL:
        from ..wheels import WheelSource

        with WheelSource.open(path, label=label) as wheel:
            yield Opened(WHEEL, wheel)
    elif kind == DEB:
        yield _open_deb(path, label)
    elif kind == SDIST:
        yield _open_sdist(path, label)
    else:
        raise BadInputError("not a wheel, an sdist or a .deb", label)


# -- .deb ----------------------------------------------------------------------------------------


def _site_path(path: str, is_file: bool = True) -> str | None:
    """``path`` in the data tar relative to its site dir, or None when it is not under one."""
    match = _SITE_DIR.match(path)
    if match is None:
        return None
    rest = path[match.end():]
    if is_file and rest and "/" not in rest and rest.endswith(".egg-info"):
        return rest + "/PKG-INFO"  # Debian's one-file egg-info (dh_python keeps PKG-INFO only)
    return rest or None


def _open_deb(path: str, label: str) -> Opened:
    with open(path, "rb") as handle:
        members = streams.ar_members(handle, label)
        if "debian-binary" not in members:
            raise BadInputError("not a Debian package (no debian-binary member)", label)
        control = _read_control(path, handle, members, label)
        source = MemberSource(label)

        def wanted(member: str) -> int | None:
            site = _site_path(member)
            return None if site is None else kept_limit(site)

        for member, entry in _tar_members(path, handle, members, "data.tar", label, wanted):
            site = _site_path(member, entry is not None)
            if site is None:
                continue
            if entry is None:
                source.add_directory(site)
            elif site in source.files and source.files[site].sha256 == entry.sha256:
                continue  # the same file in two site dirs (python3/ and python3.X/): one in the view
            else:
                source.add(site, entry)
    package = control.get("package") or os.path.basename(path).partition("_")[0]
    version = control.get("version") or "0"
    complete_metadata(source, package, version, replace=True)
    return Opened(DEB, source, package, version)


def _tar_members(path: str, handle: BinaryIO, members: dict[str, tuple[int, int]], prefix: str, label: str,
                 wanted: streams.Wanted) -> Iterator[tuple[str, MemberFile | None]]:
    stream, name, size, process = streams.deb_tar_stream(path, handle, members, prefix, label)
    try:
        yield from streams.read_tar(stream, label, wanted, name, streams.expansion_limit(size))
    finally:
        if process is not None:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _read_control(path: str, handle: BinaryIO, members: dict[str, tuple[int, int]], label: str) -> dict[str, str]:
    def wanted(member: str) -> int | None:
        return MAX_TEXT_BYTES if member == "control" else None

    fields: dict[str, str] = {}
    for member, entry in _tar_members(path, handle, members, "control.tar", label, wanted):
        if member == "control" and entry is not None and entry.data is not None:
            for line in entry.data.decode("utf-8", errors="replace").splitlines():
                key, colon, value = line.partition(":")
                if colon and not line.startswith((" ", "\t")):
                    fields.setdefault(key.strip().lower(), value.strip())
    return fields


# -- sdists --------------------------------------------------------------------------------------


def _sdist_wanted(path: str) -> int | None:
    parts = path.split("/")
    name = parts[-1]
    if name == "__init__.py":
        return MAX_INIT_BYTES
    if is_extension_filename(name):
        return kept_limit(name)
    if name == "PKG-INFO" and len(parts) <= 2:
        return MAX_TEXT_BYTES
    if len(parts) in (2, 3, 4) and parts[-2].endswith(".egg-info"):
        return MAX_TEXT_BYTES
    return None


def _open_sdist(path: str, label: str) -> Opened:
    entries: dict[str, MemberFile] = {}
    directories: set[str] = set()
    if path.lower().endswith(".zip"):
        iterator = streams.read_zip(path, label, _sdist_wanted)
        for member, entry in iterator:
            if entry is None:
                directories.add(member)
            else:
                entries[member] = entry
    else:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            name = os.path.basename(path).lower()
            suffix = ".tar.gz" if name.endswith(".tgz") else name
            stream = streams.decompressor(handle, suffix, label)  # type: ignore[arg-type]
            for member, entry in streams.read_tar(stream, label, _sdist_wanted, "the sdist",
                                                  streams.expansion_limit(size)):
                if entry is None:
                    directories.add(member)
                elif member in entries:
                    raise BadInputError(f"{member!r} appears twice in the archive", label)
                else:
                    entries[member] = entry
    tops = {member.split("/")[0] for member in [*entries, *directories]}
    top = tops.pop() if len(tops) == 1 and any("/" in member for member in entries) else ""
    strip = len(top) + 1 if top else 0
    files = {member[strip:]: entry for member, entry in entries.items() if member[strip:]}
    pkg_info = files.get("PKG-INFO")
    name, version = _sdist_name_version(os.path.basename(path), pkg_info)
    egg_info = sorted({member.rsplit("/", 1)[0] for member in files
                       if member.rsplit("/", 1)[0].endswith(".egg-info") and member.count("/") <= 2})
    root = "src" if any(member.startswith("src/") and member.endswith(".py") for member in files) else ""
    top_level: set[str] | None = None
    namespace_txt: bytes | None = None
    for directory in egg_info:
        listed = files.get(f"{directory}/top_level.txt")
        if listed is not None and listed.data is not None:
            top_level = (top_level or set()) | {line.strip() for line in listed.data.decode(
                "utf-8", errors="replace").splitlines() if line.strip()}
        declared = files.get(f"{directory}/namespace_packages.txt")
        if declared is not None and declared.data is not None:
            namespace_txt = declared.data
    source = MemberSource(label)
    prefix = root + "/" if root else ""
    for member, entry in sorted(files.items()):
        if not member.startswith(prefix):
            continue
        rel = member[len(prefix):]
        first = rel.split("/")[0]
        if first.endswith(METADATA_SUFFIXES) or first == "PKG-INFO":
            continue
        stem = first.split(".")[0] if "/" not in rel else first
        if top_level is not None:
            if stem not in top_level:
                continue
        elif first in _NOT_INSTALLED or first.startswith("."):
            continue
        elif "/" not in rel and not (rel.endswith(".py") or is_extension_filename(rel)):
            continue  # README, LICENSE, MANIFEST.in…: not installed into the site dir
        source.add(rel, entry)
    dist_info = f"{_escape(name)}-{_escape(version)}.dist-info"
    metadata = pkg_info.data if pkg_info is not None and pkg_info.data is not None else \
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    source.set_data(f"{dist_info}/METADATA", metadata)
    if namespace_txt is not None:
        source.set_data(f"{dist_info}/namespace_packages.txt", namespace_txt)
    complete_metadata(source, name, version)
    return Opened(SDIST, source)


_SDIST_NAME = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*?)(?:\.tar\.gz|\.tgz|\.tar\.bz2|\.tar\.xz|\.zip)$",
                         re.IGNORECASE)


def _sdist_name_version(filename: str, pkg_info: MemberFile | None) -> tuple[str, str]:
    name = version = None
    if pkg_info is not None and pkg_info.data is not None:
        for line in pkg_info.data.decode("utf-8", errors="replace").splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            if key.lower() == "name" and name is None:
                name = value.strip()
            elif key.lower() == "version" and version is None:
                version = value.strip()
    match = _SDIST_NAME.match(filename)
    if match:
        name = name or match["name"]
        version = version or match["version"]
    return name or filename, version or "0"


def _escape(text: str) -> str:
    return re.sub(r"[^\w.]+", "_", text)


# -- metadata a view lacks -----------------------------------------------------------------------


def complete_metadata(source: MemberSource, fallback_name: str, fallback_version: str, replace: bool = False) -> None:
    """Give every distribution of the view a RECORD (see the module docstring), and a view with
    files but no metadata directory one distribution named ``fallback_name``.

    ``replace``: also for a distribution that has one (a ``.deb``'s): Debian changes the files
    after the RECORD was written (namespace ``__init__.py`` removed, scripts moved out of the
    site dir), so what the package holds is the truth, not its RECORD.
    """
    metadata_dirs = source.metadata_dirs()
    content = [path for path in source.files if path.split("/")[0] not in metadata_dirs]
    if not metadata_dirs:
        if not content:
            return
        directory = f"{_escape(fallback_name)}-{_escape(fallback_version)}.dist-info"
        source.set_data(f"{directory}/METADATA",
                        f"Metadata-Version: 2.1\nName: {fallback_name}\nVersion: {fallback_version}\n".encode())
        metadata_dirs = [directory]
    owners: dict[str, list[str]] = {directory: [] for directory in metadata_dirs}
    present = set(content)
    file_claims: dict[str, str] = {}
    claims: dict[str, str] = {}
    for directory in metadata_dirs:
        for path in _listed_files(source, directory):
            if path in present:
                file_claims.setdefault(path, directory)
        listed = source.files.get(f"{directory}/top_level.txt")
        if listed is not None and listed.data is not None:
            for line in listed.data.decode("utf-8", errors="replace").splitlines():
                claims.setdefault(line.strip(), directory)
    # Debian's python3-azure: 269 egg-infos in one tree, each with top_level.txt "azure" and no
    # file list. There a distribution's name says where its files are (azure-mgmt-compute ->
    # azure/mgmt/compute/): the longest such prefix decides.
    by_name: dict[str, str] = {}
    if len(metadata_dirs) > 1:
        for directory in metadata_dirs:
            stem = directory.rsplit(".", 1)[0].split("-")[0]
            by_name.setdefault(re.sub(r"[-_.]+", "/", stem).lower() + "/", directory)
    prefixes = sorted(by_name, key=len, reverse=True)
    for path in content:
        first = path.split("/")[0]
        stem = first if "/" in path else first.split(".")[0]
        owner = file_claims.get(path)
        if owner is None and prefixes:
            lowered = path.lower()
            owner = next((by_name[p] for p in prefixes if lowered.startswith(p)), None)
        owners[owner or claims.get(stem, metadata_dirs[0])].append(path)
    for directory in metadata_dirs:
        egg = directory.endswith(".egg-info")
        record = f"{directory}/{'installed-files.txt' if egg else 'RECORD'}"
        if record in source.files and not replace:
            continue
        own = sorted(path for path in source.files if path.startswith(directory + "/") and path != record)
        rows = []
        for path in sorted(owners[directory]) + own:
            entry = source.files[path]
            if egg:
                rows.append(os.path.relpath(path, directory).replace(os.sep, "/"))
            elif entry.link is not None:
                rows.append(csv_row([path, "", ""], "").rstrip("\r\n"))
            else:
                rows.append(csv_row([path, entry.sha256, str(entry.size)], "").rstrip("\r\n"))
        if not egg:
            rows.append(csv_row([record, "", ""], "").rstrip("\r\n"))
        source.set_data(record, ("\n".join(rows) + "\n").encode("utf-8"))


def _listed_files(source: MemberSource, directory: str) -> list[str]:
    """The files a metadata directory's own lists name (RECORD, installed-files.txt, an
    egg-info's SOURCES.txt), as view paths: who owns what in a view of several distributions."""
    found: list[str] = []
    for name in ("RECORD", "installed-files.txt", "SOURCES.txt"):
        entry = source.files.get(f"{directory}/{name}")
        if entry is None or entry.data is None:
            continue
        for line in entry.data.decode("utf-8", errors="replace").splitlines():
            if name == "RECORD":
                line = next(csv.reader([line]), [""])[0] if line else ""
            line = line.strip()
            if not line:
                continue
            if name == "installed-files.txt":
                line = posixpath.normpath(posixpath.join(directory, line))
            elif name == "SOURCES.txt" and line.startswith("src/"):
                line = line[4:]
            found.append(line)
    return found
