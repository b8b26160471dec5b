"""Find the extension modules and namespace packages in a directory tree or a wheel, for
``ns-strip ext``.

A directory is a namespace package when it has no ``__init__.py`` yet holds Python modules
(at any depth), or when its ``__init__.py`` declares a pkgutil/pkg_resources namespace; those
are the names an extension module must not take. Files are attributed to distributions by the
RECORDs of the ``*.dist-info`` directories at the top of the tree (or the wheel's own).

Public API: :class:`ExtensionTree`, :func:`read_tree`, :func:`read_wheel`,
:func:`read_records`, :func:`namespace_packages`, :func:`read_source`.
"""

from __future__ import annotations

import os

from .errors import BadInputError
from .extensions import ExtensionInfo, inspect_extension, inspect_extension_file, module_name
from .extnames import is_extension_filename, parse_extension_filename
from .safeio import MAX_INIT_BYTES, FileTooLargeError, NotRegularFileError, OutsideRootError
from .slotted import Slotted
from .sources import TreeSource, join

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (see slotted.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from .sources import Source

# The directories distributions.load_distributions reads a RECORD from (its is_metadata_dir;
# tests/test_ext_parallel.py checks the two agree).
METADATA_DIR_SUFFIXES = (".dist-info", ".egg-info")


class ExtensionTree(Slotted):
    """The extension modules and namespace packages of a tree or a wheel."""

    __slots__ = ("extensions", "namespaces", "skipped")

    extensions: list[ExtensionInfo]
    namespaces: set[str]
    skipped: list[str]  # plain shared libraries, symbolic links

    def __init__(self, extensions: list[ExtensionInfo], namespaces: set[str], skipped: list[str]) -> None:
        self.extensions = extensions
        self.namespaces = namespaces
        self.skipped = skipped


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
        if directory not in with_init or _declares_namespace(init_bytes(f"{directory}/__init__.py")):
            names.add(".".join(parts))
    return names


def _declares_namespace(init: bytes) -> bool:
    # initfile (with its tokenizer and purity analysis, a few milliseconds to import) is
    # loaded only when a tree has an __init__.py to classify: a directory of extension modules
    # alone never needs it.
    from .initfile import classify_init

    return classify_init(init).is_namespace


def read_records(root: Path) -> dict[str, str]:
    """Which distribution ships each path, from the RECORDs at the top of ``root``."""
    return _first_owners(TreeSource(root))


def read_tree(root: Path, processes: int = 1) -> ExtensionTree:
    """A directory tree; with ``processes`` > 1, a large number of extensions are read in that
    many processes (:func:`.forkmap.fork_map`), results in the same order."""
    base = os.fspath(root)

    def inspect(relpath: str, owners: tuple[str, ...]) -> ExtensionInfo:
        return inspect_extension_file(f"{base}/{relpath}", relpath, distributions=owners)

    def inspect_all(todo: list[tuple[str, tuple[str, ...]]]) -> list[ExtensionInfo]:
        if processes <= 1:
            return [inspect(*item) for item in todo]
        from .forkmap import fork_map

        return fork_map(lambda item: inspect(*item), todo, processes)

    return _read_source(TreeSource(root), inspect, inspect_all)


def read_wheel(path: Path) -> ExtensionTree:
    """A wheel, validated as every command validates one (unsafe wheels are refused, exit 3)."""
    from .wheels import WheelSource  # installer and packaging load only when a wheel is read

    with WheelSource.open(path) as source:
        def inspect(relpath: str, owners: tuple[str, ...]) -> ExtensionInfo:
            with source.open_member(relpath) as stream:  # decompressed in bounded chunks, spooled
                return inspect_extension(stream, relpath, distributions=owners)

        return _read_source(source, inspect)


def read_source(source: Source) -> ExtensionTree:
    """Any source read through its ``read_bytes`` (an artifact held in memory, for ``ns-strip
    archive``). A file it cannot give is recorded as the extension's problem (NS205)."""

    def inspect(relpath: str, owners: tuple[str, ...]) -> ExtensionInfo:
        try:
            data = source.read_bytes(relpath)
        except BadInputError as exc:
            return ExtensionInfo(relpath, parse_extension_filename(relpath.rpartition("/")[2]), module_name(relpath),
                                 None, exc.message, owners)
        from io import BytesIO  # here: the module's other readers stream from files and wheels

        return inspect_extension(BytesIO(data), relpath, distributions=owners)

    return _read_source(source, inspect)


def _first_owners(source: Source) -> dict[str, str]:
    root = source.dirs.get("")
    if root is None or not any(name.endswith(METADATA_DIR_SUFFIXES) for name in root.subdirs):
        # No RECORD can name an owner. distributions (with email, for METADATA) is about a
        # third of what ``ns-strip ext`` imports: loaded only for a tree that has metadata.
        return {}
    from .distributions import load_distributions, owners_by_path

    return {path: names[0] for path, names in owners_by_path(load_distributions(source)).items()}


def _read_source(source: Source, inspect, inspect_all=None) -> ExtensionTree:
    """Extensions and namespaces of a site dir or a wheel, read through the one Source listing.

    ``inspect(relpath, owners)`` reads one extension; ``inspect_all``, given, reads the list of
    them all (in parallel), with the same results in the same order."""
    owners = _first_owners(source)
    files: list[str] = []
    todo: list[tuple[str, tuple[str, ...]]] = []
    skipped: list[str] = []
    for directory, listing in sorted(source.dirs.items()):
        if directory.rpartition("/")[2] == "__pycache__":
            continue
        for filename in listing.files:
            relpath = join(directory, filename)
            files.append(relpath)
            if not is_extension_filename(filename):
                continue
            if filename in listing.links:
                skipped.append(f"{relpath}: symbolic link, not followed")
                continue
            owner = owners.get(relpath)
            todo.append((relpath, (owner,) if owner else ()))
    extensions = inspect_all(todo) if inspect_all is not None else [inspect(*item) for item in todo]
    return ExtensionTree(extensions, namespace_packages(files, init_reader(source)), skipped)


def init_reader(source: Source) -> Callable[[str], bytes]:
    """``init_bytes`` for :func:`namespace_packages`: an ``__init__.py`` that is not a regular
    file (a FIFO, a link out of the root) or is larger than MAX_INIT_BYTES is read as empty,
    that is as a regular package's: it is never waited on, and a namespace needs a small init."""
    def init_bytes(path: str) -> bytes:
        try:
            return source.read_bytes(path, MAX_INIT_BYTES)
        except (NotRegularFileError, FileTooLargeError, OutsideRootError):
            return b""

    return init_bytes
