"""Find the extension modules and namespace packages in a directory tree or a wheel, for
``ns-strip ext``.

A directory is a namespace package when it has no ``__init__.py`` yet holds Python modules
(at any depth), or when its ``__init__.py`` declares a pkgutil/pkg_resources namespace; those
are the names an extension module must not take. Files are attributed to distributions by the
RECORDs of the ``*.dist-info`` directories at the top of the tree (or the wheel's own).

Public API: :class:`ExtensionTree`, :func:`read_tree`, :func:`read_wheel`,
:func:`read_records`, :func:`namespace_packages`.
"""

from __future__ import annotations

import dataclasses
import io
import os
import posixpath
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from installer.records import InvalidRecordEntry, parse_record_file

from .errors import BadInputError
from .extensions import ExtensionInfo, import_path, inspect_extension, inspect_extension_file
from .extnames import is_extension_filename
from .initfile import classify_init

MAX_INIT_BYTES = 1 << 20  # a namespace __init__.py is a few lines; larger ones are regular packages
MAX_WHEEL_MEMBER = 1 << 30  # an extension is decompressed to a temporary file to be read
SPOOL_IN_MEMORY = 8 << 20


@dataclasses.dataclass
class ExtensionTree:
    extensions: list[ExtensionInfo]
    namespaces: set[str]
    skipped: list[str]  # plain shared libraries, symbolic links


def namespace_packages(files: Iterable[str], init_bytes) -> set[str]:
    """Dotted names of namespace packages among the directories holding ``files``.

    ``files`` are import paths (POSIX, relative to the site root); ``init_bytes(path)`` returns
    the first bytes of the ``__init__.py`` at ``path``.
    """
    with_modules: set[str] = set()
    with_init: set[str] = set()
    for path in files:
        directory, _, filename = path.rpartition("/")
        if filename == "__init__.py":
            with_init.add(directory)
        if filename.endswith(".py") or is_extension_filename(filename):
            while directory:
                with_modules.add(directory)
                directory = directory.rpartition("/")[0]
    names = set()
    for directory in with_modules:
        parts = directory.split("/")
        if not all(part.isidentifier() for part in parts):
            continue
        if directory not in with_init or classify_init(init_bytes(f"{directory}/__init__.py")).is_namespace:
            names.add(".".join(parts))
    return names


def read_records(root: Path) -> dict[str, str]:
    """Which distribution ships each path, from ``*.dist-info/RECORD`` at the top of ``root``.

    A RECORD that cannot be parsed attributes nothing; ``--rename`` reads it again and refuses.
    """
    owners: dict[str, str] = {}
    for record in sorted(root.glob("*.dist-info/RECORD")):
        distribution = record.parent.name[: -len(".dist-info")].partition("-")[0]
        try:
            for path, _, _ in parse_record_file(record.read_text("utf-8").splitlines()):
                owners.setdefault(posixpath.normpath(path), distribution)
        except (OSError, UnicodeError, InvalidRecordEntry):
            continue
    return owners


def read_tree(root: Path) -> ExtensionTree:
    owners = read_records(root)
    files: list[str] = []
    candidates: list[str] = []
    skipped: list[str] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d != "__pycache__" and not os.path.islink(os.path.join(directory, d))
        )
        base = Path(directory).relative_to(root).as_posix()
        for filename in sorted(filenames):
            relpath = filename if base == "." else f"{base}/{filename}"
            files.append(relpath)
            if is_extension_filename(filename):
                if os.path.islink(os.path.join(directory, filename)):
                    skipped.append(f"{relpath}: symbolic link, not followed")
                else:
                    candidates.append(relpath)

    def init_bytes(path: str) -> bytes:
        with open(root / path, "rb") as stream:
            return stream.read(MAX_INIT_BYTES)

    extensions = [
        inspect_extension_file(root / relpath, relpath, distributions=_owner(owners, relpath)) for relpath in candidates
    ]
    return ExtensionTree(extensions, namespace_packages(files, init_bytes), skipped)


def read_wheel(path: Path) -> ExtensionTree:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadInputError(f"not a readable wheel: {exc}", str(path)) from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        names = [info.filename for info in members]
        distribution = next((n.split("/")[0][: -len(".dist-info")].partition("-")[0] for n in names
                             if n.split("/")[0].endswith(".dist-info")), None)  # fmt: skip
        owners = (distribution,) if distribution else ()
        extensions = []
        for member in members:
            if not is_extension_filename(posixpath.basename(member.filename)):
                continue
            extensions.append(_inspect_member(archive, member, owners))

        by_import_path = {import_path(member.filename): member for member in members}

        def init_bytes(import_relpath: str) -> bytes:
            with archive.open(by_import_path[import_relpath]) as stream:
                return stream.read(MAX_INIT_BYTES)

        namespaces = namespace_packages(list(by_import_path), init_bytes)
    return ExtensionTree(extensions, namespaces, [])


def _inspect_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, owners: tuple[str, ...]) -> ExtensionInfo:
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as copy:
        try:
            with archive.open(member) as stream:
                copied = _copy_bounded(stream, copy, MAX_WHEEL_MEMBER)
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
            error = f"cannot be extracted from the wheel: {exc}"
        else:
            error = None if copied <= MAX_WHEEL_MEMBER else f"larger than {MAX_WHEEL_MEMBER} bytes when decompressed"
        if error is None:
            copy.seek(0)
            return inspect_extension(copy, member.filename, distributions=owners)
    return dataclasses.replace(inspect_extension(io.BytesIO(), member.filename, distributions=owners), problem=error)


def _copy_bounded(source, target, limit: int) -> int:
    copied = 0
    while copied <= limit:
        chunk = source.read(1 << 20)
        if not chunk:
            break
        target.write(chunk)
        copied += len(chunk)
    return copied


def _owner(owners: dict[str, str], relpath: str) -> tuple[str, ...]:
    owner = owners.get(relpath)
    return (owner,) if owner else ()
