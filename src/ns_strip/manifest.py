"""Per-package namespace manifests: which namespace directories a package shares with others,
which portions it puts in them, and which directories it owns outright.

A manifest is written at build time from a scan of the package's staged site dir, installed
with the package, and read at install time by ``ns-strip registry`` (reference counts) and
by ``ns-strip render`` (package-manager file lists). It is JSON so shell and other tools can
read it too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import BadInputError, UsageError
from .safeio import read_regular
from .scan import PYCACHE, ScanResult
from .sources import join, parent_of

FORMAT_KEY = "ns-strip-manifest"
FORMAT_VERSION = 1
DEFAULT_MANIFEST_DIR = "/usr/share/ns-strip/manifests"
# How the registry treats the package's namespace directories: "pkgutil" keeps a placeholder
# __init__.py there while a package using it is installed. A manifest may say which it wants.
PLACEHOLDER_MODES = ("none", "pkgutil")
# A manifest lists a package's directories and files: a few MiB at most.
MAX_MANIFEST_BYTES = 16 << 20
# Styles whose namespace is a directory in the site dir (the others name a .pth or metadata file).
_DIRECTORY_STYLES = ("pep420", "pkgutil", "pkg_resources")
# Package names end up in file names and shell snippets: Debian, RPM and Gentoo names fit.
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*")


@dataclasses.dataclass(frozen=True)
class Manifest:
    package: str
    site_dir: str  # absolute in the target system
    namespaces: list[str]  # namespace directories relative to site_dir, parents first
    portions: dict[str, list[str]]  # namespace directory -> names of its non-namespace children
    owned_dirs: list[str]  # directories no other package ships files in
    shared_dirs: list[str]  # not namespaces, yet shared: the site dir's and namespaces' __pycache__
    loose_files: list[str]  # files outside owned_dirs: in the site dir, namespaces, shared dirs
    distributions: list[str]
    # The registry's placeholder mode for this package (optional key, written when not "none").
    placeholders: str = "none"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION}
        data.update(dataclasses.asdict(self))
        if self.placeholders == "none":
            del data["placeholders"]
        return data

    @property
    def top_owned_dirs(self) -> list[str]:
        """Owned directories whose parent is not owned: listing these covers every owned one."""
        owned = set(self.owned_dirs)
        return [d for d in self.owned_dirs if parent_of(d) not in owned]


def check_package_name(name: str) -> str:
    if not _PACKAGE_NAME.fullmatch(name):
        raise UsageError(f"package name {name!r} is not valid (letters, digits and + . _ - only)")
    return name


def namespace_name(directory: str) -> str:
    return directory.replace("/", ".")


# -- building ----------------------------------------------------------------------------------


def build_manifest(result: ScanResult, package: str, site_dir: str, placeholders: str = "none") -> Manifest:
    """The manifest of a staged site dir that holds exactly one package's files."""
    dirs = result.source.dirs
    found = {
        entry.name.replace(".", "/")
        for entry in result.namespaces
        if entry.style in _DIRECTORY_STYLES
    }
    # A namespace inside a regular package (NS112) is that package's directory, not a shared one.
    namespaces = sorted(
        (d for d in found if d in dirs and _ancestors_in(d, found)),
        key=lambda d: (d.count("/"), d),
    )
    namespace_set = set(namespaces)
    shared_parents = namespace_set | {""}
    shared_dirs = sorted(join(d, PYCACHE) for d in shared_parents if join(d, PYCACHE) in dirs)
    loose_dirs = shared_parents | set(shared_dirs)

    portions: dict[str, list[str]] = {}
    owned_dirs: list[str] = []
    loose_files: list[str] = []
    for directory, listing in dirs.items():
        entries = sorted(set(listing.files) | listing.links)
        if directory in loose_dirs:
            loose_files.extend(join(directory, name) for name in entries)
        elif directory:
            owned_dirs.append(directory)
        if directory in namespace_set:
            children = [n for n in entries if not n.startswith("__init__.")]
            children += [s for s in listing.subdirs if s != PYCACHE and join(directory, s) not in namespace_set]
            portions[directory] = sorted(children)
    return Manifest(
        package=check_package_name(package),
        site_dir=site_dir,
        namespaces=namespaces,
        portions=portions,
        owned_dirs=sorted(owned_dirs),
        shared_dirs=shared_dirs,
        loose_files=sorted(loose_files),
        distributions=sorted(d.name for d in result.distributions),
        placeholders=placeholders,
    )


def _ancestors_in(directory: str, namespaces: set[str]) -> bool:
    parent = parent_of(directory)
    while parent:
        if parent not in namespaces:
            return False
        parent = parent_of(parent)
    return True


# -- reading -----------------------------------------------------------------------------------


def load_manifest(path: Path, label: str | None = None, root: str | None = None) -> Manifest:
    """Read and check a manifest; every problem is a BadInputError naming the file.

    It is read as a regular file only (a link, FIFO or device is refused, never followed or
    waited on), bounded, and with ``root`` only when it resolves inside the root.
    """
    where = label or str(path)
    if not os.path.lexists(path):
        raise BadInputError("no such manifest", where)
    check_inside_root(root, path)
    try:
        data = read_regular(path, MAX_MANIFEST_BYTES)
    except BadInputError as exc:
        raise BadInputError(f"manifest {exc.message}", where) from exc
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadInputError(f"not a JSON manifest ({exc})", where) from exc
    return manifest_from_json(raw, where)


def manifest_from_json(raw: object, where: str) -> Manifest:
    if not isinstance(raw, dict) or FORMAT_KEY not in raw:
        raise BadInputError(f"not an ns-strip manifest (no {FORMAT_KEY!r} key)", where)
    if raw[FORMAT_KEY] != FORMAT_VERSION:
        raise BadInputError(f"manifest format {raw[FORMAT_KEY]!r} is not supported (expected {FORMAT_VERSION})", where)

    def field(name: str, kind: type) -> Any:
        value = raw.get(name)
        if not isinstance(value, kind):
            raise BadInputError(f"manifest field {name!r} is missing or not a {kind.__name__}", where)
        return value

    def paths(name: str) -> list[str]:
        return [_relative_path(item, name, where) for item in _strings(field(name, list), name, where)]

    package = field("package", str)
    if not _PACKAGE_NAME.fullmatch(package):
        raise BadInputError(f"manifest package name {package!r} is not valid", where)
    site_dir = field("site_dir", str)
    if not site_dir.startswith("/") or posixpath.normpath(site_dir) != site_dir.rstrip("/") or "\n" in site_dir:
        raise BadInputError(f"manifest site_dir {site_dir!r} is not a normalised absolute path", where)
    namespaces = paths("namespaces")
    for directory in namespaces:
        if not all(part.isidentifier() for part in directory.split("/")):
            raise BadInputError(f"manifest namespace {directory!r} is not a dotted package path", where)
    portions: dict[str, list[str]] = {}
    for directory, names in field("portions", dict).items():
        if directory not in namespaces:
            raise BadInputError(f"manifest portions name {directory!r}, which is not among its namespaces", where)
        if not isinstance(names, list):
            raise BadInputError(f"manifest portions of {directory!r} are not a list", where)
        for name in _strings(names, "portions", where):
            if "/" in name or name in ("", ".", ".."):
                raise BadInputError(f"manifest portion {name!r} of {directory!r} is not a file name", where)
        portions[directory] = list(names)
    placeholders = raw.get("placeholders", "none")
    if placeholders not in PLACEHOLDER_MODES:
        raise BadInputError(f"manifest placeholders {placeholders!r} is not one of {', '.join(PLACEHOLDER_MODES)}", where)
    return Manifest(
        placeholders=placeholders,
        package=package,
        site_dir=site_dir.rstrip("/") or "/",
        namespaces=sorted(namespaces, key=lambda d: (d.count("/"), d)),
        portions=portions,
        owned_dirs=paths("owned_dirs"),
        shared_dirs=paths("shared_dirs"),
        loose_files=paths("loose_files"),
        distributions=_strings(field("distributions", list), "distributions", where),
    )


def _strings(values: Iterable[object], name: str, where: str) -> list[str]:
    result = []
    for value in values:
        if not isinstance(value, str):
            raise BadInputError(f"manifest field {name!r} holds {value!r}, not a string", where)
        result.append(value)
    return result


def _relative_path(path: str, name: str, where: str) -> str:
    normalised = posixpath.normpath(path) if path else ""
    if (not path or path.startswith("/") or normalised != path or normalised.split("/")[0] == ".."
            or "\n" in path):
        raise BadInputError(f"manifest field {name!r} holds {path!r}, not a path inside the site dir", where)
    return path


# -- where manifests live ----------------------------------------------------------------------


def host_path(root: str | None, path: str, what: str) -> Path:
    """A path of the target system as seen from here: below ``root`` when one is given."""
    if root is None:
        return Path(path)
    if not Path(root).is_dir():
        raise UsageError("--root is not a directory", root)
    if not path.startswith("/"):
        raise UsageError(f"with --root, {what} must be absolute in the target system", path)
    return Path(root) / path.lstrip("/")


def check_inside_root(root: str | None, path: Path) -> None:
    """Refuse a path that a symbolic link carries out of ``root``: nothing outside is touched."""
    if root is None:
        return
    real_root = os.path.realpath(root)
    if os.path.commonpath([os.path.realpath(path), real_root]) != real_root:
        raise BadInputError(f"resolves outside --root {root}; refusing to touch it", str(path))


def default_manifest_path(manifest_dir: str, package: str) -> str:
    return posixpath.join(manifest_dir, f"{check_package_name(package)}.json")


def write_manifest(manifest: Manifest, path: Path, root: str | None = None) -> None:
    """Write atomically (a reader never sees half a manifest), creating the directory."""
    try:
        check_inside_root(root, path.parent)  # before mkdir: create nothing outside the root
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        raise BadInputError(f"cannot write manifest: {exc.strerror or exc}", str(path)) from exc


def summary(manifest: Manifest) -> str:
    names = ", ".join(namespace_name(d) for d in manifest.namespaces) or "none"
    return f"namespaces: {names}; {len(manifest.owned_dirs)} owned directories"


__all__ = [
    "DEFAULT_MANIFEST_DIR", "PLACEHOLDER_MODES", "Manifest", "build_manifest", "check_inside_root", "check_package_name",
    "default_manifest_path", "host_path", "load_manifest", "manifest_from_json", "namespace_name", "summary",
    "write_manifest",
]
